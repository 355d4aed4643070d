"""Core: the vocabulary as values and pure functions (events, schemas, the filter language, the Merkle tree).

No I/O: no files, sockets or databases, and the clock and randomness are passed in. Imports
only other core modules and :mod:`trailvault.errors`.
"""

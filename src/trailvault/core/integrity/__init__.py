"""Integrity: the RFC 9162 Merkle tree over the log, its proofs and their verification.

Pure code (no I/O): stores feed it leaf and node hashes; verifiers need only the
proof, the leaf and a root.
"""

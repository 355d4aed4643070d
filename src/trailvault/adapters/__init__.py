"""Adapters: code that knows one database, file format or document source.

Each adapter imports core only, never a sibling adapter, and translates its own library's
exceptions into :mod:`trailvault.errors`.
"""

"""Workflows: steps coordinated over time (the vault, proving, export, archiving, the remote client).

A workflow imports core and adapters, never an edge. Package ``__init__`` modules here stay
empty so that a process importing one module (a ``verify archive`` worker) loads only that.
"""

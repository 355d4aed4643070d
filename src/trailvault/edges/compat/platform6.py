"""The Platform 6 ``audit`` binding: ``audit.open(id, schemaUri)`` and ``audit.post(id, values)``.

::

    from trailvault import audit
    audit.open("myindex", "file:///etc/audit/myindex.json")
    audit.post("myindex", {"company": "Amalto", "amount": 101.12})

The vault comes from the settings (``TRAILVAULT_VAULT``, the config file, or
``./trailvault-data``); Platform 6's ``application_id`` is trailvault's ``app``
(``TRAILVAULT_APP`` or ``app`` in the config file). :func:`configure` picks a
vault explicitly instead.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trailvault.core.event import Posted
from trailvault.edges.config import load_settings, open_configured_vault
from trailvault.workflows.vault.vault import Vault

__all__ = ["close", "configure", "open", "post"]

_lock = threading.Lock()
_vault: Vault | None = None


def configure(vault: str | Path | None = None, *, app: str | None = None) -> Vault:
    """Use the vault at ``vault`` (or the configured one) as ``app``; return it."""
    global _vault
    with _lock:
        if _vault is not None:
            _vault.close()
        _vault = _open(vault, app)
        return _vault


def _open(vault: str | Path | None, app: str | None) -> Vault:
    settings = load_settings(overrides={"vault": None if vault is None else str(vault), "app": app})
    return open_configured_vault(settings, create=True)


def _current() -> Vault:
    global _vault
    with _lock:
        if _vault is None:
            _vault = _open(None, None)
        return _vault


def open(id: str, schemaUri: str | Mapping[str, Any] | None = None) -> bool:  # noqa: A001, A002, N803
    """Create the audit channel ``id`` or confirm it exists; True when it exists or was created."""
    return _current().open(id, schemaUri)


def post(id: str, values: Mapping[str, Any] | str) -> Posted:  # noqa: A002
    """Post one audit record (a dict, nested dicts and lists for RECORDs, or a JSON string)."""
    return _current().post(id, values)


def close() -> None:
    """Close the vault the binding opened (also done at exit)."""
    global _vault
    with _lock:
        if _vault is not None:
            _vault.close()
            _vault = None


atexit.register(close)

"""trailvault: record, keep, find, take out and prove audit events.

::

    import trailvault
    with trailvault.open_vault("trailvault-data") as vault:
        vault.open("myindex", "file:///path/myindex.json")
        vault.post("myindex", {"company": "Amalto", "amount": 101.12})
        for event in vault.events("myindex"):
            print(event.seq, event.body)

The names below are loaded on first use (PEP 562), so importing one module of the
package (a ``verify archive`` worker process imports :mod:`trailvault.workflows.archive.files`)
does not load the vault, the client and the HTTP stack as well.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trailvault import errors
    from trailvault.core.api_key import ApiKey, Scope
    from trailvault.core.channel import Channel
    from trailvault.core.event import Event, EventPage, NewEvent, Posted
    from trailvault.edges.compat import platform6 as audit
    from trailvault.errors import TrailvaultError
    from trailvault.workflows.client import RemoteVault, Sender, connect
    from trailvault.workflows.vault.opening import open_vault
    from trailvault.workflows.vault.vault import Vault

__all__ = [
    "ApiKey",
    "Channel",
    "Event",
    "EventPage",
    "NewEvent",
    "Posted",
    "RemoteVault",
    "Scope",
    "Sender",
    "TrailvaultError",
    "Vault",
    "audit",
    "connect",
    "errors",
    "open_vault",
]

#: Each public name: the module it lives in, and its name there (None: the module itself).
_HOMES: dict[str, tuple[str, str | None]] = {
    "ApiKey": ("trailvault.core.api_key", "ApiKey"),
    "Channel": ("trailvault.core.channel", "Channel"),
    "Event": ("trailvault.core.event", "Event"),
    "EventPage": ("trailvault.core.event", "EventPage"),
    "NewEvent": ("trailvault.core.event", "NewEvent"),
    "Posted": ("trailvault.core.event", "Posted"),
    "RemoteVault": ("trailvault.workflows.client", "RemoteVault"),
    "Scope": ("trailvault.core.api_key", "Scope"),
    "Sender": ("trailvault.workflows.client", "Sender"),
    "TrailvaultError": ("trailvault.errors", "TrailvaultError"),
    "Vault": ("trailvault.workflows.vault.vault", "Vault"),
    "audit": ("trailvault.edges.compat.platform6", None),
    "connect": ("trailvault.workflows.client", "connect"),
    "errors": ("trailvault.errors", None),
    "open_vault": ("trailvault.workflows.vault.opening", "open_vault"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'trailvault' has no attribute {name!r}")
    module = importlib.import_module(home[0])
    value = module if home[1] is None else getattr(module, home[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})

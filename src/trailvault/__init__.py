"""trailvault: record, keep, find, take out and prove audit events.

::

    import trailvault
    with trailvault.open_vault("trailvault-data") as vault:
        vault.open("myindex", "file:///path/myindex.json")
        vault.post("myindex", {"company": "Amalto", "amount": 101.12})
        for event in vault.events("myindex"):
            print(event.seq, event.body)

The names below are loaded on first use (PEP 562), so importing one module of the
package (a ``verify archive`` worker process imports :mod:`trailvault.archive_files`)
does not load the vault, the client and the HTTP stack as well.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trailvault import errors
    from trailvault.access import ApiKey, Scope
    from trailvault.channel import Channel
    from trailvault.client import RemoteVault, Sender, connect
    from trailvault.compat import platform6 as audit
    from trailvault.errors import TrailvaultError
    from trailvault.event import Event, NewEvent, Posted
    from trailvault.vault import EventPage, Vault, open_vault

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
    "ApiKey": ("trailvault.access", "ApiKey"),
    "Channel": ("trailvault.channel", "Channel"),
    "Event": ("trailvault.event", "Event"),
    "EventPage": ("trailvault.vault", "EventPage"),
    "NewEvent": ("trailvault.event", "NewEvent"),
    "Posted": ("trailvault.event", "Posted"),
    "RemoteVault": ("trailvault.client", "RemoteVault"),
    "Scope": ("trailvault.access", "Scope"),
    "Sender": ("trailvault.client", "Sender"),
    "TrailvaultError": ("trailvault.errors", "TrailvaultError"),
    "Vault": ("trailvault.vault", "Vault"),
    "audit": ("trailvault.compat.platform6", None),
    "connect": ("trailvault.client", "connect"),
    "errors": ("trailvault.errors", None),
    "open_vault": ("trailvault.vault", "open_vault"),
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

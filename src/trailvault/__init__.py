"""trailvault: record, keep, find, take out and prove audit events.

::

    import trailvault
    with trailvault.open_vault("trailvault-data") as vault:
        vault.open("myindex", "file:///path/myindex.json")
        vault.post("myindex", {"company": "Amalto", "amount": 101.12})
        for event in vault.events("myindex"):
            print(event.seq, event.body)
"""

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

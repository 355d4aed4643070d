"""Opening a vault: its store, its signing key and the signer that issues checkpoints while it is open."""

from __future__ import annotations

import functools
from pathlib import Path

from trailvault.adapters.signing_key import create_signing_key, default_key_path, load_signing_key, signer_record_path
from trailvault.adapters.store import Store, open_store
from trailvault.core.batches import ArchiveSettings
from trailvault.core.integrity.note import verifier_key
from trailvault.errors import (
    Conflict,
)
from trailvault.workflows.vault.checkpointer import Checkpointer
from trailvault.workflows.vault.vault import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_FUTURE_SKEW, Vault

__all__ = ["open_vault"]


def open_vault(
    path_or_url: str | Path = "trailvault-data",
    *,
    app: str = "default",
    create: bool = True,
    durability: str = "full",
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
    signing_key: str | Path | None = None,
    log_name: str = "trailvault",
    archive: ArchiveSettings | None = None,
    sign: bool = True,
) -> Vault:
    """Open (and by default create) the vault at a folder, database file or URL.

    ``durability="full"`` makes every post survive power loss; ``"normal"`` only a
    crash of the process, for several times the single-post rate.

    The signing key is read from ``signing_key`` (default: beside the database,
    ``vault.key``); a new vault gets a new key. With the key, checkpoints with origin
    ``<log_name>/<vault id>`` are issued in the background while the vault is open.
    Without it (a reader without access to the key) the vault still proves against
    the checkpoints already kept. ``sign=False`` signs nothing while the vault is open
    (``verify`` checks the log as it found it), but still finds the signer's record.
    """
    store = open_store(path_or_url, create=create, durability=durability)
    try:
        key_path = Path(signing_key).expanduser() if signing_key else default_key_path(store.location, store.vault_id())
        record = signer_record_path(key_path, store.vault_id())
        checkpointer = _checkpointer(store, key_path, record, log_name, create=create) if sign else None
    except BaseException:
        store.close()
        raise
    vault = Vault(
        store,
        app=app,
        max_event_bytes=max_event_bytes,
        max_future_skew=max_future_skew,
        checkpointer=checkpointer,
        reopen=functools.partial(open_store, path_or_url, create=False, durability=durability),
        archive=archive,
        signer_record=record,
    )
    if checkpointer is not None:
        checkpointer.start()
    return vault


def _checkpointer(store: Store, key_path: Path, record: Path, log_name: str, *, create: bool) -> Checkpointer | None:
    known = store.meta("verifier_key")
    if key_path.exists():
        key = load_signing_key(key_path)
    elif known is None and create:
        key = create_signing_key(key_path)
    else:
        return None
    origin = f"{log_name}/{store.vault_id()}"
    verifier = verifier_key(origin, key.public_key())
    if known is not None and known != verifier:
        raise Conflict(
            f"signing_key: {key_path} is not this vault's key (or log_name changed); the vault's key is {known}",
            field="signing_key",
        )
    if known is None:
        store.set_meta("verifier_key", verifier)
    return Checkpointer(store, key, origin, record=record)

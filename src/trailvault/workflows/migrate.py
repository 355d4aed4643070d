"""``trailvault migrate``: copy a whole vault to another store, across backends, proofs intact.

The copy is the same log, not a re-post: every entry keeps its seq, id, times, body
bytes (or its redaction), body hash and fingerprint, so every leaf, the tree, every
root and so every kept checkpoint and every receipt handed out stays valid. The
target keeps the source's vault id (part of the checkpoints' origin); the signing key
file is copied to the target's default place when the target has none. The copy is
then verified from its own rows, against the source's verifier key, and its root is
compared with the source's.

The target must be new and empty. The source may keep taking events (the copy covers
the log up to its size when the copy started, and channels are read after that size, so
every channel those entries use is there), but it should take no redactions meanwhile:
entries are read in chunks, not in one snapshot, so a body erased on the source during
the copy may still be in the copy. Run ``verify`` on both, or copy a quiet vault.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trailvault.adapters.signing_key import default_key_path
from trailvault.adapters.store import Store, open_store
from trailvault.core.event import PendingEvent
from trailvault.core.integrity.note import Verifier
from trailvault.core.schema import parse_schema
from trailvault.errors import IntegrityFailure
from trailvault.workflows.vault.checkpointer import tree_root
from trailvault.workflows.vault.verify import verify_log

__all__ = ["MigrationReport", "migrate_vault"]

_CHUNK = 5_000


@dataclass(frozen=True)
class MigrationReport:
    """What was copied, and the proof that the copy is the same log."""

    source: str
    target: str
    entries: int
    channel_versions: int
    checkpoints: int
    root: bytes
    key_copied_to: str | None
    api_keys: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "entries": self.entries,
            "channel_versions": self.channel_versions,
            "checkpoints": self.checkpoints,
            "root": self.root.hex(),
            "verified": True,
            "key_copied_to": self.key_copied_to,
            "api_keys": self.api_keys,
        }


def migrate_vault(
    source: str | Path,
    target: str | Path,
    *,
    signing_key: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Copy the vault at ``source`` into a new vault at ``target`` and verify the copy.

    ``signing_key`` is the key file the ``signing_key`` setting names, if any; such a key
    is not copied (``key_copied_to`` is None), since the setting serves the copy too.
    ``progress(copied, total)`` is called after each chunk of entries. Raises Conflict
    when the target is not empty, IntegrityFailure when the copy does not verify.
    """
    origin = open_store(source, create=False)
    try:
        copy = open_store(target, create=True)
        try:
            return _copy(origin, copy, signing_key, progress)
        finally:
            copy.close()
    finally:
        origin.close()


def _copy(
    origin: Store,
    copy: Store,
    signing_key: str | Path | None,
    progress: Callable[[int, int], None] | None,
) -> MigrationReport:
    vault_id = origin.vault_id()
    copy.adopt_vault_id(vault_id)
    verifier_key = origin.meta("verifier_key")
    if verifier_key is not None:
        copy.set_meta("verifier_key", verifier_key)
    # Checkpoints, then the size, then the channels: every checkpoint copied is within the
    # entries copied, and every channel those entries use exists (channels only grow).
    checkpoints = origin.all_checkpoints()
    size = origin.log_size()
    versions = origin.channel_versions()
    for record in versions:
        schema = parse_schema(record.schema_document)
        copy.save_channel_version(
            record.app, record.name, record.version, record.schema_document, schema.index_paths(), record.created_us
        )
    copied = 0
    while copied < size:
        chunk = origin.entries(copied, min(_CHUNK, size - copied))
        batch = [
            PendingEvent(
                entry.id,
                entry.app,
                entry.channel,
                entry.time_us,
                entry.received_us,
                entry.body_json,  # type: ignore[arg-type]  # None for a redacted body, kept as it is
                entry.body_sha256,
                entry.fingerprint,
            )
            for entry in chunk
        ]
        outcome = copy.append([batch])[0]
        if not isinstance(outcome, list) or [posted.seq for posted in outcome] != [e.seq for e in chunk]:
            raise IntegrityFailure(f"the copy lost the order of the log after seq {copied}; the target is unusable")
        copied += len(chunk)
        if progress is not None:
            progress(copied, size)
    for checkpoint in checkpoints:
        copy.save_checkpoint(checkpoint)
    # API keys go too, digests and revocations included, so every token keeps working or failing.
    keys = origin.all_api_keys()
    for key, digest in keys:
        copy.save_api_key(replace(key, revoked_us=None), digest, origin.oci_public_key(key.id))
        if key.revoked_us is not None:
            copy.revoke_api_key(key.app, key.id, key.revoked_us)
    root = _check_copy(origin, copy, size, verifier_key)
    return MigrationReport(
        origin.location, copy.location, size, len(versions), len(checkpoints), root,
        _copy_key(origin, copy, vault_id, signing_key), len(keys),
    )  # fmt: skip


def _check_copy(origin: Store, copy: Store, size: int, verifier_key: str | None) -> bytes:
    root = tree_root(copy, size)
    if root != tree_root(origin, size):
        raise IntegrityFailure(f"the copy's root at size {size} differs from the source's")
    if verifier_key is not None:
        # The copy is compared root for root with the source above; an old unsigned tail is
        # the source's own finding, which `verify` of the source reports, not a failed copy.
        report = verify_log(copy, Verifier.parse(verifier_key), max_uncovered_age=math.inf)
        if not report.ok:
            raise IntegrityFailure(f"the copy does not verify: {report.problem}")
    return root


def _copy_key(origin: Store, copy: Store, vault_id: str, signing_key: str | Path | None) -> str | None:
    """Put the source's key file where the target vault looks for it by default, unless one is there.

    Only a key kept in the source's default place is copied: a key the ``signing_key``
    setting keeps elsewhere (away from the database, as docs/integrity.md advises) stays
    where it is, and the same setting serves the copy.
    """
    if signing_key:
        return None
    source_key = default_key_path(origin.location, vault_id)
    target_key = default_key_path(copy.location, vault_id)
    if not source_key.exists() or target_key.exists():
        return None
    target_key.parent.mkdir(parents=True, exist_ok=True)
    # Created with mode 0600 and O_EXCL, as keys.create_signing_key does: never readable by others.
    descriptor = os.open(target_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(source_key.read_bytes())
    return str(target_key)

"""``trailvault key``, ``checkpoint`` and ``proof``: the vault's key, its signed checkpoints, and proofs."""

from __future__ import annotations

import base64
import sys

import click

from trailvault.cli import Session
from trailvault.cli.output import emit_json
from trailvault.store.base import StoredCheckpoint

__all__ = ["checkpoint", "key", "proof"]

_TEXT_OR_JSON = click.Choice(["text", "json"])


@click.group()
def key() -> None:
    """The vault's signing key."""


@key.command("show")
@click.pass_obj
def key_show(session: Session) -> None:
    """Print the public key as a signed-note verifier key (give it to whoever verifies).

    \b
    Example:
      trailvault key show > vault.pub
    """
    click.echo(session.vault().verifier_key())


@click.group()
def checkpoint() -> None:
    """The vault's signed checkpoints."""


@checkpoint.command("show")
@click.option("--size", type=click.IntRange(0), help="The latest checkpoint of exactly this many entries.")
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
@click.pass_obj
def checkpoint_show(session: Session, size: int | None, output: str) -> None:
    """Print the latest signed checkpoint (the note itself, ready to keep as a trusted checkpoint).

    \b
    Example:
      trailvault checkpoint show > trusted-checkpoint.txt
      trailvault checkpoint show --size 1000 --output json
    """
    found = session.vault().checkpoint(size)
    if output == "json":
        emit_json(_checkpoint_dict(found))
    else:
        sys.stdout.write(found.note)


def _checkpoint_dict(found: StoredCheckpoint) -> dict[str, object]:
    return {
        "size": found.size,
        "root": base64.b64encode(found.root).decode(),
        "root_hex": found.root.hex(),
        "timestamp": found.timestamp,
        "note": found.note,
    }


@click.group()
def proof() -> None:
    """Inclusion and consistency proofs."""


@proof.command("inclusion")
@click.argument("event", metavar="ID_OR_SEQ")
@click.option("--size", type=click.IntRange(1), help="Prove against the tree of this size (default: a checkpoint's).")
@click.option("--seq", "by_seq", is_flag=True, help="ID_OR_SEQ is a seq, not an event id.")
@click.option("--output", type=_TEXT_OR_JSON, default="json", show_default=True)
@click.pass_obj
def proof_inclusion(session: Session, event: str, size: int | None, by_seq: bool, output: str) -> None:
    """Prove that an event is in the log: its leaf hash, the proof hashes and the checkpoint.

    \b
    Example:
      trailvault proof inclusion invoice-2024-001
      trailvault proof inclusion 42 --seq --size 1000
    """
    if by_seq and not event.isdigit():
        raise click.UsageError("--seq takes a whole number")
    result = session.vault().prove_inclusion(int(event) if by_seq else event, size)
    if output == "json":
        emit_json(result.to_dict())
        return
    click.echo(f"entry {result.index} (seq {result.index + 1}) in a tree of {result.size}")
    click.echo(f"leaf hash {result.leaf_hash.hex()}")
    for item in result.hashes:
        click.echo(f"  {item.hex()}")


@proof.command("consistency")
@click.option("--from", "old_size", type=click.IntRange(1), required=True, help="The earlier tree size.")
@click.option("--to", "new_size", type=click.IntRange(1), required=True, help="The later tree size.")
@click.option("--output", type=_TEXT_OR_JSON, default="json", show_default=True)
@click.pass_obj
def proof_consistency(session: Session, old_size: int, new_size: int, output: str) -> None:
    """Prove that the log of size --to extends the log of size --from.

    \b
    Example:
      trailvault proof consistency --from 1000 --to 2500
    """
    result = session.vault().prove_consistency(old_size, new_size)
    if output == "json":
        emit_json(result.to_dict())
        return
    click.echo(f"tree {result.old_size} ({result.old_root.hex()}) -> {result.new_size} ({result.new_root.hex()})")
    for item in result.hashes:
        click.echo(f"  {item.hex()}")

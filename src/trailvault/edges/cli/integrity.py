"""``trailvault key``, ``checkpoint`` and ``proof``: the vault's key, its signed checkpoints, and proofs."""

from __future__ import annotations

import base64
import os
import sys

import click

from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.integrity.findings import MAX_UNCOVERED_AGE
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.core.jsontext import decode_json
from trailvault.edges.cli.output import emit_json
from trailvault.edges.cli.session import Session, read_argument, read_file
from trailvault.workflows.archive.verify import ArchiveReport, verify_archive
from trailvault.workflows.export.verify import ExportReport, verify_export

__all__ = ["checkpoint", "key", "proof", "verify"]

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
    _print_checkpoint(session.vault().checkpoint(size), output)


@checkpoint.command("sign")
@click.option(
    "--adopt",
    is_flag=True,
    help="Sign a log that has entries but no checkpoint to trust (a vault made before checkpoints existed).",
)
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
@click.pass_obj
def checkpoint_sign(session: Session, adopt: bool, output: str) -> None:
    """Sign a checkpoint of the log now (one is signed automatically as events arrive); needs the key.

    The signer refuses a log that does not extend the last checkpoint it trusts. --adopt
    also signs a log with entries and no checkpoint at all: check with `verify` first,
    since that is what a log whose checkpoints were deleted looks like too.

    \b
    Example:
      trailvault checkpoint sign
      trailvault checkpoint sign --adopt --output json
    """
    _print_checkpoint(session.local_vault(command="checkpoint sign").issue_checkpoint(adopt=adopt), output)


def _print_checkpoint(found: StoredCheckpoint, output: str) -> None:
    """The note itself (ready to keep as a trusted checkpoint), or its parts as JSON."""
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


@click.group(invoke_without_command=True)
@click.option("--trusted-checkpoint", type=click.Path(dir_okay=False), help="A checkpoint kept elsewhere earlier.")
@click.option("--key", "key_text", help="The verifier key to trust, or @FILE (default: the vault's own record).")
@click.option(
    "--jobs",
    type=click.IntRange(1),
    help="Worker processes checking segments of 65,536 entries in parallel (default: one per CPU).",
)
@click.option(
    "--max-uncovered-age",
    type=click.FloatRange(0),
    default=MAX_UNCOVERED_AGE,
    show_default=True,
    help="Seconds entries past the newest signed checkpoint may wait for one before verify fails.",
)
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
@click.pass_context
def verify(
    ctx: click.Context,
    trusted_checkpoint: str | None,
    key_text: str | None,
    jobs: int | None,
    max_uncovered_age: float,
    output: str,
) -> None:
    """Recompute every entry and check the tree and every signed checkpoint; exit 1 on any problem.

    \b
    Example:
      trailvault verify
      trailvault verify --trusted-checkpoint trusted-checkpoint.txt --key @vault.pub --jobs 4
    """
    if ctx.invoked_subcommand is not None:
        return
    session = ctx.find_object(Session)
    assert session is not None
    trusted = read_file(trusted_checkpoint, field="trusted-checkpoint") if trusted_checkpoint else None
    key_value = read_argument(key_text, field="key").strip() if key_text else None
    # A verifier signs nothing: a checkpoint signed now would cover the very tail it checks.
    report = session.vault(sign=False).verify(
        trusted, key_value, jobs=jobs or os.cpu_count() or 1, max_uncovered_age=max_uncovered_age
    )
    if output == "json":
        emit_json(report.to_dict())
    elif report.ok:
        extra = f", extends the trusted checkpoint of size {report.trusted['size']}" if report.trusted else ""
        if report.uncovered:
            extra += f"; {report.uncovered} newest entries not yet covered by a signed checkpoint"
        click.echo(f"ok: {report.entries} entries, {report.checkpoints} checkpoints verified{extra}")
    else:
        click.echo(f"trailvault: verify failed: {report.problem}", err=True)
    if not report.ok:
        ctx.exit(1)


@verify.command("receipt")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--key", "key_text", required=True, help="The vault's verifier key, or @FILE (from `key show`).")
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
def verify_receipt(path: str, key_text: str, output: str) -> None:
    """Check a receipt offline, with nothing but the vault's verifier key.

    \b
    Example:
      trailvault verify receipt receipt.json --key @vault.pub
    """
    key_value = read_argument(key_text, field="key").strip()
    receipt = decode_json(read_file(path, field="receipt"), field="receipt")
    checkpoint = check_receipt(receipt, Verifier.parse(key_value))
    entry = receipt["entry"]
    if output == "json":
        emit_json(
            {
                "ok": True,
                "seq": entry["seq"],
                "id": entry["id"],
                "size": checkpoint.size,
                "signed_at": checkpoint.timestamp,
            }
        )
    else:
        signer = key_value.split("+")[0]
        click.echo(f"ok: event {entry['id']} is entry {entry['seq']} of a log of {checkpoint.size}, signed by {signer}")


@verify.command("export")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--key", "key_text", required=True, help="The vault's verifier key, or @FILE (from `key show`).")
@click.option("--against", is_flag=True, help="Also re-run the query on the vault (--vault) and check none is missing.")
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
@click.pass_context
def verify_export_command(ctx: click.Context, folder: str, key_text: str, against: bool, output: str) -> None:
    """Prove an export folder offline: every row of every file is the log's entry, unaltered, under the
    signed checkpoint in its manifest; exit 1 on any problem.

    \b
    Example:
      trailvault verify export ./export-2024-10 --key @vault.pub
      trailvault verify export ./export-2024-10 --key @vault.pub --against
    """
    session = ctx.find_object(Session)
    assert session is not None
    vault = session.local_vault(command="verify export --against") if against else None
    report = verify_export(folder, read_argument(key_text, field="key").strip(), against=vault)
    summary = f"{report.events} events in {report.files} files are entries of the log of {report.size}"
    _findings(ctx, "export", report, summary, output)


@verify.command("archive")
@click.argument("path", metavar="FILE_OR_DIR", type=click.Path())
@click.option("--key", "key_text", required=True, help="The vault's verifier key, or @FILE (from `key show`).")
@click.option(
    "--jobs",
    type=click.IntRange(1),
    help="Processes checking files in parallel, this one included (default: one per CPU).",
)
@click.option(
    "--complete",
    is_flag=True,
    help="Fail when an archive's previous one is not among the files (by default a note: each file is proven alone).",
)
@click.option("--output", type=_TEXT_OR_JSON, default="text", show_default=True)
@click.pass_context
def verify_archive_command(
    ctx: click.Context, path: str, key_text: str, jobs: int | None, complete: bool, output: str
) -> None:
    """Prove archive files offline: each file's events, count and order against its signed checkpoint,
    and that consecutive archives chain; an altered archive is named, and an archive whose previous
    one is absent is noted (a problem with --complete). Exit 1 on any problem.

    \b
    Example:
      trailvault verify archive ./archives --key @vault.pub --jobs 2
      trailvault verify archive ./archives --key @vault.pub --complete
      trailvault verify archive acme_20241007T0100Z_c5b57c79-....json.gz --key @vault.pub
    """
    key = read_argument(key_text, field="key").strip()
    report = verify_archive(path, key, jobs=jobs or os.cpu_count() or 1, complete=complete)
    summary = f"{report.events} events in {report.files} archive files are entries of the log, and they chain"
    if absent := len(report.absent_previous):
        summary += f", except that {absent} previous archive{'s are' if absent > 1 else ' is'} absent (noted on stderr)"
    if output == "text":
        for note in report.notes[:20]:
            click.echo(f"trailvault: verify archive: note: {note}", err=True)
    _findings(ctx, "archive", report, summary, output)


def _findings(ctx: click.Context, what: str, report: ExportReport | ArchiveReport, summary: str, output: str) -> None:
    """Print a file check's report (JSON, or ok with its summary, or its first 20 problems) and exit 1 on any."""
    if output == "json":
        emit_json(report.to_dict())
    elif report.ok:
        click.echo(f"ok: {summary}" + (f" ({report.redacted} bodies redacted)" if report.redacted else ""))
    else:
        for problem in report.problems[:20]:
            click.echo(f"trailvault: verify {what} failed: {problem}", err=True)
    if not report.ok:
        ctx.exit(1)

"""Guards on the shape of the code: the public API, import direction, and CLI documentation."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click

import trailvault
from trailvault.cli import main

SRC = Path(trailvault.__file__).parent
DOCS = SRC.parent.parent / "docs"

LAYERS = {
    "core": 0,
    "adapter": 1,
    "workflow": 2,
    "edge": 3,
}
MODULE_LAYERS = {
    **dict.fromkeys(
        [
            "errors",
            "timestamps",
            "event",
            "query",
            "scim",
            "schema",
            "jsontext",
            "channel",
            "integrity",
            "access",
            "batches",
            "entrytable",
        ],
        "core",
    ),
    **dict.fromkeys(["store", "sources", "keys", "files", "formats", "sinks", "importers"], "adapter"),
    **dict.fromkeys(
        [
            "vault",
            "proving",
            "commit",
            "checkpoints",
            "proofs",
            "verification",
            "transfer",
            "archive",
            "archive_files",
            "archiver",
            "forward",
            "client",
            "keyring",
            "keyview",
            "export",
            "download",
        ],
        "workflow",
    ),
    **dict.fromkeys(["cli", "server", "web", "config", "compat"], "edge"),
}


def test_public_api_is_pinned() -> None:
    """The names exported by `trailvault` change only on purpose."""
    assert sorted(trailvault.__all__) == [
        "ApiKey", "Channel", "Event", "EventPage", "NewEvent", "Posted", "RemoteVault", "Scope", "Sender",
        "TrailvaultError", "Vault", "audit", "connect", "errors", "open_vault",
    ]  # fmt: skip


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "trailvault" and len(parts) > 1 else None


def test_every_module_has_a_layer() -> None:
    """Each top-level module or package of src/trailvault is placed in a layer."""
    names = {path.stem for path in SRC.glob("*.py")} | {path.name for path in SRC.iterdir() if path.is_dir()}
    names -= {"__init__", "__pycache__", "py"}
    assert names <= set(MODULE_LAYERS), names - set(MODULE_LAYERS)


def test_imports_point_inward() -> None:
    """No module imports from a layer further out than its own, and adapters never import a sibling adapter."""
    problems = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative == Path("__init__.py"):
            continue
        own = relative.parts[0].removesuffix(".py")
        own_layer = MODULE_LAYERS[own]
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                target = _top(module)
                if target is None or target == own:
                    continue
                target_layer = MODULE_LAYERS[target]
                if LAYERS[target_layer] > LAYERS[own_layer]:
                    problems.append(f"{relative} ({own_layer}) imports {module} ({target_layer})")
                if own_layer == target_layer == "adapter":
                    problems.append(f"{relative} imports sibling adapter {module}")
    assert problems == []


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, full + " "))
    return found


def test_every_command_has_help_and_example() -> None:
    """Every CLI command has help text; every leaf command shows an Example."""
    for name, command in _commands(main):
        assert command.help, name
        if not isinstance(command, click.Group):
            assert "Example:" in command.help, name


def test_every_command_is_documented() -> None:
    """Every CLI command appears in docs/cli.md."""
    text = (DOCS / "cli.md").read_text()
    missing = [name for name, _ in _commands(main) if f"trailvault {name}" not in text]
    assert missing == []


def test_start_up_does_not_load_the_table_libraries() -> None:
    """Every CLI command imports trailvault; pyarrow (about 130 ms, 50 MB) waits for a typed export."""
    code = (
        "import sys, trailvault, trailvault.cli, trailvault.download, trailvault.export;"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"

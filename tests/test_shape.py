"""Guards on the shape of the code: the public API, import direction, and CLI documentation."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import click

import trailvault
from trailvault.edges.cli import main

SRC = Path(trailvault.__file__).parent
DOCS = SRC.parent.parent / "docs"

#: The layers, innermost first: a module may import its own layer and the ones before it.
LAYERS = ["core", "adapters", "workflows", "edges"]
#: Modules at the package root that every layer may import.
SHARED = {"errors"}


def test_public_api_is_pinned() -> None:
    """The names exported by `trailvault` change only on purpose."""
    assert sorted(trailvault.__all__) == [
        "ApiKey", "Channel", "Event", "EventPage", "NewEvent", "Posted", "RemoteVault", "Scope", "Sender",
        "TrailvaultError", "Vault", "audit", "connect", "errors", "open_vault",
    ]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = ["trailvault", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in SRC.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every trailvault module that `path` imports: at module level, under TYPE_CHECKING, or inside a function."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *filter(None, [base])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("trailvault") and name != own:
                found.add(name)
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer() -> None:
    """Each module of src/trailvault lives in a layer package; only the public API and errors sit at the root."""
    stray = [name for name in MODULES if _layer(name) is None and name not in {"trailvault", "trailvault.errors"}]
    assert stray == []


def test_imports_point_inward() -> None:
    """No module imports from a layer further out than its own, and adapters never import a sibling adapter."""
    problems = []
    for module, targets in GRAPH.items():
        own = _layer(module)
        if own is None:
            continue
        for target in targets:
            layer = _layer(target)
            if layer is None:
                if target.removeprefix("trailvault.") not in SHARED:
                    problems.append(f"{module} ({own}) imports {target}")
                continue
            if LAYERS.index(layer) > LAYERS.index(own):
                problems.append(f"{module} ({own}) imports {target} ({layer})")
            if own == layer == "adapters" and target.split(".")[2] != module.split(".")[2]:
                problems.append(f"{module} imports sibling adapter {target}")
    assert problems == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle() -> None:
    """No set of modules imports itself round, counting imports under TYPE_CHECKING and inside functions."""
    assert _cycles(GRAPH) == []


def test_no_cycle_between_packages() -> None:
    """Packages of the same layer depend on each other one way only (vault uses export, never the reverse)."""
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        home = ".".join(module.split(".")[:3])
        packages.setdefault(home, set()).update(
            ".".join(target.split(".")[:3]) for target in targets if ".".join(target.split(".")[:3]) != home
        )
    for targets in packages.values():
        targets.difference_update({"trailvault", "trailvault.errors"} - set(packages))
    assert _cycles({name: targets & set(packages) for name, targets in packages.items()}) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: a round through a TYPE_CHECKING-style edge is reported, a one-way chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


#: The limits STYLE.md sets: a module is read whole, a function at once.
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: Written out as data, on purpose (see its docstring).
LONG_ON_PURPOSE = {"trailvault.edges.server.openapi.openapi_document"}


def test_no_module_is_too_long_to_read_whole() -> None:
    """Every module of src/trailvault stays under MAX_MODULE_LINES lines."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_too_long_to_read_at_once() -> None:
    """Every function and method stays under MAX_FUNCTION_LINES lines (the OpenAPI document excepted)."""
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in LONG_ON_PURPOSE:
                    long[f"{name}.{node.name}"] = length
    assert long == {}


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
        "import sys, trailvault, trailvault.edges.cli, trailvault.workflows.download,"
        " trailvault.workflows.export.write;"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


_LOADED_SERVER = "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"


def _server_modules_after(code: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh Python (the vault at tmp_path/v); return what it printed and the server
    libraries it loaded."""
    env = {**os.environ, "TRAILVAULT_VAULT": str(tmp_path / "v"), "TRAILVAULT_SIGNING_KEY": str(tmp_path / "v.key")}
    env = {name: value for name, value in env.items() if name not in ("TRAILVAULT_SERVER", "TRAILVAULT_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\n{_LOADED_SERVER}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    printed, _, loaded = done.stdout.strip().rpartition("\n")
    return printed, ast.literal_eval(loaded)


def test_help_loads_no_server(tmp_path: Path) -> None:
    """`trailvault --help` loads neither Starlette nor uvicorn: only `serve` needs them."""
    code = "from trailvault.edges.cli import main\nmain(['--help'], standalone_mode=False)"
    printed, loaded = _server_modules_after(code, tmp_path)
    assert "Usage: " in printed and loaded == []


def test_listing_events_loads_no_server(tmp_path: Path) -> None:
    """`trailvault events list` on a local vault lists the event and loads neither Starlette nor uvicorn."""
    with trailvault.open_vault(tmp_path / "v", signing_key=tmp_path / "v.key") as vault:
        vault.open("orders", {"fields": [{"name": "n", "type": "INTEGER"}]})
        vault.post("orders", {"n": 7})
    code = (
        "from trailvault.edges.cli import main\n"
        "main(['events', 'list', '--channel', 'orders', '--output', 'json'], standalone_mode=False)"
    )
    printed, loaded = _server_modules_after(code, tmp_path)
    assert '"n": 7' in printed and loaded == []


def test_the_platform6_binding_loads_no_server(tmp_path: Path) -> None:
    """`from trailvault import audit` then open and post load neither Starlette nor uvicorn."""
    code = (
        "from trailvault import audit\n"
        "audit.open('orders', {'fields': [{'name': 'n', 'type': 'INTEGER'}]})\n"
        "print('seq', audit.post('orders', {'n': 1}).seq)\naudit.close()"
    )
    printed, loaded = _server_modules_after(code, tmp_path)
    assert printed.startswith("seq ") and loaded == []


def test_the_server_check_sees_a_server_import(tmp_path: Path) -> None:
    """The check itself: importing the server package is seen."""
    assert "starlette" in _server_modules_after("import trailvault.edges.server", tmp_path)[1]


def test_the_vault_export_and_archive_packages_import_nothing_on_their_own() -> None:
    """Their `__init__.py` holds a docstring only: importing one module of them loads just that module."""
    for package in ("vault", "export", "archive"):
        tree = ast.parse((SRC / "workflows" / package / "__init__.py").read_text())
        assert [type(node).__name__ for node in tree.body] == ["Expr"], package


def test_a_verify_archive_worker_loads_no_vault_client_or_server() -> None:
    """A `verify archive --jobs` worker imports the archive verifier: not the Vault, httpx, Starlette or pyarrow."""
    heavy = ("trailvault.workflows.vault.vault", "httpx", "starlette", "pyarrow")
    code = f"import sys, trailvault.workflows.archive.verify; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"

"""Start-up: how long a command takes before it does any work, against Python's own floor.

Every CLI command pays for what ``trailvault`` imports before it runs, and so does each
worker process of ``verify archive --jobs``. Measured in fresh processes, each case run
``--rounds`` times, alternating cases so a noisy moment hits them all; the table shows the
fastest and the median. Baselines in the same run: a bare ``python -c pass`` and
``import click`` (the CLI framework every command needs anyway).

``--against SRC`` also runs the cases on another source tree (for example a worktree of an
older commit: ``git worktree add /tmp/before <commit>``, then ``--against /tmp/before/src``)
and adds its columns, so a change's effect is measured in one run.

    python bench/startup.py [--rounds 21] [--against /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Each case: a name and Python code run in a fresh process. ``{cli}`` is the module holding
# the click group (it moved in issue 16), ``{worker}`` the module a verify-archive worker imports.
CASES = [
    ("python -c pass (floor)", "pass"),
    ("import click (baseline)", "import click"),
    ("trailvault --help", "from {cli} import main; main(['--help'])"),
    ("trailvault events list (10 events)", "from {cli} import main; main(['events', 'list', '--output', 'json'])"),
    ("from trailvault import audit", "from trailvault import audit; audit.open"),
    ("verify-archive worker import", "import {worker}"),
]


def _modules(src: Path) -> dict[str, str]:
    new = (src / "trailvault" / "edges").is_dir()
    return {
        "cli": "trailvault.edges.cli" if new else "trailvault.cli",
        "worker": "trailvault.workflows.archive.verify" if new else "trailvault.archive_files",
    }


def _vault(folder: Path) -> Path:
    """A small vault for the listing case, made with this tree's code."""
    sys.path.insert(0, str(SRC))
    import trailvault

    path = folder / "vault"
    with trailvault.open_vault(path) as vault:
        vault.open("orders", {"fields": [{"name": "n", "type": "INTEGER"}]})
        vault.post_many("orders", [{"n": n} for n in range(10)])
    return path


def _time(src: Path, code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(src)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--against", type=Path, help="another source tree to measure in the same run")
    args = parser.parse_args()
    trees = [("this tree", SRC)] + ([("against", args.against.resolve())] if args.against else [])
    with tempfile.TemporaryDirectory() as scratch:
        vault = _vault(Path(scratch))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRAILVAULT_")},
            "TRAILVAULT_VAULT": str(vault),
            "TRAILVAULT_SIGNING_KEY": str(vault / "vault.key"),
        }
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for label, src in trees:
                for name, code in CASES:
                    times.setdefault((label, name), []).append(_time(src, code.format(**_modules(src)), env))
    header = "| start-up | " + " | ".join(f"{label}: fastest / median" for label, _ in trees) + " |"
    print(header)
    print("|---" * (len(trees) + 1) + "|")
    for name, _ in CASES:
        cells = []
        for label, _ in trees:
            found = times[(label, name)]
            cells.append(f"{min(found) * 1000:.0f} / {statistics.median(found) * 1000:.0f} ms")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

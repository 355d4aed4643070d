"""The trailvault command against real vault files: in-process (run_cli), and as the installed script where
only a process shows it (a terminal, the entry point)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..conftest import CLI, EXAMPLES, run_cli, run_cli_process


@pytest.fixture
def opened(vault_dir: Path) -> Path:
    assert run_cli("init", vault=vault_dir).returncode == 0
    result = run_cli("channels", "open", "myindex", "--schema", str(EXAMPLES / "myindex.json"), vault=vault_dir)
    assert result.returncode == 0, result.stderr
    return vault_dir


def test_init_creates_vault(vault_dir: Path) -> None:
    """init creates the folder and database and reports where."""
    result = run_cli("init", vault=vault_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["vault"] == str(vault_dir / "vault.sqlite3")
    assert (vault_dir / "vault.sqlite3").is_file()


def test_default_vault_is_trailvault_data(tmp_path: Path) -> None:
    """Without --vault, init creates ./trailvault-data."""
    assert run_cli("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "trailvault-data" / "vault.sqlite3").is_file()


def test_vault_flag_overrides_env(tmp_path: Path) -> None:
    """--vault wins over TRAILVAULT_VAULT."""
    result = run_cli("--vault", str(tmp_path / "flag"), "init", vault=tmp_path / "env")
    assert result.returncode == 0
    assert (tmp_path / "flag").is_dir() and not (tmp_path / "env").exists()


def test_config_file_sets_vault_and_app(tmp_path: Path) -> None:
    """trailvault.toml in the working folder names the vault and the app."""
    (tmp_path / "trailvault.toml").write_text('vault = "from-config"\napp = "billing"\n')
    result = run_cli("init", cwd=tmp_path)
    assert json.loads(result.stdout)["app"] == "billing"
    assert (tmp_path / "from-config" / "vault.sqlite3").is_file()


def test_bad_setting_in_env(vault_dir: Path) -> None:
    """A bad TRAILVAULT_* value names the setting and exits 1."""
    result = run_cli("init", vault=vault_dir, env={"TRAILVAULT_MAX_FUTURE_SKEW": "soon"})
    assert result.returncode == 1
    assert "max_future_skew" in result.stderr and "TRAILVAULT_MAX_FUTURE_SKEW" in result.stderr


def test_command_needs_existing_vault(vault_dir: Path) -> None:
    """Commands other than init refuse a missing vault and point at init."""
    result = run_cli("channels", "list", vault=vault_dir)
    assert result.returncode == 1
    assert "trailvault init" in result.stderr
    assert not vault_dir.exists()


def test_channels_list_and_show(opened: Path) -> None:
    """channels list and show give JSON with the schema."""
    listed = json.loads(run_cli("channels", "list", "--output", "json", vault=opened).stdout)
    assert [item["name"] for item in listed["items"]] == ["myindex"]
    shown = json.loads(run_cli("channels", "show", "myindex", "--output", "json", vault=opened).stdout)
    assert [field["name"] for field in shown["schema"]["fields"]] == ["company", "amount", "taxes"]


def test_channels_show_table(opened: Path) -> None:
    """channels show as a table lists nested field paths."""
    result = run_cli("channels", "show", "myindex", "--output", "table", vault=opened)
    assert "taxes.taxrate" in result.stdout


def test_post_json_argument(opened: Path) -> None:
    """post CHANNEL JSON prints the id and seq."""
    result = run_cli("post", "myindex", '{"company": "Amalto", "amount": 101.12}', vault=opened)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seq"] == 1


def test_post_at_file(opened: Path) -> None:
    """post CHANNEL @file reads the event from a file."""
    result = run_cli("post", "myindex", f"@{EXAMPLES / 'invoice.json'}", "--id", "inv-1", vault=opened)
    assert json.loads(result.stdout) == {"id": "inv-1", "seq": 1, "duplicate": False}


def test_post_repeat_with_id_is_duplicate(opened: Path) -> None:
    """Posting the same --id and content twice reports a duplicate with the same seq."""
    run_cli("post", "myindex", '{"company": "A"}', "--id", "k1", vault=opened)
    again = json.loads(run_cli("post", "myindex", '{"company": "A"}', "--id", "k1", vault=opened).stdout)
    assert again == {"id": "k1", "seq": 1, "duplicate": True}


def test_post_stdin_ndjson(opened: Path) -> None:
    """post CHANNEL - stores one event per NDJSON line, skipping blank lines."""
    lines = (EXAMPLES / "events.ndjson").read_text() + "\n\n"
    result = run_cli("post", "myindex", "-", stdin=lines, vault=opened)
    assert json.loads(result.stdout) == {"posted": 3, "duplicates": 0, "first_seq": 1, "last_seq": 3}


def test_post_stdin_envelope_lines(opened: Path) -> None:
    """With --envelope each line carries its own id and time."""
    lines = '{"id": "a", "time": "2024-10-07T01:00:00Z", "body": {"company": "A"}}\n'
    run_cli("post", "myindex", "-", "--envelope", stdin=lines, vault=opened)
    event = json.loads(run_cli("events", "get", "a", "--output", "json", vault=opened).stdout)
    assert event["time"] == "2024-10-07T01:00:00.000000Z"


def test_post_stdin_bad_line_names_line_and_keeps_batch_out(opened: Path) -> None:
    """A bad line fails its batch, names the line number, and says what was stored before."""
    lines = "".join(f'{{"company": "{i}"}}\n' for i in range(5)) + '{"amount": 1}\n' + '{"company": "x"}\n'
    result = run_cli("post", "myindex", "-", "--batch-size", "3", stdin=lines, vault=opened)
    assert result.returncode == 1
    assert "line 6: company" in result.stderr
    assert "the 3 events before it were stored" in result.stderr
    listed = json.loads(run_cli("events", "list", "--output", "json", vault=opened).stdout)
    assert len(listed["items"]) == 3


def test_post_stdin_atomic(opened: Path) -> None:
    """With --atomic a bad line keeps every line out."""
    lines = '{"company": "a"}\n{"company": "b"}\n{"oops": 1}\n'
    result = run_cli("post", "myindex", "-", "--atomic", "--batch-size", "1", stdin=lines, vault=opened)
    assert result.returncode == 1 and "nothing was stored" in result.stderr


def test_post_stdin_malformed_line(opened: Path) -> None:
    """A malformed NDJSON line names its line and column."""
    result = run_cli("post", "myindex", "-", stdin='{"company": "a"}\n{"company": \n', vault=opened)
    assert result.returncode == 1
    assert "line 2: body: malformed JSON at line 1 column 13" in result.stderr


# -- bad input through the CLI ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"amount": 1.0}', "company: missing REQUIRED field"),
        ('{"company": "A", "amount": "lots"}', "amount: expected FLOAT"),
        ('{"company": "A", "taxes": [{"taxrate": "x"}]}', "taxes[0].taxrate: expected FLOAT"),
        ('{"company": "A", "taxes": 5}', "taxes: expected a list"),
        ('{"company": "A", "colour": "red"}', "colour: unknown field"),
        ('{"company": ', "malformed JSON at line 1 column 13"),
        ('{"company": "A", "company": "B"}', 'the key "company" appears more than once in the same object'),
        ('{"company": "A", "amount": 123456789012345678901234567890}', "(at amount) is outside the signed 64-bit"),
    ],
)
def test_post_bad_body(opened: Path, body: str, expected: str) -> None:
    """A refused body exits 1 with a message naming the field on stderr, and stores nothing."""
    result = run_cli("post", "myindex", body, vault=opened)
    assert result.returncode == 1
    assert expected in result.stderr
    assert result.stdout == ""
    assert json.loads(run_cli("events", "list", "--output", "json", vault=opened).stdout)["items"] == []


def test_post_to_unopened_channel(opened: Path) -> None:
    """Posting to an unopened channel exits 1 and says how to open it."""
    result = run_cli("post", "nowhere", '{"a": 1}', vault=opened)
    assert result.returncode == 1 and "trailvault channels open nowhere" in result.stderr


def test_open_unreadable_schema(opened: Path, tmp_path: Path) -> None:
    """An unreadable schema file exits 1 naming the file."""
    result = run_cli("channels", "open", "x", "--schema", str(tmp_path / "nope.json"), vault=opened)
    assert result.returncode == 1 and "nope.json" in result.stderr


def test_open_invalid_schema(opened: Path, tmp_path: Path) -> None:
    """A schema with an unknown type exits 1 naming the field."""
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "when", "type": "DATETIME"}]')
    result = run_cli("channels", "open", "x", "--schema", str(bad), vault=opened)
    assert result.returncode == 1 and "when" in result.stderr and "DATETIME" in result.stderr


def test_conflicting_id(opened: Path) -> None:
    """A known id with other content exits 1 naming id."""
    run_cli("post", "myindex", '{"company": "A"}', "--id", "k", vault=opened)
    result = run_cli("post", "myindex", '{"company": "B"}', "--id", "k", vault=opened)
    assert result.returncode == 1 and "id: 'k' is taken" in result.stderr


def test_future_time(opened: Path) -> None:
    """A time beyond the configured skew exits 1 naming time."""
    result = run_cli(
        "post", "myindex", '{"company": "A"}', "--time", "2999-01-01T00:00:00Z", vault=opened,
        env={"TRAILVAULT_MAX_FUTURE_SKEW": "10"},
    )  # fmt: skip
    assert result.returncode == 1 and "time: 2999-01-01T00:00:00.000000Z" in result.stderr


def test_oversized_event(opened: Path) -> None:
    """An event over the configured size limit exits 1 naming the limit."""
    body = json.dumps({"company": "x" * 600})
    result = run_cli("post", "myindex", body, vault=opened, env={"TRAILVAULT_MAX_EVENT_BYTES": "500"})
    assert result.returncode == 1 and "max_event_bytes = 500" in result.stderr


def test_usage_error_exits_2(opened: Path) -> None:
    """A usage error (missing argument) exits 2."""
    assert run_cli("post", "myindex", vault=opened).returncode == 2
    assert run_cli("events", "list", "--limit", "0", vault=opened).returncode == 2
    assert run_cli("events", "list", "--where", "nonsense", vault=opened).returncode == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seq gt 9223372036854775808", "outside the signed 64-bit range"),
        ("amount gt 1e400", "1e400: the number is out of range"),
        ('compny eq "A"', "did you mean company"),
    ],
)
def test_a_filter_no_store_can_run_exits_1_naming_it(opened: Path, text: str, expected: str) -> None:
    """events list --filter with a number beyond 64 bits or an unknown field exits 1 naming it on stderr."""
    result = run_cli("events", "list", "--channel", "myindex", "--filter", text, vault=opened)
    assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


# -- listing --------------------------------------------------------------------------


@pytest.fixture
def listed(opened: Path) -> Path:
    lines = "".join(
        json.dumps(
            {
                "id": f"e{i}",
                "time": f"2024-10-07T0{i}:00:00Z",
                "body": {"company": "Acme" if i % 2 else "Globex", "amount": float(i)},
            }
        )
        + "\n"
        for i in range(6)
    )
    assert run_cli("post", "myindex", "-", "--envelope", stdin=lines, vault=opened).returncode == 0
    return opened


def test_events_list_json(listed: Path) -> None:
    """events list --output json gives items and next_page."""
    result = json.loads(run_cli("events", "list", "--output", "json", "--limit", "4", vault=listed).stdout)
    assert [item["id"] for item in result["items"]] == ["e0", "e1", "e2", "e3"]
    follow = run_cli("events", "list", "--output", "json", "--limit", "4", "--page", result["next_page"], vault=listed)
    assert [item["id"] for item in json.loads(follow.stdout)["items"]] == ["e4", "e5"]


def test_events_list_filters(listed: Path) -> None:
    """--from/--to/--where/--sort-order select and order events."""
    result = run_cli(
        "events", "list", "--channel", "myindex", "--from", "2024-10-07T01:00Z", "--to", "2024-10-07T05:00Z",
        "--where", "company=Acme", "--sort-order", "desc", "--output", "ndjson", vault=listed,
    )  # fmt: skip
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["e3", "e1"]


def test_events_list_all(listed: Path) -> None:
    """--all streams every event as valid JSON."""
    result = run_cli("events", "list", "--all", "--limit", "2", "--output", "json", vault=listed)
    assert len(json.loads(result.stdout)["items"]) == 6


def test_events_list_table(listed: Path) -> None:
    """The table output shows seq, time and the body."""
    result = run_cli("events", "list", "--output", "table", vault=listed)
    assert "2024-10-07T05:00:00.000000Z" in result.stdout and "Globex" in result.stdout


def test_events_list_bad_time(listed: Path) -> None:
    """A bad --from exits 1 naming from."""
    result = run_cli("events", "list", "--from", "yesterday", vault=listed)
    assert result.returncode == 1 and "from:" in result.stderr


def test_events_get(listed: Path) -> None:
    """events get ID returns the event; an unknown id exits 1."""
    event = json.loads(run_cli("events", "get", "e2", "--output", "json", vault=listed).stdout)
    assert event["body"] == {"company": "Globex", "amount": 2.0}
    assert run_cli("events", "get", "missing", vault=listed).returncode == 1


@pytest.mark.system
def test_make_run_commands_work(tmp_path: Path) -> None:
    """The commands of `make run` succeed in a fresh folder and list the posted events, through the installed script."""
    steps = [
        ["init"],
        ["channels", "open", "myindex", "--schema", str(EXAMPLES / "myindex.json")],
        ["post", "myindex", '{"company": "Amalto", "amount": 101.12}'],
        ["post", "myindex", f"@{EXAMPLES / 'invoice.json'}"],
    ]
    for step in steps:
        assert run_cli_process(*step, cwd=tmp_path).returncode == 0
    events = (EXAMPLES / "events.ndjson").read_text()
    assert run_cli_process("post", "myindex", "-", stdin=events, cwd=tmp_path).returncode == 0
    table = run_cli_process(
        "events", "list", "--channel", "myindex", "--sort-order", "desc", "--output", "table", cwd=tmp_path
    )
    assert table.returncode == 0 and "Initech" in table.stdout and "Amalto" in table.stdout


def _slow_stdin_on_a_terminal(vault: Path, arguments: list[str], line: Callable[[int], str]) -> tuple[str, bytes, int]:
    """Run the CLI with stderr on a terminal, feeding ``line(n)`` to stdin slowly until a progress bar
    (``events/s``) shows or 30 s pass; return its stdout, what the terminal showed and the lines sent.

    Lines keep arriving slowly until the bar shows, so a slow start of the process on a busy
    machine cannot make the input finish before the bar is due.
    """
    leader, follower = pty.openpty()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    env.update({"TRAILVAULT_VAULT": str(vault), "COLUMNS": "100", "TERM": "xterm"})
    process = subprocess.Popen(
        [str(CLI), *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=follower, env=env, text=True
    )
    os.close(follower)
    assert process.stdin is not None
    shown, sent, deadline = b"", 0, time.monotonic() + 30
    while b"events/s" not in shown and time.monotonic() < deadline:
        process.stdin.write(line(sent) + "\n")
        process.stdin.flush()
        sent += 1
        ready, _, _ = select.select([leader], [], [], 0.3)
        if ready:
            shown += os.read(leader, 65536)
    process.stdin.close()
    assert process.stdout is not None
    with process.stdout:
        out = process.stdout.read()
    assert process.wait(timeout=60) == 0
    os.close(leader)
    return out, shown, sent


@pytest.mark.system
def test_progress_bar_on_a_terminal_for_slow_stdin(opened: Path) -> None:
    """Posting from stdin for over a second shows a progress bar on a terminal's stderr."""
    out, shown, sent = _slow_stdin_on_a_terminal(
        opened, ["post", "myindex", "-", "--batch-size", "1"], lambda n: f'{{"company": "{n}"}}'
    )
    assert json.loads(out)["posted"] == sent
    assert b"events" in shown and b"events/s" in shown


@pytest.mark.system
def test_import_shows_a_progress_bar_on_a_terminal_for_slow_stdin(tmp_path: Path) -> None:
    """trailvault import datasafe - shows its progress bar on a terminal while records keep coming."""
    run_cli("init", vault=tmp_path / "vault")

    def record(n: int) -> str:
        return json.dumps(
            {"id": f"ev{n}", "targetId": "t", "targetName": "db", "databaseType": "AUTONOMOUS_DATABASE",
             "auditEventTime": "2023-01-16T18:40:26Z", "isAlerted": False}
        )  # fmt: skip

    out, shown, sent = _slow_stdin_on_a_terminal(
        tmp_path / "vault", ["import", "datasafe", "-", "--batch-size", "1"], record
    )
    assert json.loads(out) == {"imported": sent, "duplicates": 0, "refused": 0}
    assert b"events/s" in shown


def test_no_progress_bar_in_a_pipe(opened: Path) -> None:
    """In a pipe, stderr stays clean."""
    result = run_cli("post", "myindex", "-", stdin='{"company": "a"}\n', vault=opened)
    assert result.stderr == ""


@pytest.mark.system
def test_a_command_run_in_process_answers_as_the_installed_script(opened: Path) -> None:
    """run_cli (in-process, what most tests here use) and the installed script give the same exit code,
    stdout and stderr: for help, JSON and table output, a refused body, a usage error and a setting."""
    run_cli("post", "myindex", '{"company": "Amalto", "amount": 101.12}', "--id", "a1", vault=opened)
    cases: list[tuple[tuple[str, ...], dict[str, str], str | None]] = [
        (("--version",), {}, None),
        (("post", "--help"), {}, None),
        (("channels", "show", "myindex", "--output", "json"), {}, None),
        (("events", "list", "--output", "table"), {}, None),
        (("post", "myindex", '{"amount": 1}'), {}, None),
        (("post", "myindex", "-", "--atomic"), {}, '{"company": "a"}\n{"oops": 1}\n'),
        (("post", "myindex", '{"company": "' + "x" * 600 + '"}'), {"TRAILVAULT_MAX_EVENT_BYTES": "500"}, None),
        (("events", "list", "--limit", "0"), {}, None),
        (("nonsense",), {}, None),
    ]
    for args, env, stdin in cases:
        here = run_cli(*args, vault=opened, env=env, stdin=stdin)
        there = run_cli_process(*args, vault=opened, env=env, stdin=stdin)
        assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr), args


def _public_key_file(folder: Path, bits: int = 2048) -> Path:
    path = folder / f"oci_api_key_public_{bits}.pem"
    path.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=bits)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def test_keys_create_registers_an_oci_public_key_and_prints_its_fingerprint(tmp_path: Path) -> None:
    """--oci-public-key stores the key's fingerprint, printed with the token and shown by keys list."""
    vault = tmp_path / "vault"
    created = run_cli("keys", "create", "oci", "--scope", "read", "--oci-public-key",
                      str(_public_key_file(tmp_path)), vault=vault)  # fmt: skip
    assert created.returncode == 0, created.stderr
    fingerprint = json.loads(created.stdout)["key"]["oci_fingerprint"]
    assert len(fingerprint.split(":")) == 16
    assert f"OCI fingerprint {fingerprint}" in created.stderr
    listed = run_cli("keys", "list", "--output", "json", vault=vault)
    assert [key["oci_fingerprint"] for key in json.loads(listed.stdout)["keys"]] == [fingerprint]


def test_keys_create_refuses_a_public_key_that_is_not_rsa_2048(tmp_path: Path) -> None:
    """A small RSA key, or a file that is no public key, is refused on stderr naming oci_public_key; no key is made."""
    vault = tmp_path / "vault"
    (tmp_path / "not-a-key.pem").write_text("hello\n")
    for path in (_public_key_file(tmp_path, 1024), tmp_path / "not-a-key.pem"):
        refused = run_cli("keys", "create", "oci", "--scope", "read", "--oci-public-key", str(path), vault=vault)
        assert refused.returncode != 0
        assert "oci_public_key:" in refused.stderr and refused.stdout == ""
    listed = run_cli("keys", "list", "--output", "json", vault=vault)
    assert json.loads(listed.stdout)["keys"] == []

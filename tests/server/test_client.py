"""trailvault.connect and the CLI's --server against a running server: the same API, over HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

import trailvault
from tests.conftest import ACCESS, access_event, run_cli
from tests.server.conftest import Server
from trailvault.core.event import NewEvent
from trailvault.core.integrity.note import Verifier
from trailvault.core.integrity.receipt import check_receipt
from trailvault.errors import BatchRejected, ChannelNotFound, Forbidden, IdConflict, Unauthorized, ValidationFailed


def test_connect_posts_and_lists_like_a_local_vault(server: Server) -> None:
    """Post, post_many, get, events and iter_events answer with the library's own types."""
    channel = f"remote{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.key("admin", "unmask")) as vault:
        assert vault.open(channel, ACCESS) is True
        single = vault.post(channel, access_event(1), id="remote-1")
        many = vault.post_many(channel, [access_event(2), NewEvent(access_event(3), id="remote-3"), '{"type": "X"}'])
        assert vault.post(channel, access_event(1), id="remote-1").duplicate
        got = vault.get("remote-3")
        page = vault.events(channel, limit=2, where={"user.email": "user1@example.com"})
        every = list(vault.iter_events(channel))
        assert (
            vault.channel(channel).schema.to_document()
            == trailvault.Channel.from_dict(vault.channel(channel).to_dict()).schema.to_document()
        )
    assert [p.seq for p in many] == sorted(p.seq for p in many) and many[0].seq > single.seq
    assert got.body == access_event(3) and got.channel == channel
    assert [event.id for event in page] == ["remote-1"]
    assert [event.id for event in every] == ["remote-1", many[0].id, "remote-3", many[2].id]


def test_connect_raises_the_librarys_errors(server: Server) -> None:
    """Errors come back as the same classes, with the field and each refused index."""
    with pytest.raises(Unauthorized):
        trailvault.connect(server.url, token="tv_0123456789abcdef_" + "B" * 43)
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        with pytest.raises(ValidationFailed) as invalid:
            vault.post("access", access_event(1, type=None))
        with pytest.raises(BatchRejected) as rejected:
            vault.post_many("access", [access_event(1), access_event(2, type=7), access_event(3, user=[])])
        with pytest.raises(BatchRejected) as unreadable:
            vault.post_many("access", [access_event(1), "{nope"])
        with pytest.raises(ChannelNotFound):
            vault.post("never-opened", {"x": 1})
        vault.post("access", access_event(1), id="conflict-1")
        with pytest.raises(IdConflict):
            vault.post("access", access_event(2), id="conflict-1")
    assert invalid.value.field == "type"
    assert [index for index, _ in rejected.value.failures] == [1, 2]
    assert [(index, error.code) for index, error in unreadable.value.failures] == [(1, "malformed_json")]
    reader = server.key("read")
    with trailvault.connect(server.url, token=reader) as vault, pytest.raises(Forbidden):
        vault.post("access", access_event(1))


def test_remote_receipts_and_proofs_verify_offline(server: Server) -> None:
    """A receipt fetched over HTTP checks with nothing but the verifier key."""
    with trailvault.connect(server.url, token=server.key("admin", "unmask")) as vault:
        # Two entries at least, whichever tests of the module's server ran before: the proof from size 1 is not empty.
        vault.post("access", access_event(8))
        posted = vault.post("access", access_event(9), wait=True)
        key = vault.verifier_key()
        proof = vault.prove_inclusion(posted["entry"]["id"])
        checkpoint = vault.checkpoint()
        consistency = vault.prove_consistency(1, checkpoint.size)
    checked = check_receipt(posted, Verifier.parse(key))
    assert checked.size >= posted["entry"]["seq"] == proof.index + 1
    assert (consistency.old_size, consistency.new_size, consistency.new_root) == (1, checkpoint.size, checkpoint.root)
    assert consistency.new_root != consistency.old_root


def test_remote_keys_are_created_listed_and_revoked(server: Server) -> None:
    """An admin manages keys remotely; the new token works until revoked."""
    with trailvault.connect(server.url, token=server.admin_token) as admin:
        key, token = admin.create_key("robot", ["ingest"], ["access"])
        with trailvault.connect(server.url, token=token) as robot:
            assert robot.key.channels == ("access",)
            robot.post("access", access_event(1))
        admin.revoke_key(key.id)
        assert next(k for k in admin.keys() if k.id == key.id).revoked_us is not None
    with pytest.raises(Unauthorized):
        trailvault.connect(server.url, token=token)


def test_cli_works_against_the_server(server: Server, tmp_path: Path) -> None:
    """--server with TRAILVAULT_TOKEN: post, list and keys go to the server, and the token never shows."""
    env = {"TRAILVAULT_SERVER": server.url, "TRAILVAULT_TOKEN": server.admin_token}
    (tmp_path / "e.ndjson").write_bytes(b"\n".join(orjson.dumps(access_event(i)) for i in range(5)))
    posted = run_cli("post", "access", "-", stdin=(tmp_path / "e.ndjson").read_text(), env=env)
    assert posted.returncode == 0, posted.stderr
    assert orjson.loads(posted.stdout)["posted"] == 5
    listed = run_cli("events", "list", "--channel", "access", "--limit", "3", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(orjson.loads(listed.stdout)["items"]) == 3
    created = run_cli("--server", server.url, "--token", server.admin_token, "keys", "create", "cli", "--scope", "read")
    assert created.returncode == 0, created.stderr
    assert orjson.loads(created.stdout)["token"].startswith("tv_")
    bad = run_cli("post", "access", '{"type": 5}', env=env)
    assert bad.returncode == 1
    assert "type" in bad.stderr and server.admin_token not in bad.stderr + bad.stdout


def test_cli_server_without_token_is_a_clear_error(server: Server) -> None:
    """--server without a token says how to give one; serve refuses --server."""
    missing = run_cli("--server", server.url, "events", "list")
    assert missing.returncode == 1
    assert "TRAILVAULT_TOKEN" in missing.stderr
    serve = run_cli("--server", server.url, "--token", server.admin_token, "serve")
    assert serve.returncode == 1
    assert "local vault" in serve.stderr


def test_unreachable_server_is_a_clear_error() -> None:
    """A server that is not there raises ServerUnavailable naming the URL, not a driver error."""
    with pytest.raises(trailvault.errors.ServerUnavailable, match=r"127\.0\.0\.1:9"):
        trailvault.connect("http://127.0.0.1:9", token="tv_0123456789abcdef_" + "C" * 43)


def test_export_streamed_from_a_server_verifies_offline(server: Server, tmp_path: Path) -> None:
    """trailvault --server ... export writes the same files and manifest as a local export; verify export
    proves them with the verifier key; a key without archive is refused."""
    token = server.key("archive", "unmask")
    with trailvault.connect(server.url, token=server.admin_token) as admin:
        admin.post_many("access", [access_event(i) for i in range(25)])
        key = admin.verifier_key()
    env = {"TRAILVAULT_SERVER": server.url, "TRAILVAULT_TOKEN": token}
    run = run_cli("export", "--channel", "access", "--out", str(tmp_path / "out"), env=env)
    assert run.returncode == 0, run.stderr
    summary = orjson.loads(run.stdout)
    assert summary["count"] >= 25
    checked = run_cli("verify", "export", str(tmp_path / "out"), "--key", key)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: {summary['count']} events")
    refused = run_cli("export", "--out", str(tmp_path / "no"), env={**env, "TRAILVAULT_TOKEN": server.key("read")})
    assert refused.returncode == 1 and "archive" in refused.stderr
    masked = run_cli("export", "--out", str(tmp_path / "no2"), env={**env, "TRAILVAULT_TOKEN": server.key("archive")})
    assert masked.returncode == 1 and "unmask" in masked.stderr


def test_a_bad_export_request_is_a_4xx_before_any_streaming(server: Server, tmp_path: Path) -> None:
    """A bad time or an unknown channel is answered 400/404 with the error body, not a broken stream."""
    token = server.key("archive", "unmask")
    with server.client(token) as client:
        bad_time = client.get("/v1/export", params={"from": "yesterday"})
        no_channel = client.get("/v1/export", params={"channel": "nosuch"})
    assert bad_time.status_code == 400 and bad_time.json()["error"]["field"] == "from"
    assert no_channel.status_code == 404
    with trailvault.connect(server.url, token=token) as vault, pytest.raises(trailvault.errors.InvalidInput):
        vault.export(tmp_path / "out", time_from="yesterday")
    assert not (tmp_path / "out").exists()

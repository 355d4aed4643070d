"""The background sender and the server's durability: spooling, restarts, SIGKILL, refusals."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import trailvault
from tests.conftest import ACCESS, CLI, access_event
from tests.server.conftest import Server, free_port, start_server
from trailvault.errors import Conflict, ServerUnavailable
from trailvault.workflows.client.sender import Sender, tls_verify


def _ids_in(server: Server, channel: str) -> list[str]:
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        return [event.id for event in vault.iter_events(channel, sort_by="seq")]


def test_sender_batches_and_delivers_everything(server: Server, tmp_path: Path) -> None:
    """Thousands of sends arrive once each, in far fewer requests than events."""
    channel = f"s{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        vault.open(channel, ACCESS)
        with vault.sender(spool=tmp_path / "spool", batch_size=500) as sender:
            sent = [sender.send(channel, access_event(i)) for i in range(3000)]
            assert sender.flush(timeout=60)
            assert sender.delivered == 3000 and sender.pending == 0
    assert _ids_in(server, channel) == sent


@pytest.mark.system
def test_sender_spools_while_the_server_is_down_and_delivers_after(tmp_path: Path) -> None:
    """Events sent while no server listens survive in the spool, across a restart of the producer."""
    port = free_port()
    vault_path = str(tmp_path / "vault")
    with trailvault.open_vault(vault_path) as local:
        local.open("access", ACCESS)
        token = local.create_key("producer", ["ingest", "read"])[1]
    url = f"http://127.0.0.1:{port}"
    first = Sender(url, token, spool=tmp_path / "spool", max_backoff=0.2)
    sent = [first.send("access", access_event(i)) for i in range(250)]
    time.sleep(0.5)
    first.close(timeout=1)
    assert first.pending == 250
    assert len(list((tmp_path / "spool").glob("segment-*.ndjson"))) >= 1
    server = start_server(vault_path, tmp_path / "server.log", port=port)
    try:
        second = Sender(url, token, spool=tmp_path / "spool", max_backoff=0.2)
        more = [second.send("access", access_event(i)) for i in range(250, 300)]
        assert second.flush(timeout=60)
        second.close()
        assert _ids_in(server, "access") == sent + more
    finally:
        server.stop()


@pytest.mark.system
def test_sigkill_during_sustained_ingest_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """Kill -9 the server mid-stream: every acknowledged event survives, the sender delivers the rest
    once each after the restart, and verify passes."""
    vault_path = str(tmp_path / "vault")
    server = start_server(vault_path, tmp_path / "server.log")
    with server.admin() as admin:
        admin.put("/v1/channels/access", json=ACCESS)
    sender = Sender(server.url, server.admin_token, spool=tmp_path / "spool", batch_size=200, max_backoff=0.3)
    sent: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            sent.append(sender.send("access", access_event(n)))
            n += 1
            if n % 200 == 0:
                time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while sender.delivered < 2000:
            time.sleep(0.01)
        acknowledged = sender.delivered
        server.kill()
        time.sleep(0.5)
        restarted = start_server(vault_path, tmp_path / "server.log", port=int(server.url.rsplit(":", 1)[1]))
        time.sleep(0.5)
    finally:
        stop.set()
        producer.join()
    try:
        assert sender.flush(timeout=120), sender.last_error
        sender.close()
        kept = _ids_in(restarted, "access")
        assert len(kept) >= acknowledged
        assert sorted(kept) == sorted(sent)
        assert len(set(kept)) == len(kept)
        with trailvault.connect(restarted.url, token=restarted.admin_token) as vault:
            assert vault.verify().ok
    finally:
        restarted.stop()


def test_refused_events_go_to_rejected_and_the_rest_arrive(server: Server, tmp_path: Path) -> None:
    """An event the schema refuses is kept in rejected.ndjson with the error; its batch's others arrive."""
    channel = f"r{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        vault.open(channel, ACCESS)
    with Sender(server.url, server.admin_token, spool=tmp_path / "spool", linger=0.5) as sender:
        good = [sender.send(channel, access_event(i)) for i in range(5)]
        bad = sender.send(channel, access_event(99, type=None))
        good += [sender.send(channel, access_event(i)) for i in range(5, 10)]
        assert sender.flush(timeout=30)
        assert sender.rejected == 1
    rejected = [orjson.loads(line) for line in (tmp_path / "spool" / "rejected.ndjson").read_bytes().splitlines()]
    assert [(item["event"]["id"], item["error"]["field"]) for item in rejected] == [(bad, "type")]
    assert sorted(_ids_in(server, channel)) == sorted(good)


def test_one_sender_per_spool_folder(tmp_path: Path) -> None:
    """A second sender on the same spool folder is refused: two would send the same segments."""
    first = Sender("http://127.0.0.1:9", "tv_0123456789abcdef_" + "D" * 43, spool=tmp_path / "spool")
    try:
        with pytest.raises(Conflict, match="another sender"):
            Sender("http://127.0.0.1:9", "tv_0123456789abcdef_" + "D" * 43, spool=tmp_path / "spool")
    finally:
        first.close(timeout=0.1)


def test_without_a_spool_a_full_queue_refuses_rather_than_drops() -> None:
    """With no spool folder, a full queue raises at send and close reports what it could not deliver."""
    sender = Sender("http://127.0.0.1:9", "tv_0123456789abcdef_" + "E" * 43, batch_size=2, max_queue=4)
    with pytest.raises(ServerUnavailable, match="spool"):
        for i in range(100):
            sender.send("access", {"n": i})
    with pytest.raises(ServerUnavailable, match="could not be delivered"):
        sender.close(timeout=0.5)


def test_rate_limit_is_429_with_retry_after(own_server: Callable[..., Server]) -> None:
    """Over rate_limit requests a second, a key gets 429 with Retry-After; another key is unaffected."""
    running = own_server(rate_limit=5)
    other = running.key("read")
    with running.admin() as admin:
        answers = [admin.get("/v1/channels") for _ in range(20)]
        with running.client(other) as client:
            assert client.get("/v1/channels").status_code == 200
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited, [answer.status_code for answer in answers]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_reads_are_not_recorded_when_audit_reads_is_off(own_server: Callable[..., Server]) -> None:
    """audit_reads = false: listing leaves no trailvault.reads channel behind."""
    running = own_server(audit_reads="false")
    with running.admin() as admin:
        admin.get("/v1/events")
        assert admin.get("/v1/channels/trailvault.reads").status_code == 404


@pytest.mark.system
def test_tls(tmp_path: Path) -> None:
    """serve --tls-cert --tls-key answers HTTPS with that certificate, and a client that does not trust it fails."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    vault = str(tmp_path / "vault")
    with trailvault.open_vault(vault) as local:
        token = local.create_key("admin", ["admin"])[1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILVAULT_")} | {"TRAILVAULT_VAULT": vault}
    process = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--tls-cert", str(cert_path), "--tls-key", str(key_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=tls_verify(str(cert_path)), timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert answer.status_code == 200
        with trailvault.connect(f"https://127.0.0.1:{port}", token=token, verify=str(cert_path)) as remote:
            assert remote.app == "default"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_damaged_spool_line_is_set_aside_and_the_rest_delivered(server: Server, tmp_path: Path) -> None:
    """A line cut short (a crash mid-write) goes to damaged.ndjson; the segment's other events arrive."""
    channel = f"d{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        vault.open(channel, ACCESS)
    spool = tmp_path / "spool"
    spool.mkdir()
    good = orjson.dumps({"id": f"ok-{uuid.uuid4()}", "body": access_event(1)})
    cut = b'{"id":"cut-2","body":{"user":{"email":"b"}}'
    (spool / "segment-000000000001.ndjson").write_bytes(
        channel.encode() + b"\t" + good + b"\n" + channel.encode() + b"\t" + cut + b"\n"
    )
    with Sender(server.url, server.admin_token, spool=spool) as sender:
        assert sender.flush(timeout=30), sender.last_error
    assert _ids_in(server, channel) == [orjson.loads(good)["id"]]
    assert (spool / "damaged.ndjson").read_bytes().strip().endswith(cut)


def test_one_conflicting_event_or_unknown_channel_holds_nothing_else_back(server: Server, tmp_path: Path) -> None:
    """An id conflict rejects only that event; events for a channel that does not exist are rejected,
    and other channels' events still arrive."""
    channel = f"c{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        vault.open(channel, ACCESS)
        vault.post(channel, access_event(7), id=f"{channel}-7")
    with Sender(server.url, server.admin_token, spool=tmp_path / "spool", linger=0.3) as sender:
        sender.send(channel, access_event(6), id=f"{channel}-6")
        sender.send(channel, access_event(99), id=f"{channel}-7")  # same id, other content
        sender.send(channel, access_event(8), id=f"{channel}-8")
        sender.send("no-such-channel", access_event(1))
        later = sender.send(channel, access_event(9))
        assert sender.flush(timeout=30), sender.last_error
        assert sender.rejected == 2
    assert sorted(_ids_in(server, channel)) == sorted([f"{channel}-6", f"{channel}-7", f"{channel}-8", later])
    rejected = (tmp_path / "spool" / "rejected.ndjson").read_text()
    assert f"{channel}-7" in rejected and "no-such-channel" in rejected and f"{channel}-6" not in rejected


def test_spool_count_stays_exact_under_concurrent_senders(server: Server, tmp_path: Path) -> None:
    """With every event spooled first from four threads, nothing is lost and pending ends at zero."""
    channel = f"p{uuid.uuid4().hex[:6]}"
    with trailvault.connect(server.url, token=server.admin_token) as vault:
        vault.open(channel, ACCESS)
    with Sender(server.url, server.admin_token, spool=tmp_path / "spool", spool_always=True) as sender:
        sent: list[str] = []

        def produce() -> None:
            for i in range(250):
                sent.append(sender.send(channel, access_event(i)))

        threads = [threading.Thread(target=produce) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sender.flush(timeout=60), sender.last_error
        assert sender.pending == 0
    assert sorted(_ids_in(server, channel)) == sorted(sent)

"""A real ``trailvault serve`` subprocess (uvicorn on a loopback port) and HTTP clients for it."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import oci
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import trailvault
from tests.conftest import ACCESS, CLI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running server: its URL, the vault it serves, and an admin token of app ``default``."""

    url: str
    vault: str
    admin_token: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def key(self, *scopes: str, channels: list[str] | None = None, app: str | None = None) -> str:
        """Create a key (through the library, as an operator would with the CLI) and return its token."""
        with trailvault.open_vault(self.vault, app=app or "default", create=False) as vault:
            return vault.create_key("test", scopes, channels)[1]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(vault: str, log: Path, *, port: int | None = None, **settings: Any) -> Server:
    """Start ``trailvault serve`` on ``vault`` with settings as TRAILVAULT_* variables; wait until healthy."""
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAILVAULT_")}
    env.update({f"TRAILVAULT_{name.upper()}": str(value) for name, value in settings.items()})
    env["TRAILVAULT_VAULT"] = vault
    with trailvault.open_vault(vault) as opened:
        token = opened.create_key("admin", ["admin"])[1]
    with log.open("ab") as handle:
        process = subprocess.Popen([str(CLI), "serve", "--port", str(port)], env=env, stdout=handle, stderr=handle)
    server = Server(f"http://127.0.0.1:{port}", vault, token, process, log, env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module on a SQLite vault with a 1 MiB request limit and no rate limit."""
    folder = tmp_path_factory.mktemp("server")
    running = start_server(str(folder / "vault"), folder / "server.log", max_request_bytes=1 << 20, rate_limit=0)
    with running.admin() as admin:
        assert admin.put("/v1/channels/access", json=ACCESS).status_code == 200
    yield running
    running.stop()


@pytest.fixture
def own_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    """A factory of servers with their own vault and settings, stopped after the test.

    Each server stops before the fixtures set up before it started are torn down: a PostgreSQL database
    (``postgres_url``) outlives the server that uses it, as in production, instead of being dropped
    under it (the server's pool would then retry the vanished database until killed).
    """
    started: list[Server] = []

    def factory(vault: str | None = None, **settings: Any) -> Server:
        running = start_server(vault or str(tmp_path / f"vault{len(started)}"), tmp_path / "server.log", **settings)
        started.append(running)
        # The test item's finalizers run last-in first-out, fixtures' teardowns among them.
        request.node.addfinalizer(running.stop)
        return running

    yield factory
    for running in started:
        running.stop()


def oci_config_file(folder: Path, name: str) -> Path:
    """Where :func:`oci_identity` writes the OCI config file named ``name``."""
    return folder / f"{name}.config"


def oci_identity(folder: Path, name: str) -> tuple[oci.signer.Signer, str]:
    """Make a key pair and an OCI config file in ``folder``; return the config's signer and the public PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = folder / f"{name}.pem"
    encoding, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    key_file.write_bytes(private.private_bytes(encoding, pkcs8, serialization.NoEncryption()))
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = ":".join(f"{byte:02x}" for byte in hashlib.md5(der).digest())
    config_file = oci_config_file(folder, name)
    config_file.write_text(
        "[DEFAULT]\n"
        "user=ocid1.user.oc1..aaaaexampleuser\n"
        f"fingerprint={fingerprint}\n"
        f"key_file={key_file}\n"
        "tenancy=ocid1.tenancy.oc1..aaaaexampletenancy\n"
        "region=us-ashburn-1\n"
    )
    config = oci.config.from_file(str(config_file))
    return oci.signer.Signer.from_config(config), public_pem

"""https and wss with a self-signed certificate made by the test (``cryptography``)."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect

from tests.deploy import harness
from tests.deploy.test_workers import wait_for_workers
from tests.helpers import free_port, wait_for_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def https_get(port: int, cert: Path, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(cert), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_https_and_wss_with_workers(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    port = free_port()
    args = harness.narrows(
        "-p", str(port), "--workers", "2", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
        "plain_app:app",
    )  # fmt: skip
    with harness.started(
        args, cwd=harness.HERE, log=tmp_path / "narrows.log", ready=lambda: wait_for_port(port)
    ) as proc:
        workers = wait_for_workers(proc, 2)
        status, body = https_get(port, cert)
        assert status == 200
        assert body.endswith(b"scheme=https")
        assert harness.pid_of(body) in workers
        with connect(f"wss://127.0.0.1:{port}/", ssl=client_context(cert), open_timeout=10) as ws:
            assert str(ws.recv(timeout=10)).startswith("pid=")


def test_daphne_ssl_endpoint_string(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    port = free_port()
    endpoint = f"ssl:port={port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    args = harness.narrows("-e", endpoint, "plain_app:app")
    with harness.started(
        args, cwd=harness.HERE, log=tmp_path / "narrows.log", ready=lambda: wait_for_port(port)
    ):
        status, body = https_get(port, cert)
        assert status == 200
        assert body.endswith(b"scheme=https")
        with connect(f"wss://localhost:{port}/", ssl=client_context(cert), open_timeout=10) as ws:
            assert str(ws.recv(timeout=10)).startswith("pid=")

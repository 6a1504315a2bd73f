"""Certificates made at test time with openssl: a CA, a broker certificate it signs for
127.0.0.1 (valid, or expired yesterday), and the broker's PKCS12 key store."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "changeit"


@dataclass(frozen=True)
class BrokerCertificate:
    cafile: Path  # the CA that signed it (PEM): what clients must trust
    keystore: Path  # the broker's key and certificate chain (PKCS12, PASSWORD)
    cert: Path  # the certificate (PEM)
    key: Path  # its private key (PEM)


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {args[0]} failed:\n{done.stderr}"


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA valid for two days: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_broker_certificate(
    directory: Path, ca: tuple[Path, Path], *, expired: bool = False
) -> BrokerCertificate:
    """A certificate for 127.0.0.1 signed by `ca`; `expired`: its validity ended a day ago
    (openssl's -days -1 puts notAfter before now)."""
    ca_cert, ca_key = ca
    name = "broker-expired" if expired else "broker"
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "-1" if expired else "2",
        "-extfile", str(ext),
        cwd=directory,
    )  # fmt: skip
    keystore = directory / f"{name}.p12"
    openssl(
        "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(ca_cert),
        "-name", "kafka", "-out", str(keystore), "-passout", f"pass:{PASSWORD}",
        cwd=directory,
    )  # fmt: skip
    return BrokerCertificate(ca_cert, keystore, cert, key)


@asynccontextmanager
async def tls_front(cert: Path, key: Path, upstream: tuple[str, int]) -> AsyncIterator[int]:
    """A TLS listener presenting `cert` that forwards the decrypted bytes to `upstream` (a
    plaintext broker); yields its port. Kafka refuses to *start* with an expired keystore
    certificate (SslFactory checks that its own client can connect), so a certificate that
    expired while the broker ran is shown to clients this way: the handshake is real."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()

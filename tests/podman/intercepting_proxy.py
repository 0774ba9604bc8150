"""A TLS-intercepting HTTPS proxy on loopback, with the test's own CA, that never goes out.

Like a corporate proxy it answers ``CONNECT host:443`` and then speaks TLS
itself with a certificate for ``host`` signed by its CA; unlike one it never
connects anywhere: every tunnelled request gets ``200 intercepted`` from it.
"""

from __future__ import annotations

import datetime as dt
import socketserver
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


Key = ec.EllipticCurvePrivateKey


def _cert(subject: str, key: Key, issuer: tuple[str, Key], *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer[0]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]),
                                        critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class InterceptingProxy(socketserver.ThreadingTCPServer):
    """``HTTPS_PROXY=proxy.url``; ``ca_pem`` is what a client must trust; ``connects`` logs."""

    daemon_threads = True

    def __init__(self) -> None:
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_pem = _pem(_cert("paude test intercepting CA", self._ca_key,
                                 ("paude test intercepting CA", self._ca_key), ca=True))
        self.connects: list[str] = []
        self._dir = tempfile.TemporaryDirectory(prefix="paude-intercept-")
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def context_for(self, host: str) -> ssl.SSLContext:
        """Return a server context presenting a certificate for ``host`` from our CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(host, key, ("paude test intercepting CA", self._ca_key), ca=False)
        path = Path(self._dir.name) / f"{host}.pem"
        path.write_bytes(_pem(cert) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(path)
        return context

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._dir.cleanup()


class _Tunnel(socketserver.StreamRequestHandler):
    server: InterceptingProxy

    def handle(self) -> None:
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        if len(request) < 2 or request[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Only CONNECT\r\n\r\n")
            return
        self.server.connects.append(request[1])
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        host = request[1].rsplit(":", 1)[0]
        try:
            with self.server.context_for(host).wrap_socket(self.connection,
                                                           server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 intercepted\r\nContent-Length: 0\r\n\r\n")
        except (TimeoutError, ssl.SSLError, OSError):
            return  # the client refused our certificate: what the test wants to see

"""Token authentication for the test registry, decided by the test cluster's API server.

OpenShift's registry takes a user's cluster token as the password and asks
the API server who that is (TokenReview) and whether they may push
(SubjectAccessReview: ``update imagestreams/layers`` in the namespace) or
pull (``get``). This loopback token server does the same for Debian's
docker-registry (its ``auth: token`` mode), so a test's push goes through
the checks a real OpenShift push does:

- an unknown token: 401, which clients report as "unauthorized";
- a known user without the permission: 403 with the registry ``DENIED`` code;
- otherwise a JWT granting exactly the allowed actions, signed by a key the
  registry trusts (``rootcertbundle``), the certificate sent in ``x5c``.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "paude-test-registry"
ISSUER = "paude-test-token-issuer"

# (token) -> username or None; (username, verb, namespace) -> allowed
Authenticate = Callable[[str], str | None]
Authorize = Callable[[str, str, str], bool]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """A registry token endpoint on loopback; the decisions are the callbacks'."""

    root: Path
    authenticate: Authenticate
    authorize: Authorize
    grants: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def cert_path(self) -> Path:
        """The certificate the registry trusts for tokens."""
        return self.root / "token.crt"

    @property
    def realm(self) -> str:
        """The URL clients fetch tokens from."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def start(self) -> TokenServer:
        """Serve on a free loopback port in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server = server
        threading.Thread(target=server.serve_forever, name="token-server", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def issue(self, username: str, access: list[dict[str, object]]) -> str:
        """Return a signed registry token for ``username`` with ``access``."""
        der = self._cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER, "sub": username, "aud": SERVICE, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access,
        }  # fmt: skip
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(signature)}"

    def decide(self, authorization: str, scopes: list[str]) -> tuple[int, dict[str, object]]:
        """Return the HTTP status and JSON body for a token request."""
        if not authorization.startswith("Basic "):
            return 401, _error("UNAUTHORIZED", "authentication required")
        _, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        user = self.authenticate(password)
        if user is None:
            return 401, _error("UNAUTHORIZED", "authentication required")
        access: list[dict[str, object]] = []
        for scope in scopes:
            kind, repo, actions = scope.split(":")
            namespace = repo.split("/", 1)[0]
            verbs = {"pull": "get", "push": "update"}
            allowed = tuple(
                a for a in actions.split(",") if a in verbs and self.authorize(user, verbs[a],
                                                                                namespace)
            )  # fmt: skip
            if "push" in actions.split(",") and "push" not in allowed:
                return 403, _error("DENIED", "requested access to the resource is denied")
            self.grants.append((user, repo, allowed))
            access.append({"type": kind, "name": repo, "actions": list(allowed)})
        token = self.issue(user, access)
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        decide = self.decide

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                scopes = parse_qs(url.query).get("scope", [])
                status, body = decide(self.headers.get("Authorization", ""), scopes)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


def _error(code: str, message: str) -> dict[str, object]:
    return {"errors": [{"code": code, "message": message, "detail": None}]}


def token_auth_config(server: TokenServer) -> str:
    """Return the ``auth:`` section of a registry config that uses ``server``."""
    return (
        "auth:\n"
        "  token:\n"
        f"    realm: {server.realm}\n"
        f"    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n"
        f"    rootcertbundle: {server.cert_path}\n"
    )

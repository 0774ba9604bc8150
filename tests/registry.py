"""A real image registry for tests: Debian's docker-registry with htpasswd on loopback.

Each :class:`LocalRegistry` is its own process, port, storage and log, so
tests running side by side never share one. The access log is the evidence a
test reads: which requests reached the registry (a blob upload is a POST to
``/v2/<name>/blobs/uploads/``).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BIN = "docker-registry"
HTPASSWD_BIN = "htpasswd"
START_TIMEOUT = 15.0
# Apache-style access log lines: "GET /v2/ns/paude-agent/manifests/abc HTTP/1.1" 200
_ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/v2/\S*) HTTP/[0-9.]+" (?P<status>[0-9]{3})')

CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}/data
  delete:
    enabled: true
http:
  addr: {addr}
{auth}"""
HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: paude-test
    path: {root}/htpasswd
"""


@dataclass(frozen=True)
class Request:
    """One request in the registry's access log."""

    method: str
    path: str
    status: int


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRegistry:
    """A docker-registry process that requires ``username``/``password``.

    ``auth`` replaces the htpasswd login with another ``auth:`` section, e.g.
    the token server of tests/registry_token.py.
    """

    root: Path
    username: str = "paude"
    password: str = "registry-secret"
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    auth: str | None = None

    @property
    def address(self) -> str:
        """``host:port``, as registry prefixes start."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The registry's combined access and application log."""
        return self.root / "registry.log"

    def start(self) -> LocalRegistry:
        """Write the config and htpasswd file, start the registry, wait until it answers."""
        for tool in (REGISTRY_BIN, HTPASSWD_BIN):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed: run scripts/setup")
        self.root.mkdir(parents=True, exist_ok=True)
        self.set_password(self.password)
        config = self.root / "config.yml"
        auth = self.auth or HTPASSWD_AUTH.format(root=self.root)
        config.write_text(CONFIG.format(root=self.root, addr=self.address, auth=auth))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()
        return self

    def set_password(self, password: str) -> None:
        """(Re)write the htpasswd file; the registry reads it on every request."""
        entry = subprocess.run(
            [HTPASSWD_BIN, "-niB", self.username],
            input=password.encode(),
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        (self.root / "htpasswd").write_bytes(entry)
        self.password = password

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        url = f"http://{self.address}/v2/"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError as err:
                if err.code == 401:  # up, and asking for the password
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {url} in {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop the registry process (its storage stays, for a restart)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def requests(self) -> list[Request]:
        """Return every request in the access log so far, oldest first."""
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return parse_requests(text)

    def mark(self) -> int:
        """Return how many requests are logged now (pass to :meth:`since`)."""
        return len(self.requests())

    def since(self, mark: int) -> list[Request]:
        """Return the requests logged after :meth:`mark` returned ``mark``."""
        return self.requests()[mark:]


def parse_requests(text: str) -> list[Request]:
    """Return the requests an access log's ``text`` holds, oldest first."""
    return [Request(m["method"], m["path"], int(m["status"])) for m in _ACCESS_RE.finditer(text)]


def uploads(requests: list[Request]) -> list[Request]:
    """Return the blob uploads (POST/PATCH/PUT under ``/blobs/uploads/``) among ``requests``."""
    return [
        r
        for r in requests
        if r.method in ("POST", "PATCH", "PUT") and "/blobs/uploads/" in r.path
    ]


def manifest_puts(requests: list[Request]) -> list[Request]:
    """Return the manifest uploads among ``requests``."""
    return [r for r in requests if r.method == "PUT" and "/manifests/" in r.path]

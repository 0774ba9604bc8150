"""A fake internet made of the test's own containers.

* a normal (routed, not internal) podman network ``paude-test-<random>``;
* a web server container on it (:mod:`fakenet_server`): HTTP on 80/8080,
  HTTPS on 443/8443 with a certificate from a test CA for the names below;
* a dnsmasq container on it answering those real names with the web server's
  address, logging every query (so a test can prove a name was *not* asked);
* a ``containers.conf`` that makes every container podman starts use that
  dnsmasq as its resolver. paude's proxy resolves allowed names itself, so
  this is how ``api.anthropic.com`` reaches the stand-in without any change
  to paude; the agent's resolver is unreachable from its internal network
  whatever it is.

Nothing here sends traffic anywhere but to these containers and loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE_REPO = "localhost/paude-test-fakenet"
TEST_LABEL = "paude.io/test=1"
NAMES = ("api.anthropic.com", "evil.example.com", "allowed.example.org", "other.example.org",
         # the model gateway's upstreams, and a place the agent must not reach
         "oauth2.googleapis.com", "us-east5-aiplatform.googleapis.com", "storage.googleapis.com")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Stable across runs (the agent image's tag hashes the extra CAs) and readable
# by the rootless test user.
CA_DIR = Path(os.environ.get("PAUDE_TEST_CA_DIR", "/var/tmp/paude-test-ca"))

CONTAINERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 dnsmasq-base \\
    && rm -rf /var/lib/apt/lists/*
COPY fakenet_server.py /srv/fakenet_server.py
"""


def random_name(prefix: str = "paude-test") -> str:
    """Return a unique podman object name."""
    return f"{prefix}-{secrets.token_hex(4)}"


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run podman and capture its output; raise with stderr on failure."""
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def wait_for(what: str, probe: Callable[[], bool], *, deadline: float = 60.0) -> None:
    """Poll ``probe`` until it answers True, or fail naming ``what``."""
    end = time.monotonic() + deadline
    delay = 0.05
    while time.monotonic() < end:
        if probe():
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")


def ensure_image() -> str:
    """Build the fake internet's image once; its tag is a hash of its inputs."""
    server = (HERE / "fakenet_server.py").read_bytes()
    digest = hashlib.sha256(CONTAINERFILE.encode() + server).hexdigest()[:12]
    tag = f"{IMAGE_REPO}:{digest}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    context = Path(os.environ.get("TMPDIR", "/tmp")) / f"paude-test-fakenet-{digest}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(CONTAINERFILE)
    (context / "fakenet_server.py").write_bytes(server)
    podman("build", "--pull=never", "--label", TEST_LABEL, "-t", tag, str(context), timeout=900)
    return tag


@dataclass(frozen=True)
class TestCA:
    """A CA and a server certificate for :data:`NAMES`, as PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    def bundle_with_host(self) -> str:
        """Return PAUDE_EXTRA_CA_CERTS: the host bundle (the TLS proxy here) plus this CA."""
        paths = [str(HOST_CA_BUNDLE)] if HOST_CA_BUNDLE.exists() else []
        return os.pathsep.join([*paths, str(self.ca_cert)])


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def ensure_ca(directory: Path) -> TestCA:
    """Create the test CA in ``directory`` unless it is there (a stable CA keeps
    the agent image's hash, which includes the extra CAs, from changing).

    Uses the openssl CLI (scripts/setup installs it), so the tests need no
    Python crypto package.
    """
    ca = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if ca.ca_cert.exists() and (directory / "ca-key.pem").exists():
        if not (ca.server_cert.exists() and ca.server_key.exists()
                and _server_ext() == _read(directory / "server.ext")):
            _issue_server_cert(directory, ec)  # new names, same CA: image tags stay
        return ca
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "825",
        "-subj",
        "/CN=paude test CA (do not trust outside tests)",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    _issue_server_cert(directory, ec)
    for path in (ca.ca_cert, ca.server_cert, ca.server_key):
        path.chmod(0o644)  # read by the web server's unprivileged user, and by paude
    directory.chmod(0o755)
    return ca


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _server_ext() -> str:
    return (
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in NAMES) + "\n"
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\n"
    )


def _issue_server_cert(directory: Path, ec: list[str]) -> None:
    """Issue the server certificate for :data:`NAMES` from the CA in ``directory``.

    Written beside and renamed into place, so a server starting meanwhile
    reads either the old pair or the new one.
    """
    _openssl(
        "req",
        *ec,
        "-keyout",
        "server-key.pem.new",
        "-out",
        "server.csr",
        "-subj",
        f"/CN={NAMES[0]}",
        cwd=directory,
    )
    (directory / "server.ext.new").write_text(_server_ext())
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "825",
        "-extfile",
        "server.ext.new",
        "-out",
        "server.pem.new",
        cwd=directory,
    )
    for name in ("server-key.pem", "server.pem", "server.ext"):
        (directory / f"{name}.new").chmod(0o644)
        (directory / f"{name}.new").rename(directory / name)


@dataclass
class FakeNet:
    """The running fake internet. Create with :func:`start_fakenet`; always ``close()``."""

    network: str
    subnet: str
    web: str
    dns: str
    web_ip: str
    dns_ip: str
    ca: TestCA
    containers_conf: Path
    created: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    # Names the fake DNS "rebinds" to this machine's loopback / LAN addresses.
    rebind: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Return the environment paude needs to use this fake internet."""
        return {
            "CONTAINERS_CONF": str(self.containers_conf),
            "PAUDE_EXTRA_CA_CERTS": self.ca.bundle_with_host(),
        }

    def dns_queries(self) -> list[str]:
        """Return every name dnsmasq was asked for so far."""
        logs = podman("logs", self.dns).stdout + podman("logs", self.dns).stderr
        return [
            line.split("query[", 1)[1].split(" ")[1]
            for line in logs.splitlines()
            if "query[" in line
        ]

    def web_requests(self) -> list[dict[str, object]]:
        """Return the requests the web server logged (one JSON object each)."""
        out = podman("logs", self.web).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def close(self) -> None:
        """Remove everything this fake internet created."""
        for kind, name in reversed(self.created):
            if kind == "container":
                podman("rm", "-f", "-t", "0", name, check=False)
            else:
                podman("network", "rm", "-f", name, check=False)


def _container_ip(name: str, network: str) -> str:
    data = json.loads(podman("inspect", name).stdout)[0]
    return str(data["NetworkSettings"]["Networks"][network]["IPAddress"])


def _write_containers_conf(path: Path, dns_ip: str) -> None:
    """Write a containers.conf: the system settings plus ``dns_servers``.

    CONTAINERS_CONF replaces the system files, so the runtime and ulimit
    settings this VM needs (shared/ENVIRONMENT.md) are repeated here.
    """
    lines = ["[containers]", f'dns_servers = ["{dns_ip}"]']
    ulimits = _system_value("default_ulimits")
    if ulimits:
        lines.append(f"default_ulimits = {ulimits}")
    lines.append("[engine]")
    runtime = _system_value("runtime")
    if runtime:
        lines.append(f"runtime = {runtime}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)


def _system_value(key: str) -> str | None:
    files = [
        Path("/etc/containers/containers.conf"),
        *sorted(Path("/etc/containers/containers.conf.d").glob("*.conf")),
    ]
    found = None
    for conf in files:
        if conf.exists():
            for line in conf.read_text().splitlines():
                if line.split("=", 1)[0].strip() == key:
                    found = line.split("=", 1)[1].strip()
    return found


def start_fakenet(workdir: Path, ca: TestCA) -> FakeNet:
    """Start the fake internet; on failure everything already made is removed."""
    image = ensure_image()
    network = random_name()
    net = FakeNet(
        network, "", f"{network}-web", f"{network}-dns", "", "", ca, workdir / "containers.conf"
    )
    try:
        _start(net, image)
    except BaseException:
        net.close()
        raise
    return net


def _create_network(net: FakeNet) -> None:
    # An explicit, rarely used range: podman hands out 10.88-10.90.x.0/24 by
    # itself, and a rootless user's own networks must not shadow this one.
    for _ in range(20):
        subnet = f"10.213.{secrets.randbelow(250) + 1}.0/24"
        proc = podman(
            "network", "create", "--label", TEST_LABEL, "--subnet", subnet, net.network, check=False
        )
        if proc.returncode == 0:
            net.created.append(("network", net.network))
            return
    raise AssertionError(f"cannot create the fake internet's network: {proc.stderr}")


def _start(net: FakeNet, image: str) -> None:
    _create_network(net)
    net.subnet = json.loads(podman("network", "inspect", net.network).stdout)[0]["subnets"][0][
        "subnet"
    ]
    mount = f"{net.ca.server_cert.parent}:/certs:ro,z"
    _run(
        net,
        net.web,
        image,
        ["-v", mount],
        ["python3", "-u", "/srv/fakenet_server.py", "/certs/server.pem", "/certs/server-key.pem"],
    )
    net.web_ip = _container_ip(net.web, net.network)
    answers = [f"--address=/{name}/{net.web_ip}" for name in NAMES]
    net.rebind = {"rebind-loopback.example.org": "127.0.0.1"}
    lan = [
        a
        for a in host_ipv4_addresses()
        if ipaddress.ip_address(a).is_private and not in_subnet(a, net.subnet)
    ]
    if lan:
        net.rebind["rebind-lan.example.org"] = lan[0]
    answers += [f"--address=/{name}/{ip}" for name, ip in net.rebind.items()]
    _run(
        net,
        net.dns,
        image,
        ["--cap-add", "NET_BIND_SERVICE", "--cap-add", "NET_RAW"],
        [
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--log-queries",
            "--log-facility=-",
            "--user=root",
            *answers,
        ],
    )
    net.dns_ip = _container_ip(net.dns, net.network)
    _write_containers_conf(net.containers_conf, net.dns_ip)
    wait_for("the fake web server", lambda: "fakenet ready" in podman("logs", net.web).stdout)
    wait_for("dnsmasq", lambda: "started" in _logs(net.dns))


def _logs(name: str) -> str:
    proc = podman("logs", name, check=False)
    return proc.stdout + proc.stderr


def _run(net: FakeNet, name: str, image: str, extra: Sequence[str], argv: Sequence[str]) -> None:
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--label",
        TEST_LABEL,
        "--network",
        net.network,
        *extra,
        image,
        *argv,
    )
    net.created.append(("container", name))


def host_ipv4_addresses() -> list[str]:
    """Return this machine's IPv4 addresses (no loopback, no link-local)."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    found = []
    for link in json.loads(out.stdout):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if not address.is_loopback and not address.is_link_local:
                found.append(str(address))
    return found


def in_subnet(address: str, subnet: str) -> bool:
    """Answer whether ``address`` lies in ``subnet``."""
    return ipaddress.ip_address(address) in ipaddress.ip_network(subnet)


@pytest.fixture(scope="module")
def fakenet() -> Iterator[FakeNet]:
    """A running fake internet for one test module, removed afterwards."""
    ca = ensure_ca(CA_DIR)
    workdir = Path(tempfile.mkdtemp(prefix="paude-test-fakenet-", dir="/tmp"))
    workdir.chmod(0o755)  # the rootless user reads containers.conf
    net = start_fakenet(workdir, ca)
    try:
        yield net
    finally:
        net.close()
        shutil.rmtree(workdir, ignore_errors=True)

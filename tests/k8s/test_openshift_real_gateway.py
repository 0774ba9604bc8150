"""The model gateway on the real node: the credential is in the gateway's pod, never the agent's.

Real sessions (paude's limited user, a restricted namespace on the real
node, the real agent, proxy and gateway images) started from a scratch HOME
and environment holding canaries of every kind: a fake ADC (refresh token,
client secret), a fake API key and a fake OAuth token.

- ``vertex`` (Vertex AI mode: the ADC; the key and token are on the host
  too, unused), ``apikey`` and ``oauth`` (the Anthropic API, at a stand-in
  this test runs as a TLS pod in its namespace, with its own CA that only
  the gateway image trusts).
- The whole agent pod is searched from the host (its root filesystem with
  every volume, every process's environ and cmdline, as root) and
  ``paude exec env``: no canary. The same search finds a control file and
  variable, and the gateway container does hold its credential, so the
  search could fail.
- A request from each Anthropic agent through its gateway reaches the
  stand-in with that session's own credential header added, the agent's
  placeholder dropped; each session's gateway mounts its own Secret.
- ``paude stop`` deletes the gateway and its Secret with the session.

Every request goes to pods this test made; the Vertex upstream is never called.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_openshift_real_node import SESSION_KINDS, run_paude

from conftest import (
    HOST_CA_BUNDLE,
    NETPOL_LOCK,
    Cluster,
    RealNode,
    _limited_kubeconfig,
    _restricted_namespace,
)
from paude.container import ImageSpec, ensure_image
from paude.runner import SystemRunner

pytestmark = pytest.mark.k8s

REFRESH = "canary-k8s-adc-refresh-token-6d21"
CLIENT_SECRET = "canary-k8s-adc-client-secret-83fe"
API_KEY = "sk-ant-api03-canary-k8s-api-key-5a5a"
OAUTH = "sk-ant-oat01-canary-k8s-oauth-token-7b7b"
CANARIES = (REFRESH, CLIENT_SECRET, API_KEY, OAUTH)
CONTROL = "paude-k8s-search-control-4711"  # written into the agent: the search must find it
PROJECT = "paude-test-proj"
# Stable, so the gateway image (whose tag hashes its CAs) is built once per machine.
CA_DIR = Path("/var/tmp/paude-test-k8s-gateway-ca")
STANDIN_PORT = 8443  # its Service's port is 443 (what an https base URL may name)
STANDIN = """
const fs = require('fs');
const opts = {key: fs.readFileSync('/tls/key.pem'), cert: fs.readFileSync('/tls/cert.pem')};
require('https').createServer(opts, (q, r) => {
  let body = '';
  q.on('data', (c) => { body += c; });
  q.on('end', () => {
    console.log('REQ ' + JSON.stringify({method: q.method, path: q.url, headers: q.headers}));
    r.writeHead(200, {'content-type': 'application/json'});
    r.end('{"type":"message","content":[]}');
  });
}).listen(8443);
"""
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"


def ensure_ca() -> Path:
    """Return the test CA's certificate, made once in :data:`CA_DIR`."""
    CA_DIR.mkdir(parents=True, exist_ok=True)
    cert, key = CA_DIR / "ca.pem", CA_DIR / "ca-key.pem"
    with (CA_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cert.exists() and key.exists()):
            openssl("req", "-x509", *EC, "-keyout", "ca-key.pem.new", "-out", "ca.pem.new",
                    "-days", "3650", "-subj", "/CN=paude k8s gateway test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                    "-addext", "keyUsage=critical,keyCertSign", cwd=CA_DIR)
            (CA_DIR / "ca-key.pem.new").rename(key)
            (CA_DIR / "ca.pem.new").rename(cert)
    return cert


def issue_server_cert(name: str, workdir: Path) -> tuple[str, str]:
    """Return a (cert, key) PEM pair for ``name`` from the test CA."""
    openssl("req", *EC, "-keyout", "key.pem", "-out", "csr.pem", "-subj", f"/CN={name}",
            cwd=workdir)
    (workdir / "ext").write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "csr.pem", "-CA", str(CA_DIR / "ca.pem"),
            "-CAkey", str(CA_DIR / "ca-key.pem"), "-CAcreateserial", "-CAserial",
            str(workdir / "ca.srl"), "-days", "2", "-extfile", "ext", "-out", "cert.pem",
            cwd=workdir)
    return (workdir / "cert.pem").read_text(), (workdir / "key.pem").read_text()


def push_images(real_node: RealNode) -> str:
    """Push agent, proxy and gateway under one tag of their own; return the agent's ref.

    ``backend.image`` then names the agent, and paude runs its siblings
    (``paude-proxy``, ``paude-gateway``) at the same tag. The gateway trusts
    the test CA (and the host's, for pip behind a TLS-inspecting proxy).
    """
    host = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""
    runner = SystemRunner()
    built = {
        "agent": ensure_image(runner, ImageSpec(kind="agent", ca_bundle=host or None)),
        "proxy": ensure_image(runner, ImageSpec(kind="proxy")),
        "gateway": ensure_image(runner, ImageSpec(
            kind="gateway", ca_bundle=host + ensure_ca().read_bytes())),
    }
    tag = "-".join(ref.rsplit(":", 1)[-1] for ref in built.values())
    for kind, local in built.items():
        real_node.push(local, f"paude-test-gw/paude-{kind}", tag)
    return f"{real_node.registry}/paude-test-gw/paude-agent:{tag}"


@dataclass
class Env:
    """The namespace, its user, and a scratch HOME with canary credentials."""

    cluster: Cluster
    ns: str
    kubeconfig: Path
    root: Path
    image: str
    upstream: str  # the stand-in's https URL

    def home(self) -> Path:
        return self.root / "home"

    def paude(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_paude(self.root / "workspace", self.home(), self.kubeconfig,
                         self.root / "bin" / "kubectl", *args, env_extra=env)

    def start(self, name: str, env: dict[str, str]) -> None:
        out = self.paude("--backend", "openshift", "--name", name, "--detach", env=env)
        assert out.returncode == 0, out.stdout + out.stderr

    def pod(self, selector: str) -> dict[str, Any]:
        (pod,) = json.loads(self.cluster.run("get", "pods", "-n", self.ns, "-l", selector,
                                             "-o", "json").stdout)["items"]
        return dict(pod)

    def gateway_config(self, session: str) -> str:
        """The config file as the gateway container reads it (what it holds)."""
        pod = self.pod(f"paude.io/role=gateway,paude.io/session={session}")
        out = self.cluster.run("exec", "-n", self.ns, pod["metadata"]["name"], "-c", "gateway",
                               "--", "cat", "/run/secrets/paude-gateway")
        return str(out.stdout)

    def standin_requests(self) -> list[dict[str, Any]]:
        log = self.cluster.run("logs", "-n", self.ns, "standin").stdout
        return [json.loads(line[4:]) for line in log.splitlines() if line.startswith("REQ ")]


def write_home(root: Path, cluster: Cluster) -> None:
    home = root / "home"
    adc = home / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(json.dumps({"type": "authorized_user", "refresh_token": REFRESH,
                               "client_id": "paude-test.apps.googleusercontent.com",
                               "client_secret": CLIENT_SECRET}))
    (root / "workspace").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "kubectl").symlink_to(cluster.kubectl)


def standin_objects(ns: str, image: str, cert: str, key: str) -> list[dict[str, Any]]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "standin-tls",
              "namespace": ns}, "stringData": {"cert.pem": cert, "key.pem": key}}
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "standin", "namespace": ns, "labels": {"app": "standin"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "command": ["node", "-e", STANDIN],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}, "runAsUser": 1000},
                "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
            }],
            "volumes": [{"name": "tls", "secret": {"secretName": "standin-tls",
                                                   "defaultMode": 0o444}}],
        },
    }
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "standin", "namespace": ns},
               "spec": {"selector": {"app": "standin"},
                        "ports": [{"port": 443, "targetPort": STANDIN_PORT}]}}
    return [secret, pod, service]


@pytest.fixture(scope="module")
def env(cluster: Cluster, real_node: RealNode) -> Iterator[Env]:
    """Three sessions in one real namespace: ``vertex``, ``apikey`` and ``oauth``."""
    image = push_images(real_node)
    tolerations = [{"key": real_node.taint, "operator": "Exists", "effect": "NoSchedule"}]
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": f"{real_node.label}=true",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(tolerations),
    }
    with NETPOL_LOCK.open("a") as lock, tempfile.TemporaryDirectory(
            prefix="paude-test-gw-") as tmp, _restricted_namespace(cluster, annotations) as ns:
        fcntl.flock(lock, fcntl.LOCK_SH)  # NetworkPolicy stays enforced meanwhile
        root = Path(tmp)
        write_home(root, cluster)
        kubeconfig = _limited_kubeconfig(cluster, ns, root / "limited.kubeconfig")
        host = f"standin.{ns}.svc.cluster.local"
        cert, key = issue_server_cert(host, root)
        cluster.apply(*standin_objects(ns, image, cert, key))
        cluster.wait_pod_running(ns, "standin", timeout=180)
        e = Env(cluster, ns, kubeconfig, root, image, f"https://{host}")
        backend = {"type": "openshift", "namespace": ns, "image": image,
                   "resources": {"requests": {"cpu": "50m", "memory": "256Mi"},
                                 "limits": {"memory": "1Gi"}}}  # fmt: skip
        config = root / "home" / ".config" / "paude" / "paude.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"backend": backend, "sync": {"enabled": False}}))
        # The first start makes the shared proxy's credential; then two at once.
        e.start("vertex", {"CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": PROJECT,
                           "CLOUD_ML_REGION": "us-east5", "ANTHROPIC_API_KEY": API_KEY,
                           "CLAUDE_CODE_OAUTH_TOKEN": OAUTH})
        with ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(e.start, "apikey", {"ANTHROPIC_API_KEY": API_KEY,
                                                      "ANTHROPIC_BASE_URL": e.upstream}),
                      pool.submit(e.start, "oauth", {"CLAUDE_CODE_OAUTH_TOKEN": OAUTH,
                                                     "ANTHROPIC_BASE_URL": e.upstream})]
            for start in starts:
                start.result()
        yield e


def container_pids(container_id: str) -> list[int]:
    """Return the host pids of a container (its cgroup path names its id)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if container_id in (proc / "cgroup").read_text():
                    pids.append(int(proc.name))
            except OSError:
                continue  # gone meanwhile
    return pids


def search_agent(e: Env, session: str) -> list[str]:
    """Return ``path:match`` for every canary (and the control) in the agent container.

    From the host, as root: the container's root filesystem through
    ``/proc/PID/root`` (its volumes included) and every process's environ
    and cmdline. The patterns are in a host file, in no process of the pod.
    """
    pod = e.pod(f"paude.io/role=agent,paude.io/session={session}")
    (status,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == "agent"]
    pids = container_pids(status["containerID"].split("://", 1)[1])
    assert pids, f"no host process of the agent container of {session}"
    patterns = e.root / "patterns"
    patterns.write_text("\n".join([*CANARIES, CONTROL]) + "\n")
    files = [f"/proc/{pids[0]}/root/"]
    files += [f"/proc/{pid}/{what}" for pid in pids for what in ("environ", "cmdline")]
    proc = subprocess.run(["grep", "-raoF", "-f", str(patterns), "--exclude-dir=proc",
                           "--exclude-dir=sys", "--exclude-dir=dev", *files],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.stdout.splitlines()


@pytest.mark.parametrize("session", ["vertex", "apikey", "oauth"])
def test_no_canary_anywhere_in_the_agent_pod(env: Env, session: str) -> None:
    # The control: a file on the workspace volume, written by the agent itself.
    wrote = env.paude("exec", session, "--", "sh", "-c",
                      'printf %s%s "$0" "$1" > /workspace/.paude-control', CONTROL[:12],
                      CONTROL[12:])
    assert wrote.returncode == 0, wrote.stderr
    found = search_agent(env, session)
    leaked = [line for line in found if CONTROL not in line]
    assert leaked == [], leaked
    assert any(line.endswith("/workspace/.paude-control:" + CONTROL) for line in found), found
    listed = env.paude("exec", session, "--", "env")
    assert listed.returncode == 0 and "PAUDE_SESSION=" + session in listed.stdout, listed
    assert [c for c in CANARIES if c in listed.stdout] == [], listed.stdout
    # Where the agent looks for its model: the gateway, with no Google credential.
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in listed.stdout
    assert "http://paude-gateway:8080" in listed.stdout
    pod = env.pod(f"paude.io/role=agent,paude.io/session={session}")
    assert pod["spec"]["automountServiceAccountToken"] is False
    secrets = {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert secrets <= {"paude-claude-settings"}, secrets  # settings.json only (setup's)


def test_the_gateway_container_holds_its_sessions_credential_only(env: Env) -> None:
    vertex, apikey, oauth = (env.gateway_config(s) for s in ("vertex", "apikey", "oauth"))
    assert REFRESH in vertex and CLIENT_SECRET in vertex
    assert API_KEY not in vertex and OAUTH not in vertex  # Vertex mode takes the ADC only
    assert API_KEY in apikey and OAUTH not in apikey and REFRESH not in apikey
    assert OAUTH in oauth and API_KEY not in oauth and REFRESH not in oauth
    for session in ("vertex", "apikey", "oauth"):
        deploy = env.cluster.get("deployment", f"paude-{session}-gateway", env.ns)
        assert deploy is not None
        volumes = deploy["spec"]["template"]["spec"]["volumes"]
        assert [v["secret"]["secretName"] for v in volumes if "secret" in v] == \
            [f"paude-{session}-gateway"]
        secret = env.cluster.get("secret", f"paude-{session}-gateway", env.ns)
        assert secret is not None and secret["metadata"]["labels"]["paude.io/session"] == session


def call_gateway(e: Env, session: str) -> None:
    """POST a message from inside the agent, to where its own variables point."""
    script = ('curl -sS -o /dev/null -w "%{http_code}" --max-time 60 -X POST '
              '-H "content-type: application/json" -H "anthropic-version: 2023-06-01" '
              '-H "x-api-key: agent-placeholder" -H "authorization: Bearer $ANTHROPIC_AUTH_TOKEN" '
              f'-H "x-paude-test: {session}" -d "{{}}" "$ANTHROPIC_BASE_URL/v1/messages"')
    out = e.paude("exec", session, "--", "sh", "-c", script)
    assert out.returncode == 0 and out.stdout == "200", out.stdout + out.stderr


def test_each_agents_request_arrives_with_its_own_sessions_credential(env: Env) -> None:
    for session in ("apikey", "oauth"):
        call_gateway(env, session)
    got = [r["headers"] for r in env.standin_requests() if r["path"] == "/v1/messages"]
    # The gateway forwards only the headers it knows (the test's marker is
    # dropped too): the credential each request carries tells them apart.
    assert len(got) == 2 and not [h for h in got if "x-paude-test" in h], got
    by_session = {("apikey" if "x-api-key" in h else "oauth"): h for h in got}
    assert set(by_session) == {"apikey", "oauth"}, got
    assert by_session["apikey"]["x-api-key"] == API_KEY
    assert "authorization" not in by_session["apikey"]
    assert by_session["oauth"]["authorization"] == f"Bearer {OAUTH}"
    assert "oauth-2025-04-20" in by_session["oauth"]["anthropic-beta"]
    assert "x-api-key" not in by_session["oauth"]
    assert by_session["oauth"]["anthropic-version"] == "2023-06-01"


def test_stop_deletes_the_gateway_and_its_secret(env: Env) -> None:
    env.start("gone", {"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": env.upstream})
    assert env.cluster.get("secret", "paude-gone-gateway", env.ns) is not None
    assert env.paude("stop", "gone").returncode == 0

    def left() -> list[str]:
        out = env.cluster.run("get", SESSION_KINDS, "-n", env.ns, "-l", "paude.io/session=gone",
                              "-o", "name").stdout.split()
        return [o for o in out if not o.startswith("pod/")]

    env.cluster.wait_for(lambda: not left() or None, timeout=60,
                         what="no object of the stopped session left")
    assert env.cluster.get("secret", "paude-gone-gateway", env.ns) is None


"""Who else can use a session's proxy, on the real node: nobody without its credential.

A real session (the real agent and proxy images, paude's limited user, a
restricted namespace on the real node) and pods this test makes beside it:

- a pod that copies the agent's labels is under the agent's policy (egress
  only to the proxy), but without the proxy's credential squid answers 407;
  it reaches nothing directly either;
- UDP from the agent pod to the test's own listener pod: nothing arrives
  (the same datagrams from a pod without paude's labels do arrive);
- a pod in another namespace cannot connect to the proxy at all;
- with NetworkPolicy not enforced (``netpol_off``): a plain pod reaches the
  proxy, and squid refuses it (407) unless it sends the credential; and a
  new session refuses to start its agent, in one line, leaving nothing.

Every probe targets a pod this test made or the proxy of its session.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from test_openshift_real_node import SESSION_KINDS, run_paude, server_pod

from conftest import _restricted_namespace
from paude.backends.openshift.objects import PROXY_USER
from paude.facts import PROXY_PORT

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s

UDP_PORT = 9999
UDP_LISTENER = (
    "require('dgram').createSocket('udp4')"
    f".on('message', (m) => console.log('got ' + m)).bind({UDP_PORT})"
)


def probe_pod(image: str, namespace: str, name: str, labels: dict[str, str],
              command: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    pod = server_pod(image, namespace)
    pod["metadata"] = {"name": name, "namespace": namespace, "labels": labels}
    pod["spec"]["containers"][0]["command"] = command or ["sleep", "infinity"]
    return pod


class Session:
    """A started session in the real namespace, and helpers to probe around it."""

    def __init__(self, cluster: Cluster, real_node: RealNode, kubeconfig: Path,
                 images: RealImages, root: Path) -> None:  # fmt: skip
        self.cluster, self.kc, self.images = cluster, kubeconfig, images
        self.ns = yaml.safe_load(kubeconfig.read_text())["contexts"][0]["context"]["namespace"]
        self.home, self.workspace, bindir = root / "home", root / "workspace", root / "bin"
        for d in (self.home / ".config" / "paude", self.workspace, bindir):
            d.mkdir(parents=True)
        self.model_env: dict[str, str] = {}  # a model credential, for a gateway
        self.kubectl = bindir / "kubectl"
        self.kubectl.symlink_to(cluster.kubectl)
        self.allowed = f"server.{self.ns}.svc.cluster.local"
        backend = {"type": "openshift", "namespace": self.ns, "image": images.agent_tag,
                   "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                 "limits": {"memory": "1Gi"}}}  # fmt: skip
        config = {"backend": backend, "sync": {"enabled": False},
                  "allowed_domains": [self.allowed, real_node.pod_cidr, real_node.service_cidr]}
        (self.home / ".config" / "paude" / "paude.json").write_text(json.dumps(config))

    def paude(self, *args: str) -> Any:
        return run_paude(self.workspace, self.home, self.kc, self.kubectl, *args)

    def start(self, name: str) -> None:
        out = self.paude("--backend", "openshift", "--name", name, "--detach")
        assert out.returncode == 0, out.stdout + out.stderr

    def run_pod(self, pod: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.cluster.apply(pod)  # admin: another namespace is not the user's
        return self.cluster.wait_pod_running(namespace or self.ns, pod["metadata"]["name"],
                                             timeout=120)  # fmt: skip

    def in_pod(self, pod: str, script: str, namespace: str | None = None) -> Any:
        return self.cluster.run("exec", "-n", namespace or self.ns, pod, "--", "bash", "-c",
                                script, check=False)  # fmt: skip

    def agent_pod_labels(self, pod: str) -> dict[str, str]:
        """Every label of the running agent pod (its template's and the controller's)."""
        found = self.cluster.get("pod", pod, self.ns)
        assert found is not None
        return dict(found["metadata"]["labels"])

    def proxy(self) -> tuple[str, str]:
        """The proxy Service's ClusterIP and the proxy's password (read as the user can)."""
        (service,) = json.loads(self.cluster.run(
            "get", "service", "-n", self.ns, "-l", "paude.io/role=proxy", "-o", "json",
        ).stdout)["items"]  # fmt: skip
        (secret,) = [s for s in json.loads(self.cluster.run(
            "get", "secrets", "-n", self.ns, "-l", "paude.io/role=proxy", "-o", "json",
        ).stdout)["items"] if s["metadata"]["name"].endswith("-auth")]  # fmt: skip
        password = base64.b64decode(secret["data"]["password"]).decode()
        return service["spec"]["clusterIP"], password

    def labelled(self, session: str) -> list[str]:
        selector = f"paude.io/session={session}"
        out = self.cluster.run("get", SESSION_KINDS, "-n", self.ns, "-l", selector, "-o", "name")
        return out.stdout.split()


@pytest.fixture
def session(
    cluster: Cluster, real_node: RealNode, real_limited_kubeconfig: Path,
    real_images: RealImages, tmp_path: Path,
) -> Session:  # fmt: skip
    s = Session(cluster, real_node, real_limited_kubeconfig, real_images, tmp_path)
    cluster.apply(server_pod(real_images.agent, s.ns), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "server", "namespace": s.ns},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })  # fmt: skip
    cluster.wait_pod_running(s.ns, "server", timeout=120)
    return s


@pytest.fixture
def other_namespace(cluster: Cluster, real_node: RealNode) -> Iterator[str]:
    """A second namespace whose pods run on the real node."""
    tolerations = [{"key": real_node.taint, "operator": "Exists", "effect": "NoSchedule"}]
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": f"{real_node.label}=true",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(tolerations),
    }
    with _restricted_namespace(cluster, annotations) as name:
        yield name


def curl_code(proxy: str, url: str, code: str = "http_code") -> str:
    return f"curl -s -o /dev/null -w '%{{{code}}}' --max-time 20 -x {proxy} {url}"


def proxy_codes(pod: str, session: Session, address: str, password: str | None,
                namespace: str | None = None) -> tuple[Any, Any]:  # fmt: skip
    """Try the proxy from ``pod``: plain HTTP's status and CONNECT's (with ``password`` or none)."""
    auth = f"{PROXY_USER}:{password}@" if password else ""
    proxy = f"http://{auth}{address}:{PROXY_PORT}"
    plain = session.in_pod(pod, curl_code(proxy, f"http://{session.allowed}/"), namespace)
    tunnel = session.in_pod(pod, curl_code(proxy, f"https://{session.allowed}/", "http_connect"),
                            namespace)  # fmt: skip
    return plain, tunnel


def test_label_copies_udp_and_other_namespaces_get_nothing_from_a_session(
    session: Session, other_namespace: str
) -> None:
    session.start("iso")
    address, password = session.proxy()
    url = f"http://{session.allowed}/"
    agent = "paude-iso-0"
    # The agent itself: through the proxy with its credential (its environment).
    ok = session.in_pod(agent, f"curl -s --max-time 20 {url}")
    assert ok.stdout == "ok-from-server", ok

    # A pod the limited user makes with ALL the agent pod's labels (its
    # session's and the StatefulSet's too): the agent's policy lets it reach
    # the proxy, and squid refuses it (407) without the credential and with a
    # guessed one, for plain HTTP and for CONNECT alike.
    copied = session.agent_pod_labels(agent)
    assert copied["paude.io/session"] == "iso" and "paude.io/proxy" in copied, copied
    copycat = probe_pod(session.images.agent, session.ns, "copycat", copied)
    session.cluster.apply(copycat, kubeconfig=session.kc)
    session.cluster.wait_pod_running(session.ns, "copycat", timeout=120)
    for guess in (None, secrets.token_hex(32)):
        plain, tunnel = proxy_codes("copycat", session, address, guess)
        assert (plain.stdout, tunnel.stdout) == ("407", "407"), (guess, plain, tunnel)
    server_ip = session.cluster.get("pod", "server", session.ns)["status"]["podIP"]
    direct = session.in_pod("copycat", f"curl -s --max-time 5 http://{server_ip}:8080/")
    assert direct.returncode in {7, 28}, direct  # its copied labels give it no egress
    # The copy is not a member of the StatefulSet, and not adopted by it.
    assert not session.cluster.get("pod", "copycat", session.ns)["metadata"].get("ownerReferences")

    # UDP from the agent to the test's listener: nothing arrives. The same
    # datagram from a pod without paude's labels does (the listener works).
    listener = session.run_pod(probe_pod(session.images.agent, session.ns, "udp", {"app": "udp"},
                                         ["node", "-e", UDP_LISTENER]))  # fmt: skip
    udp_ip = listener["status"]["podIP"]
    send = f"for i in 1 2 3 4 5; do echo from-$0 > /dev/udp/{udp_ip}/{UDP_PORT}; done"
    session.in_pod(agent, send.replace("$0", "agent"))
    session.run_pod(probe_pod(session.images.agent, session.ns, "plain", {"app": "plain"}))
    session.cluster.wait_for(
        lambda: session.in_pod("plain", send.replace("$0", "plain")) and "got from-plain"
        in session.cluster.run("logs", "-n", session.ns, "udp").stdout,
        timeout=60, what="the plain pod's datagram at the listener",
    )  # fmt: skip
    assert "from-agent" not in session.cluster.run("logs", "-n", session.ns, "udp").stdout

    # Another namespace's pod, with the agent's labels too, cannot even connect
    # to the proxy's pinned ClusterIP and port: not without the credential,
    # not with it (handed over by this test: it cannot read it itself).
    session.run_pod(probe_pod(session.images.agent, other_namespace, "outsider", copied),
                    other_namespace)  # fmt: skip
    for given in (None, password):
        for probe in proxy_codes("outsider", session, address, given, other_namespace):
            assert probe.returncode in {7, 28} and probe.stdout in {"", "000"}, (given, probe)
    # A plain pod in the other namespace can reach this one's pods (the
    # probes above would see a connection): the server answers it.
    reached = session.in_pod("outsider", f"curl -s --max-time 20 http://{server_ip}:8080/",
                             other_namespace)  # fmt: skip
    assert reached.stdout == "ok-from-server", reached
    assert session.paude("stop", "iso").returncode == 0


def test_without_networkpolicy_the_proxy_wants_its_credential_and_no_agent_starts(
    session: Session, netpol_off: Callable[[], AbstractContextManager[None]]
) -> None:
    session.start("first")
    address, password = session.proxy()
    url = f"http://{session.allowed}/"
    session.run_pod(probe_pod(session.images.agent, session.ns, "plain", {"app": "plain"}))
    with netpol_off():
        # Nothing keeps the pod away from the proxy now; its credential does.
        session.cluster.wait_for(
            lambda: session.in_pod("plain", curl_code(f"http://{address}:{PROXY_PORT}", url)).stdout
            == "407", timeout=60, what="squid's 407 to a pod without the credential",
        )  # fmt: skip
        with_password = f"http://{PROXY_USER}:{password}@{address}:{PROXY_PORT}"
        ok = session.in_pod("plain", f"curl -s --max-time 20 -x {with_password} {url}")
        assert ok.stdout == "ok-from-server", ok  # the credential is what gates it

        # A new session refuses to start its agent: one line, nothing left.
        refused = session.paude("--backend", "openshift", "--name", "second", "--detach")
        assert refused.returncode != 0
        lines = [ln for ln in refused.stderr.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1 and "does not enforce NetworkPolicy" in lines[0], refused.stderr
        assert "--allow-network" in refused.stderr and "Traceback" not in refused.stderr
        assert [o for o in session.labelled("second") if not o.startswith("pod/")] == []
        claim = session.cluster.get("pvc", "paude-second-workspace", session.ns)
        assert claim is None or claim["metadata"].get("deletionTimestamp")  # going
    assert session.paude("stop", "first").returncode == 0


# Records every connection it accepts (its log), then closes it.
RECORDER = ("require('net').createServer((s) => { console.log('conn from ' + s.remoteAddress);"
            " s.destroy(); }).listen(Number(process.argv[1]))")
REQUESTS = 40


def recorder_pod(image: str, namespace: str, name: str, labels: dict[str, str],
                 port: int) -> dict[str, Any]:  # fmt: skip
    return probe_pod(image, namespace, name, labels, ["node", "-e", RECORDER, str(port)])


def only_slice(session: Session, service: str) -> dict[str, Any]:
    """The one EndpointSlice of ``service`` (every slice naming it is listed)."""
    (found,) = json.loads(session.cluster.run(
        "get", "endpointslices", "-n", session.ns, "-l", f"kubernetes.io/service-name={service}",
        "-o", "json").stdout)["items"]  # fmt: skip
    return dict(found)


def deployments_pod(session: Session, deployment: str) -> dict[str, Any]:
    """The ready pod Deployment ``deployment`` made, by owners: pod -> ReplicaSet -> it."""
    dep = session.cluster.get("deployment", deployment, session.ns)
    assert dep is not None
    pods = json.loads(session.cluster.run("get", "pods", "-n", session.ns, "-o", "json").stdout)
    for pod in pods["items"]:
        (ref,) = pod["metadata"].get("ownerReferences") or [{"kind": "none"}]
        if ref["kind"] != "ReplicaSet" or pod["metadata"].get("deletionTimestamp"):
            continue
        rs = session.cluster.get("replicaset", ref["name"], session.ns)
        ready = [c for c in pod["status"].get("conditions", []) if c["type"] == "Ready"]
        if rs and rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"] \
                and ready and ready[0]["status"] == "True":
            return dict(pod)
    pytest.fail(f"no ready pod of Deployment {deployment}")


def assert_slice_lists_only(session: Session, service: str, pod: dict[str, Any]) -> None:
    found = only_slice(session, service)
    assert found["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "paude.io"
    assert [(e["addresses"], e["targetRef"]["uid"]) for e in found["endpoints"]] == \
        [([pod["status"]["podIP"]], pod["metadata"]["uid"])], found


def connections(session: Session, pod: str) -> list[str]:
    log = session.cluster.run("logs", "-n", session.ns, pod).stdout
    return [line for line in log.splitlines() if line.startswith("conn from")]


@pytest.fixture
def gateway_session(session: Session, real_node: RealNode, tmp_path: Path) -> Session:
    """``session`` with the gateway image beside the others and a TLS model stand-in."""
    from test_openshift_real_gateway import issue_server_cert, push_images, standin_objects

    image = push_images(real_node)
    host = f"standin.{session.ns}.svc.cluster.local"
    cert, key = issue_server_cert(host, tmp_path)
    session.cluster.apply(*standin_objects(session.ns, image, cert, key))
    session.cluster.wait_pod_running(session.ns, "standin", timeout=180)
    config_file = session.home / ".config" / "paude" / "paude.json"
    config = json.loads(config_file.read_text())
    config["backend"]["image"] = image
    config_file.write_text(json.dumps(config))
    session.model_env = {"ANTHROPIC_API_KEY": "sk-ant-endpoints-test",
                         "ANTHROPIC_BASE_URL": f"https://{host}"}  # fmt: skip
    return session


def test_pods_given_the_proxys_and_gateways_labels_are_never_their_endpoints(
    gateway_session: Session,
) -> None:
    s = gateway_session
    out = run_paude(s.workspace, s.home, s.kc, s.kubectl, "--backend", "openshift", "--name",
                    "ep", "--detach", env_extra=s.model_env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    agent = "paude-ep-0"
    proxy_svc = json.loads(s.cluster.run("get", "service", "-n", s.ns, "-l",
                                         "paude.io/role=proxy", "-o", "json").stdout)["items"][0]
    proxy_name = proxy_svc["metadata"]["name"]
    gateway_name = "paude-ep-gateway"
    # Impostors the limited user makes: every label the proxy's and gateway's
    # Services would have selected, listening on their ports, recording each
    # connection. (Not the ReplicaSet's pod-template-hash: it would adopt the
    # copy; tests/unit/test_openshift_endpoints.py shows an adopted copy is
    # still not listed.)
    proxy_pod, gateway_pod = deployments_pod(s, proxy_name), deployments_pod(s, gateway_name)
    keep = ("app.kubernetes.io/managed-by", "paude.io/role", "paude.io/proxy", "paude.io/session")
    for name, pod, port in (("fake-proxy", proxy_pod, PROXY_PORT),
                            ("fake-gateway", gateway_pod, 8080)):  # fmt: skip
        copied = {k: v for k, v in pod["metadata"]["labels"].items() if k in keep}
        s.cluster.apply(recorder_pod(s.images.agent, s.ns, name, copied, port), kubeconfig=s.kc)
    fakes = {n: s.cluster.wait_pod_running(s.ns, n, timeout=120)["status"]["podIP"]
             for n in ("fake-proxy", "fake-gateway")}  # fmt: skip
    # The agent's policies let it reach them directly (their labels), and they record it.
    for name, port in (("fake-proxy", PROXY_PORT), ("fake-gateway", 8080)):
        direct = f"curl -s --noproxy '*' --max-time 5 http://{fakes[name]}:{port}/"
        s.cluster.wait_for(lambda n=name, c=direct: s.in_pod(agent, c) and connections(s, n),
                           timeout=90, what=f"the agent's direct connection at {name}")  # fmt: skip
    seen = {n: len(connections(s, n)) for n in fakes}

    # Many requests through the proxy's and the gateway's ClusterIPs: all
    # answered by paude's pods, none reaches an impostor.
    url = f"http://{s.allowed}/"
    loop = f"for i in $(seq {REQUESTS}); do curl -s -o /dev/null -w '%{{http_code}} ' --max-time 20"
    via_proxy = s.in_pod(agent, f"{loop} {url}; done")
    assert via_proxy.stdout.split() == ["200"] * REQUESTS, via_proxy
    model = ('-X POST -H "content-type: application/json" -H "x-api-key: placeholder"'
             ' -d "{}" "$ANTHROPIC_BASE_URL/v1/messages"')
    via_gateway = s.in_pod(agent, f"{loop} {model}; done")
    assert via_gateway.stdout.split() == ["200"] * REQUESTS, via_gateway
    assert {n: len(connections(s, n)) for n in fakes} == seen
    # Each Service has exactly one slice, paude's, listing its Deployment's pod.
    assert_slice_lists_only(s, proxy_name, proxy_pod)
    assert_slice_lists_only(s, gateway_name, gateway_pod)

    # The proxy pod is replaced (the Deployment makes a new one, a new
    # address): until paude enters the session again its slice points at the
    # old pod; `paude exec` re-points it and the agent reaches the proxy again.
    s.cluster.run("delete", "pod", "-n", s.ns, proxy_pod["metadata"]["name"], "--wait=true",
                  timeout=120)  # fmt: skip
    new_pod = s.cluster.wait_for(
        lambda: (p := deployments_pod_or_none(s, proxy_name)) and
        p["metadata"]["uid"] != proxy_pod["metadata"]["uid"] and p,
        timeout=180, what="the proxy Deployment's new pod ready")  # fmt: skip
    stale = s.in_pod(agent, f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {url}")
    assert stale.stdout != "200", stale  # its old address answers no more
    # A pod given the proxy's labels that cannot pull its image fails nothing
    # of paude's: the wait for the Deployment's pod ignores it.
    copied = {k: v for k, v in proxy_pod["metadata"]["labels"].items() if k in keep}
    broken = probe_pod("127.0.0.1:1/paude-none:1", s.ns, "broken-proxy", copied)
    s.cluster.apply(broken, kubeconfig=s.kc)
    s.cluster.wait_for(lambda: pull_failed(s, "broken-proxy"), timeout=120,
                       what="the broken impostor's pull failure")  # fmt: skip
    again = s.paude("exec", "ep", "--", "curl", "-s", "--max-time", "20", url)
    assert again.returncode == 0 and again.stdout == "ok-from-server", again
    assert_slice_lists_only(s, proxy_name, new_pod)
    assert {n: len(connections(s, n)) for n in fakes} == seen

    assert s.paude("stop", "ep").returncode == 0
    s.cluster.wait_for(lambda: not [o for o in s.labelled("ep") if not o.startswith("pod/")]
                       or None, timeout=60, what="nothing of session ep left")  # fmt: skip
    left = s.cluster.run("get", "endpointslices", "-n", s.ns, "-l",
                         "app.kubernetes.io/managed-by=paude", "-o", "name").stdout
    assert left.strip() == "", left


def pull_failed(session: Session, pod: str) -> bool:
    found = session.cluster.get("pod", pod, session.ns) or {}
    states = [c.get("state", {}).get("waiting", {}).get("reason")
              for c in found.get("status", {}).get("containerStatuses") or []]  # fmt: skip
    return bool({"ErrImagePull", "ImagePullBackOff"} & set(states))


def deployments_pod_or_none(session: Session, deployment: str) -> dict[str, Any] | None:
    try:
        return deployments_pod(session, deployment)
    except pytest.fail.Exception:
        return None

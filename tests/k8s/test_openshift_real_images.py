"""paude pushes its own images to the real node's registry and the pods run them by digest.

On the real node (the ``real_*`` fixtures), as paude's limited user, with
``backend.registry`` set to the node's registry, which needs a password (the
user's own login: ``REGISTRY_AUTH_FILE``, as ``podman login`` writes it) and
serves TLS with the cluster CA (``backend.registry_cert_dir``). The registry's
access log is the evidence of what was uploaded. Everything goes through the
``paude`` command, as a user runs it:

- the first start pushes both images (each push's line names its layers and
  size), the pods pull them by digest and run;
- a second start pushes nothing: one manifest check per image;
- ``paude manifests`` shows the digests the pods run;
- a changed ``image.setup_command`` in the workspace's paude.json waits for
  ``paude trust``; then only the layers it changed are uploaded (the
  registry's log: no blob of the old image is sent again, the new top layer
  is; the old image's blobs are still there) and its pod runs the new image;
- a node that cannot pull (a ``pull_registry`` nothing listens on) is one
  line with the pod's waiting reason and the kubelet's message, and the
  start's objects are removed;
- a devcontainer ``build.dockerfile`` (approved with ``paude trust``) is the
  base of the agent image the pod runs (its mark is in the pod; the agent
  runs); slow: a new base means a whole agent build and push;
- a wrong registry password and a registry that is down are each one line
  with the fix, and nothing is created (the images are checked first);
- a failing build (a setup step) shows its log's tail and where the whole log
  is kept, and pushes and creates nothing.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import test_openshift_real_node
import yaml
from test_openshift_real_node import SESSION_KINDS, run_paude

from paude.naming import derive_session_name
from registry import Request, free_port, manifest_puts, parse_requests, uploads

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MARKER = "/etc/paude-realnode-layer"
# A finished blob upload (PUT ...?digest=); a cross-repository mount (POST ...?mount=)
# moves no data.
_DIGEST_RE = re.compile(r"[?&]digest=(sha256(?::|%3A)[0-9a-f]{64})")
_MOUNT_RE = re.compile(r"[?&]mount=(sha256(?::|%3A)[0-9a-f]{64})")


class RegistryLog:
    """The real node's registry access log (real-node.sh keeps it in its logs/)."""

    def __init__(self, real_node: RealNode) -> None:
        # REGISTRY_AUTH_FILE is $NODE/registry/auth.json; the logs are $NODE/logs.
        self.path = real_node.registry_auth_file.parents[1] / "logs" / "registry.log"

    def requests(self) -> list[Request]:
        return parse_requests(self.path.read_text(errors="replace"))

    def mark(self) -> int:
        return len(self.requests())

    def since(self, mark: int, repository: str) -> list[Request]:
        """Requests after ``mark`` for ``repository`` (a namespace's images only)."""
        return [r for r in self.requests()[mark:] if r.path.startswith(f"/v2/{repository}/")]


def _digests(requests: list[Request], method: str, pattern: re.Pattern[str]) -> set[str]:
    found = (pattern.search(r.path) for r in uploads(requests) if r.method == method)
    return {m[1].replace("%3A", ":") for m in found if m}


def transferred(requests: list[Request]) -> set[str]:
    """Digests of the blobs whose data ``requests`` uploaded."""
    return _digests(requests, "PUT", _DIGEST_RE)


def upload_sessions(requests: list[Request]) -> dict[str, str | None]:
    """Each blob upload that carried data (a PATCH or PUT), by its path: the digest it became.

    None: the upload never finished. A cross-repository mount (POST) is not one.
    """
    out: dict[str, str | None] = {}
    for r in uploads(requests):
        if r.method in ("PATCH", "PUT"):
            path = r.path.split("?", 1)[0]
            match = _DIGEST_RE.search(r.path) if r.method == "PUT" else None
            out[path] = match[1].replace("%3A", ":") if match else out.get(path)
    return out


def mounted(requests: list[Request]) -> set[str]:
    """Digests of the blobs ``requests`` mounted from another repository."""
    return _digests(requests, "POST", _MOUNT_RE)


def remote_manifest(real_node: RealNode, ref: str) -> dict[str, Any]:
    """The manifest of ``ref`` (by digest) as the registry serves it, read with skopeo."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--authfile", str(real_node.registry_auth_file),
         "--cert-dir", str(real_node.registry_cert_dir / real_node.registry), f"docker://{ref}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def remote_layers(real_node: RealNode, ref: str) -> list[str]:
    """The layer digests of the manifest ``ref``, base first."""
    return [layer["digest"] for layer in remote_manifest(real_node, ref)["layers"]]


def blob_status(real_node: RealNode, repository: str, digest: str) -> int:
    """The registry API's answer to HEAD of blob ``digest`` in ``repository``."""
    context = ssl.create_default_context(
        cafile=str(real_node.registry_cert_dir / real_node.registry / "ca.crt")
    )
    pair = f"{real_node.registry_user}:{real_node.registry_password}".encode()
    request = urllib.request.Request(
        f"https://{real_node.registry}/v2/{repository}/blobs/{digest}", method="HEAD",
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


class RealSession:
    """A user's workspace and config running ``paude`` against the real node's registry."""

    def __init__(self, cluster: Cluster, real_node: RealNode, kubeconfig: Path, root: Path):
        self.cluster, self.kubeconfig = cluster, kubeconfig
        self.ns = yaml.safe_load(kubeconfig.read_text())["contexts"][0]["context"]["namespace"]
        self.home, self.workspace, bindir = root / "home", root / "workspace", root / "bin"
        for d in (self.home / ".config" / "paude", self.workspace, bindir):
            d.mkdir(parents=True)
        self.kubectl = bindir / "kubectl"
        self.kubectl.symlink_to(cluster.kubectl)
        # The user's own registry login, as podman login --authfile would have made it.
        self.login = {"REGISTRY_AUTH_FILE": str(real_node.registry_auth_file)}
        self.prefix = f"{real_node.registry}/{self.ns}"
        self.backend: dict[str, Any] = {
            "type": "openshift", "namespace": self.ns, "registry": self.prefix,
            "registry_cert_dir": str(real_node.registry_cert_dir / real_node.registry),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "1Gi"}},
        }  # fmt: skip
        self.config: dict[str, Any] = {
            "backend": self.backend, "sync": {"enabled": False},
            "allowed_domains": ["example.com"],
            "extra_ca_certificates": [str(HOST_CA_BUNDLE)],  # the fixture's build: cached
        }  # fmt: skip
        self.write_config()

    def write_config(self) -> None:
        path = self.home / ".config" / "paude" / "paude.json"
        path.write_text(json.dumps(self.config))

    def paude(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_paude(self.workspace, self.home, self.kubeconfig, self.kubectl, *args,
                         env_extra=self.login)  # fmt: skip

    def must(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = self.paude(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    def start(self) -> subprocess.CompletedProcess[str]:
        """Start the workspace's session (its default name, as exec and stop find it)."""
        return self.must("--backend", "openshift", "--detach")

    def name(self) -> str:
        sessions = json.loads(self.must("sessions", "--json").stdout)
        (mine,) = [s for s in sessions if s["workspace"] == str(self.workspace)]
        return str(mine["name"])

    def images(self) -> dict[str, str]:
        """Workload kind -> the image its pod template names."""
        out = self.cluster.run("get", "statefulsets,deployments", "-n", self.ns,
                               "-o", "json").stdout  # fmt: skip
        return {o["kind"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
                for o in json.loads(out)["items"]}  # fmt: skip

    def agent_image_id(self, name: str) -> str:
        pod = self.cluster.get("pod", f"paude-{name}-0", self.ns)
        assert pod is not None
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"], status
        return str(status["imageID"])

    def labelled(self) -> list[str]:
        selector = "app.kubernetes.io/managed-by=paude"
        out = self.cluster.run("get", SESSION_KINDS, "-n", self.ns, "-l", selector, "-o", "name")
        return out.stdout.split()


@pytest.fixture
def session(
    cluster: Cluster,
    real_node: RealNode,
    real_limited_kubeconfig: Path,
    real_images: RealImages,  # builds the agent image with the host CA (podman cache)
    tmp_path: Path,
) -> RealSession:
    return RealSession(cluster, real_node, real_limited_kubeconfig, tmp_path)


def test_first_start_pushes_a_second_pushes_nothing_and_pods_run_by_digest(
    session: RealSession, real_node: RealNode
) -> None:
    log = RegistryLog(real_node)
    mark = log.mark()
    first = session.start()
    pushed = log.since(mark, session.ns)
    assert uploads(pushed) and len(manifest_puts(pushed)) == 2, pushed
    assert (first.stdout + first.stderr).count("Pushed ") == 2, first
    # Each push's line names its layers and size; its summary, the layers podman sent.
    said = " ".join(first.stderr.split())  # rich wraps lines at 80 columns off a terminal
    for kind in ("agent", "proxy"):
        size = rf"localhost/paude-{kind}:\w{{12}} \((\d+) layers, [\d.]+ [GMk]?B\) to "
        pushing = re.search(rf"Pushing {size}{re.escape(session.prefix)}\.\.\.", said)
        done = re.search(rf"Pushed localhost/paude-{kind}:\w{{12}} \([\d.]+ [GMk]?B\) to "
                         rf"{re.escape(session.prefix)} in \S+ \((\d+) layers\)", said)
        assert pushing and done and pushing[1] == done[1], (kind, said)
    images = session.images()
    assert set(images) == {"StatefulSet", "Deployment"}
    for image in images.values():
        assert image.startswith(f"{session.prefix}/paude-") and "@sha256:" in image, images
    assert session.agent_image_id(session.name()).endswith(images["StatefulSet"].split("@")[1])
    assert "Claude Code" in session.must("exec", "--", "claude", "--version").stdout

    # Again, from nothing running: one manifest check per image, no upload.
    session.must("stop")
    mark = log.mark()
    second = session.start()
    again = log.since(mark, session.ns)
    assert uploads(again) == [] and manifest_puts(again) == [], again
    assert len([r for r in again if "/manifests/" in r.path]) == 2, again
    assert "Pushing" not in second.stdout + second.stderr
    assert session.images() == images

    # paude manifests shows the digests the pods run.
    exported = yaml.safe_load_all(session.must("manifests").stdout)
    shown = {o["kind"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
             for o in exported if o["kind"] in ("StatefulSet", "Deployment")}  # fmt: skip
    assert shown == images

    assert_a_changed_setup_command_uploads_only_its_layers(session, real_node, log, images)


def assert_a_changed_setup_command_uploads_only_its_layers(
    session: RealSession, real_node: RealNode, log: RegistryLog, images: dict[str, str]
) -> None:
    """A setup step in the workspace's paude.json: trusted, built, and only its layers sent."""
    session.must("stop")
    # New content every run: its layer cannot already be in the registry from another run.
    command = f"echo {secrets.token_hex(8)} > {MARKER}"
    (session.workspace / "paude.json").write_text(json.dumps({"image": {"setup_command": command}}))
    mark = log.mark()
    refused = session.paude("--backend", "openshift", "--detach")
    assert refused.returncode == 2 and "image.setup_command" in refused.stderr, refused.stderr
    assert "paude trust" in refused.stderr and log.since(mark, session.ns) == []
    session.must("trust")
    mark = log.mark()
    session.start()
    changed = log.since(mark, session.ns)
    new = session.images()
    assert new["Deployment"] == images["Deployment"]  # the proxy did not change
    assert new["StatefulSet"] != images["StatefulSet"]

    old_layers = remote_layers(real_node, images["StatefulSet"])
    manifest = remote_manifest(real_node, new["StatefulSet"])
    new_layers = [layer["digest"] for layer in manifest["layers"]]
    shared, added = set(old_layers) & set(new_layers), set(new_layers) - set(old_layers)
    assert shared and added, (old_layers, new_layers)
    assert set(new_layers[: len(shared)]) == shared  # the base is shared, the top is new
    agent = f"{session.ns}/paude-agent"
    sessions = upload_sessions(changed)
    assert all(s.startswith(f"/v2/{agent}/") for s in sessions), sessions  # the proxy: nothing
    sent = transferred(changed)
    assert not sent & shared, ("a shared layer was uploaded again", sent & shared, changed)
    assert new_layers[-1] in sent and added <= sent, (added - sent, changed)
    # Every upload that carried data became a new layer or the new config: nothing else moved.
    assert set(sessions.values()) <= added | {manifest["config"]["digest"]}, (sessions, added)
    # containers/image may link a blob from where it saw it last (here: the base layer
    # from paude-proxy) instead of a HEAD: no data moves, and only a shared layer may be.
    assert mounted(changed) <= shared, (mounted(changed), shared)
    # The registry still holds every blob of the old image, in the same repository.
    assert {d: blob_status(real_node, agent, d) for d in old_layers} == dict.fromkeys(
        old_layers, 200)  # fmt: skip
    assert len(manifest_puts(changed)) == 1
    out = session.must("exec", "--", "cat", MARKER).stdout.strip()
    assert out == command.split()[1]
    assert session.agent_image_id(session.name()).endswith(new["StatefulSet"].split("@")[1])
    session.must("stop")


def test_a_node_that_cannot_pull_is_one_line_and_the_start_leaves_nothing(
    session: RealSession,
) -> None:
    session.backend["pull_registry"] = f"127.0.0.1:1/{session.ns}"  # nothing listens on 1
    session.write_config()
    failed = session.paude("--backend", "openshift", "--name", "nopull", "--detach")
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if "cannot pull" in line]
    assert len(errors) == 1 and "127.0.0.1:1" in errors[0], failed.stderr
    # The kubelet's reason names what the node met.
    assert re.search(r"\((ErrImagePull|ImagePullBackOff)\): \S", errors[0]), errors[0]
    assert "Traceback" not in failed.stderr
    assert [o for o in session.labelled() if not o.startswith("pod/")] == []
    # Deleted by the start; its pvc-protection finalizer holds it until its pod is gone.
    pvc = session.cluster.get("pvc", "paude-nopull-workspace", session.ns)
    assert pvc is None or pvc["metadata"].get("deletionTimestamp"), pvc
    session.cluster.wait_for(
        lambda: session.cluster.get("pvc", "paude-nopull-workspace", session.ns) is None or None,
        timeout=120, what="the workspace PVC gone")  # fmt: skip
    session.cluster.wait_for(lambda: session.labelled() == [], timeout=60,
                             what="nothing labelled paude")  # fmt: skip


DEVCONTAINER_MARKER = "/etc/paude-devcontainer-base"
BUILD_TIMEOUT = 1800
# The user's own base: from the Debian image the podman tests hold, plus a mark of it.
DEVCONTAINER_DOCKERFILE = (
    "FROM docker.io/library/debian:bookworm-slim\n"
    f"RUN echo from-the-devcontainer > {DEVCONTAINER_MARKER}\n"
)


def test_a_devcontainer_image_runs_in_the_pod(
    session: RealSession, real_node: RealNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new base: the agent image is built whole (apt, npm) and pushed whole, on two cores.
    monkeypatch.setattr(test_openshift_real_node, "TIMEOUT", BUILD_TIMEOUT)
    dev = session.workspace / ".devcontainer"
    dev.mkdir()
    (dev / "devcontainer.json").write_text('{"build": {"dockerfile": "Dockerfile"}}')
    (dev / "Dockerfile").write_text(DEVCONTAINER_DOCKERFILE)
    refused = session.paude("--backend", "openshift", "--detach")
    assert refused.returncode == 2 and "paude trust" in refused.stderr, refused.stderr
    session.must("trust")
    log = RegistryLog(real_node)
    mark = log.mark()
    session.start()
    assert len(manifest_puts(log.since(mark, session.ns))) >= 1  # the agent image at least
    agent = session.images()["StatefulSet"]
    assert agent.startswith(f"{session.prefix}/paude-agent@sha256:"), agent
    # paude's layer on the user's base: the pod runs the agent on the devcontainer's image.
    marked = session.must("exec", "--", "cat", DEVCONTAINER_MARKER).stdout.strip()
    assert marked == "from-the-devcontainer"
    assert "Claude Code" in session.must("exec", "--", "claude", "--version").stdout
    assert session.agent_image_id(session.name()).endswith(agent.split("@")[1])
    session.must("stop")


def _one_error_line(failed: subprocess.CompletedProcess[str]) -> str:
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, failed.stderr
    return errors[0]


def test_a_wrong_registry_password_is_one_line_and_nothing_is_created(
    session: RealSession, real_node: RealNode, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-auth.json"
    pair = base64.b64encode(f"{real_node.registry_user}:not-the-password".encode()).decode()
    wrong.write_text(json.dumps({"auths": {real_node.registry: {"auth": pair}}}))
    session.login = {"REGISTRY_AUTH_FILE": str(wrong)}
    log = RegistryLog(real_node)
    mark = log.mark()
    failed = session.paude("--backend", "openshift", "--detach")
    error = _one_error_line(failed)
    assert error.startswith(f"Error: the registry {real_node.registry} refused the login"), error
    assert f"podman login {real_node.registry}" in failed.stderr
    seen = log.since(mark, session.ns)
    assert all(r.status == 401 for r in seen), seen  # refused, and nothing more was sent
    assert session.labelled() == []
    assert session.cluster.get("pvc", f"paude-{derive_name(session)}-workspace", session.ns) is None


def test_a_registry_that_is_down_is_one_line_and_nothing_is_created(session: RealSession) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    session.backend["registry"] = f"{down}/{session.ns}"
    session.write_config()
    failed = session.paude("--backend", "openshift", "--detach")
    error = _one_error_line(failed)
    assert error.startswith(f"Error: cannot reach the registry {down}:"), error
    assert "connection refused" in error
    assert session.labelled() == []
    assert session.cluster.get("pvc", f"paude-{derive_name(session)}-workspace", session.ns) is None


def derive_name(session: RealSession) -> str:
    """The workspace's default session name (what a start would have made)."""
    return derive_session_name(session.workspace)


def test_a_failing_build_shows_its_log_tail_keeps_the_log_and_creates_nothing(
    session: RealSession, real_node: RealNode
) -> None:
    # A setup step that prints 60 lines, then fails: only the last ones are shown.
    mark_text = secrets.token_hex(6)
    command = f"for i in $(seq 1 60); do echo line-$i-{mark_text}; done; exit 7"
    (session.workspace / "paude.json").write_text(json.dumps({"image": {"setup_command": command}}))
    session.must("trust")
    log = RegistryLog(real_node)
    mark = log.mark()
    failed = session.paude("--backend", "openshift", "--detach")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    error = next(line for line in failed.stderr.splitlines() if line.startswith("Error: "))
    assert re.match(r"Error: building the agent image localhost/paude-agent:\w{12} failed"
                    r" \(exit code \d+\):$", error), error  # fmt: skip
    assert f"line-60-{mark_text}" in failed.stderr  # the tail: where it failed
    assert f"line-1-{mark_text}\n" not in failed.stderr  # not the whole log
    (kept,) = re.findall(r"Full log: (\S+)", failed.stderr)
    path = Path(kept)
    assert path.is_relative_to(session.home), path  # the user's state directory
    text = path.read_text()
    assert f"line-1-{mark_text}\n" in text and f"line-60-{mark_text}\n" in text  # the whole
    # Nothing was pushed: the agent image comes first, and never built.
    assert manifest_puts(log.since(mark, session.ns)) == []
    assert uploads(log.since(mark, session.ns)) == []
    assert session.labelled() == []
    assert session.cluster.get("pvc", f"paude-{derive_name(session)}-workspace", session.ns) is None

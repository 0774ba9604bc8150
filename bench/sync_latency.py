"""Time paude's workspace sync on the test cluster's real node against raw ``kubectl exec``.

Usage: python bench/sync_latency.py [--changes 50] [--files 10000] [--runs 3]   (root)
       python bench/sync_latency.py --stand-in [--files 10000] [--runs 3]
Starts the cluster and its real node (tests/cluster/up.sh --real-node),
pushes paude's images (bench/openshift_real_node.py), starts an OpenShift
session with its sync (a namespace whose pods run on the real node) and
measures, in the same run:

- ``local_to_pod``: a small local file written -> the same bytes closed in
  the pod (an ``inotifywait`` in the pod reports it); the peer writes the
  same file with one ``kubectl exec -i ... sh -c 'cat > f'``;
- ``pod_to_local``: a small file written in the pod (by a long-lived shell
  there that prints the time it wrote it) -> the file complete here; the
  peer is one ``kubectl exec ... cat f`` round trip;
- ``initial``: the initial sync of a tree of small files into an empty
  directory of the pod's workspace volume (``BuiltinSync.sync_now``, what
  ``paude`` runs at start) against ``tar c | kubectl exec -i ... tar x`` of
  the same tree. The runs alternate which goes first (both get slower
  over consecutive runs on this machine: always second would bias it).

``--stand-in`` measures only the initial sync, against the podman
container of tests/podman/sync_pod.py (``podman exec -i`` instead of
``kubectl exec -i``; no cluster needed).

The pod runs on this machine, so its clock is this machine's clock: a time
taken in the pod and one taken here are comparable. Prints one JSON object
(p50/p95 in seconds per direction, medians for the initial sync, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from openshift_real_node import images, kubectl, make_namespace, up  # noqa: E402

from paude.backends.base import NullReporter, SessionSpec  # noqa: E402
from paude.backends.openshift import sync as session_sync  # noqa: E402
from paude.backends.openshift.backend import OpenShiftBackend  # noqa: E402
from paude.backends.openshift.client import KubeClient  # noqa: E402
from paude.backends.openshift.objects import AGENT_CONTAINER, agent_pod_name  # noqa: E402
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402
from paude.sync import (  # noqa: E402
    BuiltinSync,
    ExecTransport,
    SyncSpec,
    build_kube_prefix,
    build_podman_prefix,
)

WAIT_S = 60.0  # one change that has not arrived after this long is a failure
LAT, PEER = "/workspace/lat", "/workspace/node_modules/peer"  # the peer's dir is not synced
# Reports "<path> <time written>" for each file closed or moved into the watched dirs.
WATCH = ('inotifywait -m -e close_write,moved_to --format "%w%f" "$1" "$2" |'
         ' while read -r f; do echo "$f $(date +%s.%N)"; done')
# Writes each name it reads (with the name as content) and prints the time it did.
WRITER = 'cd "$1" && while read -r n; do printf "%s" "$n" > "$n"; date +%s.%N; done'


def pcts(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"p50": round(statistics.median(values), 4), "p95": round(cuts[18], 4),
            "max": round(max(values), 4), "n": len(values)}


class Pod:
    """The session's agent pod, reached with ``kubectl exec`` as the sync reaches it."""

    def __init__(self, prefix: tuple[str, ...]) -> None:
        self.prefix = prefix

    def sh(self, script: str, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run([*self.prefix, "sh", "-c", script, "sh", *args], input=stdin,
                              capture_output=True, check=True, timeout=600).stdout

    def stream(self, script: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.prefix, "sh", "-c", script, "sh", *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


class Watcher:
    """An inotifywait in the pod: the time each file was closed there, by path."""

    def __init__(self, pod: Pod) -> None:
        self.proc = pod.stream(WATCH, LAT, PEER)
        self.seen: queue.Queue[tuple[str, float]] = queue.Queue()
        assert self.proc.stderr is not None and self.proc.stdout is not None
        for line in self.proc.stderr:  # inotifywait says so once its watches are set
            if b"Watches established" in line:
                break
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, out: IO[bytes]) -> None:
        for line in out:
            path, stamp = line.decode().rsplit(" ", 1)
            self.seen.put((path, float(stamp)))

    def wait(self, path: str) -> float:
        deadline = time.monotonic() + WAIT_S
        while True:
            got, stamp = self.seen.get(timeout=max(0.1, deadline - time.monotonic()))
            if got == path:
                return stamp

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def wait_local(path: Path, content: str) -> float:
    """Poll until ``path`` holds ``content``; return when (5 ms steps)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if path.read_text() == content:
                return time.time()
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{path} did not arrive in {WAIT_S:.0f}s")


def local_to_pod(pod: Pod, watcher: Watcher, ws: Path, n: int) -> dict[str, Any]:
    sync, peer = [], []
    for i in range(n):
        start = time.time()
        (ws / "lat" / f"l-{i}").write_text(f"local change {i}\n")
        sync.append(watcher.wait(f"{LAT}/l-{i}") - start)
        start = time.time()
        pod.sh('cat > "$1"', f"{PEER}/p-{i}", stdin=f"peer change {i}\n".encode())
        peer.append(watcher.wait(f"{PEER}/p-{i}") - start)
    return {"sync": pcts(sync), "peer_kubectl_exec_cat": pcts(peer)}


def pod_to_local(pod: Pod, ws: Path, n: int) -> dict[str, Any]:
    writer = pod.stream(WRITER, LAT)
    assert writer.stdin is not None and writer.stdout is not None
    sync, peer = [], []
    try:
        for i in range(n):
            name = f"r-{i}"
            writer.stdin.write(f"{name}\n".encode())
            writer.stdin.flush()
            written = float(writer.stdout.readline())
            sync.append(wait_local(ws / "lat" / name, name) - written)
            start = time.monotonic()
            got = pod.sh('cat "$1"', f"{LAT}/{name}")
            peer.append(time.monotonic() - start)
            assert got == name.encode()
    finally:
        writer.kill()
        writer.wait()
    return {"sync": pcts(sync), "peer_kubectl_exec_cat": pcts(peer)}


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        d = root / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"small file {i}\n" * 4)


def initial(pod: Pod, prefix: tuple[str, ...], tree: Path, runs: int) -> dict[str, Any]:
    engine, peer, targets = [], [], []
    for run in range(runs):
        for kind in ("engine", "tar") if run % 2 == 0 else ("tar", "engine"):
            target = f"/workspace/init-{kind}-{run}"
            pod.sh('mkdir "$1"', target)
            start = time.monotonic()
            if kind == "engine":
                spec = SyncSpec(f"bench-init-{run}", tree, ExecTransport(prefix, target))
                result = BuiltinSync(spec).sync_now()
                assert result.pushed >= 1, result
                engine.append(time.monotonic() - start)
            else:
                tar = subprocess.Popen(["tar", "-c", "-f", "-", "-C", str(tree), "."],
                                       stdout=subprocess.PIPE)
                subprocess.run([*prefix, "tar", "-x", "-f", "-", "-C", target], stdin=tar.stdout,
                               check=True, capture_output=True, timeout=600)
                assert tar.wait() == 0
                peer.append(time.monotonic() - start)
            count = pod.sh('find "$1" -type f -not -path "*/.paude/*" | wc -l', target)
            assert int(count) == sum(1 for p in tree.rglob("*") if p.is_file()), (kind, count)
            targets.append(target)
    # Removed only now: for about 30 s after 10,000 deletes, ext4 makes each new
    # inode scan past the recently deleted ones (recently_deleted(), seen with
    # perf), so a tree written just after one was removed costs up to 10x more.
    pod.sh('rm -rf "$@"', *targets)
    out = {"sync_seconds": [round(s, 3) for s in engine],
           "peer_tar_seconds": [round(s, 3) for s in peer]}
    out["sync_over_peer"] = round(statistics.median(engine) / statistics.median(peer), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stand-in", action="store_true",
                        help="only the initial sync, into a podman container (no cluster)")
    args = parser.parse_args()
    if args.stand_in:
        print(json.dumps(stand_in(args), indent=2))
        return
    os.environ["PYTHONPATH"] = str(BENCH.parent / "src")  # the background sync: this checkout's
    env = up()
    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    image = images(env)
    namespace = make_namespace(env)
    with tempfile.TemporaryDirectory(prefix="paude-bench-sync-") as tmp:
        # kubectl on PATH (paude picks it), the sync's state in the bench's directory.
        bindir = Path(tmp) / "bin"
        bindir.mkdir()
        (bindir / "kubectl").symlink_to(env["KUBECTL"])
        os.environ["PATH"] = f"{bindir}:{os.environ['PATH']}"
        os.environ["XDG_STATE_HOME"] = f"{tmp}/state"
        ws, tree = Path(tmp) / "workspace", Path(tmp) / "tree"
        (ws / "lat").mkdir(parents=True)
        make_tree(tree, args.files)
        try:
            print(json.dumps(run(namespace, image, ws, tree, args), indent=2))
        finally:
            kubectl(env, "delete", "namespace", namespace, "--wait=false")


def stand_in(args: argparse.Namespace) -> dict[str, Any]:
    """The initial sync into the stand-in pod (a podman container), against raw tar."""
    sys.path.insert(0, str(BENCH.parent / "tests" / "podman"))
    from sync_pod import ensure_image

    name = f"paude-bench-sync-{os.getpid()}"
    subprocess.run(["podman", "run", "-d", "--rm", "--label", "paude.io/test=1", "--name", name,
                    ensure_image(), "sleep", "infinity"], check=True, capture_output=True)
    try:
        with tempfile.TemporaryDirectory(prefix="paude-bench-sync-") as tmp:
            os.environ["XDG_STATE_HOME"] = f"{tmp}/state"
            tree = Path(tmp) / "tree"
            make_tree(tree, args.files)
            prefix = build_podman_prefix(name)
            return {"stand_in": "podman exec -i", "files": args.files,
                    **initial(Pod(prefix), prefix, tree, args.runs)}
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)


def run(namespace: str, image: str, ws: Path, tree: Path, args: argparse.Namespace,
        ) -> dict[str, Any]:
    small = Resources(requests=Amounts(cpu="100m", memory="256Mi"), limits=Amounts(memory="1Gi"))
    config = PaudeConfig(backend=BackendConfig(type="openshift", namespace=namespace,
                                               image=image, resources=small))
    backend = OpenShiftBackend(config, runner=SystemRunner(), reporter=NullReporter(),
                               client=KubeClient(context=None, namespace=namespace))
    spec = SessionSpec("bench-sync", ws, ("api.anthropic.com",))
    backend.start_session(spec)  # the initial sync, then the background sync
    prefix = build_kube_prefix("kubectl", pod=agent_pod_name(spec.name), namespace=namespace,
                               container=AGENT_CONTAINER)
    pod = Pod(prefix)
    try:
        pod.sh('mkdir -p "$1"', PEER)
        watcher = Watcher(pod)
        try:
            out = {"local_to_pod": local_to_pod(pod, watcher, ws, args.changes)}
        finally:
            watcher.close()
        out["pod_to_local"] = pod_to_local(pod, ws, args.changes)
        # The initial syncs go to directories of the same volume: the
        # session's own sync must not bring them back here.
        session_sync.stop_sync_of(spec.name)
        out["initial"] = {"files": args.files, **initial(pod, prefix, tree, args.runs)}
    finally:
        backend.stop_session(spec.name)
    for way in ("local_to_pod", "pod_to_local"):
        w = out[way]
        w["p95_over_peer_p95"] = round(w["sync"]["p95"] / w["peer_kubectl_exec_cat"]["p95"], 2)
    return {"changes": args.changes, "summary": out}


if __name__ == "__main__":
    main()

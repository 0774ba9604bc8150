"""An OpenShift-backend session's workspace sync for real, on the real node.

As paude's limited user in a restricted namespace whose pods run on the real
node: ``paude --backend openshift --detach`` syncs the local workspace into
the pod's PVC (the agent, uid 1000, writes it: the pod's fsGroup) and leaves
the background sync running after it exits; local edits reach the pod and
pod edits come back; a commit made in the pod is in the local ``git log``
and the local repository passes ``git fsck``, while the pod's ``.git/config``,
hooks and info files never come back (paude.trust's list); a file changed on
both sides keeps the local version and the pod's copy; a sync process killed
during a burst of 200 changes is restarted by the next ``paude`` and loses
none of them; ``paude stop`` brings a pod-side edit home before the pod goes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300
SYNC_TIMEOUT = 120  # a busy 2-core machine: wait on the condition, this long at most
BURST = 100  # files written on each side while the sync process is killed


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True, timeout=60).stdout


class Session:
    """One paude session on the real node, driven by the paude CLI as the limited user."""

    def __init__(self, cluster: Cluster, kubeconfig: Path, tmp: Path, config: dict[str, Any]):
        self.cluster, self.kubeconfig = cluster, kubeconfig
        self.namespace = yaml.safe_load(kubeconfig.read_text())["contexts"][0]["context"][
            "namespace"]
        self.home, self.workspace, bindir = tmp / "home", tmp / "workspace", tmp / "bin"
        for d in (self.home / ".config" / "paude", self.workspace, bindir):
            d.mkdir(parents=True)
        (bindir / "kubectl").symlink_to(cluster.kubectl)
        (self.home / ".config" / "paude" / "paude.json").write_text(json.dumps(config))
        self.env = {
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "KUBECONFIG": str(kubeconfig),
            "PYTHONPATH": str(REPO / "src"),
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
        }
        self.pod = ""

    def paude(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "paude", *args], cwd=self.workspace,
                              env=self.env, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
        if check:
            assert done.returncode == 0, f"paude {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def start(self) -> subprocess.CompletedProcess[str]:
        done = self.paude("--backend", "openshift", "--detach")
        (found,) = [s for s in json.loads(self.paude("sessions", "--json").stdout)
                    if s["workspace"] == str(self.workspace)]
        self.name, self.pod = found["name"], f"paude-{found['name']}-0"
        return done

    def sync_status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.paude("sync", "--status", "--json").stdout)
        return data

    def sh(self, script: str, *args: str) -> str:
        """Run ``script`` in the agent container's /workspace (as the agent); return stdout."""
        done = self.cluster.run("exec", "-n", self.namespace, self.pod, "-c", "agent", "--",
                                "sh", "-c", f"cd /workspace && {script}", "sh", *args,
                                kubeconfig=self.kubeconfig, timeout=TIMEOUT)
        return done.stdout

    def read(self, path: str) -> str | None:
        out = self.sh('cat "$1" 2>/dev/null || printf "\\0missing"', path)
        return None if out == "\0missing" else out

    def local(self, path: str) -> str | None:
        file = self.workspace / path
        return file.read_text() if file.is_file() else None

    def wait(self, what: str, probe: Any) -> None:
        self.cluster.wait_for(probe, timeout=SYNC_TIMEOUT, what=what)


@pytest.fixture
def session(cluster: Cluster, real_node: RealNode, real_limited_kubeconfig: Path,
            real_images: RealImages, tmp_path: Path) -> Any:
    backend = {"type": "openshift", "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}
    s = Session(cluster, real_limited_kubeconfig, tmp_path,
                {"backend": backend, "allowed_domains": ["api.anthropic.com"]})
    try:
        yield s
    finally:
        # Whatever happened, no sync process of the test outlives it.
        if s.pod:
            s.paude("stop", "--yes", check=False)
        status = s.home / ".local" / "state" / "paude" / "sync"
        for lock in status.glob("*/lock"):
            pid = lock.read_text().strip()
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def _seed(ws: Path) -> str:
    """A repository with one commit, packed as a real clone is; return its .git/config."""
    git(ws, "init", "-q", "-b", "main")
    (ws / "a.txt").write_text("one\n")
    (ws / "node_modules" / "m").mkdir(parents=True)
    (ws / "node_modules" / "m" / "i.js").write_text("excluded")
    git(ws, "add", "a.txt")
    git(ws, "commit", "-qm", "local commit")
    git(ws, "gc", "-q")
    return (ws / ".git" / "config").read_text()


def test_real_session_syncs_both_ways_keeps_git_whole_and_nothing_of_the_pods_git_runs_here(
    session: Session,
) -> None:
    s, ws = session, session.workspace
    config_before = _seed(ws)
    exclude_before = (ws / ".git" / "info" / "exclude").read_text()
    s.start()  # the initial sync runs before it returns

    # Initial sync: the tree (not the excluded node_modules) is the agent's, in the PVC.
    assert s.read("a.txt") == "one\n"
    assert s.sh("test -e node_modules && echo there || echo absent") == "absent\n"
    # The agent (uid 1000) owns what came in and may write the volume's root.
    assert s.sh("id -u; stat -c %u a.txt; test -w . && echo writable").split() == [
        "1000", "1000", "writable"]
    assert "local commit" in s.sh("git log --oneline")
    s.sh("git fsck --strict")
    # The sync outlives the paude that started it (that process has exited).
    status = s.sync_status()
    assert status["state"] == "running" and status["pid"], status

    (ws / "local.txt").write_text("from local")
    s.wait("the local edit in the pod", lambda: s.read("local.txt") == "from local")
    s.sh("mkdir -p dir/new && printf 'from pod' > dir/new/pod.txt")
    s.wait("the pod edit locally", lambda: s.local("dir/new/pod.txt") == "from pod")

    # A commit in the pod, and what a prompt-injected agent would plant for the host.
    s.sh("echo two >> a.txt && git -c user.email=p@p -c user.name=p commit -qam 'pod commit'"
         " && git config core.hooksPath /tmp/evil && git config core.fsmonitor 'touch /tmp/x'"
         " && mkdir -p .git/hooks && printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit"
         " && chmod +x .git/hooks/pre-commit && echo '*' >> .git/info/exclude")
    s.wait("the pod's commit in the local log",
           lambda: git(ws, "log", "--format=%s").splitlines() == ["pod commit", "local commit"])
    s.wait("the pod's commit in the work tree", lambda: s.local("a.txt") == "one\ntwo\n")
    git(ws, "fsck", "--strict")
    assert (ws / ".git" / "config").read_text() == config_before
    assert (ws / ".git" / "info" / "exclude").read_text() == exclude_before
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    assert git(ws, "status", "--porcelain", "--untracked-files=no") == ""

    # A symlink the pod plants to a file outside the workspace arrives as a
    # symlink; the pod "writing through" it replaces the link here, never the file.
    outside = ws.parent / "outside.txt"
    outside.write_text("mine\n")
    s.sh('ln -s "$1" evil', str(outside))
    s.wait("the planted symlink locally", lambda: (ws / "evil").is_symlink())
    assert os.readlink(ws / "evil") == str(outside)
    s.sh("rm evil && echo pwned > evil")
    s.wait("the pod's file in place of the link",
           lambda: not (ws / "evil").is_symlink() and s.local("evil") == "pwned\n")
    assert outside.read_text() == "mine\n"


def _burst(s: Session, n: int) -> None:
    """Write ``n`` files on each side at once."""
    remote = threading.Thread(target=s.sh, args=(
        'i=0; while [ $i -lt "$1" ]; do printf "pod %s\\n" $i > "burst/pod-$i"; '
        'i=$((i+1)); done', str(n)))
    remote.start()
    for i in range(n):
        (s.workspace / "burst" / f"local-{i}").write_text(f"local {i}\n")
    remote.join()


def test_real_session_sync_conflicts_restart_after_a_kill_and_stop_loses_nothing(
    session: Session,
) -> None:
    s, ws = session, session.workspace
    (ws / "f.txt").write_text("base")
    (ws / "edited-here").write_text("base")
    (ws / "burst").mkdir()
    s.start()
    assert s.read("f.txt") == "base"
    assert s.sh("test -d burst && echo dir") == "dir\n"  # empty directories travel too

    # The sync process dies during a burst of changes on both sides.
    pid = s.sync_status()["pid"]
    killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
    killer.start()
    _burst(s, BURST)
    killer.join()
    s.wait("the killed sync to let go", lambda: s.sync_status()["state"] == "stopped")
    # While none runs, both sides change the same file; the pod deletes a
    # file that is edited here.
    (ws / "f.txt").write_text("local edit")
    s.sh("printf 'pod edit' > f.txt && rm edited-here")
    (ws / "edited-here").write_text("local edit")

    s.start()  # the next paude restarts the sync; it catches up
    restarted = s.sync_status()
    assert restarted["state"] == "running" and restarted["pid"] != pid, restarted
    expected = {f"pod-{i}": f"pod {i}\n" for i in range(BURST)}
    expected |= {f"local-{i}": f"local {i}\n" for i in range(BURST)}
    s.wait(f"all {2 * BURST} files locally",
           lambda: {p.name: p.read_text() for p in (ws / "burst").iterdir()} == expected)
    remote = s.sh('cd burst && for f in *; do printf "%s=" "$f"; cat "$f"; done')
    got = dict(line.split("=", 1) for line in remote.splitlines())
    assert {k: v + "\n" for k, v in got.items()} == expected

    # Local wins, the pod's version is kept and logged; the delete lost to the edit.
    assert s.local("f.txt") == "local edit" and s.read("f.txt") == "local edit"
    copies = list((ws / ".paude" / "conflicts").glob("f.txt.*"))
    assert [c.read_text() for c in copies] == ["pod edit"]
    log = (ws / ".paude" / "conflicts" / "conflicts.log").read_text()
    assert "f.txt: changed on both sides" in log
    assert any("f.txt" in c for c in s.sync_status()["conflicts"])
    assert s.local("edited-here") == "local edit" and s.read("edited-here") == "local edit"

    # paude stop syncs first: a pod-side edit nobody waited for is home when it returns.
    os.kill(s.sync_status()["pid"], signal.SIGKILL)  # so only stop's own sync can bring it
    s.wait("the killed sync to let go", lambda: s.sync_status()["state"] == "stopped")
    s.sh("printf 'last words' > last.txt && echo more >> f.txt")
    s.paude("stop")
    assert s.local("last.txt") == "last words"
    assert s.local("f.txt") == "local editmore\n"

    # stop --force deletes the volume: the next paude starts on a new, empty one.
    # The index of the old one must not read as every file deleted in the pod.
    s.paude("stop", "--force", "--yes")
    started = s.start()
    assert s.local("last.txt") == "last words" and s.read("last.txt") == "last words"
    assert len(list((ws / "burst").iterdir())) == 2 * BURST
    assert s.local("f.txt") == s.read("f.txt") == "local editmore\n"
    assert "workspace volume is new" in started.stderr

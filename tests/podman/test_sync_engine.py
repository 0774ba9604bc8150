"""The sync engine over a real exec stream (``podman exec -i``), on real files.

The same engine runs over ``kubectl exec -i`` on the cluster (tests/k8s);
here the container stands in for the pod so every rule is proven without one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_pod import SyncPod, children, start_pod, wait_for

from paude.sync import BuiltinSync, local
from paude.sync.state import UNREAD, load_index


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncPod]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield from start_pod(tmp_path)


@pytest.fixture
def sync(pod: SyncPod, request: pytest.FixtureRequest) -> Iterator[BuiltinSync]:
    s = BuiltinSync(pod.spec(f"t-{request.node.name[:20].replace('_', '-')}",
                             excludes=("*.log", "/build/")))
    try:
        yield s
    finally:
        s.stop()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout


def test_initial_sync_then_git_works_both_ways(pod: SyncPod, sync: BuiltinSync) -> None:
    ws = pod.workspace
    git(ws, "init", "-q", "-b", "main")
    (ws / "a.txt").write_text("one\n")
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "local commit")
    git(ws, "gc", "-q")  # packed refs and objects, as a real clone has
    config_before = (ws / ".git" / "config").read_text()

    assert sync.sync_now().pushed > 0
    assert "local commit" in pod.sh("git log --oneline")
    pod.sh("git fsck --strict")

    pod.sh("echo two >> a.txt && git -c user.email=p@p -c user.name=p commit -qam 'pod commit'"
           " && git config core.hooksPath /tmp/evil && mkdir -p .git/hooks"
           " && printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit"
           " && chmod +x .git/hooks/pre-commit && echo '*' >> .git/info/exclude"
           " && echo ../evil > .git/commondir && mkdir -p .devcontainer"
           " && echo '{\"allowed_domains\": [\".evil.example\"]}' > paude.json"
           " && echo '{\"image\": \"evil\"}' > .devcontainer/devcontainer.json")
    sync.sync_now()
    for planted in (".git/commondir", "paude.json", ".devcontainer"):
        assert not (ws / planted).exists(), planted  # the trust module's list: never back
    assert git(ws, "log", "--format=%s").splitlines() == ["pod commit", "local commit"]
    git(ws, "fsck", "--strict")
    assert (ws / "a.txt").read_text() == "one\ntwo\n"
    assert (ws / ".git" / "config").read_text() == config_before
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    assert git(ws, "status", "--porcelain") == ""


# What a case-insensitive host (macOS, Windows) opens as .git/config, .git/hooks,
# .git/info, paude.json and .devcontainer: on this case-sensitive host a pull
# would make each a new name; there, it would overwrite the real one.
HOST_SPELLINGS = (".GIT/config", ".git/HOOKS/pre-commit", ".Git/info/exclude", "PAUDE.JSON",
                  ".DevContainer/devcontainer.json", "GIT~1/config", ".g\u200cit/config",
                  ".git./hooks/post-checkout", "Paude.json.")


def test_host_spellings_of_protected_paths_never_come_back(pod: SyncPod,
                                                           sync: BuiltinSync) -> None:
    ws = pod.workspace
    git(ws, "init", "-q", "-b", "main")
    sync.sync_now()
    pod.sh('for p in "$@"; do mkdir -p "$(dirname "$p")" && echo pwned > "$p"; done'
           " && echo mine > ok.txt", *HOST_SPELLINGS)
    sync.sync_now()
    assert (ws / "ok.txt").read_text() == "mine\n"
    for planted in HOST_SPELLINGS:
        assert not (ws / planted).exists(), planted
    assert pod.read("PAUDE.JSON") == "pwned\n"  # the pod keeps its own


def test_background_sync_both_ways_without_echo(pod: SyncPod, sync: BuiltinSync) -> None:
    (pod.workspace / "seed").write_text("s")
    assert sync.start()
    assert not sync.start()  # one per session
    wait_for("the seed in the pod", lambda: pod.read("seed") == "s")

    (pod.workspace / "local.txt").write_text("from local")
    wait_for("the local edit in the pod", lambda: pod.read("local.txt") == "from local")
    pod.write("dir/new/pod.txt", "from pod")
    wait_for("the pod edit locally",
             lambda: (pod.workspace / "dir/new/pod.txt").exists()
             and (pod.workspace / "dir/new/pod.txt").read_text() == "from pod")
    pod_inode = pod.sh("stat -c %i dir/new/pod.txt")
    local_inode = os.stat(pod.workspace / "local.txt").st_ino
    sync.sync_now()  # both sides agree: nothing travels back
    assert pod.sh("stat -c %i dir/new/pod.txt") == pod_inode
    assert os.stat(pod.workspace / "local.txt").st_ino == local_inode

    pod.sh("rm -r dir")
    wait_for("the pod delete locally", lambda: not (pod.workspace / "dir").exists())
    # The files go before the round saves its index: until it does, the status
    # reads the deleted paths as pending; once it has, nothing is.
    wait_for("the delete's round in the index", lambda: sync.status()["pending_local"] == [])
    status = sync.status()
    assert status["state"] == "running"
    assert status["pending_local"] == []
    assert status["last_push"] and status["last_pull"]


def test_conflict_keeps_local_and_the_pods_copy_and_logs_it(pod: SyncPod,
                                                            sync: BuiltinSync) -> None:
    (pod.workspace / "f.txt").write_text("base")
    sync.sync_now()
    (pod.workspace / "f.txt").write_text("local edit")
    pod.write("f.txt", "pod edit")
    result = sync.sync_now()
    assert (pod.workspace / "f.txt").read_text() == "local edit"
    assert pod.read("f.txt") == "local edit"
    copies = list((pod.workspace / ".paude" / "conflicts").glob("f.txt.*"))
    assert [c.read_text() for c in copies] == ["pod edit"]
    log = (pod.workspace / ".paude" / "conflicts" / "conflicts.log").read_text()
    assert "f.txt: changed on both sides" in log
    assert len(result.conflicts) == 1
    assert sync.status()["conflicts"] == result.conflicts
    assert pod.read(".paude/conflicts/conflicts.log") is None  # never sent to the pod


def test_a_delete_never_beats_an_edit(pod: SyncPod, sync: BuiltinSync) -> None:
    (pod.workspace / "edited-here").write_text("base")
    (pod.workspace / "edited-there").write_text("base")
    sync.sync_now()
    (pod.workspace / "edited-here").write_text("local edit")
    pod.sh("rm edited-here")
    (pod.workspace / "edited-there").unlink()
    pod.write("edited-there", "pod edit")
    sync.sync_now()
    assert (pod.workspace / "edited-here").read_text() == "local edit"
    assert pod.read("edited-here") == "local edit"
    assert (pod.workspace / "edited-there").read_text() == "pod edit"
    assert pod.read("edited-there") == "pod edit"


def test_planted_symlinks_change_nothing_outside(pod: SyncPod, sync: BuiltinSync) -> None:
    target = pod.outside / "bashrc"
    target.write_text("mine\n")
    (pod.workspace / "real").mkdir()
    (pod.workspace / "real" / "x").write_text("x")
    sync.sync_now()
    pod.sh('ln -s "$1" evil && ln -s "$2" dirlink && rm -r real && ln -s "$2" real'
           ' && printf "#!/bin/sh\\n" > suid && chmod 4755 suid', str(target), str(pod.outside))
    sync.sync_now()
    assert os.readlink(pod.workspace / "evil") == str(target)
    assert os.readlink(pod.workspace / "dirlink") == str(pod.outside)
    # The pod now writes "through" its links: locally they are replaced, not followed.
    pod.sh("rm evil && echo pwned > evil && rm dirlink && mkdir dirlink && echo pwned > dirlink/x")
    sync.sync_now()
    assert target.read_text() == "mine\n"
    assert sorted(p.name for p in pod.outside.iterdir()) == ["bashrc"]
    assert (pod.workspace / "evil").read_text() == "pwned\n"
    assert not (pod.workspace / "evil").is_symlink()
    assert (pod.workspace / "suid").stat().st_mode & 0o7777 == 0o755


def test_excludes_stay_on_their_side(pod: SyncPod, sync: BuiltinSync) -> None:
    ws = pod.workspace
    (ws / "node_modules" / "m").mkdir(parents=True)
    (ws / "node_modules" / "m" / "i.js").write_text("x")
    (ws / "debug.log").write_text("x")
    (ws / "src").mkdir()
    (ws / "src" / "app.py").write_text("x")
    sync.sync_now()
    assert pod.sh("find . -path ./.paude -prune -o -print | sort").split() == [
        ".", "./src", "./src/app.py"]
    pod.sh("mkdir -p build __pycache__ && echo b > build/out && echo c > __pycache__/m.pyc"
           " && echo l > pod.log && echo k > keep")
    sync.sync_now()
    assert sorted(p.name for p in ws.iterdir()) == [".paude", "debug.log", "keep",
                                                      "node_modules", "src"]


def test_force_makes_the_pod_a_copy_of_local(pod: SyncPod, sync: BuiltinSync) -> None:
    (pod.workspace / "a").write_text("local")
    sync.sync_now()
    pod.write("a", "pod")
    pod.write("only-in-pod/x", "pod")
    sync.sync_now(force=True)
    assert pod.read("a") == "local"
    assert pod.sh("ls") == "a\n"
    assert (pod.workspace / "a").read_text() == "local"


def _burst(pod: SyncPod, n: int) -> None:
    """Write ``n`` files on each side at once."""
    remote = threading.Thread(target=pod.sh, args=(
        'i=0; while [ $i -lt "$1" ]; do printf "pod %s\\n" $i > "burst/pod-$i"; '
        'i=$((i+1)); done', str(n)))
    remote.start()
    for i in range(n):
        (pod.workspace / "burst" / f"local-{i}").write_text(f"local {i}\n")
    remote.join()


def test_killed_exec_streams_and_sync_process_lose_nothing(pod: SyncPod,
                                                           sync: BuiltinSync) -> None:
    (pod.workspace / "burst").mkdir()
    pod.sh("mkdir burst")
    sync.start()
    wait_for("the first round", lambda: (sync.status().get("last_round") is not None))
    pid = sync.status()["pid"]
    killer = threading.Timer(0.3, lambda: [os.kill(c, signal.SIGKILL) for c in children(pid)])
    killer.start()
    _burst(pod, 100)
    killer.join()
    os.kill(pid, signal.SIGKILL)  # the sync process dies mid-burst too
    wait_for("the killed sync to let go", lambda: sync.status()["state"] == "stopped")
    assert sync.start()  # what the next paude does
    expected = {f"pod-{i}": f"pod {i}\n" for i in range(100)}
    expected |= {f"local-{i}": f"local {i}\n" for i in range(100)}

    def local_done() -> bool:
        return {p.name: p.read_text() for p in (pod.workspace / "burst").iterdir()} == expected

    wait_for("all 200 files locally", local_done, timeout=120)
    remote = pod.sh('cd burst && for f in *; do printf "%s=" "$f"; cat "$f"; done')
    got = dict(line.split("=", 1) for line in remote.strip().split("\n"))
    assert {k: v + "\n" for k, v in got.items()} == expected


def test_initial_sync_records_what_a_full_read_sees_and_the_next_round_sends_nothing(
        pod: SyncPod, sync: BuiltinSync) -> None:
    """The initial push reads each new file once, while sending it; the index is still exact."""
    ws = pod.workspace
    (ws / "src" / "deep").mkdir(parents=True)
    (ws / "src" / "deep" / "a.py").write_text("a\n")
    (ws / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(ws / "run.sh", 0o750)
    (ws / "suid").write_text("#!/bin/sh\n")
    os.chmod(ws / "suid", 0o4755)
    (ws / "out").symlink_to(pod.outside)
    (pod.outside / "secret").write_text("never sent")
    (ws / "node_modules" / "m").mkdir(parents=True)
    (ws / "node_modules" / "m" / "i.js").write_text("x")
    (ws / "build").mkdir()
    (ws / "build" / "o").write_text("x")
    (ws / "same.txt").write_text("same")
    (ws / "differs.txt").write_text("local")
    pod.write("same.txt", "same")  # already in the pod: compared by content, agreed
    pod.write("differs.txt", "pod")  # a conflict: local wins, the pod's kept
    pod.sh("chmod 644 same.txt && touch -d @1000000000 same.txt")
    os.chmod(ws / "same.txt", 0o644)

    result = sync.sync_now()
    tree = pod.sh("find . -path ./.paude -prune -o -printf '%y %m %p %l\\n'")
    assert sorted(tree.splitlines()) == [  # no set-uid bit, the link as a link, no excludes
        "d 755 . ", "d 755 ./src ", "d 755 ./src/deep ",
        "f 644 ./differs.txt ", "f 644 ./same.txt ", "f 644 ./src/deep/a.py ",
        "f 750 ./run.sh ", "f 755 ./suid ", f"l 777 ./out {pod.outside}",
    ]
    assert pod.read("differs.txt") == "local"
    assert len(result.conflicts) == 1 and "differs.txt" in result.conflicts[0]
    assert pod.sh("stat -c %Y same.txt") == "1000000000\n"  # agreed, not sent again

    # Every record is what reading the file afresh gives (the incremental path's reader).
    index = load_index(sync.files.index)
    for path in ("src", "src/deep", "src/deep/a.py", "run.sh", "suid", "out", "same.txt",
                 "differs.txt"):
        fresh = local.read_entry(ws, path)
        assert fresh is not None and index.records[path].entry == fresh[0], path
        assert index.records[path].entry.digest != UNREAD
    assert not [p for p in index.records if p.startswith(("node_modules", "build", ".paude"))]
    inode = pod.sh("stat -c %i src/deep/a.py")
    again = sync.sync_now()
    assert again.changed == 0 and not again.conflicts
    assert pod.sh("stat -c %i src/deep/a.py") == inode


def test_an_initial_push_is_one_round_and_the_pod_then_holds_what_the_index_says(
        pod: SyncPod, sync: BuiltinSync) -> None:
    """A round that only sent local files, each whole, ends ``sync_now``: no second scan."""
    ws = pod.workspace
    for i in range(300):
        (ws / f"d{i % 7}").mkdir(exist_ok=True)
        (ws / f"d{i % 7}" / f"f{i}").write_text(f"file {i}\n")
    (ws / "lnk").symlink_to("d0/f0")

    result = sync.sync_now()
    assert result.pushed == 300 + 7 + 1 and result.unsent == 0
    assert sync.files.read_status()["rounds"] == 1
    listing = pod.sh("find . -path ./.paude -prune -o -type f -printf '%p %s %T@\\n'")
    assert len(listing.splitlines()) == 300
    index = load_index(sync.files.index)
    for line in listing.splitlines():  # what a second round's scan would compare
        path, size, mtime = line.split(" ")
        rec = index.records[path.removeprefix("./")]
        assert rec.remote is not None and rec.remote.size == int(size)
        assert abs(rec.remote.mtime - float(mtime)) < 1e-6
        assert rec.entry == local.read_entry(ws, path.removeprefix("./"))[0]  # type: ignore[index]
    again = sync.sync_now()
    assert again.changed == 0
    assert sync.files.read_status()["rounds"] == 2


def test_a_new_pod_volume_is_a_first_sync_not_every_file_deleted(
        pod: SyncPod, sync: BuiltinSync) -> None:
    """``paude stop --force`` then ``paude``: the old index meets a new, empty volume."""
    ws = pod.workspace
    for i in range(20):
        (ws / f"f{i}").write_text(f"file {i}\n")
    sync.sync_now()
    first = pod.read(".paude/volume")
    # A new volume: nothing of the old one, paude's own files neither.
    pod.sh("find . -mindepth 1 -delete")
    pod.write("made-in-new-pod", "pod")

    result = sync.sync_now()
    assert sorted(p.name for p in ws.iterdir() if p.name != ".paude") == sorted(
        [f"f{i}" for i in range(20)] + ["made-in-new-pod"])
    assert all((ws / f"f{i}").read_text() == f"file {i}\n" for i in range(20))
    assert result.new_volume and result.deleted_local == 0 and result.deleted_remote == 0
    assert pod.read("f7") == "file 7\n"
    assert load_index(sync.files.index).volume == pod.read(".paude/volume") != first

    # On the same volume the records hold again: a delete in the pod is one here.
    pod.sh("rm f3")
    assert sync.sync_now().deleted_local == 1 and not (ws / "f3").exists()


def test_a_first_sync_into_a_pod_that_holds_files_plans_instead_of_overwriting(
        pod: SyncPod, sync: BuiltinSync) -> None:
    """No index, but the pod's workspace is not empty: its files are compared, not overwritten."""
    ws = pod.workspace
    (ws / "both").write_text("local")
    (ws / "same").write_text("same")
    (ws / "only-here").write_text("here")
    pod.write("both", "pod")
    pod.write("same", "same")
    pod.write("only-in-pod", "pod")

    result = sync.sync_now()
    assert pod.read("both") == "local" and (ws / "both").read_text() == "local"
    copies = list((ws / ".paude" / "conflicts").glob("both.*"))
    assert [c.read_text() for c in copies] == ["pod"]  # the pod's version is kept
    assert (ws / "only-in-pod").read_text() == "pod" and pod.read("only-here") == "here"
    assert result.pulled == 1 and result.deleted_local == result.deleted_remote == 0


def test_a_first_sync_into_an_empty_pod_is_one_push_of_the_walked_tree(
        pod: SyncPod, sync: BuiltinSync) -> None:
    """The pod's default-excluded dirs and paude's own do not count as content."""
    ws = pod.workspace
    (ws / "src").mkdir()
    (ws / "src" / "a.py").write_text("a")
    (ws / "node_modules").mkdir()
    (ws / "node_modules" / "dep.js").write_text("local dep")
    pod.write("node_modules/pods.js", "pod dep")  # excluded: the pod counts as empty
    result = sync.sync_now()
    assert result.pushed == 2 and result.pulled == 0  # src, src/a.py
    assert pod.read("src/a.py") == "a"
    assert pod.read("node_modules/dep.js") is None and pod.read("node_modules/pods.js")
    assert sync.files.read_status()["rounds"] == 1

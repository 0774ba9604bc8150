"""podman failures a user can hit, provoked for real: one clear line and a
hint, exit 1, no traceback. Rootful and rootless, but for a full storage.

* storage full (rootful; see the test): podman's storage on a 16 MB tmpfs that is then filled (the
  images come read-only from the usual store, ``additionalimagestores``), so
  creating a container fails with ENOSPC, as on a full disk;
* a name taken by someone else: a network or container that paude did not
  make, named as the session's would be, is refused, never joined or started;
* an image removed under a running session (``podman rmi -f`` removes the
  containers that use it): the next command says so and ``paude`` repairs it;
* a GPU (``resources.limits."nvidia.com/gpu"``) this host has no CDI device
  for (it has no GPU): podman's "unresolvable CDI devices" becomes one line
  naming the device and the CDI spec to install, and the next start without
  it works.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakenet import TEST_LABEL, random_name
from session_state import NOTHING, assert_healthy, assert_stops_clean, what_exists

from conftest import PaudeCLI

STORAGE_CONF = """[storage]
driver = "overlay"
graphroot = "{root}/graph"
runroot = "{root}/run"
[storage.options]
additionalimagestores = ["{images}"]
"""


def one_error_line(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """Assert paude failed with exit 1, ``Error: <message...>`` and a hint, no traceback."""
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "command failed" not in proc.stderr, proc.stderr  # not podman's raw failure
    following = lines[lines.index(errors[0]) + 1:]
    assert following and following[0].strip(), proc.stderr  # the hint, on the next line


IMAGE_STORE = "/var/lib/containers/storage"  # rootful podman's


@pytest.fixture
def full_storage(paude_cli: PaudeCLI) -> Iterator[Path]:
    """Point paude_cli's podman at a small tmpfs storage, initialised, then filled."""
    root = paude_cli.root / "storage"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs",
                    str(root)], check=True)
    try:
        conf = paude_cli.root / "storage.conf"
        conf.write_text(STORAGE_CONF.format(root=root, images=IMAGE_STORE))
        conf.chmod(0o644)
        paude_cli.extra_env["CONTAINERS_STORAGE_CONF"] = str(conf)
        paude_cli.podman("ps", "-a")  # podman makes its database while there is room
        filler = root / "filler"
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        subprocess.run(["fallocate", "-l", str(free), str(filler)], check=True)
        yield filler
    finally:
        (root / "filler").unlink(missing_ok=True)
        paude_cli.cleanup()
        paude_cli.started.clear()
        paude_cli.extra_env.pop("CONTAINERS_STORAGE_CONF", None)
        subprocess.run(["umount", "-l", str(root)], check=False)


# Rootful only: a rootless user's own image store cannot serve as its
# read-only additional store ('images.lock is not a read-only lock'), and the
# images do not fit a small tmpfs; the classification is the same code.
@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_full_storage_is_one_line_and_the_start_resumes_once_there_is_room(
    paude_cli: PaudeCLI, full_storage: Path
) -> None:
    name = random_name("full")
    paude_cli.started.append(name)
    failed = paude_cli.run("--detach", "--name", name, check=False)
    one_error_line(failed, "podman's storage is full (no space left on device)")
    assert "podman system prune" in failed.stderr
    assert what_exists(paude_cli, name)["containers"] == []
    full_storage.unlink()  # the user frees space
    paude_cli.run("--detach", "--name", name)
    assert_healthy(paude_cli, name)
    assert_stops_clean(paude_cli, name)


def test_a_gpu_this_host_lacks_is_one_line_naming_the_cdi_spec(paude_cli: PaudeCLI) -> None:
    name = random_name("gpu")
    paude_cli.started.append(name)
    paude_cli.configure({"backend": {"resources": {"limits": {"nvidia.com/gpu": 1}}}})
    failed = paude_cli.run("--detach", "--name", name, check=False)
    one_error_line(failed, "this host has no device nvidia.com/gpu=0 (resources asks for it)")
    assert "nvidia-ctk cdi generate" in failed.stderr
    # The agent that could not start is gone (the proxy and networks stay, as
    # after any start that failed halfway): without the GPU the next start works.
    assert [c for c in what_exists(paude_cli, name)["containers"] if "-agent" in c] == []
    paude_cli.configure({})
    paude_cli.run("--detach", "--name", name)
    assert_healthy(paude_cli, name)
    assert_stops_clean(paude_cli, name)


@pytest.mark.parametrize("kind", ["network", "container"])
def test_a_name_taken_by_someone_else_is_refused_and_left_alone(
    paude_cli: PaudeCLI, kind: str
) -> None:
    name = random_name("taken")
    paude_cli.started.append(name)
    if kind == "network":
        taken = f"paude-{name}"
        paude_cli.podman("network", "create", "--label", TEST_LABEL, taken)
    else:
        taken = f"paude-{name}-agent"
        image = "docker.io/library/debian:bookworm-slim"
        paude_cli.podman("create", "--name", taken, "--label", TEST_LABEL, image, "true")
    try:
        failed = paude_cli.run("--detach", "--name", name, check=False)
        one_error_line(failed, f"a podman {kind} {taken} already exists and is not paude's "
                               f"session {name}")
        assert "paude --name OTHER" in failed.stderr
        # Theirs is untouched: still there, and paude's stop does not remove it.
        exists = ["network", "exists"] if kind == "network" else ["container", "exists"]
        assert paude_cli.podman(*exists, taken, check=False).returncode == 0
        paude_cli.run("stop", name, check=False)
        assert paude_cli.podman(*exists, taken, check=False).returncode == 0
        assert what_exists(paude_cli, name) == {**NOTHING, "named": [taken]}
    finally:
        rm = ["network", "rm", "-f"] if kind == "network" else ["rm", "-f"]
        paude_cli.podman(*rm, taken, check=False)


def test_an_image_removed_under_a_running_session(paude_cli: PaudeCLI) -> None:
    # A setup command of its own gives this session an image no other test
    # uses (built from the cached layers in seconds), so removing it is safe.
    paude_cli.configure({"image": {"setup_command": f"echo {random_name('img')}"}})
    name = paude_cli.start()
    agent = f"paude-{name}-agent"
    image = json.loads(paude_cli.podman("inspect", agent).stdout)[0]["ImageName"]
    paude_cli.podman("rmi", "-f", image)  # also removes the agent container
    failed = paude_cli.run("exec", name, "--", "true", check=False)
    one_error_line(failed, f"session {name} has no agent container")
    paude_cli.run("--detach", "--name", name)  # rebuilds the image and repairs the session
    assert_healthy(paude_cli, name)
    assert_stops_clean(paude_cli, name)

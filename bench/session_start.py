"""Time a podman session's start and reattach against raw podman and devcontainer up.

Run as a rootless podman user (devcontainer's podman mode needs rootless
keep-id), after the images are cached (`paude --detach` once in any workspace):

    python bench/session_start.py --runs 5

Measures, side by side in one run, median of --runs:
  * `paude --detach` creating a new session (network + proxy + agent);
  * two raw `podman run -d` of the same two images;
  * `devcontainer up --docker-path podman` (npm @devcontainers/cli) on the
    agent image (installed into ~/.cache/paude-bench on first use);
  * reattach: `paude attach` until the session's screen shows, in a pty,
    against a raw `podman exec -it AGENT tmux attach` to the same session.
`paude exec` and `paude stop` are timed by bench/exec_stop.py.
Only containers and networks on this machine are involved.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache" / "paude-bench"
DEVCONTAINER_CLI = "@devcontainers/cli@0.89.0"
PAUDE = [sys.executable, "-m", "paude"]
STATUS_TEXT = b"Ctrl+b d to detach"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(runs: int, action: Callable[[], object], reset: Callable[[], object]) -> float:
    samples = []
    for _ in range(runs):
        reset()
        samples.append(timed(action))
    reset()
    return statistics.median(samples)


def images(workspace: Path) -> tuple[str, str]:
    """Return the cached agent and proxy tags paude uses (from its dry run)."""
    plan = run([*PAUDE, "--dry-run", "-w", str(workspace)]).stdout
    tags = {w for w in plan.split() if w.startswith("localhost/paude-")}
    agent = next(t for t in tags if t.startswith("localhost/paude-agent:"))
    proxy = next(t for t in tags if t.startswith("localhost/paude-proxy:"))
    for tag in (agent, proxy):
        if subprocess.run(["podman", "image", "exists", tag], check=False).returncode:
            sys.exit(f"{tag} is not built: run paude --detach once first")
    return agent, proxy


def devcontainer_cli() -> list[str]:
    binary = CACHE / "node_modules" / ".bin" / "devcontainer"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        ca = os.environ.get("PAUDE_EXTRA_CA_CERTS", "").split(os.pathsep)[0]
        cafile = ["--cafile", ca] if ca else []  # the same CA paude's builds trust
        run(["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", *cafile,
             DEVCONTAINER_CLI])
    return [str(binary)]


def _read_until(fd: int, needle: bytes, seconds: float) -> bool:
    seen = b""
    deadline = time.perf_counter() + seconds
    while needle not in seen:
        left = deadline - time.perf_counter()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            return False
        try:
            seen += os.read(fd, 65536)
        except OSError:  # the child closed the pty
            return needle in seen
    return True


def attach_until_screen(argv: list[str]) -> float:
    """Start ``argv`` in a pty; return seconds until the session's screen shows."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    start = time.perf_counter()
    try:
        if not _read_until(fd, STATUS_TEXT, 30):
            raise TimeoutError(f"no screen from {argv}")
        elapsed = time.perf_counter() - start
        for _ in range(50):  # detach with Ctrl+b d; repeat if a key got lost
            os.write(fd, b"\x02d")
            if _read_until(fd, b"[detached", 0.2):
                break
        os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="paude-bench-"))
    workspace = root / "bench-ws"
    workspace.mkdir()
    agent, proxy = images(workspace)
    dc_workspace = root / "bench-dc"  # its own: paude would build on a devcontainer image
    (dc_workspace / ".devcontainer").mkdir(parents=True)
    (dc_workspace / ".devcontainer" / "devcontainer.json").write_text(json.dumps(
        {"image": agent, "overrideCommand": True}))
    name = "bench-" + os.urandom(3).hex()
    raw = [f"{name}-raw-agent", f"{name}-raw-proxy"]
    results: dict[str, float] = {}
    paude_start = [*PAUDE, "--detach", "-q", "--name", name, "-w", str(workspace)]
    results["paude start (network+proxy+agent)"] = median_of(
        runs, lambda: run(paude_start),
        lambda: subprocess.run([*PAUDE, "stop", name], capture_output=True, check=False))
    results["2x raw podman run -d (same images)"] = median_of(
        runs, lambda: [run(["podman", "run", "-d", "--name", n, img])
                       for n, img in zip(raw, (agent, proxy), strict=True)],
        lambda: subprocess.run(["podman", "rm", "-f", "-t", "0", "--ignore", *raw],
                               capture_output=True, check=False))
    dc = devcontainer_cli()
    dc_up = [*dc, "up", "--docker-path", "podman", "--workspace-folder", str(dc_workspace)]
    results["devcontainer up --docker-path podman"] = median_of(
        runs, lambda: run(dc_up), lambda: _remove_devcontainers(dc_workspace))
    run(paude_start)
    try:
        results["paude attach (until the screen shows)"] = statistics.median(
            attach_until_screen([*PAUDE, "attach", name]) for _ in range(runs))
        results["raw podman exec -it tmux attach"] = statistics.median(
            attach_until_screen(["podman", "exec", "-it", f"paude-{name}-agent", "tmux",
                                 "attach", "-t", "paude"]) for _ in range(runs))
    finally:
        subprocess.run([*PAUDE, "stop", name], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
    width = max(map(len, results))
    print(f"median of {runs} runs")
    for label, seconds in results.items():
        print(f"{label:<{width}}  {seconds:6.3f} s")


def _remove_devcontainers(workspace: Path) -> None:
    ids = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"label=devcontainer.local_folder={workspace}"],
        capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True,
                       check=False)


if __name__ == "__main__":
    main()

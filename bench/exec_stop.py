"""Time `paude exec` and `paude stop` of a podman session against raw podman.

Run after the images are cached (`paude --detach` once in any workspace),
as the user whose podman you want to measure (rootless is what most run):

    python bench/exec_stop.py --runs 7

Measures, side by side in one run, median of --runs (paude and its peer
alternate, so load from other work hits both alike):
  * `paude exec -- true` (in the session's workspace) against
    `podman exec AGENT true` on the same running session;
  * `paude stop SESSION` of a freshly started session against removing the
    same kind of session raw: `podman rm -f -t 0 AGENT PROXY` then
    `podman network rm NETWORK EGRESS` (each round a new session, started
    by paude, untimed);
  * for reference, the single raw call that removes all of it,
    `podman network rm -f -t 0 NETWORK EGRESS` (it takes the containers too).
Prints the medians and the ratios. Only containers and networks this script
made are touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PAUDE = [sys.executable, "-m", "paude"]
ENV = {**os.environ, "PYTHONPATH": str(SRC)}  # this checkout's paude


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=ENV, cwd=cwd)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Sessions:
    """Bench sessions in one scratch workspace; all of them removed at the end."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.prefix = "bench-" + os.urandom(3).hex()
        self.count = 0

    def start(self) -> str:
        self.count += 1
        name = f"{self.prefix}-{self.count}"
        run([*PAUDE, "--detach", "-q", "--name", name, "-w", str(self.workspace)])
        return name

    def objects(self, name: str) -> tuple[list[str], list[str]]:
        """Return the containers and networks labelled with session ``name``."""
        label = f"label=paude.io/session={name}"
        ps = json.loads(run(["podman", "ps", "-a", "--format", "json", "--filter", label]).stdout)
        networks = run(["podman", "network", "ls", "--format", "{{.Name}}",
                        "--filter", label]).stdout.split()
        return [c["Names"][0] for c in ps], networks

    def remove_all(self) -> None:
        for i in range(1, self.count + 1):
            name = f"{self.prefix}-{i}"
            subprocess.run([*PAUDE, "stop", name], capture_output=True, check=False, env=ENV)
            containers, networks = self.objects(name)
            if containers or networks:
                print(f"warning: {name} left {containers + networks}", file=sys.stderr)


def bench_exec(workspace: Path, runs: int) -> dict[str, list[float]]:
    """Time exec in the workspace's own session (its name derived, as a user runs it)."""
    sys.path.insert(0, str(SRC))
    from paude.naming import derive_session_name

    name = derive_session_name(workspace)
    run([*PAUDE, "--detach", "-q", "-w", str(workspace)])
    agent = f"paude-{name}-agent"
    paude_exec = [*PAUDE, "exec", "--", "true"]
    samples: dict[str, list[float]] = {"paude exec -- true": [], "raw podman exec AGENT true": []}
    try:
        run(paude_exec, cwd=workspace)  # warm both once
        run(["podman", "exec", agent, "true"])
        for _ in range(runs):
            samples["paude exec -- true"].append(timed(lambda: run(paude_exec, cwd=workspace)))
            samples["raw podman exec AGENT true"].append(
                timed(lambda: run(["podman", "exec", agent, "true"])))
    finally:
        subprocess.run([*PAUDE, "stop", name], capture_output=True, check=False, env=ENV)
    return samples


def _raw_rm(containers: list[str], networks: list[str]) -> None:
    run(["podman", "rm", "-f", "-t", "0", *containers])
    run(["podman", "network", "rm", *networks])


def bench_stop(sessions: Sessions, runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"paude stop SESSION": [],
                                       "raw podman rm -f + network rm": [],
                                       "raw podman network rm -f (one call)": []}
    for _ in range(runs):
        name = sessions.start()
        samples["paude stop SESSION"].append(timed(partial(run, [*PAUDE, "stop", name])))
        containers, networks = sessions.objects(sessions.start())
        assert len(containers) == 2 and len(networks) == 2, (containers, networks)
        samples["raw podman rm -f + network rm"].append(
            timed(partial(_raw_rm, containers, networks)))
        _, networks = sessions.objects(sessions.start())
        samples["raw podman network rm -f (one call)"].append(
            timed(partial(run, ["podman", "network", "rm", "-f", "-t", "0", *networks])))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="paude-bench-"))
    workspace, exec_workspace = root / "bench-ws", root / "bench-exec"
    workspace.mkdir()
    exec_workspace.mkdir()
    sessions = Sessions(workspace)
    try:
        samples = {**bench_exec(exec_workspace, runs), **bench_stop(sessions, runs)}
    finally:
        sessions.remove_all()
        shutil.rmtree(root, ignore_errors=True)
    med = {label: statistics.median(s) for label, s in samples.items()}
    width = max(map(len, med))
    print(f"median of {runs} runs")
    for label, seconds in med.items():
        print(f"{label:<{width}}  {seconds:6.3f} s")
    print(f"exec ratio: {med['paude exec -- true'] / med['raw podman exec AGENT true']:.2f}x"
          " of raw podman exec (target: at most 1.5x)")
    print(f"stop ratio: {med['paude stop SESSION'] / med['raw podman rm -f + network rm']:.2f}x"
          " of raw podman rm -f + network rm")


if __name__ == "__main__":
    main()

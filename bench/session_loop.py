"""Ten podman sessions started and stopped in a loop: nothing leaks, and the
last start is as fast as the first.

Run as root (rootful) or as a rootless podman user, after the images are
cached (`paude --detach` once in any workspace):

    python bench/session_loop.py --loops 10

`--backend openshift` runs the loop on the running test cluster instead
(bench/openshift_loop.py).

Each loop starts the same session name (`paude --detach`), then stops it
(`paude stop`). The same name means the same two subnets and the same fixed
proxy address every time, so an address podman failed to release would make
the next start fail. Beside it, in the same run, the raw podman equivalent
(two `podman network create`, two `podman run -d` of the same images, then
`podman network rm -f`) gives podman's own drift over ten loops.

Printed: each loop's start and stop seconds, start of loop N against loop 1
(the ratio; ~1 means no slowdown), and what is left afterwards: containers,
networks and volumes labelled with the session, plus the machine-wide
counts of containers, networks, volumes, images and paude's state files
before and after (others' work on a shared machine can move those).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PAUDE = [sys.executable, "-m", "paude"]
SUBNETS = ("10.93.{n}.0/24", "10.94.{n}.0/24")  # the raw loop's own, apart from paude's pools


def run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def lines(*argv: str) -> list[str]:
    return [line for line in run(list(argv)).splitlines() if line.strip()]


def state_files() -> set[str]:
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    root = Path(xdg) / "paude"
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and "logs" not in p.parts}


def census() -> dict[str, int]:
    """Count what exists machine-wide for this podman user."""
    return {
        "containers": len(lines("podman", "ps", "-aq")),
        "networks": len(lines("podman", "network", "ls", "-q")),
        "volumes": len(lines("podman", "volume", "ls", "-q")),
        "images (incl. intermediate)": len(lines("podman", "images", "-aq")),
        "paude state files": len(state_files()),
    }


def labelled(session: str) -> list[str]:
    label = f"label=paude.io/session={session}"
    return (lines("podman", "ps", "-a", "--filter", label, "--format", "{{.Names}}")
            + lines("podman", "network", "ls", "--filter", label, "--format", "{{.Name}}")
            + lines("podman", "volume", "ls", "--filter", label, "--format", "{{.Name}}"))


def images(workspace: Path) -> tuple[str, str]:
    """Return the cached agent and proxy tags paude uses (from its dry run)."""
    plan = run([*PAUDE, "--dry-run", "-w", str(workspace)])
    tags = {w for w in plan.split() if w.startswith("localhost/paude-")}
    agent = next(t for t in tags if t.startswith("localhost/paude-agent:"))
    proxy = next(t for t in tags if t.startswith("localhost/paude-proxy:"))
    for tag in (agent, proxy):
        if subprocess.run(["podman", "image", "exists", tag], check=False).returncode:
            sys.exit(f"{tag} is not built: run paude --detach once first")
    return agent, proxy


def paude_loop(loops: int, name: str, workspace: Path) -> list[tuple[float, float]]:
    start = [*PAUDE, "--detach", "-q", "--name", name, "-w", str(workspace)]
    return [(timed(lambda: run(start)), timed(lambda: run([*PAUDE, "stop", name])))
            for _ in range(loops)]


def raw_loop(loops: int, name: str, agent: str, proxy: str) -> list[tuple[float, float]]:
    internal, egress = f"{name}-raw", f"{name}-raw-egress"
    n = int.from_bytes(os.urandom(1), "big")

    def up() -> None:
        run(["podman", "network", "create", "--internal", "--subnet",
             SUBNETS[0].format(n=n), internal])
        run(["podman", "network", "create", "--subnet", SUBNETS[1].format(n=n), egress])
        run(["podman", "run", "-d", "--name", f"{name}-raw-proxy", "--network", internal,
             "--network", egress, proxy])
        run(["podman", "run", "-d", "--name", f"{name}-raw-agent", "--network", internal,
             agent, "sleep", "infinity"])

    def down() -> None:
        run(["podman", "network", "rm", "-f", "-t", "0", internal, egress])

    return [(timed(up), timed(down)) for _ in range(loops)]


def report(label: str, samples: list[tuple[float, float]]) -> None:
    starts = [s for s, _ in samples]
    print(f"{label}: start s per loop: " + " ".join(f"{s:.2f}" for s in starts))
    print(f"{label}: stop s per loop:  " + " ".join(f"{s:.2f}" for _, s in samples))
    print(f"{label}: start of loop {len(starts)} / loop 1 = {starts[-1] / starts[0]:.2f}; "
          f"mean of the last 3 / first 3 = {sum(starts[-3:]) / sum(starts[:3]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--backend", choices=("podman", "openshift"), default="podman",
                        help="openshift: on the running test cluster's kwok nodes"
                             " (bench/openshift_loop.py)")
    args = parser.parse_args()
    loops = args.loops
    if args.backend == "openshift":
        import openshift_loop  # beside this script

        openshift_loop.main(loops)
        return
    workspace = Path(tempfile.mkdtemp(prefix="paude-bench-loop-")) / "ws"
    workspace.mkdir()
    agent, proxy = images(workspace)
    name = "loop-" + os.urandom(3).hex()
    before, files_before = census(), state_files()
    try:
        ours = paude_loop(loops, name, workspace)
        raw = raw_loop(loops, name, agent, proxy)
    finally:
        subprocess.run([*PAUDE, "stop", name], capture_output=True, check=False)
    after = census()
    report("paude", ours)
    report("raw podman", raw)
    left = labelled(name)
    print(f"left labelled paude.io/session={name}: {left or 'nothing'}")
    for key in before:
        print(f"{key}: before {before[key]}, after {after[key]}")
    print(f"new paude state files: {sorted(state_files() - files_before) or 'none'}")
    if left:
        sys.exit(1)


if __name__ == "__main__":
    main()

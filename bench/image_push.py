"""Time getting the session images into a registry: a first start (push) against a
second one (one manifest check per image), each beside the raw tool doing the same.

Usage: python bench/image_push.py [--runs N] [--cluster]
Starts a password-protected docker-registry on loopback (tests/registry.py),
uses the agent and proxy images the podman tests build (built first if
missing; build time is not measured). Per run, a fresh repository path:

- ``first``: paude's publish of both images (check, push, digests);
  peer ``raw_push``: ``podman push`` of the same two images to another fresh
  path (what a user would run by hand);
- ``second``: paude's publish again (nothing to push); peer ``raw_check``:
  ``skopeo inspect --raw`` of both tags (the least any check can do).

With ``--cluster``, also an OpenShift-backend session start on the test
cluster (tests/cluster/up.sh, kwok nodes: nothing is pulled) with
``backend.registry`` set: ``start_first`` pushes, ``start_second`` does not.
Prints one JSON object: median seconds, ratios, and the blob uploads the
registry logged in each phase.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "bench")]

from paude.backends.base import NullReporter, SessionSpec  # noqa: E402
from paude.container import ImageSpec, ensure_image  # noqa: E402
from paude.images.publish import publish_images  # noqa: E402
from paude.images.refs import RegistryLogin, RegistryTarget  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402
from registry import LocalRegistry, uploads  # noqa: E402

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
RUNNER = SystemRunner()


def specs() -> list[ImageSpec]:
    ca = HOST_CA.read_bytes() if HOST_CA.exists() else None
    return [ImageSpec(kind="agent", ca_bundle=ca), ImageSpec(kind="proxy")]


def timed(registry: LocalRegistry, call: Callable[[], object]) -> tuple[float, int]:
    mark = registry.mark()
    start = time.monotonic()
    call()
    seconds = time.monotonic() - start
    return seconds, len(uploads(registry.since(mark)))


def raw_push(tags: list[str], prefix: str, auth: str) -> None:
    for tag in tags:
        subprocess.run(
            ["podman", "push", "--tls-verify=false", "--authfile", auth, tag,
             f"docker://{prefix}/{tag.split('/', 1)[1]}"],
            check=True, capture_output=True, timeout=1800,
        )  # fmt: skip


def raw_check(tags: list[str], prefix: str, auth: str) -> None:
    for tag in tags:
        subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", auth,
             f"docker://{prefix}/{tag.split('/', 1)[1]}"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def login_file(registry: LocalRegistry, work: Path) -> str:
    """An auth file as ``podman login`` writes it, for the raw tools and the user's login."""
    auth = work / f"auth-{registry.port}.json"
    pair = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {registry.address: {"auth": pair}}}))
    return str(auth)


def run_publish(work: Path) -> dict[str, tuple[float, int]]:
    """One run: paude and the raw tools, each against a registry of its own (no shared blobs)."""
    images = specs()
    tags = [ensure_image(RUNNER, s) for s in images]
    ours = LocalRegistry(work / f"ours-{secrets.token_hex(3)}").start()
    theirs = LocalRegistry(work / f"theirs-{secrets.token_hex(3)}").start()
    try:
        target = RegistryTarget(push_prefix=f"{ours.address}/bench",
                                pull_prefix=f"{ours.address}/bench", tls_verify=False,
                                login=RegistryLogin(ours.username, ours.password))  # fmt: skip

        def publish() -> None:
            publish_images(RUNNER, images, target, reporter=NullReporter())

        auth, prefix = login_file(theirs, work), f"{theirs.address}/bench"
        return {
            "first": timed(ours, publish),
            "raw_push": timed(theirs, lambda: raw_push(tags, prefix, auth)),
            "second": timed(ours, publish),
            "raw_check": timed(theirs, lambda: raw_check(tags, prefix, auth)),
        }
    finally:
        ours.stop()
        theirs.stop()


def run_start(work: Path, namespace: str) -> dict[str, tuple[float, int]]:
    """A session start with ``backend.registry`` set, twice: the first pushes."""
    registry = LocalRegistry(work / f"start-{secrets.token_hex(3)}").start()
    try:
        return _start_twice(registry, login_file(registry, work), namespace)
    finally:
        registry.stop()


def _start_twice(
    registry: LocalRegistry, auth: str, namespace: str
) -> dict[str, tuple[float, int]]:
    from paude.backends.openshift.backend import OpenShiftBackend
    from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources

    small = Resources(requests=Amounts(cpu="100m", memory="64Mi"), limits=Amounts(memory="128Mi"))
    config = PaudeConfig(backend=BackendConfig(
        type="openshift", namespace=namespace, resources=small,
        registry=f"{registry.address}/{namespace}", registry_tls_verify=False,
    ))  # fmt: skip
    ca = HOST_CA.read_bytes() if HOST_CA.exists() else None
    spec = SessionSpec(f"bench-{secrets.token_hex(2)}", Path("/w"), ("api.anthropic.com",),
                       ca_bundle=ca)  # fmt: skip
    os.environ["REGISTRY_AUTH_FILE"] = auth  # the user's own login, as podman login writes it
    backend = OpenShiftBackend(config, runner=RUNNER, reporter=NullReporter())
    out = {
        "start_first": timed(registry, lambda: backend.start_session(spec)),
        "start_second": timed(registry, lambda: backend.start_session(spec)),
    }
    backend.stop_session(spec.name)
    backend.remove_workspace(spec.name)
    return out


def with_cluster(
    runs: list[dict[str, tuple[float, int]]], work: Path
) -> list[dict[str, tuple[float, int]]]:
    """Add the session-start phases, in one restricted namespace of the test cluster."""
    from openshift_start import cluster_env, kubectl, make_namespace

    env = cluster_env()
    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    namespace = make_namespace(env)
    try:
        return [{**r, **run_start(work, namespace)} for r in runs]
    finally:
        kubectl(env, "delete", "namespace", namespace, "--wait=false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paude-bench-", dir="/var/tmp") as name:
        work = Path(name)
        runs = [run_publish(work) for _ in range(args.runs)]
        if args.cluster:
            runs = with_cluster(runs, work)
    keys = runs[0].keys()
    median = {k: round(statistics.median(r[k][0] for r in runs), 3) for k in keys}
    result: dict[str, Any] = {
        "runs": args.runs,
        "seconds": median,
        "blob_uploads": {k: [r[k][1] for r in runs] for k in keys},
        "ratio_first_to_raw_push": round(median["first"] / median["raw_push"], 2),
        "ratio_second_to_raw_check": round(median["second"] / median["raw_check"], 2),
        "ratio_second_to_first": round(median["second"] / median["first"], 3),
    }
    if args.cluster:
        result["ratio_start_second_to_first"] = round(
            median["start_second"] / median["start_first"], 3
        )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

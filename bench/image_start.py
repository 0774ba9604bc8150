"""Time a first ``paude`` start (builds nothing new, pushes both images) against a second
one (nothing to push) on the test cluster's real node, with its password-protected registry.

Usage: python bench/image_start.py [--runs N]   (root: the real node; never starts the
cluster: tests/cluster/up.sh --real-node only reports the running one)
Per run, a fresh namespace on the real node, and ``backend.registry`` set to a
fresh path in the node's registry (so the first start finds nothing there),
the user's own login (``REGISTRY_AUTH_FILE``) and the cluster CA:

- ``start_first``: ``paude --backend openshift --detach`` (check, push both
  images, apply, pods pull by digest and are Ready), then ``paude stop``;
- ``start_second``: the same again (one manifest check per image, no upload);
- ``raw_push``: the peer of the first start's push: ``podman push`` of the same
  two images to another fresh path of the same registry.

The registry's access log is read for each phase: blob uploads (POST/PATCH/PUT
to ``/blobs/uploads/``), how many of them were cross-repository mounts (the
registry already held the blob in another repository: no data moves) and how
many carried data (PATCH/PUT), and manifest PUTs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
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

from openshift_real_node import kubectl, make_namespace, up  # noqa: E402

from paude.container import ImageSpec, ensure_image  # noqa: E402
from paude.runner import SystemRunner  # noqa: E402
from registry import manifest_puts, parse_requests, uploads  # noqa: E402

CA = Path("/etc/ssl/certs/ca-certificates.crt")


def registry_log(env: dict[str, str]) -> Path:
    return Path(env["REGISTRY_AUTH_FILE"]).parents[1] / "logs" / "registry.log"


def timed(env: dict[str, str], repository: str, call: Callable[[], object]) -> dict[str, Any]:
    log = registry_log(env)
    mark = len(parse_requests(log.read_text(errors="replace")))
    start = time.monotonic()
    call()
    seconds = time.monotonic() - start
    seen = [r for r in parse_requests(log.read_text(errors="replace"))[mark:]
            if r.path.startswith(f"/v2/{repository}/")]  # fmt: skip
    sent = uploads(seen)
    return {"seconds": round(seconds, 3), "blob_uploads": len(sent),
            # A POST ...?mount= links a blob the registry holds elsewhere: no data moves.
            "cross_repo_mounts": len([r for r in sent if "mount=" in r.path]),
            "data_requests": len([r for r in sent if r.method in ("PATCH", "PUT")]),
            "manifest_puts": len(manifest_puts(seen)),
            "manifest_requests": len([r for r in seen if "/manifests/" in r.path])}  # fmt: skip


def paude(env: dict[str, str], root: Path, *args: str) -> None:
    run_env = {**os.environ, "HOME": str(root / "home"),
               "XDG_CONFIG_HOME": str(root / "home" / ".config"),
               "PATH": f"{root / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(REPO / "src"),
               "REGISTRY_AUTH_FILE": env["REGISTRY_AUTH_FILE"], "NO_COLOR": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "paude", *args],
        cwd=root / "workspace",
        env=run_env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"paude {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def setup_user(env: dict[str, str], root: Path, namespace: str, prefix: str) -> None:
    config = root / "home" / ".config" / "paude" / "paude.json"
    config.parent.mkdir(parents=True)
    (root / "workspace").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "kubectl").symlink_to(env["KUBECTL"])
    backend = {"type": "openshift", "namespace": namespace, "registry": prefix,
               "registry_cert_dir": f"{env['REGISTRY_CERT_DIR']}/{env['REGISTRY']}",
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}  # fmt: skip
    config.write_text(json.dumps({
        "backend": backend, "sync": {"enabled": False}, "allowed_domains": ["example.com"],
        "extra_ca_certificates": [str(CA)],  # the agent image the tests build: cached
    }))  # fmt: skip


def raw_push(env: dict[str, str], tags: list[str], prefix: str) -> None:
    for tag in tags:
        subprocess.run(["podman", "push", "--quiet", "--authfile", env["REGISTRY_AUTH_FILE"],
                        "--cert-dir", f"{env['REGISTRY_CERT_DIR']}/{env['REGISTRY']}", tag,
                        f"docker://{prefix}/{tag.split('/', 1)[1]}"],
                       check=True, capture_output=True, timeout=3600)  # fmt: skip


def run_once(env: dict[str, str], work: Path) -> dict[str, Any]:
    runner = SystemRunner()
    tags = [
        ensure_image(runner, ImageSpec(kind="agent", ca_bundle=CA.read_bytes())),
        ensure_image(runner, ImageSpec(kind="proxy")),
    ]  # built before timing
    namespace = make_namespace(env)
    root = work / namespace
    repository = f"{namespace}-{secrets.token_hex(3)}"  # empty: the first start pushes all
    prefix = f"{env['REGISTRY']}/{repository}"
    setup_user(env, root, namespace, prefix)
    try:

        def start() -> None:
            paude(env, root, "--backend", "openshift", "--detach")

        out = {"start_first": timed(env, repository, start)}
        paude(env, root, "stop")
        out["start_second"] = timed(env, repository, start)
        paude(env, root, "stop")
        raw = f"{repository}-raw"
        out["raw_push"] = timed(env, raw, lambda: raw_push(env, tags, f"{env['REGISTRY']}/{raw}"))
        return out
    finally:
        kubectl(env, "delete", "namespace", namespace, "--wait=false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    env = up()
    os.environ["KUBECONFIG"] = env["KUBECONFIG"]
    with tempfile.TemporaryDirectory(prefix="paude-bench-", dir="/var/tmp") as name:
        runs = [run_once(env, Path(name)) for _ in range(args.runs)]
    median = {k: round(statistics.median(r[k]["seconds"] for r in runs), 3) for k in runs[0]}
    json.dump({
        "runs": runs, "median_seconds": median,
        "ratio_second_to_first": [round(r["start_second"]["seconds"]
                                        / r["start_first"]["seconds"], 3) for r in runs],
        "ratio_first_to_raw_push": [round(r["start_first"]["seconds"]
                                          / r["raw_push"]["seconds"], 2) for r in runs],
    }, sys.stdout, indent=2)  # fmt: skip
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""The checks of this machine: podman, its limits, paude's images and the extra CA."""

from __future__ import annotations

import resource
import ssl
from collections.abc import Sequence

from paude.container.image import ImageSpec, build_image_tag
from paude.doctor.checks import Check, CheckStatus, build_rlimit_check, parse_podman_info
from paude.errors import PaudeError, RuntimeMissingError
from paude.runner import INSTALL_HINTS, TIMEOUT_INSPECT, Runner


def run_podman_check(runner: Runner) -> Check:
    """Return whether podman runs, and how (rootful/rootless, OCI runtime)."""
    try:
        info = runner.run(["podman", "info", "--format", "json"], timeout=TIMEOUT_INSPECT,
                          check=False)
    except RuntimeMissingError:
        return Check("podman", CheckStatus.FAIL, "podman is not on PATH",
                     fix=INSTALL_HINTS["podman"])
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("podman", CheckStatus.FAIL, f"podman info failed: {last}",
                     fix="Run: podman info (a rootless podman after a restore may need: "
                         "podman system migrate)")
    return parse_podman_info(info.stdout)


def run_rlimit_check() -> Check:
    """Return the soft limits this shell passes to podman's containers."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    unlimited = resource.RLIM_INFINITY
    return build_rlimit_check(-1 if nofile == unlimited else nofile,
                              -1 if nproc == unlimited else nproc)


def run_image_checks(runner: Runner, specs: Sequence[ImageSpec]) -> list[Check]:
    """Return, per image a start uses, whether it is built (a missing one is a warning)."""
    checks = []
    for spec in specs:
        tag = build_image_tag(spec)
        found = runner.run(["podman", "image", "exists", tag], timeout=TIMEOUT_INSPECT,
                           check=False)
        if found.returncode == 0:
            checks.append(Check(f"{spec.kind} image", CheckStatus.OK, f"{tag} is built"))
        else:
            checks.append(Check(f"{spec.kind} image", CheckStatus.WARN,
                                f"{tag} is not built yet: the first start builds it",
                                fix="Build it now: paude --detach (then paude stop)"))
    return checks


def build_ca_check(paths: Sequence[str], bundle: bytes | None) -> Check:
    """Return whether the configured extra CA bundle is one TLS accepts."""
    if not paths:
        return Check("extra CA", CheckStatus.OK, "none configured (not needed without a "
                     "TLS-intercepting proxy)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # without the system's CAs
    try:
        context.load_verify_locations(cadata=(bundle or b"").decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as err:
        return Check("extra CA", CheckStatus.FAIL, f"{', '.join(paths)}: not a usable CA ({err})",
                     fix="Point extra_ca_certificates at the proxy's PEM CA certificate.")
    count = context.cert_store_stats()["x509_ca"]
    return Check("extra CA", CheckStatus.OK, f"{', '.join(paths)}: {count} CA certificate(s)")


def ca_error_check(err: PaudeError) -> Check:
    """Return the failed extra CA check for the error reading it raised."""
    return Check("extra CA", CheckStatus.FAIL, err.message,
                 fix=err.hint or "Fix extra_ca_certificates or PAUDE_EXTRA_CA_CERTS.")


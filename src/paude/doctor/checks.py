"""A check's result and the pure readers of what the checks collect.

Nothing here runs a process or touches the network: :mod:`paude.doctor.podman`
and :mod:`paude.doctor.cluster` do, and hand their raw answers to these.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Below this many open files a session's squid and the agent's node fail oddly.
MIN_OPEN_FILES = 1024
MIN_PROCESSES = 1024


class CheckStatus(enum.Enum):
    """How a check came out: only ``fail`` makes ``paude doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One line of ``paude doctor``: what was checked, what was found, how to fix it."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Return the stable JSON shape of one check."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail,
                "fix": self.fix}


_MARKS = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "warn", CheckStatus.FAIL: "FAIL",
          CheckStatus.SKIP: "skip"}


def render_checks(checks: Sequence[Check]) -> str:
    """Return one line per check: ``ok   podman     podman 4.3.1, rootful...  (fix: ...)``."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        fix = f"  Fix: {c.fix}" if c.fix and c.status is not CheckStatus.OK else ""
        lines.append(f"{_MARKS[c.status]}  {c.name:<{width}}  {c.detail}{fix}")
    return "\n".join(lines) + "\n"


def parse_podman_info(stdout: str) -> Check:
    """Return the podman check from ``podman info --format json``."""
    try:
        info = json.loads(stdout)
        host, version = info["host"], info["version"]["Version"]
        mode = "rootless" if host["security"]["rootless"] else "rootful"
        runtime = host["ociRuntime"]["name"]
    except (ValueError, KeyError, TypeError) as err:
        return Check("podman", CheckStatus.FAIL, f"podman info gave no usable answer ({err})",
                     fix="Run: podman info")
    cgroups = host.get("cgroupVersion", "?")
    return Check("podman", CheckStatus.OK,
                 f"podman {version}, {mode}, runtime {runtime}, cgroups {cgroups}")


def build_rlimit_check(open_files: int, processes: int) -> Check:
    """Return the check of the soft limits podman's containers inherit (-1: unlimited)."""
    low = [f"{what} {value} < {floor}" for what, value, floor in (
        ("open files", open_files, MIN_OPEN_FILES), ("processes", processes, MIN_PROCESSES))
        if 0 <= value < floor]
    shown = ", ".join(f"{w} {'unlimited' if v < 0 else v}" for w, v in (
        ("open files", open_files), ("processes", processes)))
    if low:
        return Check("rlimits", CheckStatus.WARN, f"low soft limits: {', '.join(low)}",
                     fix="Raise them, e.g. ulimit -n 4096 -u 4096 (or in limits.conf)")
    return Check("rlimits", CheckStatus.OK, shown)


def _matches(granted: Iterable[str], wanted: str) -> bool:
    for item in granted:
        if item in ("*", wanted):
            return True
        if item.startswith("*/") and "/" in wanted and wanted.endswith(item[1:]):
            return True
    return False


def _grants(rule: Mapping[str, Any], group: str, resource: str, verb: str) -> bool:
    if rule.get("resourceNames"):  # limited to some objects: paude needs any name
        return False
    return (_matches(rule.get("apiGroups") or [], group)
            and _matches(rule.get("resources") or [], resource)
            and _matches(rule.get("verbs") or [], verb))


def find_missing_grants(
    needed: Sequence[Mapping[str, Any]], granted: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """Return the (verb, group, resource) of ``needed`` that no ``granted`` rule covers."""
    missing = []
    for rule in needed:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    if not any(_grants(g, group, resource, verb) for g in granted):
                        missing.append((verb, group, resource))
    return missing


def render_grant(verb: str, group: str, resource: str) -> str:
    """Return ``create statefulsets.apps`` (core resources have no group suffix)."""
    return f"{verb} {resource}.{group}" if group else f"{verb} {resource}"

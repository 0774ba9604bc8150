"""Plans: the ordered steps a backend would take, as data.

The same ``Plan`` is printed by ``--dry-run``, exported, and executed, so the
three cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paude.redact import redact_argv

# Where an executor appends each step it runs, rendered as --dry-run prints it
# (a debugging aid, and how the tests prove the plan is what runs).
STEP_LOG_ENV = "PAUDE_STEP_LOG"
STEP_SEPARATOR = "\n# ----\n"


@dataclass(frozen=True)
class Argv:
    """Run a command.

    ``env`` holds values passed in the command's environment, never in argv
    (the argv names them with ``-e NAME``); they are never rendered.
    Consecutive steps of the same ``group`` are independent of each other:
    the executor may run them at once.
    """

    argv: tuple[str, ...]
    description: str
    env: tuple[tuple[str, str], ...] = ()
    group: str = ""


@dataclass(frozen=True)
class Build:
    """Build an image; skipped when ``skip_if_exists`` (its tag) is already there."""

    argv: tuple[str, ...]
    description: str
    tag: str
    skip_if_exists: bool = True


@dataclass(frozen=True)
class File:
    """A file (or, with ``directory``, a directory) the plan writes.

    ``shown`` replaces the content in the rendering (a CA bundle); ``owner``
    (uid, gid) is applied when running as root; ``exclusive`` never follows
    or replaces an existing path (mount points in the workspace).
    """

    path: str
    content: str
    description: str
    mode: int = 0o644
    directory: bool = False
    exclusive: bool = False
    owner: tuple[int, int] | None = None
    shown: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A Kubernetes object to apply."""

    obj: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class SecretManifest:
    """A Kubernetes Secret to apply; its values are never rendered, logged or exported.

    With ``keep_existing`` the executor applies it only when no Secret of
    that name holds every key of its ``data`` (a credential others already
    use: the proxy's password is made once and kept).
    """

    obj: dict[str, Any] = field(repr=False)  # its data holds the values
    description: str
    keep_existing: bool = False


@dataclass(frozen=True)
class EndpointsManifest:
    """An EndpointSlice applied once the pod it lists is ready; its address is found then.

    ``obj`` holds a placeholder address; the executor waits for the ready pod
    that Deployment ``deployment`` made and puts that pod in.
    """

    obj: dict[str, Any]
    description: str
    deployment: str


Step = Argv | Build | File | Manifest | SecretManifest | EndpointsManifest

# What a Secret's values are rendered as.
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps."""

    steps: tuple[Step, ...] = field(default=())

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.steps + other.steps)


def render_plan(plan: Plan, *, manifests_as_yaml: bool = True) -> str:
    """Return a human- and diff-friendly text rendering of ``plan``."""
    parts = [render_step(step) for step in plan.steps
             if manifests_as_yaml
             or not isinstance(step, Manifest | SecretManifest | EndpointsManifest)]
    return "\n".join(parts)


def render_step(step: Step) -> str:
    """Return one step as ``render_plan`` shows it."""
    if isinstance(step, Argv | Build):
        return f"# {step.description}\n{redact_argv(step.argv)}\n"
    if isinstance(step, File):
        if step.directory:
            return f"# {step.description}: {step.path}/\n"
        text = step.shown if step.shown is not None else step.content
        body = text if text.endswith("\n") else text + "\n"
        return f"# {step.description}: {step.path}\n{_indent(body)}"
    if isinstance(step, SecretManifest):
        return f"---\n# {step.description}\n" + render_yaml([redact_secret(step.obj)])
    if isinstance(step, EndpointsManifest):
        return f"---\n# {step.description}\n" + render_yaml([step.obj])
    return "---\n" + render_yaml([step.obj])


def redact_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the Secret ``obj`` with each value of ``data``/``stringData`` replaced (keys kept)."""
    out = dict(obj)
    for key in ("data", "stringData"):
        if key in obj:
            out[key] = dict.fromkeys(obj[key], REDACTED)
    return out


def log_step(step: Step) -> None:
    """Append ``step`` to the file named by ``$PAUDE_STEP_LOG``, if set (executors call this)."""
    path = os.environ.get(STEP_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(render_step(step) + STEP_SEPARATOR)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def render_yaml(objs: Sequence[dict[str, Any]]) -> str:
    """Return ``objs`` as a multi-document YAML string."""
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)

"""Plans: the ordered steps a backend would take, as data.

The same ``Plan`` is printed by ``--dry-run``, exported, and executed, so the
three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paude.redact import redact_argv


@dataclass(frozen=True)
class Argv:
    """Run a command."""

    argv: tuple[str, ...]
    description: str
    skip_if_exists: str | None = None  # an object name; the executor may skip when present


@dataclass(frozen=True)
class File:
    """A file the plan writes or mounts (Containerfile, squid.conf, ...)."""

    path: str
    content: str
    description: str


@dataclass(frozen=True)
class Manifest:
    """A Kubernetes object to apply."""

    obj: dict[str, Any]
    description: str = ""


Step = Argv | File | Manifest


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps."""

    steps: tuple[Step, ...] = field(default=())

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.steps + other.steps)


def render_plan(plan: Plan, *, manifests_as_yaml: bool = True) -> str:
    """Return a human- and diff-friendly text rendering of ``plan``."""
    parts: list[str] = []
    for step in plan.steps:
        if isinstance(step, Argv):
            parts.append(f"# {step.description}\n{redact_argv(step.argv)}\n")
        elif isinstance(step, File):
            body = step.content if step.content.endswith("\n") else step.content + "\n"
            parts.append(f"# {step.description}: {step.path}\n{_indent(body)}")
        elif manifests_as_yaml:
            parts.append("---\n" + render_yaml([step.obj]))
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines())


def render_yaml(objs: Sequence[dict[str, Any]]) -> str:
    """Return ``objs`` as a multi-document YAML string."""
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)

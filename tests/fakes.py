"""A recording runner that stands in for podman in executor and CLI unit tests.

Like tox's ``patch_execute``: the executor is swapped, the code under test is
real. Real podman behaviour is covered by tests/podman.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from paude.errors import CommandFailedError
from paude.runner import Result

Responder = Callable[[tuple[str, ...]], Result | None]


class RecordingRunner:
    """Record every argv; answer from scripted responders (first match wins)."""

    def __init__(self, *responders: Responder) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.envs: list[Mapping[str, str] | None] = []
        self.responders = list(responders)

    def _answer(self, argv: Sequence[str]) -> Result:
        key = tuple(argv)
        self.calls.append(key)
        for responder in self.responders:
            result = responder(key)
            if result is not None:
                return result
        return Result(key, 0, "", "")

    def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None,
            env: Mapping[str, str] | None = None, check: bool = True) -> Result:
        self.envs.append(env)
        result = self._answer(argv)
        if check and result.returncode != 0:
            raise CommandFailedError(argv, result.returncode, result.stderr)
        return result

    def follow(self, argv: Sequence[str], *, timeout: float, on_line: Callable[[str], None],
               env: Mapping[str, str] | None = None) -> Result:
        self.envs.append(env)
        result = self._answer(argv)
        merged = result.stdout + result.stderr
        for line in merged.splitlines():
            on_line(line)
        return Result(result.argv, result.returncode, merged, "")

    def stream(self, argv: Sequence[str], *, timeout: float | None,
               env: Mapping[str, str] | None = None) -> int:
        return self._answer(argv).returncode

    def exec_replace(self, argv: Sequence[str]) -> None:
        self._answer(argv)

    def commands(self, *prefix: str) -> list[tuple[str, ...]]:
        """Return the recorded calls that start with ``prefix``."""
        return [c for c in self.calls if c[: len(prefix)] == prefix]


def reply(prefix: tuple[str, ...], stdout: str = "", returncode: int = 0,
          stderr: str = "") -> Responder:
    """Answer calls starting with ``prefix``."""
    def responder(argv: tuple[str, ...]) -> Result | None:
        if argv[: len(prefix)] == prefix:
            return Result(argv, returncode, stdout, stderr)
        return None
    return responder

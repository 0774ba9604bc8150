"""Terminal output: stdout is data, stderr is progress, warnings and errors."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from paude.errors import PaudeError

if TYPE_CHECKING:
    from rich.console import Console


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ)


class RichReporter:
    """Progress on stderr: animated only in a terminal and when not verbose."""

    def __init__(self, *, verbosity: int = 0) -> None:
        self.verbosity = verbosity
        self._console: Console | None = None
        self._following: list[Any] = []  # live lines shown now (concurrent builds)
        self._display: Any = None
        self._follow_lock = threading.Lock()

    @property
    def console(self) -> Console:
        """Return the stderr console, created on first use (rich is slow to import)."""
        if self._console is None:
            self._console = _stderr_console()
        return self._console

    def _animate(self) -> bool:
        return (
            self.verbosity == 0
            and sys.stderr.isatty()
            and not os.environ.get("CI")
            and "NO_COLOR" not in os.environ
        )

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """Show ``message`` while the block runs."""
        if self.verbosity < 0:
            yield
            return
        if not self._animate():
            if self.verbosity > 0:
                self.console.print(f"{message}...")
            yield
            return
        with self.console.status(message):
            yield

    @contextmanager
    def follow(self, what: str, *, done: str) -> Iterator[Callable[[str], None]]:
        """Show ``what``'s live line (step N/M, what it does, time) while output is fed.

        In a terminal the line redraws in place and gives way to the summary;
        at ``-v`` every output line is shown instead; otherwise ``what`` is
        printed once, then the summary.
        """
        from paude.progress import StepProgress

        progress = StepProgress(what, time.monotonic())
        if self.verbosity > 0 or not self._animate():
            if self.verbosity >= 0:
                self.console.print(f"{what}...", markup=False, highlight=False)
            yield self._echo(progress) if self.verbosity > 0 else progress.feed
        else:
            with self._live(progress):
                yield progress.feed
        self.info(progress.summary(time.monotonic(), done=done))

    def _echo(self, progress: Any) -> Callable[[str], None]:
        def feed(line: str) -> None:
            progress.feed(line)
            sys.stderr.write(line + "\n")

        return feed

    @contextmanager
    def _live(self, progress: Any) -> Iterator[None]:
        """Show ``progress``'s line; builds running at once (agent, proxy) share one display."""
        from rich.console import Group
        from rich.live import Live
        from rich.text import Text

        def lines() -> Group:
            now = time.monotonic()
            return Group(*(Text(p.render(now), no_wrap=True, overflow="ellipsis")
                           for p in list(self._following)))

        with self._follow_lock:
            self._following.append(progress)
            if self._display is None:
                self._display = Live(get_renderable=lines, console=self.console,
                                     refresh_per_second=4, transient=True)
                self._display.start()
        try:
            yield
        finally:
            with self._follow_lock:
                self._following.remove(progress)
                if not self._following and self._display is not None:
                    self._display.stop()
                    self._display = None

    def warn(self, message: str) -> None:
        """Print a warning (even with -q)."""
        self.console.print(f"[bold yellow]Warning:[/] {message}")

    def info(self, message: str) -> None:
        """Print a line of progress unless quiet."""
        if self.verbosity >= 0:
            self.console.print(message)

    def loud_warning(self, title: str, lines: list[str]) -> None:
        """Print a warning that cannot be missed."""
        from rich.panel import Panel

        body = "\n".join(lines)
        self.console.print(Panel(body, title=f"[bold red]{title}[/]", border_style="red"))


def print_error(err: PaudeError, *, as_json: bool) -> None:
    """Print ``err`` on stderr: ``Error: ...`` and its hint, or JSON."""
    if as_json:
        sys.stderr.write(json.dumps(err.to_dict()) + "\n")
        return
    sys.stderr.write(f"Error: {err.message}\n")
    if err.hint:
        sys.stderr.write(f"Hint: {err.hint}\n")


def print_json(data: object) -> None:
    """Write ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")

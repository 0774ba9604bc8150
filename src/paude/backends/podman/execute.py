"""The podman executor: run a ``Plan`` step by step, exactly as ``--dry-run`` printed it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from paude.backends.base import Reporter
from paude.backends.podman.planning import CONTEXT_PLACEHOLDER
from paude.container.image import run_build
from paude.plan import Argv, Build, File, Plan, Step, log_step
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner
from paude.session_lock import image_lock


class PlanExecutor:
    """Run one plan: files written, images built unless present, commands run."""

    def __init__(self, runner: Runner, reporter: Reporter,
                 on_build: Callable[[str], None] | None = None) -> None:
        self.runner = runner
        self.reporter = reporter
        self.on_build = on_build  # called with the tag before its first build (a preflight)
        self._context: str | None = None
        self._present: dict[str, bool] = {}
        self._announced: set[str] = set()
        self._stack = ExitStack()
        self._image_locks: dict[str, ExitStack] = {}  # by tag: held from its first build step
        self._last_build: dict[str, Build] = {}  # by tag: its last build step (then released)

    def run(self, plan: Plan) -> None:
        """Run every step of ``plan`` in order (consecutive commands of one group at once)."""
        with self._stack:
            steps = list(plan.steps)
            self._last_build = {s.tag: s for s in steps if isinstance(s, Build)}
            while steps:
                batch = [steps.pop(0)]
                group = batch[0].group if isinstance(batch[0], Argv) else ""
                while group and steps and isinstance(steps[0], Argv) and steps[0].group == group:
                    batch.append(steps.pop(0))
                for step in batch:  # in the plan's order, also for a group run at once
                    log_step(step)
                if len(batch) == 1:
                    self._step(batch[0])
                else:
                    with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                        for future in [pool.submit(self._step, s) for s in batch]:
                            future.result()

    def _step(self, step: Step) -> None:
        if isinstance(step, Argv):
            self.runner.run(step.argv, timeout=TIMEOUT_CREATE, env=dict(step.env) or None)
        elif isinstance(step, Build):
            self._build(step)
        elif isinstance(step, File):
            self._file(step)
        else:
            raise TypeError(f"the podman executor cannot run {type(step).__name__} steps")

    def _build(self, step: Build) -> None:
        if step.skip_if_exists and self._exists(step.tag):
            return
        if step.tag not in self._image_locks:
            # One build of a tag at a time (two sessions starting at once need
            # the same image): hold its lock over all its build steps.
            held = self._image_locks[step.tag] = self._stack.enter_context(ExitStack())
            held.enter_context(image_lock(step.tag, on_wait=self.reporter.info))
            self._present.pop(step.tag, None)
            if step.skip_if_exists and self._exists(step.tag):  # built while we waited
                held.close()
                return
        self._run_build(step)
        if self._last_build.get(step.tag) is step:
            self._image_locks[step.tag].close()

    def _run_build(self, step: Build) -> None:
        argv = [a.replace(CONTEXT_PLACEHOLDER, self._context_dir()) for a in step.argv]
        if step.tag not in self._announced:  # each image once, not per build step
            if self.on_build is not None:
                self.on_build(step.tag)
            self._announced.add(step.tag)
        kind = step.tag.rsplit(":", 1)[0].removeprefix("localhost/paude-")
        builds_tag = argv[argv.index("-t") + 1] == step.tag
        run_build(self.runner, argv, display=self.reporter,
                  what=f"the {kind} image {step.tag}" if builds_tag
                  else "the devcontainer Dockerfile")

    def _exists(self, tag: str) -> bool:
        if tag not in self._present:
            found = self.runner.run(["podman", "image", "exists", tag],
                                    timeout=TIMEOUT_INSPECT, check=False)
            self._present[tag] = found.returncode == 0
        return self._present[tag]

    def _context_dir(self) -> str:
        if self._context is None:
            self._context = self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="paude-build-"))
        return self._context

    def _file(self, step: File) -> None:
        if step.path.startswith(CONTEXT_PLACEHOLDER + "/"):
            path = Path(self._context_dir()) / step.path.removeprefix(CONTEXT_PLACEHOLDER + "/")
        else:
            path = Path(step.path)
        if step.directory:
            path.mkdir(mode=step.mode, parents=True, exist_ok=not step.exclusive)
        elif step.exclusive:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, step.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(step.content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.content, encoding="utf-8")
            path.chmod(step.mode)
        if step.owner is not None and os.geteuid() == 0:
            os.chown(path, *step.owner)

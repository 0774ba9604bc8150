"""The one-line progress of an image build or push, as pure state fed line by line.

``podman build`` announces each instruction as ``STEP 3/12: RUN ...``;
``podman push`` each layer as ``Copying blob sha256:...``. A
:class:`StepProgress` reads those lines and renders the live line (step N of
M, what it does, time so far) and the summary; the clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)")
_BLOB_RE = re.compile(r"^Copying blob (?:sha256:)?([0-9a-f]{12})")
DOING_WIDTH = 60


def render_elapsed(seconds: float) -> str:
    """Return ``42s`` or ``2m05s``."""
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


@dataclass
class StepProgress:
    """Where a build (``STEP N/M``) or push (blobs) is, from the lines seen so far."""

    what: str  # "Building the agent image localhost/paude-agent:abc"
    started: float
    step: int = 0
    total: int = 0  # 0: not known yet
    doing: str = ""
    unit: str = "step"

    def feed(self, line: str) -> None:
        """Take one output line; remember it if it starts a step or a layer."""
        match = _STEP_RE.match(line)
        if match:
            self.step, self.total = int(match[1]), int(match[2])
            self.doing = match[3].strip()
            return
        blob = _BLOB_RE.match(line)
        if blob:
            self.unit = "layer"
            self.step += 1
            self.doing = f"blob {blob[1]}"

    def render(self, now: float) -> str:
        """Return the live line: ``what · step 3/12: RUN apt-get ... · 42s``."""
        parts = [self.what]
        if self.step:
            of = f"/{self.total}" if self.total else ""
            doing = self.doing if len(self.doing) <= DOING_WIDTH else \
                self.doing[: DOING_WIDTH - 1] + "…"
            parts.append(f"{self.unit} {self.step}{of}: {doing}")
        parts.append(render_elapsed(now - self.started))
        return " · ".join(parts)

    def summary(self, now: float, *, done: str) -> str:
        """Return the closing line: ``Built the agent image ... in 1m42s (12 steps)``."""
        plural = "s" if self.step != 1 else ""
        count = f" ({self.step} {self.unit}{plural})" if self.step else ""
        return f"{done} in {render_elapsed(now - self.started)}{count}"

"""Wait for a session's model gateway to listen (the one executor step it needs)."""

from __future__ import annotations

import time

from paude.errors import OperationTimeoutError, PaudeError
from paude.gateway.policy import READY_LINE
from paude.runner import TIMEOUT_INSPECT, Runner

# Seconds; it listens within about one on an idle machine, a busy one is slower.
GATEWAY_READY_TIMEOUT = 180.0


def run_wait_gateway(runner: Runner, container: str,
                     timeout: float = GATEWAY_READY_TIMEOUT) -> None:
    """Return once the gateway says it listens, so the agent's first call finds it.

    Polls its log with a growing delay (a condition, not a fixed sleep).

    Raises:
        PaudeError: the gateway exited (its last log lines say why).
        OperationTimeoutError: it did not listen within ``timeout``.
    """
    end = time.monotonic() + timeout
    delay = 0.05
    while True:
        logs = runner.run(["podman", "logs", container], timeout=TIMEOUT_INSPECT, check=False)
        text = logs.stdout + logs.stderr
        if READY_LINE in text:
            return
        state = runner.run(["podman", "inspect", "--format", "{{.State.Running}}", container],
                           timeout=TIMEOUT_INSPECT, check=False).stdout.strip()
        if state == "false":
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise PaudeError(f"the model gateway {container} exited: {tail}",
                             hint=f"Run: podman logs {container}")
        if time.monotonic() > end:
            tail = " | ".join(text.strip().splitlines()[-3:]) or "no output"
            raise OperationTimeoutError(f"the model gateway {container} did not start listening "
                                        f"within {timeout:.0f}s ({tail})",
                                        hint=f"Run: podman logs {container}")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)

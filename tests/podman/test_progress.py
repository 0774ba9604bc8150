"""The build's live line in a real terminal (a private tmux pane), read as a person would.

The agent image gets a setup command that waits on an HTTP request to this
test (on the podman bridge's gateway, i.e. this machine), so the build holds
at a known step until the test has read the live line; then it finishes and
the line gives way to the summary.
"""

from __future__ import annotations

import http.server
import re
import secrets
import shlex
import subprocess
import threading
from collections.abc import Iterator

import pytest

from conftest import PaudeCLI
from terminal import Terminal, wait_until

LIVE = re.compile(r"Building the agent image localhost/paude-agent:\w{12} · step (\d+)/(\d+): "
                  r"RUN \[\"/bin/sh\", \"-c\", \"curl[^·]* · (\d+)s")
SUMMARY = re.compile(r"Built the agent image localhost/paude-agent:\w{12} in (\d+m)?\d+s "
                     r"\((\d+) steps\)")


class Gate(http.server.ThreadingHTTPServer):
    """Answers each request once ``opened`` is set; counts the requests."""

    def __init__(self, host: str) -> None:
        self.opened = threading.Event()
        self.requests = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.requests += 1
                gate.opened.wait(600)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"go\n")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)


def bridge_gateway() -> str:
    out = subprocess.run(["podman", "network", "inspect", "podman", "--format",
                          "{{range .Subnets}}{{.Gateway}}{{end}}"], capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    assert out, "podman's default network has no gateway"
    return out


@pytest.fixture
def gate() -> Iterator[Gate]:
    # The bridge may not exist before a container runs: listen on all addresses.
    server = Gate("0.0.0.0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.opened.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        term.close()


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_a_build_shows_a_live_step_line_then_the_summary(
    paude_cli: PaudeCLI, gate: Gate, terminal: Terminal
) -> None:
    url = f"http://{bridge_gateway()}:{gate.server_address[1]}/"
    marker = secrets.token_hex(4)  # a new setup command: this image is built now
    paude_cli.configure({"image": {"setup_command":
                                   f"curl -sf --max-time 600 {url} && echo built-{marker}"}})
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in paude_cli.env().items()
                   if k != "NO_COLOR")  # colour off would mean no animation
    terminal.type(f"cd {shlex.quote(str(paude_cli.workspace))} && env -u CI -u NO_COLOR {env} "
                  f"{shlex.join(paude_cli.argv('--detach'))}; echo exit=$?-$((6*7))", "Enter")

    seen: list[re.Match[str]] = []

    def live() -> bool:  # one capture per look: the line redraws in place
        match = LIVE.search(terminal.screen())
        if match:
            seen.append(match)
        return match is not None

    wait_until("the live line at the setup step", live, seconds=900, shown=terminal.screen)
    first = seen[-1]
    assert 1 < int(first[1]) < int(first[2])
    wait_until("the live line's time to move", lambda: live() and seen[-1][3] != first[3],
               seconds=30, shown=terminal.screen)
    wait_until("the setup step to reach the gate", lambda: gate.requests == 1, seconds=120,
               shown=terminal.screen)
    wait_until("the line, held at that step", lambda: live() and seen[-1][1] == first[1],
               seconds=30, shown=terminal.screen)

    gate.opened.set()
    wait_until("the summary and the start", lambda: "-42" in terminal.screen(),
               seconds=900, shown=terminal.screen)
    screen = terminal.screen()
    assert "exit=0-42" in screen, screen
    summary = SUMMARY.search(screen)
    assert summary is not None, screen
    assert summary[2] == first[2]  # every step ran
    assert " · step " not in screen  # the live line gave way to the summary
    assert "Started session" in screen
    paude_cli.started.extend(s["name"] for s in paude_cli_sessions(paude_cli))


def paude_cli_sessions(cli: PaudeCLI) -> list[dict[str, str]]:
    import json

    listed: list[dict[str, str]] = json.loads(cli.run("sessions", "--json").stdout)
    return [s for s in listed if s["workspace"] == str(cli.workspace)]

"""Build the real agent and proxy images and check what runs inside them.

Traffic goes only to containers these tests start, through loopback.
"""

from __future__ import annotations

import http.client
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from paude.container import ImageSpec, ensure_image
from paude.runner import Result, SystemRunner

# tests/conftest.py adds the `podman` marker to everything in this directory.

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TEST_LABEL = "paude.io/test=1"
RUNNER = SystemRunner()

SQUID_CONF = """\
http_port 3128
acl allowed dstdomain .allowed.test
http_access allow allowed
http_access deny all
cache deny all
access_log stdio:/var/log/squid/access.log
cache_log /var/log/squid/cache.log
pid_filename none
shutdown_lifetime 0 seconds
"""


def podman(*args: str, check: bool = True, timeout: float = 120.0) -> Result:
    """Run podman with the test timeout."""
    return RUNNER.run(["podman", *args], timeout=timeout, check=check)


def random_name() -> str:
    """Return a unique name for a test resource."""
    return f"paude-test-{secrets.token_hex(4)}"


def wait_until(predicate: Callable[[], bool], *, seconds: float, what: str) -> None:
    """Poll ``predicate`` until it holds or the deadline passes."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def agent_image() -> str:
    """Build (or reuse) the agent image, trusting the host's CA bundle."""
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    return ensure_image(RUNNER, ImageSpec(kind="agent", ca_bundle=ca))


@pytest.fixture(scope="module")
def proxy_image() -> str:
    """Build (or reuse) the proxy image."""
    return ensure_image(RUNNER, ImageSpec(kind="proxy"))


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Collect names of containers a test starts and remove them afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)


def run_in(image: str, *args: str, user: str | None = None) -> Result:
    """Run ``sh -c`` in a throwaway container of ``image``."""
    user_args = ["--user", user] if user else []
    return podman(
        "run", "--rm", "--label", TEST_LABEL, "--name", random_name(),
        *user_args, "--entrypoint", "/bin/sh", image, "-c", *args,
    )  # fmt: skip


def start_agent(image: str, names: list[str], *extra: str, args: tuple[str, ...] = ()) -> str:
    """Start the agent image detached through its real entrypoint."""
    name = random_name()
    names.append(name)
    podman("run", "-d", "--init", "--label", TEST_LABEL, "--name", name, *extra, image, *args)
    return name


def has_session(name: str) -> bool:
    """Say whether the container's tmux has the session ``paude``."""
    return podman("exec", name, "tmux", "has-session", "-t", "paude", check=False).returncode == 0


def pane_text(name: str) -> str:
    """Return what the agent's tmux pane shows (empty if it cannot be read)."""
    return podman("exec", name, "tmux", "capture-pane", "-p", "-t", "paude", check=False).stdout


def is_running(name: str) -> bool:
    """Say whether the container is running."""
    out = podman("inspect", "-f", "{{.State.Running}}", name, check=False)
    return out.stdout.strip() == "true"


def test_agent_has_claude_and_tools(agent_image: str) -> None:
    out = run_in(agent_image, "claude --version && which tmux git rsync curl && id -u")
    lines = out.stdout.splitlines()
    assert re.match(r"\d+\.\d+\.\d+ \(Claude Code\)", lines[0])
    assert [Path(p).name for p in lines[1:5]] == ["tmux", "git", "rsync", "curl"]
    assert lines[5] == "1000"


def test_agent_runs_as_arbitrary_uid_with_writable_home(agent_image: str) -> None:
    script = 'id -u && id -g && echo "$HOME" && touch "$HOME/x" && mkdir "$HOME/.cache/y"'
    out = run_in(agent_image, f"mkdir -p $HOME/.cache && {script}", user="123456:0")
    assert out.stdout.split() == ["123456", "0", "/home/paude"]


def test_agent_trusts_extra_ca_at_run_time(agent_image: str) -> None:
    out = run_in(agent_image, 'echo "$NODE_EXTRA_CA_CERTS $GIT_SSL_CAINFO $DISABLE_AUTOUPDATER"')
    ca = "/etc/ssl/certs/ca-certificates.crt"
    assert out.stdout.split() == [ca, ca, "1"]


def test_entrypoint_session_lives_as_long_as_tmux(
    agent_image: str, containers: list[str], tmp_path: Path
) -> None:
    # The real agent, not a stub: seeded as onboarded and given a dummy key, it
    # makes no network call and waits at its folder-trust prompt for input.
    seed = tmp_path / "seed"
    (seed / "claude").mkdir(parents=True)
    (seed / "claude" / "settings.json").write_text('{"theme": "dark"}\n')
    (seed / "claude.json").write_text('{"hasCompletedOnboarding": true}\n')
    for path in (seed, seed / "claude"):
        path.chmod(0o755)
    name = start_agent(
        agent_image, containers,
        "-v", f"{seed}:/run/paude/seed:ro", "--user", "123456:0",
        "-e", "ANTHROPIC_API_KEY=sk-ant-test-not-a-key",
    )  # fmt: skip
    wait_until(lambda: has_session(name), seconds=30, what="tmux session 'paude'")
    wait_until(lambda: "/workspace" in pane_text(name), seconds=30, what="the agent's prompt")
    script = "pwd; id -u; cat ~/.claude/settings.json; ls -A ~/.claude; cat ~/.claude.json"
    home = podman("exec", name, "sh", "-c", script).stdout
    assert home.splitlines()[:3] == ["/workspace", "123456", '{"theme": "dark"}']
    assert ".paude-seeded" in home.split()
    # The agent rewrites its state file at start; the seeded key survives.
    assert '"hasCompletedOnboarding": true' in home
    # Ending the tmux server ends the container, with no polling loop inside.
    # Detached (-d): the container ending kills every process in it, so an
    # attached `podman exec` of kill-server itself may be killed on the way
    # out (exit 137) when the main process wins the race, as seen under load.
    podman("exec", "-d", name, "tmux", "kill-server")
    wait_until(lambda: not is_running(name), seconds=15, what="the container to exit")
    code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert code == "0", code  # tmux wait-for returns 0 when the server goes away


def test_session_outlives_the_agent_and_enter_restarts_it(
    agent_image: str, containers: list[str]
) -> None:
    name = start_agent(agent_image, containers, args=("--version",))
    wait_until(lambda: "The agent exited with status 0" in pane_text(name), seconds=30,
               what="the exit notice")
    assert "(Claude Code)" in pane_text(name)  # the agent's own output stays readable
    assert is_running(name)
    podman("exec", name, "tmux", "send-keys", "-t", "paude", "Enter")
    wait_until(lambda: pane_text(name).count("(Claude Code)") == 2, seconds=30,
               what="the agent to run again")


def test_proxy_answers_on_3128(proxy_image: str, containers: list[str], tmp_path: Path) -> None:
    conf = tmp_path / "squid.conf"
    conf.write_text(SQUID_CONF)
    conf.chmod(0o644)
    name = random_name()
    containers.append(name)
    podman(
        "run", "-d", "--label", TEST_LABEL, "--name", name, "-p", "127.0.0.1::3128",
        "-v", f"{conf}:/etc/squid/paude/squid.conf:ro", proxy_image,
    )  # fmt: skip
    port = int(podman("port", name, "3128/tcp").stdout.strip().rsplit(":", 1)[1])
    wait_until(lambda: _proxy_status(port) == 403, seconds=30, what="squid to answer 403")
    start = time.monotonic()
    podman("stop", name)
    assert time.monotonic() - start < 5, "squid ignored shutdown_lifetime or SIGTERM"


def _proxy_status(port: int) -> int | None:
    """Ask the proxy for a denied URL; return the status, or None if not up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "http://denied.test/", headers={"Host": "denied.test"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def test_cached_ensure_image_is_fast(agent_image: str) -> None:
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else None
    start = time.monotonic()
    assert ensure_image(RUNNER, ImageSpec(kind="agent", ca_bundle=ca)) == agent_image
    # One `podman image exists` call; generous bound for a loaded CI machine.
    assert time.monotonic() - start < 2.0

"""Fixtures for tests against real podman, rootful and rootless.

``paude_cli`` runs the real CLI in a scratch workspace with a scratch HOME that
holds fake credentials, either as root (rootful podman) or as the unprivileged
``paude-test`` user made by scripts/setup (rootless podman). Every session a
test starts is stopped afterwards, and any leftover object with the session's
label is removed, even when the test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTLESS_USER = "paude-test"
ROOTLESS_VENV = Path("/opt/paude-rootless-venv")
# This checkout's paude, whatever else is installed (worktrees side by side).
SRC = REPO / "src"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


ORDER_ENV = "PAUDE_TEST_ORDER"  # "reverse", "random" or "random:SEED"


def _order(config: pytest.Config) -> tuple[str, int]:
    value = os.environ.get(ORDER_ENV, "")
    kind, _, seed = value.partition(":")
    if kind == "random" and not seed:
        seed = str(random.SystemRandom().randrange(10**6))
        os.environ[ORDER_ENV] = f"random:{seed}"  # the header shows how to repeat it
    return kind, int(seed or 0)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    """Say the order (with a random seed, how to repeat it). Unlike
    ``pytest_report_header``, this runs for a non-root conftest too: the whole
    suite, run from ``tests``, shows it."""
    value = os.environ.get(ORDER_ENV)
    return f"podman tests run in {value} order ({ORDER_ENV}={value})" if value else None


@pytest.hookimpl(trylast=True)  # after pytest groups items by their fixtures' params
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run each module's tests reversed or shuffled (``PAUDE_TEST_ORDER``), to prove
    they do not depend on their order. Items stay grouped by module and by the
    parameters of their module- or session-scoped fixtures (the groups pytest
    made), so a module's sessions start once per mode. A function-scoped
    parameter (``paude_cli``'s mode, a test's own ``parametrize``) splits no
    group: grouping by it made blocks of one item, and nothing moved."""
    kind, seed = _order(config)
    if kind not in {"reverse", "random"}:
        return
    rng = random.Random(seed)

    def group(item: pytest.Item) -> tuple[str, str]:
        spec = getattr(item, "callspec", None)
        if spec is None:
            return str(item.path), ""
        # pytest records each parameter's scope for exactly this grouping.
        scopes = spec._arg2scope
        wide = {name: value for name, value in spec.params.items()
                if scopes[name].value != "function"}
        return str(item.path), repr(sorted(wide.items()))

    ordered: list[pytest.Item] = []
    for (path, _), members in itertools.groupby(items, key=group):
        block = list(members)
        if not Path(path).is_relative_to(Path(__file__).parent):
            pass  # another directory's tests keep their order
        elif kind == "reverse":
            block.reverse()
        else:
            rng.shuffle(block)
        ordered += block
    items[:] = ordered


@pytest.fixture(scope="session", autouse=True)
def podman_works() -> None:
    """Fail (never skip) every podman test when podman cannot run containers."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run scripts/setup", pytrace=False)
    info = subprocess.run(["podman", "info", "--format", "json"], capture_output=True,
                          text=True, timeout=60, check=False)
    if info.returncode != 0:
        pytest.fail(f"podman does not work: {info.stderr.strip()}", pytrace=False)


def _rootless_python() -> Path:
    """The rootless user's venv (made by scripts/setup: paude's dependencies).

    This checkout's paude comes from ``PYTHONPATH`` (see :data:`SRC`), so
    checkouts side by side never install over each other.
    """
    python = ROOTLESS_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run scripts/setup", pytrace=False)
    return python


@pytest.fixture(scope="session")
def rootless_python() -> Path:
    """The rootless user's Python with this checkout installed."""
    try:
        pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.fail(f"user {ROOTLESS_USER} is missing: run scripts/setup", pytrace=False)
    return _rootless_python()


@dataclass
class PaudeCLI:
    """Run the real paude CLI as one user, in one workspace, with one HOME."""

    mode: str  # "rootful" or "rootless"
    root: Path
    python: str
    extra_env: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "PAUDE_EXTRA_CA_CERTS": HOST_CA_BUNDLE,
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(SRC),
        }
        if self.mode == "rootless":
            user = pwd.getpwnam(ROOTLESS_USER)
            # Keep the user's image store while HOME points at the scratch home.
            env["XDG_DATA_HOME"] = f"{user.pw_dir}/.local/share"
            env["XDG_CONFIG_HOME"] = f"{user.pw_dir}/.config"
        env.update(self.extra_env)
        return env

    def argv(self, *args: str) -> list[str]:
        base = [self.python, "-m", "paude", *args]
        if self.mode == "rootless":
            pairs = [f"{k}={v}" for k, v in self.env().items()]
            return ["runuser", "-u", ROOTLESS_USER, "--", "env", "-i", *pairs, *base]
        return base

    def run(self, *args: str, check: bool = True, timeout: float = 900,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*args), cwd=self.workspace, env=self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"paude {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start paude without waiting, in its own process group (for killpg)."""
        return subprocess.Popen(self.argv(*args), cwd=self.workspace, env=self.env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run podman as the same user (so rootless sees its own containers)."""
        argv = ["podman", *args]
        env = {**os.environ, **self.extra_env}  # e.g. the paude's CONTAINERS_STORAGE_CONF
        if self.mode == "rootless":
            argv = ["runuser", "-u", ROOTLESS_USER, "--", "env", "-i",
                    *(f"{k}={v}" for k, v in self.env().items()), *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              check=False, cwd="/", env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def configure(self, config: dict[str, object]) -> None:
        """Write the workspace's paude.json and approve it, as its user would (paude trust)."""
        path = self.workspace / "paude.json"
        path.write_text(json.dumps(config))
        if self.mode == "rootless":
            user = pwd.getpwnam(ROOTLESS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)
        self.run("trust")

    def start(self, *args: str) -> str:
        """Start the workspace's session detached; return its name."""
        self.run("--detach", *args)
        sessions = json.loads(self.run("sessions", "--json").stdout)
        mine = [s for s in sessions if s["workspace"] == str(self.workspace)]
        assert mine, f"no session for {self.workspace} in {sessions}"
        self.started.append(mine[0]["name"])
        return str(mine[0]["name"])

    def cleanup(self) -> None:
        for name in self.started:
            self.run("stop", name, check=False)
            ids = self.podman("ps", "-aq", "--filter", f"label=paude.io/session={name}",
                              check=False).stdout.split()
            if ids:
                self.podman("rm", "-f", "-t", "0", *ids, check=False)
            networks = self.podman("network", "ls", "--format", "{{.Name}}", "--filter",
                                   f"label=paude.io/session={name}", check=False).stdout.split()
            if networks:
                self.podman("network", "rm", "-f", *networks, check=False)
            secrets = self.podman("secret", "ls", "--filter", f"name=^paude-{name}-",
                                  "--format", "{{.Name}}", check=False).stdout.split()
            if secrets:  # no label filter for secrets in podman 4.3: by name
                self.podman("secret", "rm", *secrets, check=False)


def make_fake_home(home: Path) -> None:
    """Create a HOME holding the credentials paude passes, and ones it must not."""
    (home / ".config" / "gcloud").mkdir(parents=True)
    (home / ".config" / "gcloud" / "application_default_credentials.json").write_text(
        '{"type": "authorized_user", "client_id": "test"}')
    (home / ".gitconfig").write_text("[user]\n\tname = Paude Test\n\temail = t@example.com\n")
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text('{"theme": "dark"}')
    (home / ".claude.json").write_text('{"hasCompletedOnboarding": true}')
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY THAT MUST NOT LEAK")
    (home / ".config" / "gh").mkdir()
    (home / ".config" / "gh" / "hosts.yml").write_text("github.com:\n  oauth_token: gho_LEAK\n")


@pytest.fixture(params=["rootful", "rootless"])
def paude_cli(request: pytest.FixtureRequest) -> Iterator[PaudeCLI]:
    """A paude CLI with a scratch workspace and HOME, rootful or rootless."""
    mode = str(request.param)
    python = str(request.getfixturevalue("rootless_python")) if mode == "rootless" \
        else sys.executable
    root = Path(tempfile.mkdtemp(prefix="paude-test-", dir="/tmp"))
    root.chmod(0o755)
    cli = PaudeCLI(mode=mode, root=root, python=python)
    cli.workspace.mkdir()
    make_fake_home(cli.home)
    if mode == "rootless":
        user = pwd.getpwnam(ROOTLESS_USER)
        for path in [root, *root.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        yield cli
    finally:
        cli.cleanup()
        shutil.rmtree(root, ignore_errors=True)

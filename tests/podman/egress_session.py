"""Run real paude sessions against the fake internet, and probe from inside the agent.

Used by tests/podman/test_egress*.py. A :class:`Sandbox` is one user's paude
(rootful as root, or rootless as the ``paude-test`` user made by
scripts/setup) with a scratch HOME, pointed at a :class:`fakenet.FakeNet`.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakenet import BASE_IMAGE, FakeNet, random_name

ROOTLESS_USER = "paude-test"
ROOTLESS_VENV = Path("/opt/paude-rootless-venv")
SRC = Path(__file__).resolve().parents[2] / "src"  # this checkout's paude
API_KEY = "test-key-not-secret"
MODES = ("rootful", "rootless")

# Builds the images a session would use, exactly as `paude` computes them.
BUILD_PY = """
import sys
from pathlib import Path
from paude.backends.podman.images import agent_image_spec, gateway_image_spec, proxy_image_spec
from paude.cli import context as cx
from paude.container import ensure_image
from paude.runner import SystemRunner
ws = Path.cwd()
loaded = cx.load(cx.Globals(), ws, {})
spec = cx.build_session_spec(loaded, ws, cx.StartOptions(name=sys.argv[1]))
images = [agent_image_spec(loaded.config, spec), proxy_image_spec(loaded.config)]
if spec.model_auth is not None:
    images.append(gateway_image_spec(spec))
for image in images:
    print(ensure_image(SystemRunner(), image))
"""


@dataclass
class Sandbox:
    """paude as one user, with one scratch HOME, using one fake internet."""

    net: FakeNet
    mode: str  # "rootful" or "rootless"
    root: Path
    python: str
    sessions: list[str] = field(default_factory=list)
    started: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # replaces the API key setup

    @property
    def home(self) -> Path:
        return self.root / "home"

    def env(self, *, fake_dns: bool = True) -> dict[str, str]:
        """Return paude's environment; without ``fake_dns`` podman keeps the host's DNS
        (image builds must reach the package registries)."""
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
            "ANTHROPIC_API_KEY": API_KEY,
            "ANTHROPIC_BASE_URL": "https://api.anthropic.com",
            "PAUDE_EXTRA_CA_CERTS": self.net.ca.bundle_with_host(),
            "PYTHONPATH": str(SRC),
        }
        if self.extra_env:
            del env["ANTHROPIC_API_KEY"], env["ANTHROPIC_BASE_URL"]
            env.update(self.extra_env)
        if fake_dns:
            env["CONTAINERS_CONF"] = str(self.net.containers_conf)
        if self.mode == "rootless":
            user = pwd.getpwnam(ROOTLESS_USER)
            env["XDG_DATA_HOME"] = f"{user.pw_dir}/.local/share"
            env["XDG_CONFIG_HOME"] = f"{user.pw_dir}/.config"
        return env

    def _argv(self, argv: list[str], env: dict[str, str]) -> list[str]:
        if self.mode == "rootless":
            pairs = [f"{k}={v}" for k, v in env.items()]
            return ["runuser", "-u", ROOTLESS_USER, "--", "env", "-i", *pairs, *argv]
        return argv

    def paude(
        self,
        *args: str,
        workspace: Path | None = None,
        check: bool = True,
        fake_dns: bool = True,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real paude CLI."""
        env = self.env(fake_dns=fake_dns)
        proc = subprocess.run(
            self._argv([self.python, "-m", "paude", *args], env),
            cwd=workspace or self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"paude {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run podman as paude's user (rootless sees only its own containers)."""
        env = self.env()
        proc = subprocess.run(
            self._argv(["podman", *args], env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def _workspace(self, name: str) -> Path:
        path = self.root / "workspaces" / name
        path.mkdir(parents=True, exist_ok=True)
        self._chown(path)
        return path

    def start(self, *flags: str) -> str:
        """Start a detached session with a unique name; return the name."""
        name = random_name("pt")
        self.sessions.append(name)
        self._warm_images(name, flags)
        self.started[name] = self.paude(
            "--detach", "--name", name, *flags, workspace=self._workspace(name)
        )
        return name

    def _warm_images(self, name: str, flags: tuple[str, ...]) -> None:
        """Build missing images first with the host's DNS (the fake DNS cannot reach
        the registries); the tags come from paude's own --dry-run plan."""
        plan = self.paude("--dry-run", "--name", name, *flags, workspace=self._workspace(name))
        tags = re.findall(r"skipped when (\S+) exists", plan.stdout)
        missing = [t for t in tags if self._lacks(t)]
        if self.mode == "rootless":
            # Root's store usually has them (same inputs, same tag): copying
            # is much faster than an npm install.
            for tag in [*missing, BASE_IMAGE]:
                if self._lacks(tag) and _root_has(tag):
                    self._copy_from_root(tag)
            missing = [t for t in missing if self._lacks(t)]
        if missing:
            self._build_images(name, missing)

    def _build_images(self, name: str, wanted: list[str]) -> None:
        """Build with paude's own image code and the host's DNS, starting no
        container: a warm-up *session* would let the agent try the real
        api.anthropic.com through the host's resolver."""
        env = self.env(fake_dns=False)
        proc = subprocess.run(
            self._argv([self.python, "-c", BUILD_PY, name], env),
            cwd=self._workspace(name),
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        built = proc.stdout.split()
        if proc.returncode != 0 or not set(wanted) <= set(built):
            raise AssertionError(
                f"building {wanted} gave {built} (exit {proc.returncode}):\n{proc.stderr}"
            )

    def _lacks(self, tag: str) -> bool:
        return self.podman("image", "exists", tag, check=False).returncode != 0

    def _copy_from_root(self, tag: str) -> None:
        env = self.env(fake_dns=False)
        with subprocess.Popen(["podman", "save", tag], stdout=subprocess.PIPE) as save:
            subprocess.run(
                self._argv(["podman", "load", "-q"], env),
                stdin=save.stdout,
                env=env,
                cwd="/",
                capture_output=True,
                timeout=600,
                check=True,
            )

    def exec(
        self, name: str, script: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c script`` in the session's agent through ``paude exec``."""
        return self.paude("exec", name, "--", "sh", "-c", script, check=False, timeout=timeout)

    def session(self, name: str) -> dict[str, str]:
        found = json.loads(self.paude("sessions", "--json").stdout)
        return next(s for s in found if s["name"] == name)

    def container_ip(self, container: str) -> dict[str, str]:
        """Return {network: address} of a container."""
        data = json.loads(self.podman("inspect", container).stdout)[0]
        return {k: v["IPAddress"] for k, v in data["NetworkSettings"]["Networks"].items()}

    def stop(self, name: str) -> None:
        self.paude("stop", name, check=False)
        ids = self.podman(
            "ps", "-aq", "--filter", f"label=paude.io/session={name}", check=False
        ).stdout.split()
        if ids:
            self.podman("rm", "-f", "-t", "0", *ids, check=False)
        networks = self.podman("network", "ls", "--format", "{{.Name}}", "--filter",
                               f"label=paude.io/session={name}", check=False).stdout.split()
        if networks:
            self.podman("network", "rm", "-f", *networks, check=False)

    def close(self) -> None:
        for name in reversed(self.sessions):
            self.stop(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def _chown(self, path: Path) -> None:
        if self.mode == "rootless":
            user = pwd.getpwnam(ROOTLESS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)


def _root_has(tag: str) -> bool:
    exists = subprocess.run(["podman", "image", "exists", tag], capture_output=True, check=False)
    return exists.returncode == 0


def make_home(home: Path) -> None:
    """A HOME whose Claude Code has finished onboarding (else it quits at start-up
    when it cannot reach platform.claude.com)."""
    home.mkdir(parents=True)
    (home / ".claude.json").write_text('{"hasCompletedOnboarding": true, "theme": "dark"}')


def open_sandbox(net: FakeNet, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Yield a :class:`Sandbox` for ``request.param`` (a :data:`MODES` entry); every
    session it started is removed afterwards."""
    mode = str(request.param)
    if mode == "rootless":
        # tests/podman/conftest.py checks the rootless user's venv.
        request.getfixturevalue("rootless_python")
    root = Path(tempfile.mkdtemp(prefix="paude-test-", dir="/tmp"))
    root.chmod(0o755)
    python = sys.executable if mode == "rootful" else str(ROOTLESS_VENV / "bin" / "python")
    box = Sandbox(net, mode, root, python)
    make_home(box.home)
    if mode == "rootless":
        for path in [root, *root.rglob("*")]:
            box._chown(path)
    try:
        yield box
    finally:
        box.close()

"""The podman backend: glue between the pure argv builders and the runner."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from paude.backends.base import Reporter, Session, SessionSpec, SessionStatus
from paude.backends.podman import argv as pa
from paude.backends.podman.images import agent_image_spec, proxy_image_spec
from paude.backends.podman.parse import Container, group_sessions, parse_ps_json
from paude.backends.podman.planning import build_agent_run, build_session_plan, user_args
from paude.backends.podman.state import squid_conf_path
from paude.config.models import PaudeConfig
from paude.container.image import ImageSpec, ensure_image
from paude.errors import PaudeError, SessionNotFoundError
from paude.naming import LABEL_SESSION
from paude.plan import Plan
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner
from paude.squid import render_squid_conf

PROXY_IP_PLACEHOLDER = "<proxy-ip>"


class PodmanBackend:
    """Sessions as podman containers on a per-session internal network."""

    name = "podman"

    def __init__(self, config: PaudeConfig, *, runner: Runner, reporter: Reporter) -> None:
        self.config = config
        self.runner = runner
        self.reporter = reporter

    # -- discovery ---------------------------------------------------------
    def _containers(self, session: str | None = None) -> list[Container]:
        argv = pa.build_list_argv()
        if session is not None:
            argv += ["--filter", f"label={LABEL_SESSION}={session}"]
        return parse_ps_json(self.runner.run(argv, timeout=TIMEOUT_INSPECT).stdout)

    def list_sessions(self) -> list[Session]:
        """Return every podman session, newest first, from container labels."""
        return group_sessions(self._containers())

    def find_session(self, name: str) -> Session | None:
        """Return the session called ``name``, or ``None``."""
        found = group_sessions(self._containers(name))
        return found[0] if found else None

    # -- planning ----------------------------------------------------------
    def plan_session(self, spec: SessionSpec) -> Plan:
        """Return the steps that start ``spec``, changing nothing."""
        agent = agent_image_spec(self.config, spec)
        proxy = None if spec.allow_network else proxy_image_spec(self.config)
        return build_session_plan(
            spec,
            agent_image=agent,
            proxy_image=proxy,
            squid_conf_path=str(squid_conf_path(spec.name)),
            user_args=tuple(self._user_args()),
            created_at=_now(),
        )

    # -- lifecycle ---------------------------------------------------------
    def start_session(self, spec: SessionSpec) -> Session:
        """Create the session, or repair and restart the parts that are down."""
        names = pa.Names(spec.name)
        by_role = {c.labels.get("paude.io/role", ""): c for c in self._containers(spec.name)}
        agent = by_role.get("agent")
        _check_network_mode(spec, agent)
        agent_tag = self._ensure(agent_image_spec(self.config, spec), spec.rebuild)
        proxy_ip = None
        if not spec.allow_network:
            proxy_tag = self._ensure(proxy_image_spec(self.config), spec.rebuild)
            proxy_ip = self._ensure_proxy(spec, names, proxy_tag, by_role.get("proxy"))
        if agent is None:
            self._run_agent(spec, names, agent_tag, proxy_ip)
        elif not agent.running:
            self.runner.run(["podman", "start", names.agent], timeout=TIMEOUT_CREATE)
        session = self.find_session(spec.name)
        if session is None or session.status is not SessionStatus.RUNNING:
            detail = session.detail if session else "no container was created"
            raise PaudeError(f"session {spec.name} did not start: {detail}",
                             hint=f"Run: podman logs {names.agent}")
        return session

    def _ensure(self, image: ImageSpec, rebuild: bool) -> str:
        def announce(tag: str) -> None:
            self.reporter.info(f"Building image {tag} (first time only; this takes a while)")

        with self.reporter.status(f"Preparing {image.kind} image"):
            return ensure_image(self.runner, image, rebuild=rebuild, on_build=announce)

    def _ensure_proxy(
        self, spec: SessionSpec, names: pa.Names, image: str, proxy: Container | None
    ) -> str:
        conf = squid_conf_path(spec.name)
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(render_squid_conf(spec.allowed_domains), encoding="utf-8")
        conf.chmod(0o644)  # squid reads it as its own unprivileged user
        subnet = self._network_subnet(names)
        proxy_ip = pa.proxy_ip_for_subnet(subnet)
        if proxy is None:
            argv = pa.build_proxy_run_argv(
                names, image=image, proxy_ip=proxy_ip, squid_conf_path=str(conf),
                created_at=_now())
            self.runner.run(argv, timeout=TIMEOUT_CREATE)
        elif not proxy.running:
            self.runner.run(["podman", "start", names.proxy], timeout=TIMEOUT_CREATE)
        else:
            self.runner.run(["podman", "exec", names.proxy, "squid", "-k", "reconfigure",
                             "-f", pa.SQUID_CONF_IN_CONTAINER], timeout=TIMEOUT_INSPECT)
        return proxy_ip

    def _network_subnet(self, names: pa.Names) -> str:
        inspect = ["podman", "network", "inspect", names.network]
        found = self.runner.run(inspect, timeout=TIMEOUT_INSPECT, check=False)
        if found.returncode != 0:
            self.runner.run(pa.build_network_create_argv(names), timeout=TIMEOUT_CREATE)
            found = self.runner.run(inspect, timeout=TIMEOUT_INSPECT)
        data = json.loads(found.stdout)
        return str(data[0]["subnets"][0]["subnet"])

    def _run_agent(
        self, spec: SessionSpec, names: pa.Names, image: str, proxy_ip: str | None
    ) -> None:
        run = build_agent_run(spec, image=image, proxy_ip=proxy_ip,
                              user_args=tuple(self._user_args()), created_at=_now())
        self.runner.run(pa.build_agent_run_argv(run), timeout=TIMEOUT_CREATE,
                        env=dict(spec.env))

    def _user_args(self) -> list[str]:
        return user_args(os.geteuid(), os.environ.get("SUDO_UID"))

    def attach_session(self, name: str) -> int:
        """Hand the terminal to the session's tmux (replaces this process)."""
        self._require_running(name)
        self.runner.exec_replace(pa.build_attach_argv(pa.Names(name)))
        return 0  # only reached by a recording runner

    def exec_in_session(self, name: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in the agent; stdio and the exit code pass through."""
        session = self._require_running(name)
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        full = pa.build_exec_argv(pa.Names(name), list(argv), workdir=session.workspace or "/",
                                  tty=tty)
        return self.runner.stream(full, timeout=None)

    def _require_running(self, name: str) -> Session:
        session = self.find_session(name)
        if session is None:
            raise SessionNotFoundError(f"no session named {name!r}",
                                       hint="Run: paude sessions")
        if session.status is SessionStatus.STOPPED:
            raise PaudeError(f"session {name} is stopped",
                             hint="Run: paude  (in its workspace) to start it again")
        return session

    def stop_session(self, name: str) -> None:
        """Remove the session's containers and network (the workspace stays on the host)."""
        containers = self._containers(name)
        names = pa.Names(name)
        network = self.runner.run(["podman", "network", "exists", names.network],
                                  timeout=TIMEOUT_INSPECT, check=False).returncode == 0
        if not containers and not network:
            raise SessionNotFoundError(f"no session named {name!r}", hint="Run: paude sessions")
        if containers:
            self.runner.run(["podman", "rm", "-f", "-t", "0", *(c.name for c in containers)],
                            timeout=TIMEOUT_CREATE)
        if network:
            self.runner.run(["podman", "network", "rm", names.network], timeout=TIMEOUT_CREATE)
        squid_conf_path(name).unlink(missing_ok=True)

    def sync_workspace(self, name: str, direction: str = "both") -> None:
        """Do nothing: a podman session bind-mounts the workspace, always in sync."""
        if self.find_session(name) is None:
            raise SessionNotFoundError(f"no session named {name!r}", hint="Run: paude sessions")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_network_mode(spec: SessionSpec, agent: Container | None) -> None:
    if agent is None:
        return
    running = agent.labels.get("paude.io/network", "restricted")
    wanted = "unrestricted" if spec.allow_network else "restricted"
    if running != wanted:
        raise PaudeError(
            f"session {spec.name} exists with {running} network; it cannot switch to {wanted}",
            hint=f"Run: paude stop {spec.name}, then start it again",
        )

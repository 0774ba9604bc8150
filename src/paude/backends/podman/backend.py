"""The podman backend: glue between the pure argv builders and the runner."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from paude.backends.base import Reporter, Session, SessionSpec, SessionStatus
from paude.backends.podman import argv as pa
from paude.backends.podman.classify import ClassifyingRunner
from paude.backends.podman.images import agent_image_spec, proxy_image_spec
from paude.backends.podman.network import (
    EGRESS_POOL,
    candidate_subnets,
    ensure_egress_network,
    ensure_network,
    require_ours,
)
from paude.backends.podman.parse import Container, group_sessions, parse_ps_json
from paude.backends.podman.planning import build_agent_run, build_session_plan, user_args
from paude.backends.podman.proxy import build_reload_argv, parse_squid_conf_clients
from paude.backends.podman.removal import run_remove_session
from paude.backends.podman.state import squid_conf_path
from paude.config.models import PaudeConfig
from paude.container.image import ImageSpec, ensure_image
from paude.errors import CommandFailedError, PaudeError, SessionNotFoundError
from paude.images.preflight import run_preflight
from paude.naming import LABEL_NETWORK, LABEL_ROLE, LABEL_SESSION
from paude.plan import Plan
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner
from paude.squid import render_squid_conf
from paude.trust.git import apply_mount_points

T = TypeVar("T")
# What podman prints (and then runs the container without limits) on such hosts.
ROOTLESS_V1_NOTICE = "Resource limits are not supported and ignored on cgroups V1 rootless"


def _parallel(*calls: Callable[[], T]) -> list[T]:
    """Run independent podman calls at once (each costs ~50-100 ms of startup)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


class PodmanBackend:
    """Sessions as podman containers on a per-session internal network."""

    name = "podman"

    def __init__(self, config: PaudeConfig, *, runner: Runner, reporter: Reporter) -> None:
        self.config = config
        self.runner: Runner = ClassifyingRunner(runner)
        self.reporter = reporter

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

    def plan_session(self, spec: SessionSpec) -> Plan:
        """Return the steps that start ``spec``, changing nothing."""
        return build_session_plan(
            spec,
            agent_image=agent_image_spec(self.config, spec),
            proxy_image=None if spec.allow_network else proxy_image_spec(self.config),
            squid_conf_path=str(squid_conf_path(spec.name)),
            subnet=candidate_subnets(spec.name)[0],
            egress_subnet=candidate_subnets(spec.name, EGRESS_POOL)[0],
            user_args=tuple(user_args(os.geteuid(), spec.workspace.stat().st_uid)),
            created_at=_now(),
            resources=self.config.backend.resources,
            proxy_resources=self.config.backend.proxy_resources,
            timeouts=self.config.backend.timeout,
        )

    def start_session(self, spec: SessionSpec) -> Session:
        """Create the session, or repair and restart the parts that are down.

        A running session is returned as it is, after one ``podman ps``.
        """
        by_role = {c.labels.get(LABEL_ROLE, ""): c for c in self._containers(spec.name)}
        current = group_sessions(list(by_role.values()))
        _check_network_mode(spec, by_role.get("agent"))
        if current and current[0].status is SessionStatus.RUNNING and not spec.rebuild:
            if not spec.allow_network:
                self._refresh_allowlist(spec)
            return current[0]
        images = [agent_image_spec(self.config, spec)]
        if not spec.allow_network:
            images.append(proxy_image_spec(self.config))
        tags = _parallel(*(lambda i=i: self._ensure(i, spec.rebuild) for i in images))
        if by_role.get("agent") and spec.rebuild:
            self.reporter.warn(f"session {spec.name} keeps its image until you stop it")
        extended = self.config.backend.resources.limits.extended
        if extended and not by_role.get("agent"):
            self.reporter.warn(f"the podman backend ignores {', '.join(extended)}: extended"
                               " resources such as GPUs apply on OpenShift only")
        _SessionStarter(self, spec, by_role, tags).start()
        verb = "Started" if not by_role else "Restarted"
        network = "unrestricted" if spec.allow_network else "restricted"
        self.reporter.info(f"{verb} session {spec.name} ({network} network)")
        return Session(spec.name, "podman", SessionStatus.RUNNING, str(spec.workspace),
                       by_role["agent"].labels.get("paude.io/created", "") if by_role.get(
                           "agent") else _now(), network)

    def _refresh_allowlist(self, spec: SessionSpec) -> None:
        """Apply a changed allowlist (e.g. a new --allow-domain) to the running proxy."""
        conf = squid_conf_path(spec.name)
        if not conf.exists():
            return  # started elsewhere: its proxy keeps the allowlist it has
        current = conf.read_text(encoding="utf-8")
        wanted = render_squid_conf(spec.allowed_domains,
                                   clients=parse_squid_conf_clients(current))
        if wanted != current:
            conf.write_text(wanted, encoding="utf-8")
            self.runner.run(build_reload_argv(pa.Names(spec.name).proxy),
                            timeout=TIMEOUT_INSPECT)
            self.reporter.info(f"Updated the allowlist of session {spec.name}")

    def _ensure(self, image: ImageSpec, rebuild: bool) -> str:
        def preflight(tag: str) -> None:  # a second now instead of a failed build minutes on
            run_preflight([image], os.environ)

        return ensure_image(self.runner, image, rebuild=rebuild, on_build=preflight,
                            display=self.reporter)

    def attach_session(self, name: str) -> int:
        """Hand the terminal to the session's tmux (replaces this process).

        A degraded session (its proxy stopped) gets its proxy back first.
        """
        session = self._require_running(name)
        if session.status is SessionStatus.DEGRADED:
            self.runner.run(["podman", "start", pa.Names(name).proxy], timeout=TIMEOUT_CREATE)
            self.reporter.info(f"Restarted the proxy of session {name}")
        self.runner.exec_replace(pa.build_attach_argv(pa.Names(name)))
        return 0  # only reached with a recording runner

    def exec_in_session(self, name: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in the agent; stdio and the exit code pass through."""
        session = self._require_running(name)
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        full = pa.build_exec_argv(pa.Names(name), list(argv),
                                  workdir=session.workspace or "/", tty=tty)
        return self.runner.stream(full, timeout=None)

    def _require_running(self, name: str) -> Session:
        session = self.find_session(name)
        if session is None:
            raise SessionNotFoundError(f"no session named {name!r}", hint="Run: paude sessions")
        if session.status is SessionStatus.STOPPED:
            raise PaudeError(f"session {name} is stopped ({session.detail})",
                             hint="Run paude in its workspace to start it again.")
        if session.status is SessionStatus.ERROR:
            # e.g. `podman rmi -f` of its image, which removes the container too
            raise PaudeError(f"session {name} has no agent container (removed outside paude)",
                             hint="Run paude in its workspace to recreate it, "
                                  f"or: paude stop {name}")
        return session

    def stop_session(self, name: str) -> None:
        """Remove the session's containers and networks (the workspace stays on the host)."""
        run_remove_session(self.runner, name)

    def sync_workspace(self, name: str, direction: str = "both") -> None:
        """Do nothing: a podman session bind-mounts the workspace, always in sync."""
        if self.find_session(name) is None:
            raise SessionNotFoundError(f"no session named {name!r}", hint="Run: paude sessions")


class _SessionStarter:
    """Bring each missing or stopped part of one session up."""

    def __init__(self, backend: PodmanBackend, spec: SessionSpec,
                 by_role: dict[str, Container], tags: list[str]) -> None:
        self.runner = backend.runner
        self.reporter = backend.reporter
        self.config = backend.config
        self.spec = spec
        self.by_role = by_role
        self.tags = tags
        self.names = pa.Names(spec.name)

    def start(self) -> None:
        restricted = not self.spec.allow_network
        prepare: list[Callable[[], str | None]] = [
            lambda: ensure_egress_network(self.runner, self.names, restricted=restricted)]
        if restricted:
            prepare.append(self._prepare_proxy_network)
        proxy_ip = _parallel(*prepare)[-1] if restricted else None
        steps = [lambda: self._agent(proxy_ip)]
        if proxy_ip is not None:
            steps.append(lambda: self._proxy(proxy_ip))
        _parallel(*steps)  # the agent does not wait for its proxy: it starts in 0.3 s

    def _prepare_proxy_network(self) -> str:
        subnet = ensure_network(self.runner, self.names)
        conf = squid_conf_path(self.spec.name)
        conf.parent.mkdir(parents=True, exist_ok=True)
        # Only the session's internal network may use the proxy: its egress
        # network is routed, reachable from other containers.
        text = render_squid_conf(self.spec.allowed_domains, clients=[subnet])
        changed = not conf.exists() or conf.read_text(encoding="utf-8") != text
        conf.write_text(text, encoding="utf-8")
        conf.chmod(0o644)  # squid reads it as its own unprivileged user
        proxy = self.by_role.get("proxy")
        if changed and proxy is not None and proxy.running:
            self.runner.run(build_reload_argv(self.names.proxy), timeout=TIMEOUT_INSPECT)
        return pa.proxy_ip_for_subnet(subnet)

    def _proxy(self, proxy_ip: str) -> None:
        proxy = self.by_role.get("proxy")
        if proxy is None:
            argv = pa.build_proxy_run_argv(
                self.names, image=self.tags[1], proxy_ip=proxy_ip,
                squid_conf_path=str(squid_conf_path(self.spec.name)), created_at=_now(),
                resources=self.config.backend.proxy_resources)
            self._run_or_adopt(argv, self.names.proxy)
        elif not proxy.running:
            self.runner.run(["podman", "start", self.names.proxy], timeout=TIMEOUT_CREATE)

    def _agent(self, proxy_ip: str | None) -> None:
        agent = self.by_role.get("agent")
        if agent is None:
            owner = self.spec.workspace.stat()
            apply_mount_points(self.spec.guard_mounts, (owner.st_uid, owner.st_gid))
            run = build_agent_run(
                self.spec, image=self.tags[0], proxy_ip=proxy_ip,
                user_args=tuple(user_args(os.geteuid(), self.spec.workspace.stat().st_uid)),
                created_at=_now(), resources=self.config.backend.resources,
                timeouts=self.config.backend.timeout)
            stderr = self._run_or_adopt(pa.build_agent_run_argv(run), self.names.agent,
                                        env=dict(self.spec.env))
            if ROOTLESS_V1_NOTICE in stderr:
                self.reporter.warn(
                    "resource limits are ignored: rootless podman cannot set them on a cgroup v1"
                    " host (run rootful, or boot with cgroup v2)")
        elif not agent.running:
            self.runner.run(["podman", "start", self.names.agent], timeout=TIMEOUT_CREATE)

    def _run_or_adopt(self, argv: list[str], container: str,
                      env: dict[str, str] | None = None) -> str:
        """``podman run`` ``container``, or start the one that appeared meanwhile.

        The session lock keeps paude commands apart, but a ``podman run`` of a
        paude killed with ``kill -9`` goes on by itself and can create the
        container after this start listed none. Returns podman's stderr.
        """
        try:
            return self.runner.run(argv, timeout=TIMEOUT_CREATE, env=env).stderr
        except CommandFailedError as err:
            if "already in use" not in err.stderr:
                raise
            found = self.runner.run(["podman", "inspect", "--format", "{{json .Config.Labels}}",
                                     container], timeout=TIMEOUT_INSPECT)
            require_ours(json.loads(found.stdout or "null"), self.spec.name,
                         what=f"container {container}")
            return self.runner.run(["podman", "start", container], timeout=TIMEOUT_CREATE).stderr


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_network_mode(spec: SessionSpec, agent: Container | None) -> None:
    if agent is None:
        return
    running = agent.labels.get(LABEL_NETWORK, "restricted")
    wanted = "unrestricted" if spec.allow_network else "restricted"
    if running != wanted:
        raise PaudeError(
            f"session {spec.name} runs with {running} network and cannot switch to {wanted}",
            hint=f"Run: paude stop {spec.name}, then start it again",
        )

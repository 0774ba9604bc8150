"""The podman backend: glue between the pure argv builders and the runner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from paude.backends.base import (
    Reporter,
    Session,
    SessionSpec,
    SessionStatus,
    require_session,
)
from paude.backends.entry import SessionEntry
from paude.backends.images import has_gateway
from paude.backends.podman import argv as pa
from paude.backends.podman.classify import ClassifyingRunner
from paude.backends.podman.execute import PlanExecutor
from paude.backends.podman.gateway import run_wait_gateway
from paude.backends.podman.images import agent_image_spec, gateway_image_spec, proxy_image_spec
from paude.backends.podman.network import require_ours
from paude.backends.podman.parse import Container, group_sessions, parse_ps_json
from paude.backends.podman.planning import (
    PodmanState,
    StartInputs,
    build_start_plan,
    parse_host_routes,
    parse_network_subnets,
    user_args,
)
from paude.backends.podman.proxy import PodmanSessionProxy, run_find_proxy
from paude.backends.podman.removal import run_remove_session
from paude.backends.podman.secret import run_find_secret
from paude.backends.podman.state import claude_json_path, squid_conf_path
from paude.config.models import Amounts, PaudeConfig, Resources
from paude.container.image import build_image_tag
from paude.errors import (
    CommandFailedError,
    DeviceMissingError,
    PaudeError,
    SessionNotRunningError,
)
from paude.images.preflight import run_preflight
from paude.naming import LABEL_NETWORK, LABEL_ROLE, LABEL_SESSION, NetworkMode
from paude.plan import Argv, File, Plan
from paude.runner import TIMEOUT_CREATE, TIMEOUT_INSPECT, Runner

_PLAN_ATTEMPTS = 3
# Present on a cgroup v2 host only; rootless podman on v1 runs without limits.
CGROUP_V2_MARKER = "/sys/fs/cgroup/cgroup.controllers"


def limits_apply() -> bool:
    """Answer whether podman can set resource limits here (rootful, or cgroup v2).

    Where it cannot, the plan passes no limit flags: podman would ignore them
    and print a warning first, and a ``podman run`` left running by a killed
    paude dies of SIGPIPE writing that warning to the dead paude's pipe,
    before it creates its container.
    """
    return os.geteuid() == 0 or Path(CGROUP_V2_MARKER).exists()


def _applicable(resources: Resources) -> Resources | None:
    """Return what podman applies of ``resources`` here: all, or only devices (GPUs).

    Devices are no cgroup limit: they apply where limits do not (rootless, cgroup v1).
    """
    if limits_apply():
        return resources
    devices = resources.limits.extended or resources.requests.extended
    return Resources(requests=Amounts(), limits=Amounts(**devices)) if devices else None


class PodmanBackend(SessionEntry):
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

    def _state(self, spec: SessionSpec) -> PodmanState:
        """Read what podman has of the session: one ``ps``, one ``network ls`` and, for a
        session with a gateway, one ``secret inspect``, at once."""
        names = pa.Names(spec.name)
        with ThreadPoolExecutor(max_workers=3) as pool:
            listing = pool.submit(self._containers, spec.name)
            found = pool.submit(self.runner.run, pa.build_all_networks_argv(),
                                timeout=TIMEOUT_INSPECT)
            secret = pool.submit(run_find_secret, self.runner, names.gateway,
                                 timeout=TIMEOUT_INSPECT) if has_gateway(spec) else None
            containers, networks = listing.result(), found.result().stdout
            secret_labels = secret.result() if secret is not None else None
        for net in json.loads(networks or "[]"):
            if net.get("name") in (names.network, names.egress_network):
                # Never join a network someone else made under our name: it could route anywhere.
                require_ours(net.get("labels"), spec.name, what=f"network {net['name']}")
        if secret_labels is not None:
            # Never remove (or hand the gateway) a secret paude did not make for this session.
            require_ours(secret_labels, spec.name, what=f"secret {names.gateway}")
        conf = squid_conf_path(spec.name)
        return PodmanState(
            containers={c.labels.get(LABEL_ROLE, ""): c for c in containers},
            subnets=parse_network_subnets(networks),
            host_subnets=parse_host_routes(_read_host_routes()),
            squid_conf=conf.read_text(encoding="utf-8") if conf.exists() else None,
            missing_mount_points=frozenset(
                m.path for m in spec.guard_mounts if not os.path.lexists(m.path)),
            gateway_secret=secret_labels is not None)

    def _plan(self, spec: SessionSpec, state: PodmanState) -> Plan:
        _check_network_mode(spec, state.containers.get("agent"))
        owner = spec.workspace.stat()
        return build_start_plan(spec, state, StartInputs(
            agent_image=agent_image_spec(self.config, spec),
            proxy_image=None if spec.allow_network else proxy_image_spec(self.config),
            squid_conf_path=str(squid_conf_path(spec.name)),
            claude_json_path=str(claude_json_path(spec.name)),
            gateway_image=gateway_image_spec(spec) if has_gateway(spec) else None,
            user_args=tuple(user_args(os.geteuid(), owner.st_uid)),
            workspace_owner=(owner.st_uid, owner.st_gid),
            created_at=_now(),
            resources=_applicable(self.config.backend.resources),
            proxy_resources=_applicable(self.config.backend.proxy_resources),
            timeouts=self.config.backend.timeout,
        ))

    def _warn_unapplied_limits(self, state: PodmanState, *, first: bool) -> None:
        """Say, before the agent is created, which limits podman cannot apply here."""
        if not first or "agent" in state.containers:
            return
        if not limits_apply():
            self.reporter.warn(
                "resource limits are ignored: rootless podman cannot set them on a cgroup v1"
                " host (run rootful, or boot with cgroup v2)")

    def plan_session(self, spec: SessionSpec) -> Plan:
        """Return the steps ``start_session`` would run now, changing nothing (reads podman)."""
        return self._plan(spec, self._state(spec))

    def start_session(self, spec: SessionSpec) -> Session:
        """Create the session, or repair and restart the parts that are down.

        Runs exactly the plan ``plan_session`` returns for the same state. A
        running session is returned as it is (after at most an allowlist
        refresh). A subnet taken between reading the state and creating the
        network (another session starting) means a new plan from a new state.
        """
        for attempt in range(_PLAN_ATTEMPTS):
            state = self._state(spec)
            self._warn_unapplied_limits(state, first=attempt == 0)
            plan = self._plan(spec, state)
            try:
                self._execute(spec, plan)
            except CommandFailedError as err:
                if attempt + 1 == _PLAN_ATTEMPTS:
                    raise
                if "secret name in use" in err.stderr:
                    # A `podman secret create` of a paude killed with kill -9 went on
                    # by itself: the next state has the secret, its plan removes it.
                    continue
                if "already in use" in err.stderr:
                    # A `podman run` of a paude killed with kill -9 goes on by
                    # itself: its container may appear after the state was read.
                    self._require_ours(err.argv[err.argv.index("--name") + 1], spec.name)
                elif "already used" not in err.stderr:
                    raise
                continue
            break
        agent = state.containers.get("agent")
        current = group_sessions(list(state.containers.values()))
        network = spec.network
        if current and current[0].status is SessionStatus.RUNNING and not spec.rebuild:
            if any(isinstance(step, File) for step in plan.steps):
                self.reporter.info(f"Updated the allowlist of session {spec.name}")
            return current[0]
        if agent is not None and spec.rebuild:
            self.reporter.warn(f"session {spec.name} keeps its image until you stop it")
        verb = "Started" if not state.containers else "Restarted"
        self.reporter.info(f"{verb} session {spec.name} ({network} network)")
        created = agent.labels.get("paude.io/created", "") if agent is not None else _now()
        return Session(spec.name, "podman", SessionStatus.RUNNING, str(spec.workspace),
                       created, network)

    def _execute(self, spec: SessionSpec, plan: Plan) -> None:
        try:
            PlanExecutor(self.runner, self.reporter, on_build=self._preflight(spec)).run(plan)
            if _starts_gateway(plan):
                run_wait_gateway(self.runner, pa.Names(spec.name).gateway)
        except DeviceMissingError:
            self._remove_unstarted_agent(spec)
            raise

    def _remove_unstarted_agent(self, spec: SessionSpec) -> None:
        """Remove an agent container that never ran (its devices are missing).

        Created with devices this host lacks, it would fail the same way on
        every start: removed, the next ``paude`` creates it from the config
        as it is then. A container that ran once is left alone (``paude stop``).
        """
        agent = self._state(spec).containers.get("agent")
        if agent is not None and agent.state == "created":
            self.runner.run(["podman", "rm", "-f", agent.name], timeout=TIMEOUT_CREATE)

    def _preflight(self, spec: SessionSpec) -> Callable[[str], None]:
        """Return the check run before a build: a second now, not a failed build minutes on."""
        images = [agent_image_spec(self.config, spec), proxy_image_spec(self.config)]

        def check(tag: str) -> None:
            run_preflight([i for i in images if build_image_tag(i) == tag], os.environ)

        return check

    def _require_ours(self, container: str, session: str) -> None:
        found = self.runner.run(["podman", "inspect", "--format", "{{json .Config.Labels}}",
                                 container], timeout=TIMEOUT_INSPECT)
        require_ours(json.loads(found.stdout or "null"), session, what=f"container {container}")

    def _refuse_entry(self, session: Session) -> None:
        if session.status is SessionStatus.ERROR:
            # e.g. `podman rmi -f` of its image, which removes the container too
            raise SessionNotRunningError(
                f"session {session.name} has no agent container (removed outside paude)",
                hint=f"Run paude in its workspace to recreate it, or: paude stop {session.name}")

    def _prepare_attach(self, session: Session) -> None:
        """A degraded session (its proxy stopped) gets its proxy back first."""
        if session.status is SessionStatus.DEGRADED:
            self.runner.run(["podman", "start", pa.Names(session.name).proxy],
                            timeout=TIMEOUT_CREATE)
            self.reporter.info(f"Restarted the proxy of session {session.name}")

    def _attach_argv(self, session: Session) -> list[str]:
        return pa.build_attach_argv(pa.Names(session.name))

    def _exec_argv(self, session: Session, command: Sequence[str], *, tty: bool) -> list[str]:
        return pa.build_exec_argv(pa.Names(session.name), list(command),
                                  workdir=session.workspace or "/", tty=tty)

    def stop_session(self, name: str) -> None:
        """Remove the session's containers and networks (the workspace stays on the host)."""
        run_remove_session(self.runner, name)

    def sync_workspace(self, name: str, direction: str = "both") -> None:
        """Do nothing: a podman session bind-mounts the workspace, always in sync."""
        require_session(self.find_session(name), name)

    def session_proxy(self, name: str) -> PodmanSessionProxy:
        """Return the session's proxy container (its log, its live allowlist)."""
        return PodmanSessionProxy(self.runner, run_find_proxy(self.runner, name))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _starts_gateway(plan: Plan) -> bool:
    """Answer whether ``plan`` starts the gateway (then the agent's first call must wait)."""
    return any(isinstance(s, Argv) and "--secret" in s.argv for s in plan.steps)


def _check_network_mode(spec: SessionSpec, agent: Container | None) -> None:
    if agent is None:
        return
    running = NetworkMode.from_label(agent.labels.get(LABEL_NETWORK))
    wanted = spec.network
    if running != wanted:
        raise PaudeError(
            f"session {spec.name} runs with {running} network and cannot switch to {wanted}",
            hint=f"Run: paude stop {spec.name}, then start it again",
        )


def _read_host_routes() -> str:
    """The host's IPv4 routes: other users' podman bridges that ``network ls`` does not show."""
    try:
        return Path("/proc/net/route").read_text(encoding="ascii")
    except OSError:
        return ""

"""The podman session plan: what ``--dry-run`` prints and what the executor runs (pure).

``build_start_plan`` takes what podman has now (``PodmanState``: the
session's containers, every network's subnet, the squid.conf on disk) and
returns the steps that bring the session up from there: everything for a new
session, only the missing or stopped parts for one that exists, and at most
an allowlist refresh for one that runs.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paude.backends.base import SessionSpec, SessionStatus
from paude.backends.podman import argv as pa
from paude.backends.podman.network import EGRESS_POOL, SUBNET_POOL, candidate_subnets
from paude.backends.podman.parse import Container, group_sessions
from paude.backends.podman.proxy import build_reload_argv, parse_squid_conf_clients
from paude.backends.podman.secret import build_secret_rm_argv
from paude.config.models import Resources, Timeouts
from paude.container.image import (
    ImageSpec,
    build_context,
    build_image_argv,
    build_image_tag,
    build_user_base_argv,
)
from paude.errors import PaudeError
from paude.facts import AGENT_UID
from paude.plan import Argv, Build, File, Plan, Step
from paude.squid import render_squid_conf
from paude.trust.paths import GuardMount

# Build steps name their context directory by this; the executor writes the
# plan's context files into a fresh directory and puts its path in its place.
CONTEXT_PLACEHOLDER = "<build-context>"
NO_TIMEOUTS = Timeouts()
# Steps of one group run at once: both networks, then both containers (the
# agent does not wait for its proxy: it starts in 0.3 s).
_NETWORKS = "networks"
_CONTAINERS = "containers"


@dataclass(frozen=True)
class PodmanState:
    """What podman (and the host) has of a session before it starts."""

    containers: Mapping[str, Container] = field(default_factory=dict)  # by role
    subnets: Mapping[str, str] = field(default_factory=dict)  # every network: name -> subnet
    squid_conf: str | None = None  # the session's squid.conf on the host, if any
    # Subnets routed on the host that podman's own list may not show: another
    # user's (rootful or rootless) bridges. Podman refuses a subnet in use there.
    host_subnets: tuple[str, ...] = ()
    missing_mount_points: frozenset[str] = frozenset()  # guard mount paths not there yet
    # The gateway's credential secret exists (paude's own: the state read refuses
    # another's). Without its gateway container, a killed start left it.
    gateway_secret: bool = False


@dataclass(frozen=True)
class StartInputs:
    """What the start plan needs beside the spec and the state (resolved by the backend)."""

    agent_image: ImageSpec
    proxy_image: ImageSpec | None  # None: --allow-network, no proxy
    squid_conf_path: str
    user_args: tuple[str, ...]
    workspace_owner: tuple[int, int]
    created_at: str
    gateway_image: ImageSpec | None = None  # None: no gateway (no credential, or no proxy)
    claude_json_path: str = ""  # the agent's filtered ~/.claude.json seed ("": none)
    resources: Resources | None = None  # the agent's limits (None: none)
    proxy_resources: Resources | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)


def parse_host_routes(text: str) -> tuple[str, ...]:
    """Return the subnets of ``/proc/net/route``'s interface routes (not the default route)."""
    out: list[str] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = (int(fields[i], 16).to_bytes(4, "little") for i in (1, 7))
        if mask == bytes(4):
            continue  # the default route overlaps everything; it names no bridge
        net = ipaddress.ip_network(
            f"{ipaddress.IPv4Address(dest)}/{ipaddress.IPv4Address(mask)}", strict=False)
        out.append(str(net))
    return tuple(out)


def parse_network_subnets(stdout: str) -> dict[str, str]:
    """Return ``name -> first subnet`` from ``podman network ls --format json``."""
    out = {}
    for net in json.loads(stdout or "[]"):
        subnets = net.get("subnets") or []
        out[str(net["name"])] = str(subnets[0]["subnet"]) if subnets else ""
    return out


def build_start_plan(spec: SessionSpec, state: PodmanState, inputs: StartInputs) -> Plan:
    """Return every step that brings ``spec`` up from ``state``.

    Raises:
        PaudeError: no free subnet is left for a network the session lacks.
    """
    current = group_sessions(list(state.containers.values()))
    if current and current[0].status is SessionStatus.RUNNING and not spec.rebuild:
        return Plan(tuple(_refresh_allowlist(spec, state, inputs)))
    names = pa.Names(spec.name)
    steps: list[Step] = _image_steps(inputs.agent_image, spec.rebuild)
    if inputs.proxy_image is not None:
        steps += _image_steps(inputs.proxy_image, spec.rebuild)
    if inputs.gateway_image is not None:
        steps += _image_steps(inputs.gateway_image, spec.rebuild)
    restricted = inputs.proxy_image is not None
    if names.egress_network not in state.subnets:
        subnet = _free_subnet(spec.name, EGRESS_POOL, state.subnets, state.host_subnets)
        steps.append(Argv(tuple(pa.build_egress_network_create_argv(
            names, subnet=subnet, restricted=restricted)),
            "create the session's own routed network, its way out", group=_NETWORKS))
    proxy_ip = gateway_ip = None
    if inputs.proxy_image is not None:
        subnet = state.subnets.get(names.network) or _free_subnet(
            spec.name, SUBNET_POOL, state.subnets, state.host_subnets)
        if names.network not in state.subnets:
            steps.append(Argv(tuple(pa.build_network_create_argv(names, subnet=subnet)),
                              "create the session's internal network", group=_NETWORKS))
        proxy_ip = pa.proxy_ip_for_subnet(subnet)
        steps += _squid_conf_steps(spec, state, inputs, subnet)
        if inputs.gateway_image is not None and spec.model_auth is not None:
            gateway_ip = pa.gateway_ip_for_subnet(subnet)
            steps += _gateway_steps(spec, state, inputs, subnet, gateway_ip)
    if "agent" not in state.containers:
        steps += [_mount_point(m, inputs.workspace_owner) for m in spec.guard_mounts
                  if m.create is not None and m.path in state.missing_mount_points]
    if inputs.proxy_image is not None and proxy_ip is not None:
        steps += _proxy_steps(spec, state, inputs.proxy_image, inputs, proxy_ip)
    steps += _agent_steps(spec, state, inputs, proxy_ip, gateway_ip)
    return Plan(tuple(steps))


def _gateway_steps(spec: SessionSpec, state: PodmanState, inputs: StartInputs, subnet: str,
                   gateway_ip: str) -> list[Step]:
    """Return the gateway's steps: its secret (the config on the command's environment,
    never in argv or the plan's text) and its container, unless it runs."""
    names = pa.Names(spec.name)
    assert inputs.gateway_image is not None
    gateway = state.containers.get("gateway")
    if gateway is not None:
        return [] if gateway.running else [Argv(("podman", "start", names.gateway),
                                                "start the stopped gateway", group=_CONTAINERS)]
    assert spec.model_auth is not None
    config = spec.model_auth.gateway_config((subnet,)).to_json()
    # podman 4.3 has no `secret create --replace`: a secret left by a start
    # killed before it created the gateway goes first (its config may be stale too).
    stale: list[Step] = [Argv(tuple(build_secret_rm_argv(names.gateway)),
                              "remove the gateway's credential secret an interrupted start "
                              "left")] if state.gateway_secret else []
    return [
        *stale,
        Argv(tuple(pa.build_gateway_secret_argv(names)),
             f"store the gateway's credential ({spec.model_auth.mode.value}, from "
             f"{spec.model_auth.source}) as a podman secret, from the environment",
             env=((pa.GATEWAY_SECRET_ENV, config),)),
        Argv(tuple(pa.build_gateway_run_argv(
            names, image=build_image_tag(inputs.gateway_image), gateway_ip=gateway_ip,
            created_at=inputs.created_at)), "start the model gateway (holds the credential)",
            group=_CONTAINERS),
    ]


def _image_steps(image: ImageSpec, rebuild: bool) -> list[Step]:
    tag = build_image_tag(image)
    steps: list[Step] = []
    for path, content in sorted(build_context(image).items()):
        text = content.decode()
        shown = f"<CA bundle, {len(content)} bytes>" if path.endswith((".crt", ".pem")) else None
        steps.append(File(f"{CONTEXT_PLACEHOLDER}/{path}", text, f"{image.kind} image input",
                          shown=shown))
    skip = "" if rebuild else f" (skipped when {tag} exists)"
    base = build_user_base_argv(image, CONTEXT_PLACEHOLDER)
    if base is not None:
        steps.append(Build(tuple(base), f"build the devcontainer Dockerfile{skip}", tag,
                           skip_if_exists=not rebuild))
    steps.append(Build(tuple(build_image_argv(image, CONTEXT_PLACEHOLDER, tag)),
                       f"build the {image.kind} image{skip}", tag, skip_if_exists=not rebuild))
    return steps


def _free_subnet(session: str, pool: ipaddress.IPv4Network | ipaddress.IPv6Network,
                 used: Mapping[str, str], host: tuple[str, ...] = ()) -> str:
    taken = [ipaddress.ip_network(s) for s in (*used.values(), *host) if s]
    for candidate in candidate_subnets(session, pool):
        net = ipaddress.ip_network(candidate)
        if not any(net.version == t.version and net.overlaps(t) for t in taken):
            return candidate
    raise PaudeError(f"no free subnet for session {session} in {pool}",
                     hint="Remove unused podman networks: podman network prune")


def _squid_conf_steps(spec: SessionSpec, state: PodmanState, inputs: StartInputs,
                      subnet: str) -> list[Step]:
    proxy = state.containers.get("proxy")
    steps: list[Step] = []
    # Only the session's internal network may use the proxy: its egress
    # network is routed, reachable from other containers.
    conf = render_squid_conf(spec.allowed_domains, clients=[subnet])
    if conf != state.squid_conf:
        # squid reads it as its own unprivileged user: 0644.
        steps.append(File(inputs.squid_conf_path, conf, "squid.conf"))
        if proxy is not None and proxy.running:
            steps.append(Argv(tuple(build_reload_argv(pa.Names(spec.name).proxy)),
                              "make the running proxy re-read squid.conf"))
    return steps


def _proxy_steps(spec: SessionSpec, state: PodmanState, image: ImageSpec,
                 inputs: StartInputs, proxy_ip: str) -> list[Step]:
    names = pa.Names(spec.name)
    proxy = state.containers.get("proxy")
    steps: list[Step] = []
    if proxy is None:
        steps.append(Argv(tuple(pa.build_proxy_run_argv(
            names, image=build_image_tag(image), proxy_ip=proxy_ip,
            squid_conf_path=inputs.squid_conf_path, created_at=inputs.created_at,
            resources=inputs.proxy_resources)),
            "start the proxy", group=_CONTAINERS))
    elif not proxy.running:
        steps.append(Argv(("podman", "start", names.proxy), "start the stopped proxy",
                          group=_CONTAINERS))
    return steps


def _agent_steps(spec: SessionSpec, state: PodmanState, inputs: StartInputs,
                 proxy_ip: str | None, gateway_ip: str | None) -> list[Step]:
    names = pa.Names(spec.name)
    agent = state.containers.get("agent")
    if agent is not None:
        if agent.running:
            return []
        return [Argv(("podman", "start", names.agent), "start the stopped agent",
                     group=_CONTAINERS)]
    run = build_agent_run(spec, image=build_image_tag(inputs.agent_image), proxy_ip=proxy_ip,
                          gateway_ip=gateway_ip, claude_json_path=inputs.claude_json_path,
                          user_args=inputs.user_args, created_at=inputs.created_at,
                          resources=inputs.resources, timeouts=inputs.timeouts)
    seeds: list[Step] = [File(inputs.claude_json_path, spec.claude_json_seed,
                              "the agent's ~/.claude.json (a filtered copy)")
                         ] if inputs.claude_json_path else []
    return [*seeds, Argv(tuple(pa.build_agent_run_argv(run)), "start the agent",
                       env=tuple(sorted(spec.env.items())), group=_CONTAINERS)]


def _mount_point(mount: GuardMount, owner: tuple[int, int]) -> File:
    return File(mount.path, mount.content, "create the empty mount point",
                mode=0o755 if mount.create == "dir" else 0o644,
                directory=mount.create == "dir", exclusive=True, owner=owner)


def _refresh_allowlist(spec: SessionSpec, state: PodmanState, inputs: StartInputs) -> list[Step]:
    """Apply a changed allowlist (e.g. a new --allow-domain) to the running proxy."""
    if inputs.proxy_image is None or state.squid_conf is None:
        return []  # started elsewhere: its proxy keeps the allowlist it has
    wanted = render_squid_conf(spec.allowed_domains,
                               clients=parse_squid_conf_clients(state.squid_conf))
    if wanted == state.squid_conf:
        return []
    return [File(inputs.squid_conf_path, wanted, "squid.conf (the changed allowlist)"),
            Argv(tuple(build_reload_argv(pa.Names(spec.name).proxy)),
                 "make the running proxy re-read squid.conf")]


def user_args(euid: int, workspace_owner: int) -> list[str]:
    """Return the podman user options that make workspace files the host user's.

    Rootless: keep-id maps the host user onto the image's user 1000. Rootful:
    run as the workspace's owner with group 0 (the image's home is group-0
    writable, as OpenShift's arbitrary UIDs need). For a root-owned workspace
    that is uid 0, but with every capability dropped and no-new-privileges,
    so it can write its own files and nothing that root's capabilities allow.
    """
    if euid != 0:
        return [f"--userns=keep-id:uid={AGENT_UID},gid={AGENT_UID}"]
    return [f"--user={workspace_owner}:0"]


def build_agent_run(
    spec: SessionSpec,
    *,
    image: str,
    proxy_ip: str | None,
    gateway_ip: str | None,
    claude_json_path: str,
    user_args: tuple[str, ...],
    created_at: str,
    resources: Resources | None = None,
    timeouts: Timeouts = NO_TIMEOUTS,
) -> pa.AgentRun:
    """Return the agent's run inputs for ``spec`` (pure).

    No Google credential directory reaches the agent, unless the user asked
    for the old way (``--allow-network --pass-credentials``).
    """
    creds = spec.credentials
    old_way = spec.allow_network and spec.pass_credentials
    mounts = pa.build_credential_mounts(
        gcloud_dir=_str(creds.gcloud_dir) if old_way else None,
        gitconfig=_str(creds.gitconfig),
        claude_entries=tuple(str(p) for p in creds.claude_entries),
        claude_json=claude_json_path or None)
    args = (("--dangerously-skip-permissions",) if spec.yolo else ()) + spec.claude_args
    return pa.AgentRun(
        names=pa.Names(spec.name), image=image, workspace=str(spec.workspace),
        created_at=created_at, proxy_ip=proxy_ip, gateway_ip=gateway_ip,
        passthrough_env=dict(spec.env), fixed_env=dict(spec.model_env),
        mounts=mounts, claude_args=args, user_args=user_args,
        guard_mounts=tuple((m.path, m.read_only) for m in spec.guard_mounts),
        resources=resources, timeouts=timeouts)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None

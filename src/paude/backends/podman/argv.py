"""Pure builders of podman argv for a session.

Nothing here runs a process, reads a file or looks at the environment: every
input is passed in, so ``--dry-run`` prints exactly what the executor runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from paude.backends.podman.names import PODMAN, Names, build_attach_argv, build_exec_argv
from paude.config.models import Resources, Timeouts
from paude.container.files import GATEWAY_UID
from paude.facts import (
    CLAUDE_JSON_SEED,
    CLAUDE_SEED_DIR,
    CONTAINER_HOME,
    PROXY_PORT,
    SQUID_CONF_PATH,
)
from paude.gateway.policy import CONFIG_PATH, GATEWAY_HOST, build_gateway_args
from paude.naming import (
    LABEL_BACKEND,
    LABEL_MANAGED_BY,
    LABEL_NETWORK,
    LABEL_ROLE,
    LABEL_SESSION,
    LABEL_TIMEOUT_IDLE,
    LABEL_TIMEOUT_MAX,
    LABEL_WORKSPACE,
    MANAGED_BY,
    NetworkMode,
)
from paude.quantity import cpu_shares, quantity_bytes, quantity_cpus

PROXY_HOST = "paude-proxy"

__all__ = ["Names", "build_attach_argv", "build_exec_argv"]  # re-exported from names.py


@dataclass(frozen=True)
class AgentRun:
    """Inputs of the agent's ``podman run``."""

    names: Names
    image: str
    workspace: str
    created_at: str
    proxy_ip: str | None  # None: --allow-network, no proxy
    gateway_ip: str | None = None  # None: no model gateway
    passthrough_env: Mapping[str, str] = field(default_factory=dict)  # values reach podman's env
    fixed_env: Mapping[str, str] = field(default_factory=dict)  # not secret: written in argv
    mounts: tuple[tuple[str, str], ...] = ()  # (host path, container path), read-only
    claude_args: tuple[str, ...] = ()
    user_args: tuple[str, ...] = ()  # --userns / --user, chosen by the executor
    # Inside the workspace, mounted over themselves: (path, read-only).
    guard_mounts: tuple[tuple[str, bool], ...] = ()
    resources: Resources | None = None  # None: no limits
    timeouts: Timeouts = Timeouts()  # enforced by the entrypoint's watch


def build_resource_args(resources: Resources) -> list[str]:
    """Return podman's limit flags for ``resources`` (as the kubelet maps them).

    Memory limit without swap (``--memory-swap`` equal to it), as on a
    Kubernetes node; a CPU request becomes cgroup shares. Extended resources
    (GPUs) become CDI devices (:func:`build_device_args`).
    """
    limits, requests = resources.limits, resources.requests
    args: list[str] = []
    if limits.memory:
        size = str(quantity_bytes(limits.memory))
        args += ["--memory", size, "--memory-swap", size]
    if requests.memory:
        args += ["--memory-reservation", str(quantity_bytes(requests.memory))]
    if limits.cpu:
        args += ["--cpus", quantity_cpus(limits.cpu)]
    if requests.cpu:
        args += ["--cpu-shares", str(cpu_shares(requests.cpu))]
    if limits.pids:
        args += ["--pids-limit", str(limits.pids)]
    return args + build_device_args(limits.extended or requests.extended)


def build_device_args(extended: Mapping[str, str]) -> list[str]:
    """Return podman's CDI device flags for extended resources such as ``nvidia.com/gpu: 2``.

    A Kubernetes extended resource name is a CDI device kind (``vendor/class``):
    ``nvidia.com/gpu: N`` asks for that kind's first N devices, as
    ``nvidia-ctk cdi generate`` names them (``nvidia.com/gpu=0`` ... ``=N-1``).
    The host needs the vendor's CDI spec (``/etc/cdi`` or ``/var/run/cdi``).
    """
    args: list[str] = []
    for kind, count in extended.items():
        for index in range(int(count)):
            args += ["--device", f"{kind}={index}"]
    return args


def timeout_env(timeouts: Timeouts) -> dict[str, str]:
    """Return the variables that tell the agent's entrypoint its timeouts."""
    out = {}
    if timeouts.idle:
        out["PAUDE_TIMEOUT_IDLE"] = timeouts.idle
    if timeouts.max:
        out["PAUDE_TIMEOUT_MAX"] = timeouts.max
    return out


def session_labels(names: Names, *, role: str, network: NetworkMode) -> dict[str, str]:
    """Return the labels every object of the session carries."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_SESSION: names.session,
        LABEL_ROLE: role,
        LABEL_BACKEND: "podman",
        LABEL_NETWORK: network.value,
    }


def _label_args(labels: Mapping[str, str]) -> list[str]:
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def build_network_create_argv(names: Names, *, subnet: str) -> list[str]:
    """Return argv creating the session's internal network.

    ``--internal`` gives it no route out; ``--disable-dns`` stops aardvark-dns
    from forwarding the agent's queries upstream (a DNS exfiltration channel):
    the agent resolves only the proxy, through ``--add-host``.
    """
    labels = session_labels(names, role="network", network=NetworkMode.RESTRICTED)
    return [PODMAN, "network", "create", "--internal", "--disable-dns", "--subnet", subnet,
            "--ip-range", dynamic_range_for_subnet(subnet), *_label_args(labels), names.network]


def build_egress_network_create_argv(
    names: Names, *, subnet: str, restricted: bool = True
) -> list[str]:
    """Return argv creating the session's egress network: routed, its own bridge.

    Only the proxy (or an unrestricted agent) joins it, so no other container
    can change its bridge's MAC address under it (see network.py).
    ``--disable-dns``: the container uses the host's resolvers, as on podman's
    default network.
    """
    mode = NetworkMode.of(allow_network=not restricted)
    labels = session_labels(names, role="egress-network", network=mode)
    return [PODMAN, "network", "create", "--disable-dns", "--subnet", subnet,
            *_label_args(labels), names.egress_network]


def dynamic_range_for_subnet(subnet: str) -> str:
    """Return the upper half of ``subnet``, where podman picks the agent's address.

    The proxy's static address (the second host) lies outside it, so the agent
    and the proxy can start at the same time without the agent taking it.
    """
    network = ipaddress.ip_network(subnet, strict=False)
    return str(list(network.subnets(prefixlen_diff=1))[1])


def proxy_ip_for_subnet(subnet: str) -> str:
    """Return the proxy's static address: the second host of ``subnet``."""
    hosts = ipaddress.ip_network(subnet, strict=False).hosts()
    next(hosts)  # the first host is the bridge (gateway) address
    return str(next(hosts))


def build_proxy_run_argv(
    names: Names, *, image: str, proxy_ip: str, squid_conf_path: str, created_at: str,
    resources: Resources | None = None,
) -> list[str]:
    """Return argv starting the session's squid proxy.

    It sits on the internal network at a fixed address (so a restarted proxy
    keeps the address the agent's hosts file names) and on the session's
    egress network, its only way out.
    """
    labels = session_labels(names, role="proxy", network=NetworkMode.RESTRICTED)
    labels["paude.io/created"] = created_at
    return [
        PODMAN, "run", "-d", "--name", names.proxy, *_label_args(labels),
        "--network", f"{names.network}:ip={proxy_ip}",
        "--network", names.egress_network,
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        *(build_resource_args(resources) if resources else []),
        "-v", f"{squid_conf_path}:{SQUID_CONF_PATH}:ro,Z",
        image,
    ]


def gateway_ip_for_subnet(subnet: str) -> str:
    """Return the gateway's static address: the third host of ``subnet``."""
    hosts = ipaddress.ip_network(subnet, strict=False).hosts()
    next(hosts)
    next(hosts)
    return str(next(hosts))


GATEWAY_SECRET_ENV = "PAUDE_GATEWAY_CONFIG"  # the variable podman reads the secret from


def build_gateway_secret_argv(names: Names) -> list[str]:
    """Return argv storing the gateway's config (with the credential) as a podman secret.

    podman reads the content from the variable :data:`GATEWAY_SECRET_ENV` of
    its own environment, never from argv; the secret is only ever attached to
    the gateway container.
    """
    labels = session_labels(names, role="gateway-secret", network=NetworkMode.RESTRICTED)
    return [PODMAN, "secret", "create", "--env", *_label_args(labels), names.gateway,
            GATEWAY_SECRET_ENV]


def build_gateway_run_argv(
    names: Names, *, image: str, gateway_ip: str, created_at: str
) -> list[str]:
    """Return argv starting the session's model gateway.

    Like the proxy it sits on the internal network at a fixed address and on
    the egress network; it listens on its internal address only, so nothing
    on the routed egress side can call it.
    """
    labels = session_labels(names, role="gateway", network=NetworkMode.RESTRICTED)
    labels["paude.io/created"] = created_at
    target = CONFIG_PATH.rpartition("/")[2]
    return [
        PODMAN, "run", "-d", "--name", names.gateway, *_label_args(labels),
        "--network", f"{names.network}:ip={gateway_ip}",
        "--network", names.egress_network,
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        # No --read-only: podman 4.3 cannot mount a secret into a read-only root.
        "--secret", f"{names.gateway},target={target},uid={GATEWAY_UID},mode=0400",
        image, *build_gateway_args(gateway_ip),
    ]


def build_proxy_env(proxy_ip: str | None, *, gateway: bool = False) -> dict[str, str]:
    """Return the proxy variables the agent gets (none without a proxy)."""
    if proxy_ip is None:
        return {}
    url = f"http://{PROXY_HOST}:{PROXY_PORT}"
    # The gateway is called directly, never through the proxy.
    direct = ",".join(["localhost", "127.0.0.1", *([GATEWAY_HOST] if gateway else [])])
    return {
        "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
        "NO_PROXY": direct, "no_proxy": direct,
    }


def build_agent_run_argv(run: AgentRun) -> list[str]:
    """Return argv starting the agent container (detached; tmux runs inside)."""
    network = NetworkMode.of(allow_network=run.proxy_ip is None)
    labels = session_labels(run.names, role="agent", network=network)
    labels[LABEL_WORKSPACE] = run.workspace
    labels["paude.io/created"] = run.created_at
    timeouts = timeout_env(run.timeouts)
    if run.timeouts.idle:
        labels[LABEL_TIMEOUT_IDLE] = run.timeouts.idle
    if run.timeouts.max:
        labels[LABEL_TIMEOUT_MAX] = run.timeouts.max
    argv = [PODMAN, "run", "-d", "--name", run.names.agent, *_label_args(labels)]
    if run.proxy_ip:
        argv += ["--network", run.names.network, "--add-host", f"{PROXY_HOST}:{run.proxy_ip}"]
        if run.gateway_ip:
            argv += ["--add-host", f"{GATEWAY_HOST}:{run.gateway_ip}"]
    else:
        argv += ["--network", run.names.egress_network]
    argv += [*run.user_args, "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
             "--init", "--hostname", run.names.session]
    if run.resources is not None:
        argv += build_resource_args(run.resources)
    argv += ["-v", f"{run.workspace}:{run.workspace}:z", "-w", run.workspace]
    # podman mounts parents first, so these land on top of the workspace.
    for path, read_only in run.guard_mounts:
        argv += ["-v", f"{path}:{path}:ro" if read_only else f"{path}:{path}"]
    for host, container in run.mounts:
        argv += ["-v", f"{host}:{container}:ro"]
    # The host's own proxy settings must not leak in: only ours are set.
    argv.append("--http-proxy=false")
    fixed = {**build_proxy_env(run.proxy_ip, gateway=run.gateway_ip is not None),
             "PAUDE_WORKSPACE": run.workspace,
             "PAUDE_SESSION": run.names.session, **timeouts, **run.fixed_env}
    argv += [arg for key in sorted(fixed) for arg in ("-e", f"{key}={fixed[key]}")]
    for key in sorted(run.passthrough_env):
        # Names only: podman copies each value from its own environment, so
        # secrets such as ANTHROPIC_API_KEY never appear in argv.
        argv += ["-e", key]
    return [*argv, run.image, *run.claude_args]


def build_credential_mounts(
    *,
    gcloud_dir: str | None,
    gitconfig: str | None,
    claude_entries: tuple[str, ...] = (),
    claude_json: str | None,
) -> tuple[tuple[str, str], ...]:
    """Return the read-only mounts for the host files that reach the agent.

    ``gcloud_dir`` only with ``--pass-credentials``. ``claude_entries`` are
    the host paths of the allowed entries of ``~/.claude`` (see
    paude.claude_home); they and ``claude_json`` (a filtered copy) are
    mounted as seeds the entrypoint copies in, so the agent never writes
    back to the host's.
    """
    home = PurePosixPath(CONTAINER_HOME)
    mounts = []
    if gcloud_dir:
        mounts.append((gcloud_dir, str(home / ".config" / "gcloud")))
    if gitconfig:
        mounts.append((gitconfig, str(home / ".gitconfig")))
    for entry in claude_entries:
        mounts.append((entry, f"{CLAUDE_SEED_DIR}/{PurePosixPath(entry).name}"))
    if claude_json:
        mounts.append((claude_json, CLAUDE_JSON_SEED))
    return tuple(mounts)


def build_list_argv() -> list[str]:
    """Return argv listing every paude container as JSON."""
    return [PODMAN, "ps", "-a", "--format", "json",
            "--filter", f"label={LABEL_MANAGED_BY}={MANAGED_BY}",
            "--filter", f"label={LABEL_BACKEND}=podman"]


def build_all_networks_argv() -> list[str]:
    """Return argv listing every podman network (with its subnets) as JSON."""
    return [PODMAN, "network", "ls", "--format", "json"]

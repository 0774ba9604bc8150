"""The podman session plan: what ``--dry-run`` prints (pure)."""

from __future__ import annotations

from pathlib import Path

from paude.backends.base import SessionSpec
from paude.backends.podman import argv as pa
from paude.config.models import Resources, Timeouts
from paude.container.image import ImageSpec, build_context, build_image_argv, build_image_tag
from paude.facts import AGENT_UID
from paude.plan import Argv, File, Plan, Step
from paude.squid import render_squid_conf

CONTEXT_PLACEHOLDER = "<build-context>"
NO_TIMEOUTS = Timeouts()


def _image_steps(image: ImageSpec) -> list[Step]:
    tag = build_image_tag(image)
    steps: list[Step] = []
    for path, content in sorted(build_context(image).items()):
        try:
            text = content.decode()
        except UnicodeDecodeError:
            text = f"<{len(content)} bytes>"
        if path.endswith(".crt") or path.endswith(".pem"):
            text = f"<CA bundle, {len(content)} bytes>"
        steps.append(File(f"{CONTEXT_PLACEHOLDER}/{path}", text, f"{image.kind} image input"))
    steps.append(Argv(tuple(build_image_argv(image, CONTEXT_PLACEHOLDER, tag)),
                      f"build the {image.kind} image (skipped when {tag} exists)",
                      skip_if_exists=tag))
    return steps


def build_session_plan(
    spec: SessionSpec,
    *,
    agent_image: ImageSpec,
    proxy_image: ImageSpec | None,
    squid_conf_path: str,
    subnet: str,
    egress_subnet: str,
    user_args: tuple[str, ...],
    created_at: str,
    resources: Resources | None = None,
    proxy_resources: Resources | None = None,
    timeouts: Timeouts = NO_TIMEOUTS,
) -> Plan:
    """Return every step that starts ``spec`` from nothing."""
    names = pa.Names(spec.name)
    steps: list[Step] = _image_steps(agent_image)
    if proxy_image is not None:
        steps += _image_steps(proxy_image)
    egress = pa.build_egress_network_create_argv(
        names, subnet=egress_subnet, restricted=proxy_image is not None)
    steps.append(Argv(tuple(egress), "create the session's own routed network, its way out "
                                     "(the next free /24 if taken)"))
    proxy_ip = None
    if proxy_image is not None:
        proxy_ip = pa.proxy_ip_for_subnet(subnet)
        conf = render_squid_conf(spec.allowed_domains, clients=[subnet])
        steps.append(File(squid_conf_path, conf, "squid.conf"))
        steps.append(Argv(tuple(pa.build_network_create_argv(names, subnet=subnet)),
                          "create the session's internal network (the next free /24 if taken)"))
        steps.append(Argv(tuple(pa.build_proxy_run_argv(
            names, image=build_image_tag(proxy_image), proxy_ip=proxy_ip,
            squid_conf_path=squid_conf_path, created_at=created_at,
            resources=proxy_resources)), "start the proxy"))
    run = build_agent_run(spec, image=build_image_tag(agent_image), proxy_ip=proxy_ip,
                          user_args=user_args, created_at=created_at, resources=resources,
                          timeouts=timeouts)
    steps.append(Argv(tuple(pa.build_agent_run_argv(run)), "start the agent"))
    return Plan(tuple(steps))


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
    user_args: tuple[str, ...],
    created_at: str,
    resources: Resources | None = None,
    timeouts: Timeouts = NO_TIMEOUTS,
) -> pa.AgentRun:
    """Return the agent's run inputs for ``spec`` (pure)."""
    creds = spec.credentials
    mounts = pa.build_credential_mounts(
        gcloud_dir=_str(creds.gcloud_dir), gitconfig=_str(creds.gitconfig),
        claude_dir=_str(creds.claude_dir), claude_json=_str(creds.claude_json))
    args = (("--dangerously-skip-permissions",) if spec.yolo else ()) + spec.claude_args
    return pa.AgentRun(
        names=pa.Names(spec.name), image=image, workspace=str(spec.workspace),
        created_at=created_at, proxy_ip=proxy_ip, passthrough_env=dict(spec.env),
        mounts=mounts, claude_args=args, user_args=user_args,
        guard_mounts=tuple((m.path, m.read_only) for m in spec.guard_mounts),
        resources=resources, timeouts=timeouts)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


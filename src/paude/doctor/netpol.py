"""The NetworkPolicy check: the agent pod's own check, run once in a short-lived probe pod.

A start refuses its agent where NetworkPolicy is not enforced (the agent
pod's ``netpol-check`` init container, :mod:`paude.backends.openshift.policies`).
``paude doctor`` runs that same container under a deny-all NetworkPolicy in
a pod of its own (:func:`build_probe_pod`), with the user's RBAC (paude's
Role lets it create both), reads the pod's end the way a start reads the
agent pod's (:func:`paude.backends.openshift.status.parse_pod_state`), and
deletes the policy whatever happened: the pod, which it owns, goes with it.
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import replace

from paude.backends.openshift.client import KubeClient
from paude.backends.openshift.imageregistry import resolve_target
from paude.backends.openshift.objects import DEFAULT_IMAGE, ClusterSettings, cluster_settings
from paude.backends.openshift.policies import (
    NETPOL_CHECK_SECONDS,
    build_probe_pod,
    build_probe_policy,
)
from paude.config.models import PaudeConfig
from paude.container.image import ImageSpec, build_image_tag
from paude.doctor.checks import Check, CheckStatus
from paude.errors import NetworkPolicyError, PaudeError
from paude.images.auth import temporary_auth_file
from paude.images.publish import check_image
from paude.runner import Runner

NAME = "networkpolicy"
# The check's own wait, and the time a node takes to pull and start the image.
PROBE_TIMEOUT = NETPOL_CHECK_SECONDS + 100
_ENDED = ("Succeeded", "Failed")


def resolve_probe_image(
    api: KubeClient, config: PaudeConfig, agent: ImageSpec, runner: Runner
) -> str | None:
    """Return the agent image a session's pod would run (None: not in the registry yet)."""
    if config.backend.image is not None:
        return config.backend.image
    target = resolve_target(api, config.backend, warn=lambda _message: None)
    if target is None:
        return DEFAULT_IMAGE
    with temporary_auth_file(target) as authfile:
        return check_image(runner, target, build_image_tag(agent), authfile)


def run_netpol_check(
    config: PaudeConfig, namespace: str, agent: ImageSpec, runner: Runner
) -> Check:
    """Return whether the cluster enforces NetworkPolicy, as the probe pod found it."""
    try:
        api = KubeClient(context=config.backend.context, namespace=namespace)
        image = resolve_probe_image(api, config, agent, runner)
    except PaudeError as err:
        return Check(NAME, CheckStatus.SKIP, f"the probe's image is unknown: {err.message}",
                     fix=err.hint)
    if image is None:
        return Check(NAME, CheckStatus.SKIP, "not checked: the agent image is not in the"
                     " registry yet", fix="Start a session once (it pushes the image), then"
                     " run paude doctor again.")
    settings = replace(cluster_settings(config.backend, api.namespace), image=image)
    return _probe(api, f"paude-doctor-{secrets.token_hex(3)}", settings)


def _probe(api: KubeClient, name: str, settings: ClusterSettings) -> Check:
    try:
        policy = api.apply(build_probe_policy(name, settings))  # first: the pod starts under it
        pod = build_probe_pod(name, settings, policy_uid=policy["metadata"]["uid"])
        api.apply(pod, create=True)  # the Role may create pods, not patch them
        pod = api.wait_pod_ready(name, owner=("Pod", name), timeout=PROBE_TIMEOUT,
                                 until=lambda p: p.get("status", {}).get("phase") in _ENDED)
    except NetworkPolicyError as err:
        return Check(NAME, CheckStatus.FAIL, "not enforced: a pod under a deny-all"
                     " NetworkPolicy still reached the cluster DNS", fix=err.hint)
    except PaudeError as err:
        return Check(NAME, CheckStatus.SKIP, f"not checked: the probe pod failed: {err.message}",
                     fix=err.hint or "Check that you may create pods and NetworkPolicies.")
    finally:
        with suppress(PaudeError):  # a failed delete does not change the answer
            api.delete("networking.k8s.io/v1", "NetworkPolicy", name)  # and its pod
    if pod["status"]["phase"] != "Succeeded":
        return Check(NAME, CheckStatus.WARN, "the probe pod failed before it could check",
                     fix=f"Run the agent image ({settings.image}) in the namespace and read"
                     " its log.")
    return Check(NAME, CheckStatus.OK, "enforced: a pod under a deny-all NetworkPolicy could"
                 " not reach the cluster DNS")

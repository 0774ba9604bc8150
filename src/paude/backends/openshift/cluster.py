"""What ``paude manifests`` and ``paude setup`` ask of the OpenShift backend.

The namespace is resolved here for every command (the configured one, else
the kubeconfig context's, else ``default``: :func:`resolve_namespace`, the
same rule the API client applies); the objects are built by the backend's
pure builders and applied by its client, never by the CLI.
"""

from __future__ import annotations

from typing import Any

from paude.backends.base import Credentials, Reporter, SessionSpec
from paude.backends.openshift.manifests import build_session_objects
from paude.backends.openshift.objects import ClusterSettings, cluster_settings
from paude.backends.openshift.policies import build_admin_agent_policy, build_admin_proxy_policy
from paude.backends.openshift.rbac import build_role, build_role_binding
from paude.config.models import BackendConfig, PaudeConfig


def resolve_namespace(config: BackendConfig) -> str:
    """Return the namespace of ``config`` (reads the kubeconfig only when none is set).

    Raises:
        NotLoggedInError: no namespace is set and there is no usable kubeconfig.
    """
    from paude.backends.openshift.client import load_kubeconfig, pick_namespace

    if config.namespace:
        return config.namespace
    return pick_namespace(None, load_kubeconfig(config.context))


def build_export(
    config: PaudeConfig, spec: SessionSpec, *, egress_firewall: bool, admin: bool,
    reporter: Reporter,
) -> list[dict[str, Any]]:
    """Return every object ``paude manifests`` writes, in apply order (pushes nothing).

    With ``backend.registry`` the images are pinned to the digests it holds;
    without one the export stays offline.
    """
    namespace = resolve_namespace(config.backend)
    settings = pin_images(cluster_settings(config.backend, namespace,
                                           egress_firewall=egress_firewall),
                          config, spec, reporter)
    objs: list[dict[str, Any]] = []
    if admin:
        objs += [build_role(namespace), build_admin_agent_policy(), build_admin_proxy_policy()]
    return objs + build_session_objects(spec, settings)


def pin_images(settings: ClusterSettings, config: PaudeConfig, spec: SessionSpec,
               reporter: Reporter) -> ClusterSettings:
    """Return ``settings`` with the digests ``backend.registry`` holds (nothing is pushed)."""
    from paude.backends.openshift.imageregistry import build_configured_target
    from paude.backends.openshift.images import (
        apply_images,
        build_image_specs,
        check_session_images,
    )
    from paude.runner import SystemRunner

    target = build_configured_target(config.backend)
    if target is None or config.backend.image is not None:
        return settings
    specs = build_image_specs(config, spec)
    images = check_session_images(SystemRunner(), target, specs, reporter=reporter)
    return apply_images(settings, images)


def build_rbac(
    config: BackendConfig, *, user: str | None = None, service_account: str | None = None
) -> list[dict[str, Any]]:
    """Return the Role paude needs, and a RoleBinding for each subject named."""
    namespace = resolve_namespace(config)
    objs = [build_role(namespace)]
    if user:
        objs.append(build_role_binding(namespace, subject={"kind": "User", "name": user}))
    if service_account:
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
        objs.append(build_role_binding(namespace, subject=subject))
    return objs


def apply_credentials(config: BackendConfig, credentials: Credentials) -> list[str]:
    """Create or refresh the credential objects from the local files; return lines to print."""
    from paude.backends.openshift.client import KubeClient
    from paude.backends.openshift.credentials import (
        CredentialSource,
        build_credential_object,
        credential_paths,
    )

    client = KubeClient(context=config.context, namespace=config.namespace)
    settings = ClusterSettings(namespace=client.namespace)
    lines = []
    for kind, path in sorted(credential_paths(credentials).items()):
        source = CredentialSource(kind, path.read_bytes(), int(path.stat().st_mtime))
        obj = client.apply(build_credential_object(source, settings))
        lines.append(f"Refreshed {obj['kind']} {obj['metadata']['name']} from {path}")
    return lines

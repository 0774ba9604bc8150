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
from paude.errors import ClusterError, NotLoggedInError, RegistryError
from paude.images.refs import RegistryTarget


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
    config: PaudeConfig,
    spec: SessionSpec,
    *,
    egress_firewall: bool,
    admin: bool,
    reporter: Reporter,
) -> list[dict[str, Any]]:
    """Return every object ``paude manifests`` writes, in apply order (pushes nothing).

    With a registry (``backend.registry``, or OpenShift's: :func:`pin_images`)
    the images are pinned to the digests it holds.
    """
    namespace = resolve_namespace(config.backend)
    settings = pin_images(
        cluster_settings(config.backend, namespace, egress_firewall=egress_firewall),
        config,
        spec,
        reporter,
    )
    objs: list[dict[str, Any]] = []
    if admin:
        objs += [build_role(namespace), build_admin_agent_policy(), build_admin_proxy_policy()]
    # No paude writes an exported session's endpoints: its Services select by label.
    return objs + build_session_objects(spec, settings, by_labels=True)


def pin_images(
    settings: ClusterSettings, config: PaudeConfig, spec: SessionSpec, reporter: Reporter
) -> ClusterSettings:
    """Return ``settings`` with the digests the session's registry holds (nothing is pushed).

    The registry is the one a start pushes to: ``backend.registry``, else
    OpenShift's integrated registry when the kubeconfig's cluster has one.
    Without a kubeconfig, or with a cluster that does not answer, the export
    stays offline (with a warning for the latter).
    """
    from paude.backends.openshift.images import (
        apply_images,
        build_image_specs,
        check_session_images,
    )
    from paude.runner import SystemRunner

    if config.backend.image is not None:
        return settings
    target = _registry_target(config.backend, settings.namespace, reporter)
    if target is None:
        return settings
    specs = build_image_specs(config, spec)
    images = check_session_images(SystemRunner(), target, specs, reporter=reporter)
    return apply_images(settings, images)


def _registry_target(
    backend: BackendConfig, namespace: str, reporter: Reporter
) -> RegistryTarget | None:
    from paude.backends.openshift.client import KubeClient
    from paude.backends.openshift.imageregistry import build_configured_target, resolve_target

    configured = build_configured_target(backend)
    if configured is not None:
        return configured
    try:
        api = KubeClient(context=backend.context, namespace=namespace)
    except NotLoggedInError:
        return None  # no kubeconfig: nothing to ask, the default images are shown
    try:
        return resolve_target(api, backend, warn=reporter.warn)
    except (ClusterError, NotLoggedInError, RegistryError) as err:
        # An export is still useful; the start says the same as an error.
        reporter.warn(
            f"cannot use the cluster's image registry ({err.message}):"
            " the images are shown by their default references"
        )
        return None


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

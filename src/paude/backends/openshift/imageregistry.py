"""Which registry a cluster session's images go to, and how its nodes pull them.

- ``backend.registry`` set: push there with the user's own ``podman login``;
  nodes pull from ``backend.pull_registry`` (default: the same address),
  with ``backend.pull_secret`` when that registry needs credentials.
- Otherwise, on OpenShift (the cluster serves ImageStreams): push to the
  internal registry's external address, logged in with the kubeconfig's
  bearer token, into the session namespace (the push creates the image
  streams); pods pull through the in-cluster service, which the namespace's
  default ServiceAccount may already pull from.
- Otherwise: no registry (the configured or default image is used as is).

The external address is the registry's route ``default-route`` in
``openshift-image-registry`` when the user may read it, else what the
cluster advertises in ImageStream status (``publicDockerImageRepository``),
the way ``oc registry info`` finds it. The builders here are pure; only
:func:`resolve_target` reads the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from paude.backends.openshift.status import RBAC_HINT
from paude.config.models import BackendConfig
from paude.errors import ClusterError, NotLoggedInError, RegistryError
from paude.images.refs import RegistryLogin, RegistryTarget, registry_host, validate_prefix

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient

REGISTRY_NAMESPACE = "openshift-image-registry"
DEFAULT_ROUTE = "default-route"
INTERNAL_REGISTRY = "image-registry.openshift-image-registry.svc:5000"
# Image streams every authenticated user may read (OpenShift's shared images).
SHARED_IMAGES_NAMESPACE = "openshift"
# The OpenShift registry takes any user name with a token as the password.
TOKEN_USER = "paude"
IMAGESTREAM_API = "image.openshift.io/v1"
ROUTE_API = "route.openshift.io/v1"
PUSH_PERMISSION = (
    "Pushing needs 'update' on imagestreams/layers (image.openshift.io) in namespace {ns}. "
    + RBAC_HINT
)
EXPOSE_HINT = (
    "Ask a cluster admin to expose the registry: oc patch"
    " configs.imageregistry.operator.openshift.io/cluster --type=merge"
    ' -p \'{"spec":{"defaultRoute":true}}\' (or set backend.registry in paude.json).'
)


def build_configured_target(backend: BackendConfig) -> RegistryTarget | None:
    """Return the target ``backend.registry`` names, or None when it is unset.

    Raises:
        ConfigError: the registry or pull address is not ``host[:port][/path]``.
    """
    if backend.registry is None:
        return None
    push = validate_prefix(backend.registry.rstrip("/"))
    pull = validate_prefix((backend.pull_registry or push).rstrip("/"))
    host = registry_host(push)
    return RegistryTarget(
        push_prefix=push,
        pull_prefix=pull,
        tls_verify=backend.registry_tls_verify,
        cert_dir=backend.registry_cert_dir,
        login_hint=f"Log in: podman login {host}",
    )


def parse_route_host(route: dict[str, Any] | None) -> str | None:
    """Return the host a registry Route exposes, if it has one."""
    host = ((route or {}).get("spec") or {}).get("host")
    return str(host) if host else None


def parse_advertised(streams: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """Return (external, internal) registry hosts from ImageStream status fields."""
    public = internal = None
    for stream in streams:
        status = stream.get("status") or {}
        public = public or _host_of(status.get("publicDockerImageRepository"))
        internal = internal or _host_of(status.get("dockerImageRepository"))
    return public, internal


def _host_of(repository: object) -> str | None:
    return registry_host(repository) if isinstance(repository, str) and repository else None


def build_openshift_target(
    namespace: str,
    *,
    external: str,
    internal: str | None,
    token: str,
    tls_verify: bool = True,
    cert_dir: str | None = None,
) -> RegistryTarget:
    """Return the target of OpenShift's internal registry for ``namespace``."""
    return RegistryTarget(
        push_prefix=f"{external}/{namespace}",
        pull_prefix=f"{internal or INTERNAL_REGISTRY}/{namespace}",
        tls_verify=tls_verify,
        cert_dir=cert_dir,
        login=RegistryLogin(TOKEN_USER, token),
        login_hint=(
            f"Log in to the cluster again (oc login): paude logs in to {external}"
            " with the token of your kubeconfig."
        ),
        push_permission=PUSH_PERMISSION.format(ns=namespace),
    )


def resolve_target(
    api: KubeClient, backend: BackendConfig, *, warn: Callable[[str], None]
) -> RegistryTarget | None:
    """Return where this session's images go, or None when there is no registry.

    An OpenShift cluster without an integrated registry (nothing advertises
    one) is treated like any Kubernetes: ``backend.registry`` is needed.

    Raises:
        RegistryError: OpenShift's registry runs but has no external address.
        NotLoggedInError: the kubeconfig has no bearer token for it.
    """
    configured = build_configured_target(backend)
    if configured is not None or not _serves_imagestreams(api, warn):
        return configured
    # The route alone is enough (the internal name is fixed); the shared image
    # streams are read only when it is absent or not readable.
    external, internal = parse_route_host(_readable_route(api)), None
    if external is None:
        external, internal = parse_advertised(_shared_streams(api))
        if external is None and internal is None:
            return None
    if external is None:
        raise RegistryError(
            "the OpenShift image registry has no external address to push to", hint=EXPOSE_HINT
        )
    token = api.bearer_token()
    if not token:
        raise NotLoggedInError(
            "the kubeconfig has no bearer token to log in to the OpenShift image registry",
            hint="Log in with a token: oc login --token=... (or set backend.registry and"
            " podman login to it).",
        )
    return build_openshift_target(
        api.namespace,
        external=external,
        internal=internal,
        token=token,
        tls_verify=backend.registry_tls_verify,
        cert_dir=backend.registry_cert_dir,
    )


def _serves_imagestreams(api: KubeClient, warn: Callable[[str], None]) -> bool:
    """Whether the cluster serves ImageStreams (OpenShift), as far as this user may tell."""
    try:
        return api.has_kind(IMAGESTREAM_API, "ImageStream")
    except ClusterError as err:
        if "forbidden" not in err.message:
            raise
    # RBAC answers before the API exists, so an older Role cannot tell.
    warn(
        "cannot tell whether the cluster has OpenShift's image registry (no permission to list"
        " imagestreams): images are not pushed. Update paude's Role (paude setup --print-rbac)"
        " or set backend.registry."
    )
    return False


def _readable_route(api: KubeClient) -> dict[str, Any] | None:
    """The registry's route, or None when it is absent or this user may not read it."""
    try:
        return api.get(ROUTE_API, "Route", DEFAULT_ROUTE, namespace=REGISTRY_NAMESPACE)
    except ClusterError as err:
        if "forbidden" in err.message:
            return None
        raise


def _shared_streams(api: KubeClient) -> list[dict[str, Any]]:
    """OpenShift's shared image streams (their status names the registry), if readable."""
    try:
        return api.list_objects(
            IMAGESTREAM_API, "ImageStream", {}, namespace=SHARED_IMAGES_NAMESPACE
        )
    except ClusterError as err:
        if "forbidden" in err.message:
            return []
        raise

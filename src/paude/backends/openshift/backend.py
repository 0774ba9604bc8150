"""``OpenShiftBackend``: sessions as labelled objects in one namespace.

Start is validate → plan → apply → wait → report. Every object is applied
with server-side apply, so a second start, or a start after an interrupted
one, converges to the same objects (and the same pod, while its template is
unchanged). Sessions are found only from labels, never from local state.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from paude.backends.base import (
    Reporter,
    Session,
    SessionSpec,
    session_not_found,
)
from paude.backends.entry import SessionEntry
from paude.backends.openshift import sync
from paude.backends.openshift.exec import build_attach_argv, build_exec_argv, pick_kube_cli
from paude.backends.openshift.imageregistry import resolve_target
from paude.backends.openshift.images import (
    SessionImages,
    apply_images,
    build_image_specs,
    check_session_images,
    publish_session_images,
)
from paude.backends.openshift.manifests import (
    service_address,
    with_addresses,
)
from paude.backends.openshift.objects import (
    LABEL_PROXY,
    ROLE_AGENT,
    ROLE_PROXY,
    ROLE_STORAGE,
    SCC_API,
    ClusterSettings,
    agent_name,
    agent_pod_name,
    cluster_settings,
    selector_labels,
    workspace_claim,
)
from paude.backends.openshift.resume import resume_if_stopped
from paude.backends.openshift.slices import SliceWriter
from paude.backends.openshift.staleness import stale_credentials
from paude.backends.openshift.startplan import build_start_plan
from paude.backends.openshift.status import build_session, build_stopped_session
from paude.config.models import PaudeConfig
from paude.errors import (
    ImagePullError,
    NetworkPolicyError,
    SyncOffError,
)
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY, validate_session_name
from paude.plan import EndpointsManifest, Manifest, Plan, SecretManifest, log_step
from paude.runner import TIMEOUT_CREATE, Runner
from paude.sync import SyncSpec

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient
    from paude.backends.openshift.sessionproxy import OpenShiftSessionProxy

# Kinds a session owns, in delete order (the workload first, policies last,
# so the agent never runs without its policies). The PVC is kept on stop.
_SESSION_KINDS = (
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),  # its gateway (a proxy's carries no session label)
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),  # its gateway's
    ("v1", "Secret"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)
# Objects a proxy (one per allowlist) owns, deleted with its last session.
_PROXY_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Secret"),  # its credential
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("v1", "ConfigMap"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


class OpenShiftBackend(SessionEntry):
    """Run sessions on OpenShift or Kubernetes (see docs/openshift.md)."""

    name = "openshift"

    def __init__(
        self,
        config: PaudeConfig,
        *,
        runner: Runner,
        reporter: Reporter,
        client: KubeClient | None = None,
        kube_cli: str | None = None,
        ready_timeout: float = TIMEOUT_CREATE,
    ) -> None:
        self.config = config
        self.runner = runner
        self.reporter = reporter
        self._client = client
        self._kube_cli = kube_cli
        self._ready_timeout = ready_timeout

    @property
    def _api(self) -> KubeClient:
        """The API client, built on first use from the kubeconfig (no request is made)."""
        if self._client is None:
            from paude.backends.openshift.client import KubeClient

            backend = self.config.backend
            self._client = KubeClient(context=backend.context, namespace=backend.namespace)
        return self._client

    def _settings(self, *, egress_firewall: bool = False, scc: bool = False) -> ClusterSettings:
        return cluster_settings(
            self.config.backend, self._api.namespace, egress_firewall=egress_firewall, scc=scc
        )

    def plan_session(self, spec: SessionSpec) -> Plan:
        """Return the session's objects in apply order (pushes nothing: images by registry digest).

        Reads whether EgressFirewall exists and, with a registry, which image
        digests the registry already has.
        """
        return self._plan(spec, push=False)

    def _plan(self, spec: SessionSpec, *, push: bool) -> Plan:
        validate_session_name(spec.name)
        firewall = not spec.allow_network and self._api.has_kind("k8s.ovn.org/v1", "EgressFirewall")
        settings = self._settings(egress_firewall=firewall, scc=self._api.has_kind(SCC_API))
        settings = apply_images(settings, self._images(spec, push=push))
        # Used only if the proxy has no credential yet (never shown: see SecretManifest).
        return build_start_plan(spec, settings, proxy_password=secrets.token_urlsafe(32))

    def _images(self, spec: SessionSpec, *, push: bool) -> SessionImages | None:
        """The session's pinned images, built and pushed first when ``push`` (None: no registry)."""
        if self.config.backend.image is not None:
            return None  # the user's own image, used as given
        target = resolve_target(self._api, self.config.backend, warn=self.reporter.warn)
        if target is None:
            return None
        specs = build_image_specs(self.config, spec)
        if not push:
            return check_session_images(self.runner, target, specs, reporter=self.reporter)
        return publish_session_images(
            self.runner, target, specs, reporter=self.reporter, rebuild=spec.rebuild
        )

    def start_session(self, spec: SessionSpec) -> Session:
        """Push missing images, apply every object of the session and wait for its pod.

        Converges if the session exists.
        """
        plan = self._plan(spec, push=True)
        # The ADC reaches only --pass-credentials agents: no warning about it otherwise.
        creds = spec.credentials if spec.pass_credentials else \
            replace(spec.credentials, gcloud_dir=None)
        for warning in stale_credentials(self._api, creds):
            self.reporter.warn(warning)
        # The CLI shows a status around this call: report progress as lines only.
        self.reporter.info(f"Applying {len(plan.steps)} objects of session {spec.name}")
        claim = workspace_claim(spec.name)
        had_workspace = self._api.get("v1", "PersistentVolumeClaim", claim) is not None
        applied = self._apply_plan(plan)
        if had_workspace:
            resume_if_stopped(self._api, self.runner, self.reporter, session=spec.name,
                              cli=self._cli(),
                              target=self._target(spec.name), timeout=self._ready_timeout)
        try:
            pod = self._wait_ready(spec, plan, applied)
        except (ImagePullError, NetworkPolicyError):
            # Nothing half-created stays: a pod that cannot pull, or whose
            # NetworkPolicy is not enforced, never recovers by itself. A
            # workspace volume that held work before is kept.
            self._remove_objects(spec.name)
            if not had_workspace:
                self._api.delete("v1", "PersistentVolumeClaim", claim)
            raise
        if self.config.sync.enabled:
            sync.start_sync(self._sync_spec(spec.name, str(spec.workspace)), self.reporter)
        # Built from what apply and the waits returned: no further request.
        return build_session(applied[-1], pod, proxy_ready=True)

    def _apply_plan(self, plan: Plan) -> list[dict[str, Any]]:
        """Apply the plan's objects in order; the Services' ClusterIPs go into the agent.

        The plan applies the proxy's and gateway's Services before the
        StatefulSet, so their addresses (assigned by the API server) are
        known when the agent's is applied. A Secret to keep is applied only
        where none with its keys exists. Returns the objects applied but the Secrets.
        """
        applied: list[dict[str, Any]] = []
        addresses: dict[str, str] = {}
        for step in plan.steps:
            if isinstance(step, SecretManifest):
                log_step(step)
                self._apply_secret(step)
            elif isinstance(step, Manifest):
                log_step(step)
                applied.append(self._api.apply(with_addresses(step.obj, addresses)))
                addresses |= service_address(applied[-1])
        return applied

    def _apply_secret(self, step: SecretManifest) -> None:
        if step.keep_existing:
            meta = step.obj["metadata"]
            existing = self._api.get("v1", "Secret", meta["name"])
            held = (existing or {}).get("data") or {}
            if all(held.get(key) for key in step.obj.get("data", {})):
                return  # its users already hold these values
        self._api.apply(step.obj)

    def _wait_ready(self, spec: SessionSpec, plan: Plan,
                    applied: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        """Wait for the agent pod, then point the proxy's and gateway's Services at their pods.

        The agent needs both at once (its first request, its first model call).
        """
        self.reporter.info(f"Waiting for the pod {agent_pod_name(spec.name)}")
        owner = ("StatefulSet", agent_name(spec.name))
        pod = self._api.wait_pod_ready(
            agent_pod_name(spec.name), owner=owner, timeout=self._ready_timeout
        )
        deployments = {o["metadata"]["name"]: o for o in applied if o["kind"] == "Deployment"}
        for step in plan.steps:
            if isinstance(step, EndpointsManifest):
                self._slices.write(step, deployments.get(step.deployment))
        return pod

    @property
    def _slices(self) -> SliceWriter:
        return SliceWriter(self._api, self.reporter, timeout=self._ready_timeout)

    def _repair_entry(self, session: Session) -> None:
        """A replaced proxy or gateway pod has a new address: point its Service at it."""
        self._slices.repair(session.name, self._settings())

    def _prepare_attach(self, session: Session) -> None:
        """The workspace sync runs while anyone is attached: start it if it stopped."""
        if self.config.sync.enabled:
            sync.ensure_sync(self._sync_spec(session.name, session.workspace))

    def _attach_argv(self, session: Session) -> list[str]:
        return build_attach_argv(self._cli(), **self._target(session.name))

    def _exec_argv(self, session: Session, command: Sequence[str], *, tty: bool) -> list[str]:
        """``oc exec -i`` (stdin passes through), with ``-t`` too when ``tty``, as podman's."""
        return build_exec_argv(self._cli(), **self._target(session.name), command=list(command),
                               stdin=True, tty=tty)

    def stop_session(self, name: str) -> None:
        """Delete the session's objects (not its workspace PVC); drop an unused proxy."""
        sync.stop_sync_of(name)
        found, deleted = self._remove_objects(name)
        claims = self._api.list_objects(
            "v1", "PersistentVolumeClaim", selector_labels(ROLE_STORAGE) | {LABEL_SESSION: name}
        )
        if not found and not deleted and not claims:
            raise session_not_found(name)
        for claim in claims:
            self.reporter.info(
                f"Kept the workspace volume {claim['metadata']['name']} of session {name}"
                f" (remove it with: paude stop --force {name})"
            )

    def _remove_objects(self, name: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Delete a session's objects but its PVC, and its proxy if no other session uses it.

        The proxy is named by the StatefulSet and by the PVC: a start killed
        before it applied the StatefulSet has made the PVC (its first step)
        and perhaps the proxy's objects, which carry no session label.
        """
        selector = {**selector_labels(ROLE_AGENT), LABEL_SESSION: name}
        found = self._api.list_objects("apps/v1", "StatefulSet", selector)
        claims = self._api.list_objects(
            "v1", "PersistentVolumeClaim", selector_labels(ROLE_STORAGE) | {LABEL_SESSION: name}
        )
        proxies = {o["metadata"].get("labels", {}).get(LABEL_PROXY)
                   for o in [*found, *claims]} - {None}
        deleted = self._delete_labelled(
            {LABEL_MANAGED_BY: MANAGED_BY, LABEL_SESSION: name}
        )
        for proxy in proxies:
            self._drop_proxy_if_unused(str(proxy))
        return found, deleted

    def remove_workspace(self, name: str) -> list[str]:
        """Delete the session's workspace PVC (unsynced work is lost); return what was deleted."""
        selector = selector_labels(ROLE_STORAGE) | {LABEL_SESSION: name}
        names = [
            c["metadata"]["name"]
            for c in self._api.list_objects("v1", "PersistentVolumeClaim", selector)
        ]
        for claim in names:
            self._api.delete("v1", "PersistentVolumeClaim", claim)
        return names

    def find_session(self, name: str) -> Session | None:
        """Return the session called ``name`` (stopped if only its workspace PVC is left)."""
        sessions = self._sessions({LABEL_SESSION: name})
        return sessions[0] if sessions else None

    def list_sessions(self) -> list[Session]:
        """Return every session in the namespace, newest first (stopped ones too)."""
        return self._sessions({})

    def sync_workspace(self, name: str, direction: str = "both") -> None:
        """Sync both ways until both sides agree (``direction="force"``: local overwrites)."""
        session = self._require_running(name)
        if not self.config.sync.enabled:
            raise SyncOffError("workspace sync is off (sync.enabled is false in paude.json)")
        spec = self._sync_spec(name, session.workspace)
        result = sync.sync_now(spec, self.reporter, force=direction == "force")
        self.reporter.info(f"Synced session {name}: {result.pushed} sent, {result.pulled}"
                           f" received, {result.deleted_local + result.deleted_remote} deleted")

    def session_proxy(self, name: str) -> OpenShiftSessionProxy:
        """Return the proxy the session uses (its denials, its live allowlist), through the API."""
        from paude.backends.openshift.sessionproxy import OpenShiftSessionProxy

        return OpenShiftSessionProxy(self._api, name, self.reporter)

    def _sync_spec(self, name: str, workspace: str) -> SyncSpec:
        return sync.build_sync_spec(self.config, name=name, workspace=workspace,
                                    cli=self._cli(), namespace=self._api.namespace)

    def _sessions(self, extra: dict[str, str]) -> list[Session]:
        """Sessions from StatefulSets, plus stopped ones from PVCs left without one."""
        selector = selector_labels(ROLE_AGENT) | extra
        sets = self._api.list_objects("apps/v1", "StatefulSet", selector)
        claims = self._api.list_objects(
            "v1", "PersistentVolumeClaim", selector_labels(ROLE_STORAGE) | extra
        )
        names = {s["metadata"]["labels"].get(LABEL_SESSION) for s in sets}
        sessions = [
            build_stopped_session(c)
            for c in claims
            if c["metadata"]["labels"].get(LABEL_SESSION) not in names
        ]
        if sets:
            sessions += self._live_sessions(sets, selector)
        return sorted(sessions, key=lambda s: s.created_at, reverse=True)

    def _live_sessions(self, sets: list[dict[str, Any]], selector: dict[str, str]) -> list[Session]:
        pods = {p["metadata"]["name"]: p for p in self._api.list_objects("v1", "Pod", selector)}
        ready = {
            d["metadata"]["labels"].get(LABEL_PROXY)
            for d in self._api.list_objects("apps/v1", "Deployment", selector_labels(ROLE_PROXY))
            if (d.get("status") or {}).get("readyReplicas")
        }
        return [
            build_session(
                s,
                pods.get(f"{s['metadata']['name']}-0"),
                proxy_ready=s["metadata"]["labels"].get(LABEL_PROXY) in ready,
            )
            for s in sets
        ]

    def _cli(self) -> str:
        return self._kube_cli or pick_kube_cli()

    def _target(self, name: str) -> dict[str, Any]:
        return {
            "pod": agent_pod_name(name),
            "namespace": self._api.namespace,
            "context": self.config.backend.context,
        }

    def _delete_labelled(self, selector: dict[str, str]) -> list[str]:
        deleted = []
        for api_version, kind in _SESSION_KINDS:
            for obj in self._api.list_objects(api_version, kind, selector):
                self._api.delete(api_version, kind, obj["metadata"]["name"])
                deleted.append(f"{kind}/{obj['metadata']['name']}")
        return deleted

    def _drop_proxy_if_unused(self, proxy: str) -> None:
        users = self._api.list_objects(
            "apps/v1", "StatefulSet", selector_labels(ROLE_AGENT, proxy=proxy)
        )
        if users:
            return
        selector = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PROXY: proxy}
        for api_version, kind in _PROXY_KINDS:
            for obj in self._api.list_objects(api_version, kind, selector):
                self._api.delete(api_version, kind, obj["metadata"]["name"])

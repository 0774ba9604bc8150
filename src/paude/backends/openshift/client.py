"""Kubernetes API calls through lightkube, with errors classified at this boundary.

Only the OpenShift backend imports this module (lazily, through the backend
registry), so the podman path never loads lightkube. Objects cross this
boundary as plain dicts, the same ones the pure builders return.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpx2
from lightkube import ApiError, Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.core.exceptions import ConfigError as KubeConfigError
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Event, Pod

from paude.backends.openshift import agentpod
from paude.backends.openshift.status import classify_status, parse_pod_state, pending_error
from paude.errors import ClusterError, NotLoggedInError, OperationTimeoutError

FIELD_MANAGER = "paude"
REQUEST_TIMEOUT = 30.0
# Registered so ``from_dict`` and the registry know this CRD's kind.
EgressFirewall = create_namespaced_resource(
    "k8s.ovn.org", "v1", "EgressFirewall", "egressfirewalls"
)

Route = create_namespaced_resource("route.openshift.io", "v1", "Route", "routes")
ImageStream = create_namespaced_resource("image.openshift.io", "v1", "ImageStream", "imagestreams")

_PLURALS = {
    "Pod": "pods",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "StatefulSet": "statefulsets.apps",
    "Deployment": "deployments.apps",
    "ReplicaSet": "replicasets.apps",
    "EndpointSlice": "endpointslices.discovery.k8s.io",
    "Endpoints": "endpoints",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
    "EgressFirewall": "egressfirewalls.k8s.ovn.org",
    "Event": "events",
    "PodLog": "pods/log",
    "Route": "routes.route.openshift.io",
    "ImageStream": "imagestreams.image.openshift.io",
}


def _resource(api_version: str, kind: str) -> Any:
    return resource_registry.load(api_version, kind)


def _is_not_found(err: BaseException) -> bool:
    cause = err.__cause__
    return isinstance(cause, httpx2.HTTPStatusError) and cause.response.status_code == 404


def load_kubeconfig(context: str | None) -> Any:
    """Return lightkube's config for ``context`` (or the current one).

    Raises:
        NotLoggedInError: no kubeconfig, or the context does not exist.
    """
    try:
        return KubeConfig.from_env().get(context_name=context)
    except (KubeConfigError, OSError) as err:
        raise NotLoggedInError(
            f"no usable kubeconfig: {err}",
            hint="Log in to the cluster first: oc login <server> (or kubectl config use-context).",
        ) from err


def pick_namespace(namespace: str | None, kubeconfig: Any) -> str:
    """Return the namespace to use: the configured one, else the context's, else ``default``."""
    return agentpod.pick_namespace(namespace, kubeconfig.context.namespace)


class KubeClient:
    """A namespace-bound lightkube client that speaks paude's dicts and errors."""

    def __init__(
        self,
        *,
        context: str | None,
        namespace: str | None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        config = load_kubeconfig(context)
        self.namespace: str = pick_namespace(namespace, config)
        self.server: str = config.cluster.server
        # Typed as Any: lightkube's overloads are keyed on its model classes, and
        # this boundary deals in the builders' plain dicts.
        self._config, self._transport = config, transport
        self._hooks: list[Callable[[httpx2.Request], None]] = []
        self._client: Any = self._new_client()

    def _new_client(self) -> Any:
        client = Client(
            self._config,
            namespace=self.namespace,
            field_manager=FIELD_MANAGER,
            timeout=httpx2.Timeout(REQUEST_TIMEOUT),
            transport=self._transport,
        )
        # lightkube Client -> GenericSyncClient -> httpx Client; no public hook exists.
        client._client._client.event_hooks["request"].extend(self._hooks)
        return client

    def on_request(self, hook: Callable[[httpx2.Request], None]) -> None:
        """Call ``hook`` before every HTTP request (bench/openshift_start.py counts them)."""
        self._hooks.append(hook)
        self._client._client._client.event_hooks["request"].append(hook)

    @contextmanager
    def _errors(self, verb: str, kind: str) -> Iterator[None]:
        try:
            yield
        except httpx2.HTTPStatusError as err:  # ApiError, or a reply without a Status body
            if isinstance(err, ApiError):
                code, message = err.status.code or 0, err.status.message or str(err)
            else:
                code, message = err.response.status_code, err.response.reason_phrase
            raise classify_status(
                code,
                message,
                verb=verb,
                resource=_PLURALS.get(kind, kind),
                namespace=self.namespace,
            ) from err
        except httpx2.TransportError as err:
            raise ClusterError(
                f"cannot reach the cluster at {self.server}: {err}",
                hint="Check the network or VPN, and that `oc whoami --show-server` is right.",
            ) from err

    def apply(self, obj: dict[str, Any], *, create: bool = False) -> dict[str, Any]:
        """Create or update ``obj`` with server-side apply as field manager ``paude``.

        ``force=True`` takes over fields another manager set on paude's own
        objects (e.g. after someone ran ``oc edit``), so a start converges.
        ``create``: only create it (a kind the user may create but not patch: a pod).
        """
        if create:
            with self._errors("create", obj["kind"]):
                applied = self._client.create(from_dict(obj), field_manager=FIELD_MANAGER)
        else:
            with self._errors("patch", obj["kind"]):
                applied = self._client.apply(from_dict(obj), force=True)
        result: dict[str, Any] = applied.to_dict()
        return result

    def bearer_token(self) -> str | None:
        """Return the kubeconfig's bearer token (``oc login`` writes one), if it has one."""
        user = self._config.user
        if user.token:
            return str(user.token)
        if user.token_file:
            with open(user.token_file, encoding="utf-8") as handle:
                return handle.read().strip()
        return None

    def get(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Return the object (in ``namespace``, default ours), or ``None`` if it is absent."""
        try:
            with self._errors("get", kind):
                found = self._client.get(_resource(api_version, kind), name, namespace=namespace)
        except ClusterError as err:
            if _is_not_found(err):
                return None
            raise
        result: dict[str, Any] = found.to_dict()
        return result

    def list_objects(
        self,
        api_version: str,
        kind: str,
        selector: dict[str, str],
        *,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the objects of ``kind`` (in ``namespace``, default ours) matching ``selector``."""
        with self._errors("list", kind):
            found = list(
                self._client.list(
                    _resource(api_version, kind), labels=selector, namespace=namespace
                )
            )
        return [obj.to_dict() for obj in found]

    def has_kind(self, api_version: str, kind: str | None = None) -> bool:
        """Return whether the cluster serves ``kind`` (e.g. a CRD such as EgressFirewall).

        With no ``kind``: whether it serves the API group version at all (e.g.
        ``security.openshift.io/v1``), from discovery, which every user may
        read; listing a kind cannot tell, as RBAC answers before the API exists.
        """
        if kind is None:
            http = self._client._client._client  # lightkube's httpx Client (base URL, auth)
            with self._errors("get", api_version):
                response = http.get(f"/apis/{api_version}")
                if response.status_code == 404:
                    return False
                response.raise_for_status()
            return True
        try:
            with self._errors("list", kind):
                next(iter(self._client.list(_resource(api_version, kind), chunk_size=1)), None)
        except ClusterError as err:
            if _is_not_found(err):
                return False
            raise
        return True

    def delete(self, api_version: str, kind: str, name: str) -> None:
        """Delete an object (foreground for workloads); a missing one is fine."""
        try:
            with self._errors("delete", kind):
                self._client.delete(_resource(api_version, kind), name)
        except ClusterError as err:
            if _is_not_found(err):
                return
            raise

    def _warning_events(self, kind: str, name: str) -> list[str]:
        """Return the messages of Warning events about one object, oldest first."""
        fields = {"involvedObject.kind": kind, "involvedObject.name": name, "type": "Warning"}
        with self._errors("list", "Event"):
            events = list(self._client.list(Event, fields=fields))
        return [f"{e.reason}: {e.message}" for e in events if e.message]

    def pod_log(
        self, name: str, *, container: str, until: str | None = None, timeout: float = 0
    ) -> str:
        """Return the log of ``container`` in pod ``name``, from its start.

        With ``until``, follow the log until that line appears (at most
        ``timeout`` s) and return the log up to it. The follow runs in a
        thread with its own client (see :meth:`_watch_pods` for why), so the
        wait has a deadline.

        Raises:
            OperationTimeoutError: ``until`` did not appear within ``timeout`` s.
            ClusterError: the log cannot be read, or ended without ``until``.
        """
        if until is None:
            with self._errors("get", "PodLog"):
                return "".join(self._client.log(name, container=container))
        outcome: queue.Queue[BaseException | str | None] = queue.Queue()
        follower = self._new_client()

        def _follow() -> None:
            try:
                seen: list[str] = []
                for text in follower.log(name, container=container, follow=True):
                    seen.append(text)
                    if text.rstrip("\n") == until:
                        outcome.put("".join(seen))
                        return
                outcome.put(None)
            except Exception as err:  # handed to the waiting thread, which raises it
                outcome.put(err)
            finally:
                follower.close()

        threading.Thread(target=_follow, name="paude-log", daemon=True).start()
        try:
            result = outcome.get(timeout=timeout)
        except queue.Empty:
            raise OperationTimeoutError(
                f"the {container} container of pod {name} did not log {until!r} in {timeout:.0f}s",
                hint=f"See: kubectl logs -n {self.namespace} {name} -c {container}",
            ) from None
        if isinstance(result, BaseException):
            with self._errors("get", "PodLog"):
                raise result
        if result is None:
            raise ClusterError(
                f"the log of the {container} container of pod {name} ended before {until!r}"
            )
        return result

    def wait_pod_ready(
        self,
        name: str | None = None,
        *,
        labels: dict[str, str] | None = None,
        owner: tuple[str, str],
        timeout: float,
        until: Callable[[dict[str, Any]], bool] | None = None,
        mine: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Watch pod ``name`` (or the pods matching ``labels``) until one is Running and Ready.

        ``until`` replaces "Running and Ready" (e.g. "its container runs").
        ``mine``: only the failures of pods it accepts are raised (anyone may
        make a pod with the same labels, one that cannot pull, say).

        ``owner`` is the ``(kind, name)`` whose Warning events explain a pod
        that never appears.

        Raises:
            ClusterError: the image cannot be pulled, or the owner StatefulSet
                cannot create the pod (quota, admission).
            OperationTimeoutError: not ready in ``timeout`` s (names the scheduler's reason).
        """
        deadline = time.monotonic() + timeout
        waiting, seen = "no pod yet", False
        watch = {"fields": {"metadata.name": name}} if name else {"labels": labels}
        shown = name or f"of {owner[0]} {owner[1]}"
        with self._watch_pods(watch, timeout) as events:
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    item = events.get(timeout=min(remaining, 3.0))
                except queue.Empty:
                    if not seen:
                        self._raise_for_owner_events(owner, shown, waiting)
                    continue
                if isinstance(item, BaseException):
                    with self._errors("watch", "Pod"):
                        raise item
                op, pod = cast(tuple[str, dict[str, Any]], item)
                seen = op != "DELETED"
                state = parse_pod_state(pod)
                if state.error is not None and (mine is None or mine(pod)):
                    raise state.error
                if (until(pod) if until else state.ready) and op != "DELETED":
                    return pod
                waiting = state.waiting
        err = pending_error(shown, waiting, self._warning_events(*owner))
        raise OperationTimeoutError(err.message, hint=err.hint)

    def _raise_for_owner_events(self, owner: tuple[str, str], pod: str, waiting: str) -> None:
        events = [e for e in self._warning_events(*owner) if "FailedCreate" in e]
        if events:
            raise pending_error(pod, waiting, events)

    @contextmanager
    def _watch_pods(self, selector: dict[str, Any], timeout: float) -> Iterator[queue.Queue[Any]]:
        """Yield a queue fed by a watch on pods, run in a thread so waits have a deadline.

        lightkube's watch re-issues requests without yielding, so no deadline
        can be checked inside it. The watch has its own client, which only
        its thread ever touches: closing a client from another thread while
        the watch reads from it let the old reader steal bytes from a new
        connection that reused the socket's descriptor (seen as intermittent
        "SSL: WRONG_VERSION_NUMBER" on the next request). So the thread stops
        and closes its client itself, at the next event after it is told to;
        until then it is an idle daemon thread.
        """
        events: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        watcher = self._new_client()
        server_timeout = max(1, math.ceil(timeout))

        def feed() -> None:
            try:
                for op, pod in watcher.watch(Pod, server_timeout=server_timeout, **selector):
                    if stop.is_set():
                        break
                    events.put((op, pod.to_dict()))
            except Exception as err:  # handed to the waiting thread, which raises it
                events.put(err)
            finally:
                watcher.close()

        threading.Thread(target=feed, name="paude-watch", daemon=True).start()
        try:
            yield events
        finally:
            stop.set()

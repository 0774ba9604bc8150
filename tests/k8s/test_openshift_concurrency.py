"""Concurrent and interrupted OpenShift-backend commands converge (test cluster).

* two starts of one session at once, from two backends that share no lock
  (as from two machines): server-side apply makes them converge on one
  session, and both succeed;
* ``paude stop --force`` while a start runs (begun when the start reports
  that it waits for its pod), each holding the session lock as the CLI does:
  the stop waits for the start, then removes everything, so nothing labelled
  with the session is left.
The end state is listed by label.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_openshift_backend import (
    SESSION_KINDS,
    as_limited,  # noqa: F401 (a fixture)
    labelled,
    make_backend,
    make_config,
    spec,
)

from paude.backends.base import NullReporter, Session, SessionStatus
from paude.backends.openshift.manifests import build_session_plan
from paude.backends.openshift.objects import cluster_settings
from paude.plan import Manifest
from paude.session_lock import session_lock

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.k8s
EVERYTHING = f"{SESSION_KINDS},persistentvolumeclaims"


def in_thread(call: Callable[[], Session | None]) -> tuple[threading.Thread, list[object]]:
    """Run ``call`` in a thread; the list gets its result or its exception."""
    out: list[object] = []

    def body() -> None:
        try:
            out.append(call())
        except Exception as err:  # handed to the test, which fails on it
            out.append(err)

    thread = threading.Thread(target=body)
    thread.start()
    return thread, out


@pytest.mark.usefixtures("as_limited")
def test_two_starts_at_once_converge_on_one_session(cluster: Cluster, namespace: str) -> None:
    config = make_config(namespace)
    name = cluster.random_name("twice")
    runs = [in_thread(lambda: make_backend(cluster, config)[0].start_session(spec(name)))
            for _ in range(2)]
    for thread, _ in runs:
        thread.join(300)
    results = [out[0] for _, out in runs]
    assert all(isinstance(r, Session) and r.status is SessionStatus.RUNNING
               for r in results), results
    plan = build_session_plan(spec(name), cluster_settings(config.backend, namespace))
    expected = sorted(f"{s.obj['kind']}/{s.obj['metadata']['name']}"
                      for s in plan.steps if isinstance(s, Manifest))
    found = labelled(cluster, namespace, "app.kubernetes.io/managed-by=paude", EVERYTHING)
    assert set(expected) <= set(found), found  # every object of the plan, once (by name)
    pods = [f for f in found if f.startswith("Pod/")]
    assert [p for p in pods if p.startswith(f"Pod/paude-{name}-")] == [f"Pod/paude-{name}-0"]
    assert len([p for p in pods if p.startswith("Pod/paude-proxy-")]) == 1, pods
    backend, _ = make_backend(cluster, config)
    assert [s.name for s in backend.list_sessions()] == [name]
    backend.start_session(spec(name))  # one more start finds it converged: nothing new
    after = labelled(cluster, namespace, "app.kubernetes.io/managed-by=paude", EVERYTHING)
    assert after == found
    backend.stop_session(name)
    backend.remove_workspace(name)


class _StopMidway(NullReporter):
    """The start's reporter: when the start says it waits for its pod (its
    objects applied, the pod not ready), run ``stop`` beside it and go on
    once the stop waits for the session lock."""

    def __init__(self, stop: Callable[[], None], waited: list[str]) -> None:
        super().__init__()
        self.stop, self.waited = stop, waited
        self.thread: threading.Thread | None = None

    def info(self, message: str) -> None:
        super().info(message)
        if message.startswith("Waiting for the pod") and self.thread is None:
            self.thread = threading.Thread(target=self.stop)
            self.thread.start()
            deadline = time.monotonic() + 120
            while not self.waited and time.monotonic() < deadline:
                time.sleep(0.05)


@pytest.mark.usefixtures("as_limited")
def test_stop_during_a_start_ends_with_nothing_labelled(
    cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the locks' directory
    config = make_config(namespace)
    name = cluster.random_name("stopped")
    starter, _ = make_backend(cluster, config)
    stopper, _ = make_backend(cluster, config)
    waited: list[str] = []
    seen: list[list[str]] = []

    def stop() -> None:  # as `paude stop --force`
        with session_lock(name, on_wait=waited.append) as lock:
            seen.append(labelled(cluster, namespace, f"paude.io/session={name}", EVERYTHING))
            stopper.stop_session(name)
            stopper.remove_workspace(name)
            lock.discard()

    midway = _StopMidway(stop, waited)
    starter.reporter = midway
    with session_lock(name, on_wait=lambda _: None):  # as `paude --detach`
        session = starter.start_session(spec(name))
    assert session.status is SessionStatus.RUNNING
    assert midway.thread is not None
    midway.thread.join(300)
    assert waited and "Waiting for another paude command" in waited[0], waited
    assert f"Pod/paude-{name}-0" in seen[0]  # the stop found the whole session, then
    cluster.wait_for(
        lambda: not labelled(cluster, namespace, f"paude.io/session={name}", EVERYTHING)
        or None, timeout=120, what="nothing labelled with the session")

"""The OpenShift session's workspace sync: the built-in engine over ``oc``/``kubectl exec -i``.

The backend starts it with the session (initial sync in the foreground,
then the background sync), restarts it on attach when it died, syncs on
``paude sync`` and before ``paude stop``, and stops it with the session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from paude.backends.base import Reporter
from paude.backends.openshift.objects import AGENT_CONTAINER, agent_pod_name
from paude.config.models import PaudeConfig
from paude.errors import PaudeError
from paude.sync import BuiltinSync, ExecTransport, RoundResult, SyncSpec, build_kube_prefix

# Report initial-sync progress every this many files, for trees larger than it.
PROGRESS_EVERY = 1000


def build_sync_spec(config: PaudeConfig, *, name: str, workspace: str, cli: str,
                    namespace: str) -> SyncSpec:
    """Return the sync of session ``name``: its workspace paired with the agent pod's."""
    if not workspace:
        raise PaudeError(f"session {name} does not record its local workspace",
                         hint="Start it again from its workspace with: paude")
    prefix = build_kube_prefix(cli, pod=agent_pod_name(name), namespace=namespace,
                               container=AGENT_CONTAINER, context=config.backend.context)
    return SyncSpec(name, Path(workspace), ExecTransport(prefix), config.sync.exclude)


def _progress(reporter: Reporter) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if not total:  # a first sync sends the tree as it walks it: no total
            if done % PROGRESS_EVERY == 0:
                reporter.info(f"Sent {done} files to the pod")
        elif total >= PROGRESS_EVERY and (done % PROGRESS_EVERY == 0 or done == total):
            reporter.info(f"Sent {done} of {total} files to the pod")

    return report


def sync_now(spec: SyncSpec, reporter: Reporter, *, force: bool = False) -> RoundResult:
    """Sync both ways until both sides agree, reporting progress and conflicts."""
    result = BuiltinSync(spec).sync_now(force=force, progress=_progress(reporter))
    if result.new_volume:
        reporter.info("The pod's workspace volume is new: synced it as a first sync"
                      " (nothing deleted on either side)")
    for line in result.conflicts:
        reporter.warn(f"sync conflict: {line}")
    return result


def start_sync(spec: SyncSpec, reporter: Reporter) -> None:
    """Run the initial sync (local -> pod) and start the background sync."""
    result = sync_now(spec, reporter)
    if result.changed:
        reporter.info(f"Synced {result.changed} paths with the pod")
    BuiltinSync(spec).start()


def ensure_sync(spec: SyncSpec) -> None:
    """Start the background sync when it is not running (it died, or the laptop rebooted)."""
    BuiltinSync(spec).start()


def stop_sync_of(name: str) -> None:
    """Stop the background sync of session ``name`` (if one runs here)."""
    from paude.sync.daemon import SyncFiles, stop

    stop(SyncFiles.of(name, create=False))

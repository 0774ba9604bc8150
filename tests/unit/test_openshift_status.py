"""Readers of pod status and API errors, exec argv, credential staleness."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from paude.backends.base import SessionStatus
from paude.backends.openshift.credentials import credential_warnings
from paude.backends.openshift.exec import build_attach_argv, build_exec_argv, pick_kube_cli
from paude.backends.openshift.status import (
    build_session,
    classify_status,
    parse_pod_state,
    pending_error,
)
from paude.errors import (
    ClusterError,
    ImagePullError,
    NetworkPolicyError,
    NotLoggedInError,
    PaudeError,
)

# Shapes as the API server returns them (trimmed captures of `kubectl get -o json`).
RUNNING: dict[str, Any] = {
    "metadata": {"name": "paude-demo-0"},
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "containerStatuses": [{"name": "agent", "image": "i:1", "state": {"running": {}}}],
    },
}
UNSCHEDULABLE: dict[str, Any] = {
    "metadata": {"name": "paude-demo-0"},
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ],
    },
}
PULL_FAILED: dict[str, Any] = {
    "metadata": {"name": "paude-demo-0"},
    "status": {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "agent",
                "image": "registry.example/paude:9",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}},
            }
        ],
    },
}
STS: dict[str, Any] = {
    "metadata": {
        "name": "paude-demo",
        "creationTimestamp": "2026-11-27T10:00:00Z",
        "labels": {"paude.io/session": "demo", "paude.io/network": "restricted"},
        "annotations": {"paude.io/workspace": "/src/demo"},
    },
    "spec": {"replicas": 1},
}


def test_running_and_ready_pod_is_ready() -> None:
    assert parse_pod_state(RUNNING).ready


def test_unschedulable_pod_reports_the_schedulers_message() -> None:
    state = parse_pod_state(UNSCHEDULABLE)
    assert not state.ready and state.error is None
    assert "Insufficient memory" in state.waiting


def test_image_pull_failure_is_an_error_with_a_hint() -> None:
    state = parse_pod_state(PULL_FAILED)
    assert state.error is not None
    with pytest.raises(ImagePullError, match="node cannot pull the image registry.example/paude:9"):
        raise state.error
    assert "\n" not in state.error.message
    # The kubelet's waiting reason and its message, as kubectl describe would show them.
    shown = "registry.example/paude:9 (ImagePullBackOff): manifest unknown"
    assert state.error.message.endswith(shown)
    assert "nodes reach registry.example" in (state.error.hint or "")
    assert "backend.pull_secret" in (state.error.hint or "")


@pytest.mark.parametrize(
    ("code", "message", "kind", "pattern"),
    [
        (401, "Unauthorized", NotLoggedInError, "refused our credentials"),
        (
            403,
            'statefulsets.apps is forbidden: User "bob" cannot patch resource "statefulsets"',
            ClusterError,
            "forbidden: cannot patch statefulsets.apps in namespace team-a",
        ),
        (
            403,
            'persistentvolumeclaims "x" is forbidden: exceeded quota: q, requested: storage=10Gi',
            ClusterError,
            "out of quota",
        ),
        (404, 'namespaces "team-a" not found', ClusterError, "namespace team-a does not exist"),
    ],
)
def test_api_errors_are_classified(
    code: int, message: str, kind: type[PaudeError], pattern: str
) -> None:
    err = classify_status(
        code, message, verb="patch", resource="statefulsets.apps", namespace="team-a"
    )
    with pytest.raises(kind, match=pattern):
        raise err
    assert err.hint


def test_forbidden_points_at_print_rbac() -> None:
    err = classify_status(403, "no", verb="list", resource="pods", namespace="ns1")
    assert "paude setup --print-rbac --namespace ns1" in (err.hint or "")


def test_pending_error_prefers_quota_events() -> None:
    events = ["FailedCreate: create Pod paude-demo-0 failed: exceeded quota: pods=1"]
    with pytest.raises(ClusterError, match="cannot be created: .*exceeded quota"):
        raise pending_error("paude-demo-0", "no pod yet", events)


def test_session_from_objects() -> None:
    session = build_session(STS, RUNNING, proxy_ready=True)
    assert (session.name, session.status, session.workspace) == (
        "demo",
        SessionStatus.RUNNING,
        "/src/demo",
    )
    assert build_session(STS, RUNNING, proxy_ready=False).status is SessionStatus.DEGRADED
    assert build_session(STS, PULL_FAILED, proxy_ready=True).status is SessionStatus.ERROR
    assert build_session(STS, None, proxy_ready=True).status is SessionStatus.PENDING
    stopped = copy.deepcopy(STS)
    stopped["spec"]["replicas"] = 0
    assert build_session(stopped, None, proxy_ready=True).status is SessionStatus.STOPPED


def test_attach_argv_uses_tmux_in_the_agent_container() -> None:
    argv = build_attach_argv("oc", pod="paude-demo-0", namespace="ns", context="ctx")
    assert argv == [
        "oc", "--context", "ctx", "--namespace", "ns", "exec", "-it", "paude-demo-0",
        "-c", "agent", "--", "tmux", "attach", "-t", "paude",
    ]  # fmt: skip


def test_exec_argv_keeps_words_intact() -> None:
    argv = build_exec_argv(
        "kubectl", pod="p-0", namespace="ns", context=None, command=["sh", "-c", "echo $HOME; ls"]
    )
    assert argv[-4:] == ["--", "sh", "-c", "echo $HOME; ls"]
    assert "--context" not in argv and "-it" not in argv


def test_kube_cli_prefers_oc() -> None:
    assert pick_kube_cli(lambda name: "/usr/bin/oc" if name == "oc" else None) == "oc"
    assert pick_kube_cli(lambda name: None) == "kubectl"


def test_credential_warnings_name_missing_and_stale_objects() -> None:
    warnings = credential_warnings({"gcloud": 200, "gitconfig": 100}, {"gcloud": 100})
    assert len(warnings) == 2
    assert "ConfigMap paude-gitconfig (gitconfig) is not in the cluster" in warnings[1]
    assert "Secret paude-gcloud-adc (gcloud) is older than the local file" in warnings[0]
    assert credential_warnings({"gcloud": 100}, {"gcloud": 100}) == []


def test_missing_kubeconfig_means_not_logged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paude.backends.openshift.client import load_kubeconfig

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(NotLoggedInError, match="no usable kubeconfig") as err:
        load_kubeconfig(None)
    assert "oc login" in (err.value.hint or "")


def test_unknown_context_means_not_logged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paude.backends.openshift.client import load_kubeconfig

    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\ncurrent-context: ''\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    with pytest.raises(NotLoggedInError, match="Context 'prod' not found"):
        load_kubeconfig("prod")


def _netpol_check(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status = {"name": "netpol-check", "state": state, "lastState": last or {}}
    return {"metadata": {"name": "paude-demo-0"},
            "status": {"phase": "Pending", "initContainerStatuses": [status]}}  # fmt: skip


def test_a_failed_networkpolicy_check_refuses_the_start_in_one_line() -> None:
    message = "the agent pod reached the cluster DNS (10.0.0.10 port 53), which its policy blocks\n"
    done = {"terminated": {"exitCode": 3, "message": message}}
    for pod in (_netpol_check(done),
                _netpol_check({"waiting": {"reason": "CrashLoopBackOff"}}, last=done)):  # fmt: skip
        err = parse_pod_state(pod).error
        assert isinstance(err, NetworkPolicyError)
        assert err.message.startswith("this cluster does not enforce NetworkPolicy")
        assert "10.0.0.10 port 53" in err.message and "\n" not in err.message
        assert err.hint is not None and "--allow-network" in err.hint
    # Still checking, or passed, or failed for another reason: not a refusal.
    assert parse_pod_state(_netpol_check({"running": {}})).error is None
    assert parse_pod_state(_netpol_check({"terminated": {"exitCode": 0}})).error is None
    assert parse_pod_state(_netpol_check({"terminated": {"exitCode": 1}})).error is None


def _stopped_pod(ready: bool, state: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(RUNNING)
    pod["status"]["conditions"][1]["status"] = "True" if ready else "False"
    pod["status"]["containerStatuses"][0].update(ready=ready, state=state, lastState=last)
    return pod


@pytest.mark.parametrize(("pod", "status", "detail"), [
    # The entrypoint stopped it (exit 80, message), the kubelet restarted it, it waits.
    (_stopped_pod(False, {"running": {}},
                  {"terminated": {"exitCode": 80, "message": "idle 4h", "reason": "Error"}}),
     SessionStatus.STOPPED, "idle 4h"),
    # Between the exit and the restart (the kubelet's back-off).
    (_stopped_pod(False, {"waiting": {"reason": "CrashLoopBackOff"}},
                  {"terminated": {"exitCode": 81, "message": "max 1d"}}),
     SessionStatus.STOPPED, "max 1d"),
    (_stopped_pod(False, {"terminated": {"exitCode": 82}}, {}), SessionStatus.STOPPED, "oom"),
    (_stopped_pod(False, {"running": {}}, {"terminated": {"exitCode": 137,
                                                          "reason": "OOMKilled"}}),
     SessionStatus.STOPPED, "oom"),
    # Resumed: ready again, whatever ended the container before.
    (_stopped_pod(True, {"running": {}}, {"terminated": {"exitCode": 80, "message": "idle 4h"}}),
     SessionStatus.RUNNING, ""),
])
def test_a_session_its_entrypoint_stopped_says_why(
    pod: dict[str, Any], status: SessionStatus, detail: str
) -> None:
    session = build_session(STS, pod, proxy_ready=True)
    assert (session.status, session.detail) == (status, detail)


def test_an_init_container_that_cannot_pull_is_the_image_error() -> None:
    waiting = {"waiting": {"reason": "ErrImagePull", "message": "connection refused"}}
    pod = {"metadata": {"name": "paude-demo-0"}, "status": {"phase": "Pending",
           "initContainerStatuses": [{"name": "netpol-check", "image": "r:1/a@sha256:0",
                                      "state": waiting}]}}  # fmt: skip
    err = parse_pod_state(pod).error
    assert isinstance(err, ImagePullError) and "r:1/a@sha256:0" in err.message


@pytest.mark.parametrize("tty", [False, True])
def test_exec_passes_stdin_and_a_tty_as_podmans_does(tty: bool) -> None:
    from paude.backends.podman.names import Names
    from paude.backends.podman.names import build_exec_argv as podman_exec_argv

    argv = build_exec_argv("oc", pod="p-0", namespace="ns", context=None, command=["cat"],
                           stdin=True, tty=tty)
    podman = podman_exec_argv(Names("s"), ["cat"], tty=tty)
    assert argv[argv.index("exec") + 1] == podman[2] == ("-it" if tty else "-i")
    assert argv[-2:] == ["--", "cat"]

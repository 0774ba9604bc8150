"""The OpenShift plan is what runs: ``--dry-run``'s rendering equals the steps applied.

The executor logs every step it applies (``PAUDE_STEP_LOG``), rendered as
``--dry-run`` renders the plan (``render_plan(backend.plan_session(spec))``,
which is all the CLI prints), against the test cluster as the limited user.
The session's Secrets (env values, the proxy's credential, the gateway's)
are steps too: printed redacted, applied with their values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_openshift_backend import make_backend, make_config, spec

from conftest import Cluster
from paude.auth import build_agent_model_env, find_model_auth
from paude.backends.openshift.client import KubeClient
from paude.backends.openshift.endpoints import POD_ADDRESS_PENDING
from paude.plan import (
    REDACTED,
    STEP_LOG_ENV,
    STEP_SEPARATOR,
    EndpointsManifest,
    SecretManifest,
    render_plan,
)

pytestmark = pytest.mark.k8s

MODEL_KEY = "sk-ant-canary-plan-execution-3131"  # never printed, only applied
ENV_TOKEN = "canary-plan-execution-token-2121"
_AUTH = find_model_auth({"ANTHROPIC_API_KEY": MODEL_KEY}, None, "-")
SECRETS = {"env": {"GITHUB_TOKEN": ENV_TOKEN}, "model_auth": _AUTH,
           "model_env": build_agent_model_env(_AUTH, {})}


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("plain", {}),
        ("unrestricted", {"allow_network": True}),
        ("devcontainer", {"dockerfile": "FROM docker.io/library/debian:bookworm-slim\n"}),
        ("secrets", SECRETS),
    ],
)
def test_steps_applied_equal_the_dry_run(  # noqa: PLR0917 - pytest fixtures
    cluster: Cluster, namespace: str, limited_kubeconfig: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, case: str, extra: dict[str, Any],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    backend, _ = make_backend(cluster, make_config(namespace))
    session = spec(cluster.random_name(case[:4]), **extra)
    plan = backend.plan_session(session)
    printed = render_plan(plan)
    log = tmp_path / "steps.log"
    monkeypatch.setenv(STEP_LOG_ENV, str(log))
    backend.start_session(session)  # the namespace fixture deletes what it made
    monkeypatch.delenv(STEP_LOG_ENV)
    parts = log.read_text(encoding="utf-8").split(STEP_SEPARATOR)
    assert parts[-1] == "" and len(parts) > 3
    assert "\n".join(parts[:-1]) == printed
    assert ("kind: Deployment" in printed) is (case != "unrestricted")
    secrets = {s.obj["metadata"]["name"]: s.obj for s in plan.steps
               if isinstance(s, SecretManifest)}
    assert len(secrets) == {"unrestricted": 0, "secrets": 3}.get(case, 1), list(secrets)
    assert MODEL_KEY not in printed and ENV_TOKEN not in printed
    client = KubeClient(context=None, namespace=namespace)
    for name, obj in secrets.items():
        assert f"name: {name}" in printed
        applied = client.get("v1", "Secret", name)
        assert applied is not None and set(applied["data"]) == set(obj["data"])
        assert all(value != REDACTED for value in applied["data"].values())
    # The proxy's slice is a step: printed with its pending address, applied with its pod's.
    slices = [s.obj["metadata"]["name"] for s in plan.steps if isinstance(s, EndpointsManifest)]
    assert bool(slices) is (case != "unrestricted")
    for name in slices:
        found = client.get("discovery.k8s.io/v1", "EndpointSlice", name)
        assert found is not None, name
        (endpoint,) = found["endpoints"]
        pod = client.get("v1", "Pod", endpoint["targetRef"]["name"])
        assert pod is not None and endpoint["addresses"] == [pod["status"]["podIP"]]
        assert POD_ADDRESS_PENDING not in endpoint["addresses"]
    if case == "secrets":  # the executor applied the values, not the printed redaction
        env = client.get("v1", "Secret", f"paude-{session.name}-env")
        assert env is not None and env["data"]["GITHUB_TOKEN"] == secrets[
            f"paude-{session.name}-env"]["data"]["GITHUB_TOKEN"]

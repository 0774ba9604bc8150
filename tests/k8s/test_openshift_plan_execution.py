"""The OpenShift plan is what runs: ``--dry-run``'s rendering equals the steps applied.

The executor logs every step it applies (``PAUDE_STEP_LOG``), rendered as
``--dry-run`` renders the plan (``render_plan(backend.plan_session(spec))``,
which is all the CLI prints), against the test cluster as the limited user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_openshift_backend import make_backend, make_config, spec

from conftest import Cluster
from paude.plan import STEP_LOG_ENV, STEP_SEPARATOR, render_plan

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("plain", {}),
        ("unrestricted", {"allow_network": True}),
        ("devcontainer", {"dockerfile": "FROM docker.io/library/debian:bookworm-slim\n"}),
    ],
)
def test_steps_applied_equal_the_dry_run(  # noqa: PLR0917 - pytest fixtures
    cluster: Cluster, namespace: str, limited_kubeconfig: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, case: str, extra: dict[str, Any],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    backend, _ = make_backend(cluster, make_config(namespace))
    session = spec(cluster.random_name(case[:4]), **extra)
    printed = render_plan(backend.plan_session(session))
    log = tmp_path / "steps.log"
    monkeypatch.setenv(STEP_LOG_ENV, str(log))
    backend.start_session(session)  # the namespace fixture deletes what it made
    monkeypatch.delenv(STEP_LOG_ENV)
    parts = log.read_text(encoding="utf-8").split(STEP_SEPARATOR)
    assert parts[-1] == "" and len(parts) > 3
    assert "\n".join(parts[:-1]) == printed
    assert ("kind: Deployment" in printed) is (case != "unrestricted")

"""``paude setup --backend openshift`` on the test cluster, as the limited user."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from paude.backends.base import Credentials, NullReporter, SessionSpec
from paude.backends.openshift.backend import OpenShiftBackend
from paude.backends.openshift.cluster import apply_credentials
from paude.cli.context import host_credentials
from paude.config.models import Amounts, BackendConfig, PaudeConfig, Resources, SyncConfig
from paude.runner import SystemRunner

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.k8s

SMALL = Resources(requests=Amounts(cpu="100m", memory="64Mi"), limits=Amounts(memory="128Mi"))


def fake_home(root: Path) -> Path:
    adc = root / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text('{"type": "authorized_user", "refresh_token": "r1"}')
    (root / ".gitconfig").write_text("[user]\n\tname = Agent Tester\n")
    return root


def test_setup_creates_rotates_and_start_warns_when_stale(
    cluster: Cluster,
    namespace: str,
    limited_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(limited_kubeconfig))
    home = fake_home(tmp_path / "home")
    lines = apply_credentials(BackendConfig(type="openshift", namespace=namespace),
                              host_credentials(home))
    assert [line.split(" from ")[0] for line in lines] == [
        "Refreshed Secret paude-gcloud-adc",
        "Refreshed ConfigMap paude-gitconfig",
    ]
    secret = cluster.get("secret", "paude-gcloud-adc", namespace)
    assert secret is not None
    data = base64.b64decode(secret["data"]["application_default_credentials.json"])
    assert b'"r1"' in data
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "paude"

    adc = home / ".config" / "gcloud" / "application_default_credentials.json"
    adc.write_text('{"type": "authorized_user", "refresh_token": "r2"}')
    stamp = int(adc.stat().st_mtime) + 100
    os.utime(adc, (stamp, stamp))
    creds = Credentials(gcloud_dir=adc.parent, gitconfig=home / ".gitconfig")
    config = PaudeConfig(
        backend=BackendConfig(type="openshift", namespace=namespace, image="x:1", resources=SMALL),
        sync=SyncConfig(enabled=False),  # kwok execs on the host: no pod workspace
    )
    reporter = NullReporter()
    backend = OpenShiftBackend(config, runner=SystemRunner(), reporter=reporter)
    # The old way (--allow-network --pass-credentials) is the one that mounts the
    # shared Secret in the agent, so it is the one a stale Secret misleads.
    spec = SessionSpec("cred", Path("/w"), (), allow_network=True, credentials=creds,
                       pass_credentials=True)
    backend.start_session(spec)
    warnings = [m for m in reporter.messages if m.startswith("warning:")]
    assert warnings == [
        "warning: Secret paude-gcloud-adc (gcloud) is older than the local file"
        " (refresh it with: paude setup --backend openshift)"
    ]

    apply_credentials(BackendConfig(type="openshift", namespace=namespace),
                              host_credentials(home))  # rotate
    rotated = cluster.get("secret", "paude-gcloud-adc", namespace)
    assert rotated is not None
    assert b'"r2"' in base64.b64decode(rotated["data"]["application_default_credentials.json"])
    reporter.messages.clear()
    backend.start_session(spec)
    assert not [m for m in reporter.messages if m.startswith("warning:")]

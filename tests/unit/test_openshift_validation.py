"""Every manifest paude exports passes kubernetes-validate --strict and checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from paude.backends.base import SessionSpec
from paude.backends.openshift.credentials import CredentialSource, build_credential_object
from paude.backends.openshift.manifests import build_session_objects
from paude.backends.openshift.objects import ClusterSettings
from paude.backends.openshift.proxy import build_proxy_auth_secret
from paude.backends.openshift.rbac import build_role, build_role_binding

KUBE_VERSION = "1.34.0"
SETTINGS = ClusterSettings(namespace="team-a", image="registry.example/paude/paude:1.0")
# Checks skipped on purpose; docs/openshift.md gives the same list and reasons.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "image digests: the image is the user's, named by tag in paude.json",
    "CKV_K8S_15": "pull policy Always: tags are pinned (CKV_K8S_14 holds)",
    "CKV_K8S_40": "fixed high UID: restricted-v2 assigns an arbitrary UID; a fixed one is refused",
    "CKV_K8S_22": "read-only root for the agent: the agent and its tools write to HOME and /tmp",
    "CKV_K8S_35": "secrets as files: the proxy URL's password must be in HTTP(S)_PROXY, a variable",
}


def all_objects() -> list[dict[str, Any]]:
    restricted = SessionSpec("demo", Path("/w"), (".googleapis.com", "api.anthropic.com"))
    open_net = SessionSpec("open", Path("/w2"), (), allow_network=True)
    source = CredentialSource("gitconfig", b"[user]\n\tname = A\n", 1)
    return [
        *build_session_objects(restricted, SETTINGS),
        *build_session_objects(open_net, SETTINGS),
        build_credential_object(source, SETTINGS),
        build_proxy_auth_secret(restricted.allowed_domains, SETTINGS, "not-a-real-password"),
        build_role("team-a"),
        build_role_binding("team-a", subject={"kind": "User", "name": "alice"}),
    ]


@pytest.mark.parametrize("obj", all_objects(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_kubernetes_validate_strict(obj: dict[str, Any]) -> None:
    result = kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    assert result  # returns the schema version it validated against


def test_kubernetes_validate_rejects_a_typo() -> None:
    (obj,) = [o for o in all_objects() if o["kind"] == "StatefulSet"][:1]
    obj["spec"]["template"]["spec"]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="securityContxt"):
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def _checkov() -> str:
    found = shutil.which("checkov") or "/opt/checkov-venv/bin/checkov"
    if not os.access(found, os.X_OK):
        pytest.fail("checkov is not installed: run scripts/setup", pytrace=False)
    return found


def test_checkov_kubernetes_checks_pass(tmp_path: Path) -> None:
    for i, obj in enumerate(all_objects()):
        (tmp_path / f"{i:02d}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj))
    argv = [_checkov(), "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json"]
    argv += ["--compact", "--quiet", "--skip-check", ",".join(CHECKOV_SKIPS)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False)
    report = json.loads(proc.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 100

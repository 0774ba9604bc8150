"""The gateway's objects on the test cluster, as paude's limited user (kwok runs no containers).

Two sessions with different credentials in one namespace: the Role is
enough to create the gateway's Secret, Deployment, Service and policies;
each session's gateway pod (as admitted under PodSecurity ``restricted``)
mounts its own Secret, holding its own credential; the agent pod as stored
mounts no credential and maps the gateway's name to its Service's real
ClusterIP; stop deletes the gateway and its Secret. The containers' side
is tests/k8s/test_openshift_real_gateway.py (the real node).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_openshift_backend import as_limited, labelled, make_backend, make_config, spec  # noqa: F401

from paude.auth import build_agent_model_env, find_model_auth
from paude.backends.base import SessionSpec
from paude.backends.openshift.manifests import build_session_plan
from paude.backends.openshift.objects import cluster_settings
from paude.gateway.policy import GATEWAY_HOST
from paude.plan import render_plan

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.k8s

KEYS = {"alice": "sk-ant-canary-kwok-alice-1111", "bob": "sk-ant-canary-kwok-bob-2222"}


def keyed(name: str, key: str) -> SessionSpec:
    env = {"ANTHROPIC_API_KEY": key}
    auth = find_model_auth(env, None, "-")
    return spec(name, model_auth=auth, model_env=build_agent_model_env(auth, env))


def test_each_session_gets_its_own_gateway_and_secret_and_stop_removes_them(
    cluster: Cluster, namespace: str, as_limited: Path,  # noqa: F811
) -> None:
    config = make_config(namespace)
    backend, _ = make_backend(cluster, config)
    names = {who: cluster.random_name(who) for who in KEYS}
    for who, name in names.items():
        session = keyed(name, KEYS[who])
        settings = cluster_settings(config.backend, namespace)
        text = render_plan(build_session_plan(session, settings))
        assert KEYS[who] not in text  # --dry-run and paude manifests never hold it
        backend.start_session(session)
    for who, name in names.items():
        gateway = f"paude-{name}-gateway"
        secret = cluster.get("secret", gateway, namespace)
        assert secret is not None and secret["metadata"]["labels"]["paude.io/session"] == name
        held = base64.b64decode(secret["data"]["config"]).decode()
        others = [k for w, k in KEYS.items() if w != who]
        assert KEYS[who] in held and not [k for k in others if k in held]
        (pod,) = _pods(cluster, namespace, f"paude.io/role=gateway,paude.io/session={name}")
        assert [v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v] \
            == [gateway]
        agent = cluster.get("pod", f"paude-{name}-0", namespace)
        assert agent is not None
        secrets = [v["secret"]["secretName"] for v in agent["spec"]["volumes"] if "secret" in v]
        assert secrets == ["paude-claude-settings"]
        assert not [v for v in agent["spec"]["volumes"] if v["name"].startswith("kube-api")]
        service = cluster.get("service", gateway, namespace)
        assert service is not None
        assert agent["spec"]["hostAliases"] == [{"ip": service["spec"]["clusterIP"],
                                                 "hostnames": [GATEWAY_HOST]}]
        env = {e["name"]: e for e in agent["spec"]["containers"][0]["env"]}
        assert env["ANTHROPIC_BASE_URL"]["value"] == f"http://{GATEWAY_HOST}:8080"
        assert "ANTHROPIC_API_KEY" not in env
    gone, kept = names["alice"], names["bob"]
    backend.stop_session(gone)
    cluster.wait_for(lambda: not [o for o in labelled(cluster, namespace,
                                                      f"paude.io/session={gone}")
                                  if not o.startswith("Pod/")] or None,
                     timeout=60, what="no object of the stopped session left")
    assert cluster.get("secret", f"paude-{gone}-gateway", namespace) is None
    assert cluster.get("secret", f"paude-{kept}-gateway", namespace) is not None


def _pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = cluster.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return list(json.loads(out)["items"])

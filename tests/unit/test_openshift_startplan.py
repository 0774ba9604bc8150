"""The OpenShift start plan: its Secrets are steps, printed with every value redacted.

That the executor applies exactly these steps, Secrets included, is
tests/k8s/test_openshift_plan_execution.py, against the test cluster.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from paude.auth import build_agent_model_env, find_model_auth
from paude.backends.base import SessionSpec
from paude.backends.openshift.manifests import build_session_plan
from paude.backends.openshift.objects import ClusterSettings, proxy_auth_name
from paude.backends.openshift.proxy import render_htpasswd
from paude.backends.openshift.startplan import build_start_plan
from paude.plan import REDACTED, Manifest, SecretManifest, render_plan

SETTINGS = ClusterSettings(namespace="team-a", image="registry.example/paude/paude:1")
MODEL_KEY = "sk-ant-canary-startplan-7171"
ENV_TOKEN = "canary-env-token-5151"
PASSWORD = "canary-proxy-password-6161"
DOMAINS = (".googleapis.com",)


def spec(**kw: Any) -> SessionSpec:
    auth = find_model_auth({"ANTHROPIC_API_KEY": MODEL_KEY}, None, "-")
    base: dict[str, Any] = {
        "name": "demo", "workspace": Path("/src/demo"), "allowed_domains": DOMAINS,
        "env": {"GITHUB_TOKEN": ENV_TOKEN, "EDITOR": "vi"},
        "model_auth": auth, "model_env": build_agent_model_env(auth, {}),
    }
    base.update(kw)
    return SessionSpec(**base)


def secret_steps(s: SessionSpec) -> list[SecretManifest]:
    plan = build_start_plan(s, SETTINGS, proxy_password=PASSWORD)
    return [step for step in plan.steps if isinstance(step, SecretManifest)]


def test_the_claim_then_the_secrets_come_first_then_exactly_the_sessions_objects() -> None:
    s = spec()
    plan = build_start_plan(s, SETTINGS, proxy_password=PASSWORD)
    objects = build_session_plan(s, SETTINGS).steps
    # The claim first: it names the proxy for a stop after a start killed at any later step.
    assert plan.steps[0] == objects[0] and objects[0].obj["kind"] == "PersistentVolumeClaim"
    names = [step.obj["metadata"]["name"] for step in plan.steps[1:4]]
    assert names == ["paude-demo-env", proxy_auth_name(s.allowed_domains), "paude-demo-gateway"]
    assert all(isinstance(step, SecretManifest) for step in plan.steps[1:4])
    assert plan.steps[4:] == objects[1:]
    assert not any(isinstance(step, Manifest) and step.obj["kind"] == "Secret"
                   for step in plan.steps)
    keep = {step.obj["metadata"]["name"]: step.keep_existing for step in plan.steps[1:4]}
    assert keep == {"paude-demo-env": False, proxy_auth_name(s.allowed_domains): True,
                    "paude-demo-gateway": False}  # only the proxy's password is made once


def test_the_steps_hold_the_values_the_executor_applies() -> None:
    env, auth, gateway = secret_steps(spec())
    assert base64.b64decode(env.obj["data"]["GITHUB_TOKEN"]).decode() == ENV_TOKEN
    assert "EDITOR" not in env.obj["data"]  # not secret: a plain env value of the pod
    assert base64.b64decode(auth.obj["data"]["password"]).decode() == PASSWORD
    assert MODEL_KEY in base64.b64decode(gateway.obj["data"]["config"]).decode()


def test_the_dry_run_names_each_secret_and_its_keys_but_shows_no_value() -> None:
    s = spec()
    text = render_plan(build_start_plan(s, SETTINGS, proxy_password=PASSWORD))
    for name in ("paude-demo-env", proxy_auth_name(s.allowed_domains), "paude-demo-gateway"):
        assert f"name: {name}" in text
    for key in ("GITHUB_TOKEN:", "password:", "htpasswd:", "config:"):
        assert f"{key} {REDACTED}" in text
    held = [v for step in secret_steps(s) for v in step.obj["data"].values()]
    for secret in (ENV_TOKEN, MODEL_KEY, PASSWORD, render_htpasswd(PASSWORD).split(":")[1],
                   *held):
        assert secret.strip() not in text
    assert not any(ENV_TOKEN in repr(step) or PASSWORD in repr(step) for step in secret_steps(s))


def test_secrets_only_where_the_session_has_them() -> None:
    unrestricted = spec(allow_network=True, env={}, model_auth=None, model_env={})
    assert secret_steps(unrestricted) == []
    no_credential = spec(env={}, model_auth=None, model_env={})
    assert [st.obj["metadata"]["name"] for st in secret_steps(no_credential)] == [
        proxy_auth_name(no_credential.allowed_domains)]

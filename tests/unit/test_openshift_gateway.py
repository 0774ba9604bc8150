"""The OpenShift gateway's pure builders: the credential is the gateway's, never the agent's."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from paude.auth import ModelAuth, build_agent_model_env, find_model_auth
from paude.backends.base import SessionSpec
from paude.backends.openshift.gateway import (
    build_gateway_secret,
    gateway_host_aliases,
)
from paude.backends.openshift.images import build_image_specs
from paude.backends.openshift.manifests import (
    build_session_objects,
    build_session_plan,
    service_address,
    with_addresses,
)
from paude.backends.openshift.objects import ClusterSettings, cluster_settings
from paude.backends.podman import argv as pa
from paude.backends.podman.names import Names
from paude.config.models import BackendConfig, PaudeConfig
from paude.gateway.policy import GATEWAY_HOST, GATEWAY_PORT, build_gateway_args, parse_config
from paude.plan import render_plan

SETTINGS = ClusterSettings(namespace="team-a", image="registry.example/paude/paude:1")
API_KEY = "sk-ant-canary-unit-4242"
REFRESH = "canary-unit-refresh-token"
HOST_ENV = {"ANTHROPIC_API_KEY": API_KEY}


def spec(name: str = "demo", auth: ModelAuth | None = None, **kw: Any) -> SessionSpec:
    auth = auth or find_model_auth(HOST_ENV, None, "-")
    base: dict[str, Any] = {
        "name": name, "workspace": Path(f"/src/{name}"), "allowed_domains": (),
        "model_auth": auth, "model_env": build_agent_model_env(auth, HOST_ENV),
    }
    base.update(kw)
    return SessionSpec(**base)


def vertex_auth() -> ModelAuth:
    adc = json.dumps({"type": "authorized_user", "refresh_token": REFRESH,
                      "client_id": "c", "client_secret": "canary-unit-client-secret"})
    env = {"CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": "proj-1"}
    auth = find_model_auth(env, adc, "/h/adc.json")
    assert auth is not None
    return auth


def objects(s: SessionSpec) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in build_session_objects(s, SETTINGS)}


def agent_pod(s: SessionSpec) -> dict[str, Any]:
    pod: dict[str, Any] = objects(s)[("StatefulSet", f"paude-{s.name}")]["spec"]["template"]["spec"]
    return pod


def gateway_pod(s: SessionSpec) -> dict[str, Any]:
    deploy = objects(s)[("Deployment", f"paude-{s.name}-gateway")]
    pod: dict[str, Any] = deploy["spec"]["template"]["spec"]
    return pod


def test_the_agent_pod_mounts_no_credential_and_gets_only_the_gateway_variables() -> None:
    s = spec(auth=vertex_auth(), model_env=build_agent_model_env(vertex_auth(), {}))
    pod = agent_pod(s)
    assert pod["automountServiceAccountToken"] is False
    secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert secrets == ["paude-claude-settings"]  # settings.json only: no ADC, no gateway Secret
    (agent,) = pod["containers"]
    from_secret = [e for e in agent["env"] if "valueFrom" in e]
    # The proxy's password only (its own Secret): no model credential by reference.
    assert [e["valueFrom"]["secretKeyRef"]["key"] for e in from_secret] == ["password"]
    env = {e["name"]: e.get("value") for e in agent["env"]}
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
    # The same variables as on podman, pointing at the gateway's name...
    for key, value in build_agent_model_env(vertex_auth(), {}).items():
        assert env[key] == value
    assert env["ANTHROPIC_VERTEX_BASE_URL"] == f"http://{GATEWAY_HOST}:{GATEWAY_PORT}/v1"
    assert env["CLAUDE_CODE_SKIP_VERTEX_AUTH"] == "1"
    # ...called directly, and mapped to the gateway Service's address.
    assert GATEWAY_HOST in env["NO_PROXY"].split(",")
    assert pod["hostAliases"] == gateway_host_aliases()
    text = json.dumps(pod)
    assert REFRESH not in text and "gateway" not in json.dumps(pod["volumes"])


def test_the_gateway_container_alone_mounts_the_sessions_secret() -> None:
    s = spec()
    pod = gateway_pod(s)
    assert pod["automountServiceAccountToken"] is False
    (gateway,) = pod["containers"]
    assert gateway["image"] == SETTINGS.gateway_image
    assert gateway["args"] == build_gateway_args("0.0.0.0")
    (config,) = [v for v in pod["volumes"] if "secret" in v]
    assert config["secret"]["secretName"] == "paude-demo-gateway"
    assert "optional" not in config["secret"]
    mount = next(m for m in gateway["volumeMounts"] if m["name"] == config["name"])
    assert f"{mount['mountPath']}/{config['secret']['items'][0]['path']}" == build_gateway_args(
        "x")[0]
    secret = build_gateway_secret(s, SETTINGS)
    assert secret["metadata"]["name"] == config["secret"]["secretName"]
    assert secret["metadata"]["labels"]["paude.io/session"] == "demo"
    parsed = parse_config(base64.b64decode(secret["data"]["config"]).decode())
    assert parsed.secret == API_KEY


def test_two_sessions_in_one_namespace_each_have_their_own_gateway_secret() -> None:
    other = find_model_auth({"ANTHROPIC_API_KEY": "sk-other-user"}, None, "-")
    a, b = spec("alice"), spec("bob", auth=other)
    names = {gateway_pod(x)["volumes"][0]["secret"]["secretName"] for x in (a, b)}
    assert names == {"paude-alice-gateway", "paude-bob-gateway"}
    secret_b = build_gateway_secret(b, SETTINGS)
    assert API_KEY not in base64.b64decode(secret_b["data"]["config"]).decode()


def test_policies_let_only_the_sessions_agent_reach_its_gateway_port() -> None:
    objs = objects(spec())
    ingress = objs[("NetworkPolicy", "paude-demo-gateway")]["spec"]
    assert ingress["podSelector"]["matchLabels"]["paude.io/role"] == "gateway"
    (rule,) = ingress["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["paude.io/session"] == "demo"
    assert rule["from"][0]["podSelector"]["matchLabels"]["paude.io/role"] == "agent"
    assert rule["ports"] == [{"protocol": "TCP", "port": GATEWAY_PORT}]
    egress = objs[("NetworkPolicy", "paude-demo-to-gateway")]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    assert egress["egress"][0]["ports"] == [{"protocol": "TCP", "port": GATEWAY_PORT}]


def test_no_gateway_without_a_credential_or_with_allow_network() -> None:
    no_credential = SessionSpec(name="demo", workspace=Path("/w"), allowed_domains=())
    for s in (no_credential, spec(allow_network=True)):
        kinds = {(o["kind"], o["metadata"]["name"]) for o in build_session_objects(s, SETTINGS)}
        assert not [k for k in kinds if "gateway" in k[1]]
        assert "hostAliases" not in agent_pod(s)


def test_the_plan_holds_no_credential_and_the_agent_gets_the_gateways_address() -> None:
    s = spec(auth=vertex_auth())
    plan = build_session_plan(s, SETTINGS)
    text = render_plan(plan)
    assert REFRESH not in text and API_KEY not in text and "Secret " not in text
    service = next(o for o in build_session_objects(s, SETTINGS)
                   if o["kind"] == "Service" and o["metadata"]["name"].endswith("-gateway"))
    found = service_address({**service, "spec": {**service["spec"], "clusterIP": "10.0.0.9"}})
    assert found == {"gateway": "10.0.0.9"}
    bound = with_addresses(objects(s)[("StatefulSet", "paude-demo")], found)
    aliases = bound["spec"]["template"]["spec"]["hostAliases"]
    assert aliases == [{"ip": "10.0.0.9", "hostnames": [GATEWAY_HOST]}]


def test_both_backends_run_the_same_gateway_image_kind_and_arguments() -> None:
    argv = pa.build_gateway_run_argv(Names("demo"), image="img", gateway_ip="10.1.0.3",
                                     created_at="t")
    assert argv[-4:] == ["img", *build_gateway_args("10.1.0.3")]
    kinds = [i.kind for i in build_image_specs(PaudeConfig(), spec())]
    assert kinds == ["agent", "proxy", "gateway"]
    mine = cluster_settings(BackendConfig(image="reg.example/t/paude-agent:7"), "ns")
    assert mine.gateway_image == "reg.example/t/paude-gateway:7"

"""The OpenShift backend's pure manifest builders: fields that carry security."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from paude.backends.base import SessionSpec
from paude.backends.openshift.credentials import (
    CredentialSource,
    build_credential_object,
    build_env_secret,
)
from paude.backends.openshift.manifests import (
    build_agent_statefulset,
    build_session_objects,
    build_session_plan,
    proxy_address,
    secret_env_keys,
    with_proxy_address,
)
from paude.backends.openshift.objects import (
    ClusterSettings,
    cluster_settings,
    sibling_proxy_image,
)
from paude.backends.openshift.policies import (
    build_admin_agent_policy,
    build_agent_policy,
    build_egress_firewall,
    build_proxy_policy,
)
from paude.backends.openshift.proxy import build_proxy_auth_secret, parse_proxy_password
from paude.config.models import Amounts, BackendConfig, Resources, Timeouts
from paude.domains import Allowlist
from paude.facts import STATE_DIR
from paude.plan import Manifest

DOMAINS = (".googleapis.com", "api.anthropic.com")
SETTINGS = ClusterSettings(
    namespace="team-a",
    image="registry.example/paude/paude:1",
    resources=Resources(requests=Amounts(cpu="2", memory="2Gi"), limits=Amounts(memory="6Gi")),
)


def spec(**kw: Any) -> SessionSpec:
    base: dict[str, Any] = {
        "name": "demo",
        "workspace": Path("/src/demo"),
        "allowed_domains": DOMAINS,
    }
    base.update(kw)
    return SessionSpec(**base)


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def pod_spec() -> dict[str, Any]:
    result: dict[str, Any] = build_agent_statefulset(spec(), SETTINGS)["spec"]["template"]["spec"]
    return result


def test_pod_security_context_is_restricted_without_fixed_uid() -> None:
    pod = pod_spec()
    # The workspace volume's root becomes the agent's group's (a fresh
    # volume is root's, 0755): the kubelet applies fsGroup when it mounts it.
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch",
    }
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert "runAsUser" not in ctx and "runAsUser" not in pod["securityContext"]


def test_openshift_pod_leaves_fs_group_to_the_scc() -> None:
    # restricted-v2 refuses an fsGroup outside the namespace's range and sets
    # one from it when none is given.
    settings = cluster_settings(BackendConfig(type="openshift"), "team-a", scc=True)
    statefulset = build_agent_statefulset(spec(), settings)
    context = statefulset["spec"]["template"]["spec"]["securityContext"]
    assert "fsGroup" not in context and context["fsGroupChangePolicy"] == "OnRootMismatch"
    off = cluster_settings(BackendConfig(type="openshift"), "team-a", scc=False)
    assert off.fs_group == 1000


def test_every_paude_pod_is_restricted() -> None:
    for obj in build_session_objects(spec(), SETTINGS):
        if obj["kind"] in ("StatefulSet", "Deployment"):
            pod = obj["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False, obj["kind"]
            for container in pod["containers"]:
                assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_agent_container_env_resources_and_workspace() -> None:
    container = pod_spec()["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PAUDE_WORKSPACE"] == "/workspace"
    # git takes the root-owned volume root as safe (command-scope config).
    assert [env[f"GIT_CONFIG_{k}"] for k in ("COUNT", "KEY_0", "VALUE_0")] == [
        "1", "safe.directory", "/workspace"]
    # No name: the plan shows where the Service's ClusterIP goes. The password
    # is a reference to the variable before it, filled from the proxy's Secret.
    url = "http://paude:$(PAUDE_PROXY_PASSWORD)@PROXY-CLUSTER-IP:3128"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == url
    first = container["env"][0]
    assert first["name"] == "PAUDE_PROXY_PASSWORD" and "value" not in first
    assert first["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "2Gi"},
        "limits": {"memory": "6Gi"},
    }
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "readOnly" not in mounts["/workspace"]
    # Writable: the workspace and the entrypoint's stop record (an emptyDir).
    writable = {"/workspace", STATE_DIR}
    assert all(m["readOnly"] for path, m in mounts.items() if path not in writable)
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert volumes[mounts[STATE_DIR]["name"]] == {"name": "state", "emptyDir": {}}
    claim = pod_spec()["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "paude-demo-workspace"


def test_allow_network_has_no_proxy_and_still_no_ingress() -> None:
    objs = build_session_objects(spec(allow_network=True), SETTINGS)
    assert [o["kind"] for o in objs] == ["PersistentVolumeClaim", "NetworkPolicy", "StatefulSet"]
    assert objs[1]["spec"]["policyTypes"] == ["Ingress"] and objs[1]["spec"]["ingress"] == []
    assert "paude.io/proxy" not in objs[0]["metadata"]["labels"]
    env = {e["name"] for e in objs[2]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "HTTPS_PROXY" not in env
    assert objs[2]["metadata"]["labels"]["paude.io/network"] == "unrestricted"


def test_yolo_and_claude_args_become_container_args() -> None:
    sts = build_agent_statefulset(spec(yolo=True, claude_args=("-p", "hi there")), SETTINGS)
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--dangerously-skip-permissions", "-p", "hi there"]


def test_secret_env_is_a_reference_and_its_secret_holds_the_value() -> None:
    session = spec(env={"ANTHROPIC_API_KEY": "sk-ant-1", "PROJECT": "p1"})
    sts = build_agent_statefulset(session, SETTINGS)
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PROJECT"] == {"name": "PROJECT", "value": "p1"}
    ref = env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "paude-demo-env", "key": "ANTHROPIC_API_KEY"}
    assert "sk-ant-1" not in repr(build_session_objects(session, SETTINGS))
    secret = build_env_secret(session, secret_env_keys(session), SETTINGS)
    assert secret["data"] == {"ANTHROPIC_API_KEY": "c2stYW50LTE="}
    assert secret["metadata"]["labels"]["paude.io/session"] == "demo"


def test_every_object_is_labelled_and_namespaced() -> None:
    for obj in build_session_objects(spec(), SETTINGS):
        meta = obj["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "paude", obj["kind"]
        assert meta["namespace"] == "team-a"
        per_session = obj["kind"] in ("StatefulSet", "PersistentVolumeClaim")
        assert (meta["labels"].get("paude.io/session") == "demo") is per_session, obj["kind"]


def test_plan_orders_the_claim_and_policies_first_and_agent_last() -> None:
    plan = build_session_plan(spec(), SETTINGS)
    manifests = [s.obj for s in plan.steps if isinstance(s, Manifest)]
    kinds = [o["kind"] for o in manifests]
    assert kinds[:3] == ["PersistentVolumeClaim", "NetworkPolicy", "NetworkPolicy"]
    # The claim names the proxy the session uses (the proxy's objects name no session).
    proxy = manifests[-1]["metadata"]["labels"]["paude.io/proxy"]
    assert manifests[0]["metadata"]["labels"]["paude.io/proxy"] == proxy
    assert kinds[-1] == "StatefulSet"
    assert kinds.index("Service") < kinds.index("StatefulSet")


def test_agent_policy_allows_only_its_proxy_and_no_dns() -> None:
    policy = build_agent_policy(Allowlist.parse(DOMAINS), SETTINGS)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == []
    (proxy_rule,) = policy["egress"]
    assert proxy_rule["ports"] == [{"protocol": "TCP", "port": 3128}]
    assert proxy_rule["to"][0]["podSelector"]["matchLabels"]["paude.io/role"] == "proxy"


def test_the_proxy_services_address_replaces_the_plans_placeholder() -> None:
    objs = build_session_objects(spec(), SETTINGS)
    (service,) = by_kind(objs, "Service")
    (sts,) = by_kind(objs, "StatefulSet")
    assert objs.index(service) < objs.index(sts)
    address = proxy_address({**service, "spec": {**service["spec"], "clusterIP": "10.0.0.77"}})
    bound = with_proxy_address(sts, address)
    containers = bound["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in containers[0]["env"]}
    url = "http://paude:$(PAUDE_PROXY_PASSWORD)@10.0.0.77:3128"
    assert env["HTTP_PROXY"] == env["https_proxy"] == url
    assert "PROXY-CLUSTER-IP" not in str(bound)
    assert "PROXY-CLUSTER-IP" in str(sts)  # the plan itself is not changed
    v6 = with_proxy_address(sts, "fd00::7")["spec"]["template"]["spec"]["containers"][0]["env"]
    url = "http://paude:$(PAUDE_PROXY_PASSWORD)@[fd00::7]:3128"
    assert {"name": "HTTP_PROXY", "value": url} in v6
    with pytest.raises(ValueError):
        proxy_address({**service, "spec": {**service["spec"], "clusterIP": "None"}})


def test_proxy_policy_admits_only_its_agents() -> None:
    policy = build_proxy_policy(Allowlist.parse(DOMAINS), SETTINGS)["spec"]
    (rule,) = policy["ingress"]
    selector = rule["from"][0]["podSelector"]["matchLabels"]
    assert selector["paude.io/role"] == "agent"
    assert selector["paude.io/proxy"] == policy["podSelector"]["matchLabels"]["paude.io/proxy"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3128}]


def test_agent_labels_match_its_policy_selector() -> None:
    pod_labels = build_agent_statefulset(spec(), SETTINGS)["spec"]["template"]["metadata"]
    policy = build_agent_policy(Allowlist.parse(DOMAINS), SETTINGS)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels["labels"].items()


def test_different_allowlists_get_different_proxies() -> None:
    a = build_session_objects(spec(), SETTINGS)
    b = build_session_objects(spec(name="other", allowed_domains=("example.com",)), SETTINGS)
    names_a = {o["metadata"]["name"] for o in by_kind(a, "Deployment")}
    names_b = {o["metadata"]["name"] for o in by_kind(b, "Deployment")}
    assert names_a and names_b and names_a.isdisjoint(names_b)


def test_proxy_configmap_holds_rendered_squid_conf() -> None:
    (cm,) = by_kind(build_session_objects(spec(), SETTINGS), "ConfigMap")
    conf = cm["data"]["squid.conf"]
    assert "http_port 3128" in conf and ".googleapis.com" in conf
    assert conf.rstrip().splitlines()[-1] != "http_access allow all"
    # Only clients with the credential: checked before any allow rule.
    lines = conf.splitlines()
    assert lines.index("http_access deny !paude_agents") < lines.index(
        "http_access allow allowed_domains")  # fmt: skip
    assert "auth_param basic program /usr/lib/squid/basic_ncsa_auth" \
        " /etc/squid/paude-auth/htpasswd" in lines  # fmt: skip


def test_the_proxy_mounts_only_the_htpasswd_of_its_credential_secret() -> None:
    (deployment,) = by_kind(build_session_objects(spec(), SETTINGS), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (auth,) = [v for v in pod["volumes"] if v["name"] == "auth"]
    assert auth["secret"]["items"] == [{"key": "htpasswd", "path": "htpasswd", "mode": 0o444}]
    assert "optional" not in auth["secret"]
    secret = build_proxy_auth_secret(Allowlist.parse(DOMAINS), SETTINGS, "pw")
    assert secret["metadata"]["name"] == auth["secret"]["secretName"]
    assert parse_proxy_password(secret) == "pw"
    htpasswd = base64.b64decode(secret["data"]["htpasswd"]).decode()
    assert htpasswd == "paude:" + hashlib.md5(b"pw").hexdigest() + "\n"
    # The credential never reaches a plan or an export: the Secret is not among them.
    objs = build_session_objects(spec(), SETTINGS)
    assert secret["metadata"]["name"] not in {o["metadata"]["name"] for o in objs}


def test_egress_firewall_allows_allowlist_then_denies_all_of_ipv4_and_ipv6() -> None:
    entries = DOMAINS + ("10.1.2.3", "2001:db8::7", "10.89.0.0/24", "2001:db8:1::/48")
    rules = build_egress_firewall(Allowlist.parse(entries), SETTINGS)["spec"]["egress"]
    assert rules[-2:] == [
        {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}},
        {"type": "Deny", "to": {"cidrSelector": "::/0"}},
    ]
    assert all(r["type"] == "Allow" for r in rules[:-2])
    names = {r["to"]["dnsName"] for r in rules[:-2] if "dnsName" in r["to"]}
    cidrs = {r["to"]["cidrSelector"] for r in rules[:-2] if "cidrSelector" in r["to"]}
    assert names == {"googleapis.com", "*.googleapis.com", "api.anthropic.com"}
    # A range is a cidrSelector, never a dnsName.
    assert cidrs == {"10.1.2.3/32", "2001:db8::7/128", "10.89.0.0/24", "2001:db8:1::/48"}


def test_admin_policy_denies_ingress_and_unlisted_egress() -> None:
    anp = build_admin_agent_policy()["spec"]
    assert anp["ingress"] == [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}]
    actions = [rule["action"] for rule in anp["egress"]]
    assert actions == ["Pass", "Pass", "Deny"]  # the proxy, the gateway; no DNS


def test_credential_secret_is_labelled_and_encoded() -> None:
    obj = build_credential_object(CredentialSource("gcloud", b'{"k": 1}', 17), SETTINGS)
    assert obj["kind"] == "Secret"
    assert obj["data"] == {"application_default_credentials.json": "eyJrIjogMX0="}
    assert obj["metadata"]["annotations"]["paude.io/source-mtime"] == "17"
    assert obj["metadata"]["labels"]["paude.io/role"] == "credentials"


def test_session_objects_hold_no_secret_values() -> None:
    objs = build_session_objects(spec(env={"PROJECT": "p1"}), SETTINGS)
    assert not by_kind(objs, "Secret")
    text = repr(objs)
    assert "eyJ" not in text and "secretName" in text


@pytest.mark.parametrize(
    ("agent", "proxy"),
    [
        ("registry.example/team/paude-agent:1", "registry.example/team/paude-proxy:1"),
        ("r:5000/a/paude", "r:5000/a/paude-proxy"),
        ("r:5000/x/paude:2@sha256:abc", "r:5000/x/paude-proxy:2"),
    ],
)
def test_proxy_image_is_pushed_beside_the_agent_image(agent: str, proxy: str) -> None:
    assert sibling_proxy_image(agent) == proxy


def test_claude_settings_reach_the_entrypoints_seed_dir() -> None:
    mounts = {m["name"]: m["mountPath"] for m in pod_spec()["containers"][0]["volumeMounts"]}
    assert mounts["claude"] == "/run/paude/seed/claude"


def test_a_restricted_agent_pod_first_checks_that_networkpolicy_is_enforced() -> None:
    (init,) = pod_spec()["initContainers"]
    assert init["name"] == "netpol-check" and init["image"] == pod_spec()["containers"][0]["image"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "/dev/tcp/$ns/53" in init["command"][-1]  # the cluster DNS, blocked by its policy
    open_net = build_session_objects(spec(allow_network=True), SETTINGS)
    (sts,) = by_kind(open_net, "StatefulSet")
    assert "initContainers" not in sts["spec"]["template"]["spec"]


def test_extended_resources_such_as_gpus_reach_the_pods_limits() -> None:
    gpu = Resources(requests=Amounts(cpu="1"), limits=Amounts(memory="8Gi",
                                                             **{"nvidia.com/gpu": 2}))
    settings = ClusterSettings(namespace="team-a", resources=gpu)
    pod = build_agent_statefulset(spec(), settings)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "1"}, "limits": {"memory": "8Gi", "nvidia.com/gpu": "2"}}


def test_proxy_resources_come_from_the_configuration() -> None:
    small = Resources(requests=Amounts(cpu="10m"), limits=Amounts(memory="128Mi"))
    settings = ClusterSettings(namespace="team-a", proxy_resources=small)
    proxy = by_kind(build_session_objects(spec(), settings), "Deployment")[0]
    container = proxy["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "10m"}, "limits": {"memory": "128Mi"}}
    default = by_kind(build_session_objects(spec(), SETTINGS), "Deployment")[0]
    assert default["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def test_timeouts_reach_the_agents_entrypoint_which_waits_when_stopped() -> None:
    settings = ClusterSettings(namespace="team-a", timeouts=Timeouts(idle="4h", max="1d"))
    pod = build_agent_statefulset(spec(), settings)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["PAUDE_TIMEOUT_IDLE"], env["PAUDE_TIMEOUT_MAX"]) == ("4h", "1d")
    assert env["PAUDE_ON_STOP"] == "wait"
    # Alive while stopped (else the kubelet kills the waiting container again).
    assert container["livenessProbe"]["exec"]["command"][-1] == "--paude-probe"
    assert container["readinessProbe"]["exec"]["command"] == ["tmux", "has-session", "-t", "paude"]
    assert container["terminationMessagePolicy"] == "File"
    untimed = pod_spec()["containers"][0]
    assert not {e["name"] for e in untimed["env"]} & {"PAUDE_TIMEOUT_IDLE", "PAUDE_TIMEOUT_MAX"}

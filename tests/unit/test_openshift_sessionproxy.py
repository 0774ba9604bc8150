"""``paude blocked``/``paude allow`` on the OpenShift backend against an in-memory API.

The real squid, kubelet and pod logs: tests/k8s/test_openshift_real_node.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_openshift_backend_offline import READY, FakeKube, make, spec

from paude.backends.openshift.objects import ClusterSettings, proxy_name
from paude.backends.openshift.policies import build_firewall_update
from paude.backends.openshift.proxy import (
    ACCESS_LOG_CONTAINER,
    LOADED_MARKER,
    RELOAD_CONTAINER,
    build_proxy_deployment,
    conf_hash,
)
from paude.domains import Allowlist
from paude.errors import PaudeError, SessionNotFoundError
from paude.squid import parse_squid_conf_entries

AGENT_IP = "10.244.0.5"
LOG = f"""\
tail: cannot open '/var/log/squid/access.log' for reading: No such file or directory
1795780001.120 {AGENT_IP} TCP_TUNNEL/200 CONNECT api.anthropic.com:443
1795780002.310 {AGENT_IP} TCP_DENIED/403 CONNECT evil.example.com:443
1795780003.310 10.244.0.9 TCP_DENIED/403 CONNECT other-session.example:443
"""


class LogKube(FakeKube):
    """FakeKube with pod logs, and an EgressFirewall kind when asked."""

    def __init__(self, *, firewall: bool = False) -> None:
        super().__init__()
        self.firewall = firewall
        self.followed: list[tuple[str, str, str | None]] = []

    def has_kind(self, api_version: str, kind: str | None = None) -> bool:
        return self.firewall and kind == "EgressFirewall"

    def pod_log(self, name: str, *, container: str, until: str | None = None,
                timeout: float = 0) -> str:
        self.followed.append((name, container, until))
        return LOG if container == ACCESS_LOG_CONTAINER else f"{until}\n"


def running(kube: LogKube, name: str = "demo", domains: tuple[str, ...] = ("pypi.org",)) -> None:
    make(kube).start_session(spec(name, domains))
    kube.objects[("Pod", f"paude-{name}-0")]["status"] = {**READY, "podIP": AGENT_IP}
    pid = proxy_name(Allowlist.parse(domains)).removeprefix("paude-proxy-")
    kube.objects.pop(("Pod", f"paude-proxy-{pid}-rs-x"))  # the fake's: this test's pod instead
    kube.objects[("Pod", "proxy-pod-1")] = {
        "kind": "Pod", "status": READY,
        "metadata": {"name": "proxy-pod-1", "labels": {
            "app.kubernetes.io/managed-by": "paude", "paude.io/role": "proxy",
            "paude.io/proxy": pid}}}


def test_blocked_reads_the_access_log_container_and_keeps_this_sessions_pod() -> None:
    kube = LogKube()
    running(kube)
    blocked = make(kube).session_proxy("demo").blocked()
    assert [b.domain for b in blocked] == ["evil.example.com"]
    assert kube.followed == [("proxy-pod-1", ACCESS_LOG_CONTAINER, None)]


def test_allow_updates_the_configmap_and_waits_for_the_reload() -> None:
    kube = LogKube()
    running(kube)
    name = proxy_name(Allowlist.parse(("pypi.org",)))
    entries = make(kube).session_proxy("demo").allow([".example.com"])
    assert ".example.com" in entries and "pypi.org" in entries
    conf = kube.objects[("ConfigMap", name)]["data"]["squid.conf"]
    assert sorted(parse_squid_conf_entries(conf)) == sorted(entries)
    # The labels still select the proxy by its configured allowlist.
    assert kube.objects[("ConfigMap", name)]["metadata"]["labels"]["paude.io/proxy"] == \
        name.removeprefix("paude-proxy-")
    assert kube.followed == [("proxy-pod-1", RELOAD_CONTAINER, LOADED_MARKER + conf_hash(conf))]
    assert "EgressFirewall/default" not in kube.applied


def test_allow_of_what_is_allowed_changes_nothing() -> None:
    kube = LogKube()
    running(kube)
    before = list(kube.applied)
    assert "pypi.org" in make(kube).session_proxy("demo").allow(["pypi.org"])
    assert kube.applied == before and kube.followed == []


def test_allow_widens_paudes_egress_firewall_before_the_proxy() -> None:
    kube = LogKube(firewall=True)
    running(kube)
    kube.objects[("EgressFirewall", "default")] = {
        "kind": "EgressFirewall",
        "metadata": {"name": "default", "namespace": "team-a",
                     "labels": {"app.kubernetes.io/managed-by": "paude"}},
        "spec": {"egress": [{"type": "Allow", "to": {"dnsName": "pypi.org"}},
                            {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}]}}
    make(kube).session_proxy("demo").allow(["10.1.0.0/16"])
    rules = kube.objects[("EgressFirewall", "default")]["spec"]["egress"]
    assert rules == [{"type": "Allow", "to": {"dnsName": "pypi.org"}},
                     {"type": "Allow", "to": {"cidrSelector": "10.1.0.0/16"}},
                     {"type": "Deny", "to": {"cidrSelector": "0.0.0.0/0"}}]
    assert kube.applied.index("EgressFirewall/default") < \
        max(i for i, a in enumerate(kube.applied) if a.startswith("ConfigMap/paude-proxy-"))


def test_an_admins_egress_firewall_is_left_alone() -> None:
    kube = LogKube(firewall=True)
    running(kube)
    theirs: dict[str, Any] = {"kind": "EgressFirewall", "metadata": {
        "name": "default", "namespace": "team-a", "labels": {}}, "spec": {"egress": []}}
    kube.objects[("EgressFirewall", "default")] = theirs
    before = len(kube.applied)
    make(kube).session_proxy("demo").allow(["example.org"])
    assert "EgressFirewall/default" not in kube.applied[before:]
    assert kube.objects[("EgressFirewall", "default")] is theirs


def test_a_session_without_proxy_has_nothing_to_show() -> None:
    kube = LogKube()
    make(kube).start_session(spec("open", allow_network=True))
    with pytest.raises(SessionNotFoundError, match="has no proxy"):
        make(kube).session_proxy("open")
    with pytest.raises(SessionNotFoundError, match="has no proxy"):
        make(kube).session_proxy("ghost")


def test_a_stopped_proxy_is_an_error_with_a_hint() -> None:
    kube = LogKube()
    make(kube).start_session(spec("demo", ("pypi.org",)))
    for key in [k for k in kube.objects if k[0] == "Pod" and k[1].startswith("paude-proxy-")]:
        del kube.objects[key]  # its pod is gone
    with pytest.raises(PaudeError, match="is not running") as err:
        make(kube).session_proxy("demo").blocked()
    assert err.value.hint and "paude --backend openshift --detach" in err.value.hint


def test_bad_entry_is_refused_before_anything_changes() -> None:
    kube = LogKube()
    running(kube)
    before = list(kube.applied)
    with pytest.raises(ValueError):
        make(kube).session_proxy("demo").allow(["bad domain!"])
    assert kube.applied == before


def test_the_proxy_pod_carries_the_log_and_reload_containers() -> None:
    pod = build_proxy_deployment(Allowlist.parse(("pypi.org",)),
                                 ClusterSettings(namespace="n"))["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True  # reload signals squid in its own container
    names = [c["name"] for c in pod["containers"]]
    assert names == ["squid", ACCESS_LOG_CONTAINER, RELOAD_CONTAINER]
    reload = pod["containers"][2]
    assert reload["command"][-1] == LOADED_MARKER  # the marker allow waits for
    for sidecar in pod["containers"][1:]:
        assert all(m["readOnly"] for m in sidecar["volumeMounts"])
        assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True


def test_firewall_update_keeps_rules_and_denies_last() -> None:
    firewall = {"metadata": {"name": "default", "namespace": "n", "labels": {}},
                "spec": {"egress": [{"type": "Deny", "to": {"cidrSelector": "::/0"}}]}}
    rules = build_firewall_update(firewall, Allowlist.parse(("192.0.2.7", ".ex.org")))[
        "spec"]["egress"]
    assert rules[-1] == {"type": "Deny", "to": {"cidrSelector": "::/0"}}
    assert {"type": "Allow", "to": {"cidrSelector": "192.0.2.7/32"}} in rules[:-1]
    assert {"type": "Allow", "to": {"dnsName": "*.ex.org"}} in rules[:-1]


def test_allow_names_the_sessions_sharing_the_proxy() -> None:
    kube = LogKube()
    running(kube, "a")
    make(kube).start_session(spec("b", ("pypi.org",)))
    backend = make(kube)
    backend.session_proxy("a").allow(["example.org"])
    assert "warning: sessions b share this proxy (the same allowlist): they are allowed the same" \
        in backend.reporter.messages  # type: ignore[attr-defined]

"""The OpenShift quick reattach: its kubeconfig reading agrees with lightkube's, its
settings with the full config loader's, and it loads nothing heavy.

Against a real cluster (one GET, the argv equal to the full backend's):
tests/k8s/test_openshift_attach.py and test_openshift_real_attach.py.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lightkube import KubeConfig

from paude.backends.openshift.agentpod import is_pod_ready, is_session_agent
from paude.backends.openshift.client import pick_namespace
from paude.backends.openshift.quickget import build_target, kubeconfig_path, read_target
from paude.cli.fastpath import reattach_target
from paude.cli.quick_openshift import QuickSettings, build_quick_attach, read_settings
from paude.config.load import load_config
from paude.trust.approval import name_files, save_record

CA = base64.b64encode(b"not a real CA").decode()


def kubeconfig(user: dict[str, Any], *, ns: str | None = "team-a",
               cluster: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    ctx: dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if ns:
        ctx["namespace"] = ns
    return {
        "current-context": "one",
        "clusters": [{"name": "c1", "cluster": cluster or {"server": "https://api.example:6443",
                                                           "certificate-authority-data": CA}},
                     {"name": "c2", "cluster": {"server": "https://other.example/"}}],
        "contexts": [{"name": "one", "context": ctx},
                     {"name": "two", "context": {"cluster": "c2", "user": "u1"}}],
        "users": [{"name": "u1", "user": user}],
    }  # fmt: skip


USERS = [{"token": "t"}, {"tokenFile": "token"},
         {"client-certificate": "c.crt", "client-key": "c.key"},
         {"client-certificate-data": CA, "client-key-data": CA}]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("context", "namespace", "ns"), [
    (None, None, "team-a"), (None, "mine", "team-a"), ("two", None, None), (None, None, None)])
def test_the_target_is_lightkubes(user: dict[str, Any], context: str | None,
                                  namespace: str | None, ns: str | None) -> None:  # fmt: skip
    conf = kubeconfig(user, ns=ns)
    target = build_target(conf, where="/k", context=context, namespace=namespace)
    theirs = KubeConfig.from_dict(conf, fname="/k/config").get(context_name=context)
    assert target is not None and theirs is not None
    assert target.server == theirs.cluster.server.rstrip("/")
    assert target.namespace == pick_namespace(namespace, theirs)


@pytest.mark.parametrize(("user", "cluster"), [
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "gke-auth"}},
     None),
    ({"auth-provider": {"name": "oidc"}}, None),
    ({"username": "u", "password": "p"}, None),
    ({"token": "t"}, {"server": "https://a:6443", "insecure-skip-tls-verify": True}),
    ({"token": "t"}, {"server": "https://a:6443", "proxy-url": "http://proxy:3128"}),
    ({"token": "t"}, {"server": "http://a:8080"}),
])
def test_anything_it_does_not_plainly_handle_is_lightkubes(
        user: dict[str, Any], cluster: dict[str, Any] | None) -> None:
    assert build_target(kubeconfig(user, cluster=cluster), where="/k", context=None,
                        namespace=None) is None  # fmt: skip


def test_a_missing_context_or_a_proxy_goes_to_the_full_cli(tmp_path: Path) -> None:
    conf = kubeconfig({"token": "t"})
    assert build_target(conf, where="/k", context="nope", namespace=None) is None
    assert build_target({**conf, "current-context": None}, where="/k", context=None,
                        namespace=None) is None  # fmt: skip
    path = tmp_path / "config"
    path.write_text(json.dumps(conf))  # JSON is YAML
    env = {"KUBECONFIG": str(path), "HOME": str(tmp_path)}
    target = read_target(env, context=None, namespace=None)
    assert target is not None and target.namespace == "team-a"
    assert read_target({**env, "HTTPS_PROXY": "http://p:3128"}, context=None,
                       namespace=None) is None  # fmt: skip
    assert kubeconfig_path({"KUBECONFIG": f"{path}:{path}"}) is None
    assert kubeconfig_path({"HOME": "/h"}) == "/h/.kube/config"


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("user", "project"), [
    ({}, {}),
    ({"backend": {"type": "openshift", "context": "c", "namespace": "u"}},
     {"backend": {"namespace": "p"}}),
    ({"backend": {"type": "openshift", "namespace": "u"}, "sync": {"enabled": False}},
     {"sync": {"exclude": ["x"]}}),
    ({}, {"backend": {"type": "openshift", "context": "c"}, "sync": {"enabled": False}}),
])
def test_settings_merge_as_the_config_loader_merges(
        tmp_path: Path, user: dict[str, Any], project: dict[str, Any]) -> None:
    ws, env = tmp_path / "ws", {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "x"),
                                "XDG_STATE_HOME": str(tmp_path / "state")}
    ws.mkdir()
    if user:
        write(tmp_path / "x" / "paude" / "paude.json", user)
    if project:
        write(ws / "paude.json", project)
    loaded = load_config(ws, env=env)
    save_record(tmp_path / "state" / "paude", ws, name_files(ws, loaded.workspace_files))
    full = loaded.config
    assert read_settings(ws, env) == QuickSettings(full.backend.context, full.backend.namespace,
                                                   full.sync.enabled)  # fmt: skip


def test_an_unapproved_project_file_goes_to_the_full_cli(tmp_path: Path) -> None:
    """What ``paude trust`` approved steers the quick path; an agent's edit (or a
    clone's file) never does: the full CLI asks or refuses."""
    ws, env = tmp_path / "ws", {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "st")}
    ws.mkdir()
    mine = {"backend": {"type": "openshift", "namespace": "mine"}}
    write(ws / "paude.json", mine)
    assert read_settings(ws, env) is None  # first use: never approved
    loaded = load_config(ws, env=env)
    save_record(tmp_path / "st" / "paude", ws, name_files(ws, loaded.workspace_files))
    assert read_settings(ws, env) == QuickSettings(None, "mine", True)
    for theirs in ({"backend": {"type": "openshift", "namespace": "attacker"}},
                   {"backend": {"type": "openshift", "namespace": "mine",
                                "context": "theirs"}},
                   {**mine, "sync": {"enabled": False}}):
        write(ws / "paude.json", theirs)
        assert read_settings(ws, env) is None, theirs
        assert reattach_target([], ws, env, backend="openshift") is not None  # routed here...
        assert build_quick_attach("s", ws, env) is None  # ...and handed to the full CLI
    write(ws / "paude.json", mine)
    assert read_settings(ws, env) == QuickSettings(None, "mine", True)


def test_doubtful_settings_go_to_the_full_cli(tmp_path: Path) -> None:
    ws, env = tmp_path / "ws", {"HOME": str(tmp_path)}
    ws.mkdir()
    write(tmp_path / "elsewhere.json", {"backend": {"namespace": "theirs"}})
    (ws / "paude.json").symlink_to(tmp_path / "elsewhere.json")
    assert read_settings(ws, env) is None  # the full CLI confines it to the workspace
    (ws / "paude.json").unlink()
    for bad in ({"backend": {"namespace": 3}}, {"sync": {"enabled": "no"}}, {"backend": []}):
        write(ws / "paude.json", bad)
        assert read_settings(ws, env) is None, bad


def test_only_openshift_configs_take_this_path(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {"HOME": str(tmp_path), "PAUDE_BACKEND": "openshift"}
    assert reattach_target(["attach", "s-1"], ws, env, backend="openshift") == "s-1"
    assert reattach_target(["attach", "s-1"], ws, env) is None
    assert reattach_target(["exec", "--", "ls"], ws, env, backend="openshift") is None


def pod(**change: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metadata": {"name": "paude-s-0", "labels": {
            "app.kubernetes.io/managed-by": "paude", "paude.io/role": "agent",
            "paude.io/session": "s"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    for key, value in change.items():
        out[key] = {**out[key], **value}
    return out


def test_only_paudes_ready_agent_pod_of_the_session_counts() -> None:
    assert is_session_agent(pod(), "s") and is_pod_ready(pod())
    assert not is_session_agent(pod(), "t")
    assert not is_session_agent(pod(metadata={"deletionTimestamp": "2026-12-03T00:00:00Z"}), "s")
    assert not is_session_agent(pod(metadata={"labels": {"paude.io/session": "s"}}), "s")
    assert not is_pod_ready(pod(status={"phase": "Pending"}))
    assert not is_pod_ready(pod(status={"conditions": [{"type": "Ready", "status": "False"}]}))
    assert not is_pod_ready(pod(status={"conditions": []}))


def test_the_quick_reattach_loads_no_heavy_library() -> None:
    code = ("import sys, paude.cli, paude.cli.fastpath, paude.cli.quick_openshift, "
            "paude.backends.openshift.quickget, paude.backends.openshift.exec, paude.syncproc, "
            "paude.runner.terminal; "
            "print(sorted(m for m in ('typer', 'rich', 'pydantic', 'lightkube', 'httpx2', "
            "'paude.config.models', 'paude.backends.openshift.objects', 'paude.sync', "
            "'paude.runner.system') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_trust_record_that_is_not_an_object_approves_nothing(tmp_path: Path) -> None:
    """A damaged record (valid JSON, not paude's object) is no approval, not a traceback."""
    from paude.trust.record import approved_text, record_file

    record = Path(record_file(str(tmp_path), "/w"))
    record.parent.mkdir(parents=True)
    record.write_text('["paude.json"]')
    assert approved_text(str(tmp_path), "/w", "paude.json") is None

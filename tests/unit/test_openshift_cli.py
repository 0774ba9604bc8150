"""``paude manifests`` and ``paude setup --print-rbac`` (offline: no cluster needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from paude.cli import context as cx
from paude.cli import manifests, setup, trust


def make_app(workspace: Path) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = cx.Globals(workspace=workspace)

    manifests.register(app)
    setup.register(app)
    trust.register(app)
    return app


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    config = {"backend": {"type": "openshift", "namespace": "team-a", "image": "r.example/p:2"}}
    (ws / "paude.json").write_text(json.dumps(config))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    approved = CliRunner().invoke(make_app(ws), ["trust"])  # the user approves it, as in life
    assert approved.exit_code == 0, approved.output
    return ws


def test_manifests_writes_every_object_without_secret_values(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        make_app(workspace), ["manifests", "--output", str(out), "--name", "demo"]
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files[-1] == f"{len(files):02d}-statefulset-paude-demo.yaml"
    objs = [yaml.safe_load((out / f).read_text()) for f in files]
    assert "Secret" not in {o["kind"] for o in objs}
    assert all(o["metadata"]["namespace"] == "team-a" for o in objs)
    text = "".join((out / f).read_text() for f in files)
    assert "sk-ant-secret-value" not in text
    assert "secretKeyRef" in text and "r.example/p:2" in text


def test_manifests_admin_adds_role_and_admin_policies(workspace: Path) -> None:
    result = CliRunner().invoke(make_app(workspace), ["manifests", "--admin", "--name", "demo"])
    assert result.exit_code == 0, result.output
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds[:3] == ["Role", "AdminNetworkPolicy", "AdminNetworkPolicy"]


def test_print_rbac_prints_role_and_binding(workspace: Path) -> None:
    result = CliRunner().invoke(
        make_app(workspace),
        ["setup", "--print-rbac", "--user", "alice", "--namespace", "ns1"],
    )
    assert result.exit_code == 0, result.output
    role, binding = yaml.safe_load_all(result.stdout)
    assert (role["kind"], role["metadata"]["namespace"]) == ("Role", "ns1")
    assert binding["subjects"] == [{"kind": "User", "name": "alice"}]
    # What pushing into the namespace's image streams needs (OpenShift's registry asks).
    layers = [r for r in role["rules"] if r["resources"] == ["imagestreams/layers"]]
    assert layers and layers[0]["apiGroups"] == ["image.openshift.io"]
    assert {"get", "update"} <= set(layers[0]["verbs"]), layers


def test_setup_refuses_podman(workspace: Path) -> None:
    result = CliRunner().invoke(make_app(workspace), ["setup", "--backend", "podman"])
    assert result.exit_code != 0
    assert "needs no setup" in str(result.exception)


def test_podman_path_does_not_import_lightkube() -> None:
    code = (
        "import sys, paude.backends.openshift.backend, paude.cli.setup, paude.cli.manifests;"
        "print('lightkube' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_manifests_namespace_option_wins(workspace: Path) -> None:
    result = CliRunner().invoke(
        make_app(workspace), ["manifests", "--name", "demo", "--namespace", "gitops"]
    )
    assert result.exit_code == 0, result.output
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(result.stdout)} == {"gitops"}

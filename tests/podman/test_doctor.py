"""``paude doctor`` on this machine: all green when it works, the right line when not."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST_CA_BUNDLE, PaudeCLI


def doctor(cli: PaudeCLI, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Run ``paude doctor --json`` and the text form; return code, checks by name, text."""
    done = cli.run("doctor", "--json", *args, check=False)
    report = json.loads(done.stdout)
    text = cli.run("doctor", *args, check=False)
    assert text.returncode == done.returncode
    assert report["ok"] is (done.returncode == 0)
    return done.returncode, {c["name"]: c for c in report["checks"]}, text.stdout


def line_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line[6:].startswith(name + " "))


def test_a_good_machine_is_all_green(paude_cli: PaudeCLI) -> None:
    paude_cli.start()  # builds the images this config uses, if they are not yet
    code, checks, text = doctor(paude_cli)
    assert code == 0, text
    assert {n: c["status"] for n, c in checks.items()} == {
        "config": "ok", "podman": "ok", "rlimits": "ok", "extra CA": "ok",
        "agent image": "ok", "proxy image": "ok", "cluster": "skip"}
    assert f", {paude_cli.mode}, runtime " in checks["podman"]["detail"]
    assert checks["extra CA"]["detail"].startswith(f"{HOST_CA_BUNDLE}: ")
    assert len(text.splitlines()) == len(checks)
    assert all(line.startswith(("ok  ", "skip")) for line in text.splitlines())


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_without_podman_on_path_the_podman_line_fails(paude_cli: PaudeCLI, tmp_path: Path) -> None:
    paude_cli.extra_env["PATH"] = str(tmp_path)  # python is run by its full path
    assert Path(sys.executable).is_absolute()
    code, checks, text = doctor(paude_cli)
    assert code == 1
    assert checks["podman"]["status"] == "fail"
    assert checks["podman"]["detail"] == "podman is not on PATH"
    assert "Install podman" in line_of(text, "podman")
    assert checks["images"]["status"] == "skip"


def test_a_configured_ca_that_is_missing_fails_the_ca_line(paude_cli: PaudeCLI) -> None:
    missing = paude_cli.root / "no-such-ca.pem"
    paude_cli.extra_env["PAUDE_EXTRA_CA_CERTS"] = str(missing)
    code, checks, text = doctor(paude_cli)
    assert code == 1
    assert checks["extra CA"]["status"] == "fail"
    assert str(missing) in checks["extra CA"]["detail"]
    assert "Fix: Fix extra_ca_certificates or PAUDE_EXTRA_CA_CERTS" in line_of(text, "extra CA")
    assert checks["podman"]["status"] == "ok"


@pytest.mark.parametrize("paude_cli", ["rootful"], indirect=True)
def test_no_cluster_login_fails_the_kubeconfig_line(paude_cli: PaudeCLI) -> None:
    paude_cli.extra_env["KUBECONFIG"] = str(paude_cli.root / "no-such-kubeconfig")
    code, checks, text = doctor(paude_cli, "--backend", "openshift")
    assert code == 1
    assert checks["kubeconfig"]["status"] == "fail"
    assert "no usable kubeconfig" in checks["kubeconfig"]["detail"]
    assert "oc login" in line_of(text, "kubeconfig")
    assert checks["rbac"]["status"] == "skip"

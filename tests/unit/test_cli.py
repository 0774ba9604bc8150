"""The CLI end to end with a recording runner in place of podman."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import RecordingRunner, reply
from paude.cli import context, main

PS_EMPTY = reply(("podman", "ps"), "[]")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    fake = RecordingRunner(PS_EMPTY, reply(("podman", "image", "exists"), returncode=0))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    return fake


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    ws = tmp_path / "project"
    ws.mkdir()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".config" / "gh").mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = T\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in ("PAUDE_BACKEND", "PAUDE_EXTRA_CA_CERTS", "PAUDE_ALLOWED_DOMAINS",
                "XDG_CONFIG_HOME", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(ws)
    yield ws


def run_cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return int(done.value.code or 0)


def test_dry_run_prints_the_plan_and_runs_nothing(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--dry-run", "--allow-domain", "pypi.org") == 0
    out = capsys.readouterr().out
    assert "podman network create --internal --disable-dns" in out
    assert "podman run -d --name paude-project-" in out
    assert "acl allowed_domains dstdomain" in out and "pypi.org" in out
    assert "FROM docker.io/library/debian:bookworm-slim" in out
    # It reads what exists (the plan starts from there) and changes nothing.
    assert [c[:3] for c in runner.calls] == [("podman", "ps", "-a"), ("podman", "network", "ls")]


@pytest.mark.parametrize(
    ("argv", "files", "message"),
    [
        (["--detach"], {"paude.json": "{oops"}, "paude.json: line 1 column 2"),
        (["--detach"], {"paude.json": '{"bakend": {}}'}, "bakend: unknown field"),
        (["--detach", "--allow-domain", "*"], {}, "would allow every destination"),
        (["--detach", "--allow-domain", "https://example.com/path"], {}, "is not a domain"),
        (["--detach", "--backend", "docker"], {}, "backend.type: Input should be"),
        (["--detach", "--name", "x;rm -rf ~"], {}, "invalid session name"),
        (["--detach", "--name", "../etc"], {}, "invalid session name"),
        (["--detach", "--workspace", "/does/not/exist"], {}, "does not exist"),
        (["exec"], {}, "no command given"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(  # noqa: PLR0917 - pytest fixtures
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], files: dict[str, str], message: str,
) -> None:
    for name, text in files.items():
        (workspace / name).write_text(text)
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ")
    assert message in err
    assert "Traceback" not in err
    assert not [c for c in runner.calls if c[:2] in {("podman", "run"), ("podman", "network")}]


def test_start_creates_network_proxy_and_agent(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--detach") == 0
    name = context.session_name(None, workspace)
    created = sorted(c[-1] for c in runner.commands("podman", "network", "create"))
    assert created == [f"paude-{name}", f"paude-{name}-egress"]
    runs = runner.commands("podman", "run")
    assert sorted(r[4] for r in runs) == [f"paude-{name}-agent", f"paude-{name}-proxy"]
    joined = " ".join(" ".join(r) for r in runs)
    assert f"{workspace}/../home/.gitconfig" not in joined  # mounted by real path
    assert ".ssh" not in joined and "/gh" not in joined
    assert ".gitconfig:/home/paude/.gitconfig:ro" in joined
    assert "Started session project-" in capsys.readouterr().err
    assert not runner.commands("podman", "build")  # images were present


def test_running_session_is_reused_without_creating_anything(
    monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    name = context.session_name(None, workspace)
    labels = {"app.kubernetes.io/managed-by": "paude", "paude.io/session": name,
              "paude.io/network": "restricted", "paude.io/workspace": str(workspace)}
    ps = json.dumps([
        {"Names": [f"paude-{name}-agent"], "State": "running", "Created": 1,
         "Labels": {**labels, "paude.io/role": "agent"}},
        {"Names": [f"paude-{name}-proxy"], "State": "running", "Created": 1,
         "Labels": {**labels, "paude.io/role": "proxy"}},
    ])
    fake = RecordingRunner(reply(("podman", "ps"), ps))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    assert run_cli("--detach") == 0
    # Two reads at once (its containers, the networks), nothing created.
    assert sorted(c[:3] for c in fake.calls) == [("podman", "network", "ls"),
                                                 ("podman", "ps", "-a")]


def test_sessions_json_is_a_list(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("sessions", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_stop_of_unknown_session_fails_with_hint(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.responders.insert(0, reply(("podman", "network", "exists"), returncode=1))
    assert run_cli("stop", "nosuch") == 1
    err = capsys.readouterr().err
    assert "Error: no session named 'nosuch'" in err and "Hint: Run: paude sessions" in err


def test_json_mode_errors_are_json(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "paude.json").write_text("[]")
    assert run_cli("sessions", "--json") == 2
    err = json.loads(capsys.readouterr().err)
    assert set(err) == {"error", "hint"}
    assert "top level must be a JSON object" in err["error"]


def test_exec_passes_the_exit_code_through(
    monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    name = context.session_name(None, workspace)
    labels = {"app.kubernetes.io/managed-by": "paude", "paude.io/session": name,
              "paude.io/network": "unrestricted", "paude.io/role": "agent",
              "paude.io/workspace": str(workspace)}
    ps = json.dumps([{"Names": [f"paude-{name}-agent"], "State": "running", "Created": 1,
                      "Labels": labels}])
    fake = RecordingRunner(reply(("podman", "ps"), ps), reply(("podman", "exec"),
                                                             returncode=7))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    assert run_cli("exec", "--", "sh", "-c", "exit 7") == 7
    exec_call = fake.commands("podman", "exec")[0]
    assert exec_call[-3:] == ("sh", "-c", "exit 7")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--version") == 0
    assert capsys.readouterr().out.startswith("paude ")


def running_ps(name: str, workspace: Path, *, proxy_state: str = "running") -> str:
    labels = {"app.kubernetes.io/managed-by": "paude", "paude.io/session": name,
              "paude.io/network": "restricted", "paude.io/workspace": str(workspace)}
    return json.dumps([
        {"Names": [f"paude-{name}-agent"], "State": "running", "Created": 1,
         "Labels": {**labels, "paude.io/role": "agent"}},
        {"Names": [f"paude-{name}-proxy"], "State": proxy_state, "Created": 1,
         "Labels": {**labels, "paude.io/role": "proxy"}},
    ])


def test_new_domain_reaches_a_running_proxy_without_restarting_anything(
    monkeypatch: pytest.MonkeyPatch, workspace: Path, tmp_path: Path
) -> None:
    name = context.session_name(None, workspace)
    conf = tmp_path / "state" / "paude" / "sessions" / name / "squid.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# old\nacl paude_clients src 10.90.7.0/24\n")
    fake = RecordingRunner(reply(("podman", "ps"), running_ps(name, workspace)))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    assert run_cli("--detach", "--allow-domain", "pypi.org") == 0
    assert fake.commands("podman", "kill") == [
        ("podman", "kill", "--signal", "HUP", f"paude-{name}-proxy")]
    text = conf.read_text()
    assert "pypi.org" in text and "10.90.7.0/24" in text
    assert not fake.commands("podman", "run") and not fake.commands("podman", "start")


def test_attach_brings_a_stopped_proxy_back(
    monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    name = context.session_name(None, workspace)
    fake = RecordingRunner(reply(("podman", "ps"),
                                 running_ps(name, workspace, proxy_state="exited")))
    monkeypatch.setattr(context, "make_runner", lambda g: fake)
    assert run_cli("attach") == 0
    assert fake.commands("podman", "start") == [("podman", "start", f"paude-{name}-proxy")]
    assert fake.calls[-1][:3] == ("podman", "exec", "-it")


# --- workspace trust and refusal ----------------------------------------


def _no_podman_objects(runner: RecordingRunner) -> bool:
    return not [c for c in runner.calls if c[:1] == ("podman",)]


def test_unapproved_paude_json_stops_a_start_until_paude_trust(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "paude.json").write_text('{"allowed_domains": [".attacker.example"]}')
    assert run_cli("--detach") == 2
    err = capsys.readouterr().err
    assert "Error: the configuration of workspace" in err
    assert "allowed_domains adds .attacker.example" in err
    assert "Hint: Review it, then approve it with: paude trust" in err
    assert "+++ paude.json" in err  # the readable diff
    assert _no_podman_objects(runner)
    assert run_cli("trust") == 0
    assert "Trusted paude.json in" in capsys.readouterr().err
    assert run_cli("--detach") == 0
    assert runner.commands("podman", "run")
    # The agent widens it again: refused again; narrowing applies without asking.
    (workspace / "paude.json").write_text('{"allowed_domains": [".attacker.example", "x.io"]}')
    assert run_cli("--detach") == 2
    assert "allowed_domains adds x.io" in capsys.readouterr().err
    (workspace / "paude.json").write_text('{"allowed_domains": []}')
    assert run_cli("--detach") == 0
    assert "only narrows the approved allowlist" in capsys.readouterr().err


def test_dry_run_of_an_unapproved_config_prints_the_plan_and_warns(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "paude.json").write_text('{"image": {"setup_command": "make tools"}}')
    assert run_cli("--dry-run") == 0
    out, err = capsys.readouterr()
    err = " ".join(err.split())  # rich wraps warnings
    assert "make tools" in out
    assert "not approved (first use" in err and "a start stops here" in err
    assert sorted(c[:3] for c in runner.calls) == [("podman", "network", "ls"),
                                                   ("podman", "ps", "-a")]  # reads only


@pytest.mark.parametrize("target", ["home", "root", "ssh"])
def test_home_root_and_secret_dirs_are_refused_in_one_line(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    home = Path(os.environ["HOME"])
    path = {"home": home, "root": Path("/"), "ssh": home / ".ssh"}[target]
    assert run_cli("-w", str(path), "--detach") == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: refusing workspace") and err.count("\n") == 1, err
    assert runner.calls == []


def test_ca_path_symlinked_to_etc_shadow_is_refused(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "ca.pem").symlink_to("/etc/shadow")
    (workspace / "paude.json").write_text('{"extra_ca_certificates": ["ca.pem"]}')
    assert run_cli("trust") == 0
    capsys.readouterr()
    assert run_cli("--detach") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resolves to /etc/shadow, outside" in err, err
    assert runner.calls == []


def test_git_metadata_is_mounted_read_only_and_risky_config_named(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n\tfsmonitor = ./spy.sh\n")
    runner.responders.insert(0, reply(("git", "config"), "core.fsmonitor\n./spy.sh\0"))
    assert run_cli("--detach") == 0
    err = capsys.readouterr().err
    assert "core.fsmonitor=./spy.sh" in err
    agent = next(c for c in runner.commands("podman", "run") if c[4].endswith("-agent"))
    g = f"{workspace}/.git"
    for mount in (f"{g}:{g}", f"{g}/config:{g}/config:ro", f"{g}/hooks:{g}/hooks:ro",
                  f"{g}/info:{g}/info:ro"):
        assert mount in agent
    assert (workspace / ".git" / "info").is_dir()  # made before the agent could


def test_trust_show_prints_the_diff_and_approves_nothing(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "paude.json").write_text('{"image": {"packages": ["jq"]}}\n')
    assert run_cli("trust", "--show") == 0
    out = capsys.readouterr().out
    assert "# paude.json: image.packages = [\"jq\"]" in out and "+++ paude.json" in out
    assert run_cli("--detach") == 2  # still not approved
    assert run_cli("trust") == 0
    capsys.readouterr()
    assert run_cli("trust") == 0
    assert "is already trusted" in " ".join(capsys.readouterr().err.split())


def test_a_symlinked_dot_git_is_named_in_a_warning(
    runner: RecordingRunner, workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "real-git").mkdir()
    (workspace / ".git").symlink_to(tmp_path / "real-git")
    assert run_cli("--detach") == 0
    assert "is a symlink: paude cannot keep the agent" in " ".join(capsys.readouterr().err.split())


def _proxy_build(out: str) -> tuple[str, str]:
    """Return (the proxy Containerfile's FROM line, the proxy's tag) from a --dry-run plan."""
    section = out.split("# proxy image input: <build-context>/Containerfile", 1)[1]
    base = next(line.strip() for line in section.splitlines() if "FROM " in line)
    tag = section.split("-t localhost/paude-proxy:", 1)[1].split()[0]
    return base, tag


def test_no_workspace_config_changes_the_proxy_image(
    runner: RecordingRunner, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--dry-run") == 0
    plain = _proxy_build(capsys.readouterr().out)
    assert plain[0] == "FROM docker.io/library/debian:bookworm-slim"
    (workspace / "paude.json").write_text('{"image": {"base": "attacker.example/squid:1"}}')
    assert run_cli("--dry-run") == 0
    out = capsys.readouterr().out
    assert "FROM attacker.example/squid:1" in out  # the agent's base, as configured
    assert _proxy_build(out) == plain  # the proxy: the same image, bit for bit
    (workspace / "paude.json").unlink()
    (workspace / ".devcontainer.json").write_text('{"image": "attacker.example/dev:1"}')
    assert run_cli("--dry-run") == 0
    out = capsys.readouterr().out
    assert "attacker.example/dev:1" in out and _proxy_build(out) == plain

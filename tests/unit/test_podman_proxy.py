"""The proxy helpers behind ``paude blocked`` and ``paude allow`` (no podman)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import RecordingRunner, reply
from paude.backends.podman.proxy import (
    Proxy,
    apply_allow,
    build_blocked_domains,
    build_reload_argv,
    parse_access_log,
    parse_proxy,
    parse_squid_conf_clients,
    parse_squid_conf_entries,
    run_find_proxy,
    run_read_blocked,
)
from paude.domains import Allowlist
from paude.errors import PaudeError, SessionNotFoundError
from paude.squid import render_squid_conf

# Recorded from a session's /var/log/squid/access.log (paude's logformat),
# plus a line in squid's default format that must be ignored.
ACCESS_LOG = """\
1795780001.120 10.90.7.3 TCP_TUNNEL/200 CONNECT api.anthropic.com:443
1795780002.310 10.90.7.3 TCP_DENIED/403 CONNECT evil.example.com:443
1795780003.500 10.90.7.3 TCP_DENIED/403 GET http://evil.example.com/x
1795780004.000 10.90.7.3 TCP_DENIED/403 CONNECT allowed.example.org:8443
1795780005.250 10.90.7.3 TCP_DENIED/403 CONNECT [2001:db8::7]:443
1795780006.000 10.90.7.3 TCP_DENIED/403 GET http://10.213.5.2:8080/y
1795780007.000 10.90.7.3 TCP_MISS/200 GET http://allowed.example.org/
1795780008.000 10.90.7.3 NONE_NONE/000 - error:transaction-end-before-headers
1795780000.000    100 10.90.7.3 TCP_DENIED/403 3900 CONNECT old.example.com:443 - HIER_NONE/-
garbage
"""


def test_parse_access_log_keeps_denied_newest_first() -> None:
    denied = parse_access_log(ACCESS_LOG)
    assert [(d.host, d.port, d.method) for d in denied] == [
        ("10.213.5.2", 8080, "GET"),
        ("2001:db8::7", 443, "CONNECT"),
        ("allowed.example.org", 8443, "CONNECT"),
        ("evil.example.com", 80, "GET"),
        ("evil.example.com", 443, "CONNECT"),
    ]
    assert denied[0].status == "TCP_DENIED/403" and denied[0].client == "10.90.7.3"


def test_blocked_domains_group_and_hint() -> None:
    blocked = build_blocked_domains(parse_access_log(ACCESS_LOG))
    evil = next(b for b in blocked if b.domain == "evil.example.com")
    assert (evil.count, evil.ports, evil.last_seen) == (2, (80, 443), 1795780003.5)
    assert [b.domain for b in blocked][0] == "10.213.5.2"
    assert evil.to_dict() == {
        "domain": "evil.example.com",
        "count": 2,
        "last_seen": 1795780003.5,
        "ports": [80, 443],
        "hint": "paude --allow-domain evil.example.com",
    }


def test_conf_round_trip() -> None:
    entries = [".example.com", "api.anthropic.com", "192.0.2.7", "10.213.5.0/24"]
    text = render_squid_conf(Allowlist.parse(entries), clients=["10.90.7.0/24"])
    assert sorted(parse_squid_conf_entries(text)) == sorted(entries)
    assert parse_squid_conf_clients(text) == ("10.90.7.0/24",)
    assert parse_squid_conf_clients(render_squid_conf(Allowlist.parse(entries))) == ()


PS = json.dumps([{"Names": ["paude-s1-proxy"], "State": "running", "Labels": {}}])


def _inspect(source: str) -> str:
    return json.dumps(
        [{"Mounts": [{"Source": source, "Destination": "/etc/squid/paude/squid.conf"}]}]
    )


def test_parse_proxy_finds_the_mounted_conf() -> None:
    proxy = parse_proxy(PS, _inspect("/state/s1/squid.conf"))
    assert proxy == Proxy("paude-s1-proxy", True, Path("/state/s1/squid.conf"))
    assert parse_proxy("[]", None) is None


def test_find_proxy_of_missing_session_names_it() -> None:
    runner = RecordingRunner(reply(("podman", "ps"), "[]"))
    with pytest.raises(SessionNotFoundError, match="session 'nope' has no proxy"):
        run_find_proxy(runner, "nope")
    assert "label=paude.io/session=nope" in runner.calls[0]
    assert "label=paude.io/role=proxy" in runner.calls[0]


def test_read_blocked_reads_the_log_as_squids_user() -> None:
    runner = RecordingRunner(reply(("podman", "exec"), ACCESS_LOG))
    blocked = run_read_blocked(runner, Proxy("paude-s1-proxy", True, None))
    assert blocked[0].domain == "10.213.5.2"
    assert runner.calls == [
        ("podman", "exec", "-u", "proxy", "paude-s1-proxy", "cat", "/var/log/squid/access.log")
    ]
    with pytest.raises(PaudeError, match="is not running"):
        run_read_blocked(runner, Proxy("paude-s1-proxy", False, None))


def test_allow_rewrites_in_place_keeps_clients_and_sends_hup(tmp_path: Path) -> None:
    conf = tmp_path / "squid.conf"
    allowlist = Allowlist.parse(["api.anthropic.com"])
    conf.write_text(render_squid_conf(allowlist, clients=["10.90.7.0/24"]))
    inode = conf.stat().st_ino
    runner = RecordingRunner()
    entries = apply_allow(runner, Proxy("paude-s1-proxy", True, conf), ["Other.Example.org"])
    assert entries == ("api.anthropic.com", "other.example.org")
    text = conf.read_text()
    assert conf.stat().st_ino == inode  # the bind mount sees the same file
    assert text == render_squid_conf(Allowlist.parse(entries), clients=["10.90.7.0/24"])
    assert runner.calls == [tuple(build_reload_argv("paude-s1-proxy"))]
    assert build_reload_argv("p") == ["podman", "kill", "--signal", "HUP", "p"]


def test_allow_refuses_bad_entries_before_touching_anything(tmp_path: Path) -> None:
    conf = tmp_path / "squid.conf"
    conf.write_text(render_squid_conf(Allowlist.parse(["api.anthropic.com"])))
    before = conf.read_text()
    runner = RecordingRunner()
    with pytest.raises(ValueError, match="wildcard"):
        apply_allow(runner, Proxy("p", True, conf), ["*.example.com"])
    assert conf.read_text() == before and runner.calls == []


def _cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runner: RecordingRunner, *argv: str
) -> int:
    from paude.cli import context, main

    monkeypatch.setattr(context, "make_runner", lambda g: runner)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return int(done.value.code or 0)


def test_cli_blocked_prints_newest_first_with_hints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = RecordingRunner(
        reply(("podman", "ps"), PS),
        reply(("podman", "inspect"), _inspect("/x/squid.conf")),
        reply(("podman", "exec"), ACCESS_LOG),
    )
    assert _cli(monkeypatch, tmp_path, runner, "blocked", "s1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("10.213.5.2 ") and "paude --allow-domain 10.213.5.2" in lines[0]
    evil = next(line for line in lines if line.startswith("evil.example.com "))
    assert "ports 80,443" in evil and "x2" in evil


def test_cli_allow_rejects_a_wildcard_with_usage_exit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "squid.conf"
    conf.write_text(render_squid_conf(Allowlist.parse(["api.anthropic.com"])))
    runner = RecordingRunner(
        reply(("podman", "ps"), PS), reply(("podman", "inspect"), _inspect(str(conf)))
    )
    assert _cli(monkeypatch, tmp_path, runner, "allow", "*.example.com", "--session", "s1") == 2
    err = capsys.readouterr().err
    assert "is a wildcard" in err and "paude allow .example.com" in err
    assert not any(call[:2] == ("podman", "kill") for call in runner.calls)

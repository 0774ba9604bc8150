"""The rendered squid.conf: each egress rule asserted on the text, and parsed by squid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from paude.domains import Allowlist
from paude.squid import PRIVATE_RANGES, render_squid_conf


def _conf(entries: list[str], *, clients: tuple[str, ...] | list[str] = ()) -> str:
    return render_squid_conf(Allowlist.parse(entries), clients=clients)


def _lines(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line and not line.startswith("#")]


def _acl(conf: str, name: str) -> list[str]:
    for line in _lines(conf):
        parts = line.split()
        if parts[:2] == ["acl", name]:
            return parts[2:]
    raise AssertionError(f"no acl {name} in:\n{conf}")


def _access(conf: str) -> list[str]:
    return [line for line in _lines(conf) if line.startswith("http_access ")]


def test_names_use_dstdomain_without_reverse_lookups() -> None:
    conf = _conf([".example.com", "api.anthropic.com"])
    assert _acl(conf, "allowed_domains") == ["dstdomain", "-n", ".example.com", "api.anthropic.com"]


def test_overlapping_entries_are_deduplicated() -> None:
    conf = _conf(["example.com", ".example.com", "a.example.com", "EXAMPLE.COM."])
    assert _acl(conf, "allowed_domains") == ["dstdomain", "-n", ".example.com"]


def test_suffix_and_prefix_lookalikes_stay_separate_entries() -> None:
    conf = _conf([".googleapis.com", "googleapis.com.evil.net", "evilgoogleapis.com"])
    values = _acl(conf, "allowed_domains")[2:]
    assert values == [".googleapis.com", "evilgoogleapis.com", "googleapis.com.evil.net"]


def test_connect_only_to_443_and_plain_http_only_to_80() -> None:
    conf = _conf(["example.com"])
    assert _acl(conf, "SSL_ports") == ["port", "443"]
    assert _acl(conf, "HTTP_port") == ["port", "80"]
    assert _acl(conf, "plain_http") == ["proto", "HTTP"]
    rules = _access(conf)
    assert "http_access deny CONNECT !SSL_ports" in rules
    assert "http_access deny !CONNECT !HTTP_port" in rules
    assert "http_access deny !CONNECT !plain_http" in rules
    assert rules.index("http_access deny CONNECT !SSL_ports") < rules.index(
        "http_access allow allowed_domains"
    )


def test_ip_literals_refused_unless_listed_exactly() -> None:
    conf = _conf(["example.com"])
    assert _acl(conf, "to_ip_literal") == ["dst", "-n", "all"]
    assert "http_access deny to_ip_literal" in _access(conf)
    assert "allowed_ip_literals" not in conf

    listed = _conf(["example.com", "192.0.2.7"])
    assert _acl(listed, "allowed_ip_literals") == ["dst", "-n", "192.0.2.7"]
    rules = _access(listed)
    assert rules.index("http_access allow allowed_ip_literals") < rules.index(
        "http_access deny to_ip_literal"
    )


def test_unlisted_names_refused_before_any_rule_that_resolves() -> None:
    rules = _access(_conf([".example.com", "10.89.0.0/24"]))
    first_resolving = min(
        i for i, r in enumerate(rules) if any(a in r for a in ("to_localhost", "_ranges"))
    )
    assert rules.index("http_access deny !allowed_domains") < first_resolving


def test_loopback_link_local_always_denied_for_resolved_names() -> None:
    conf = _conf(["example.com", "10.0.0.0/8"])
    never = _acl(conf, "never_ranges")
    assert never[0] == "dst" and "-n" not in never
    for cidr in ("127.0.0.0/8", "169.254.0.0/16", "fe80::/10", "::/127", "0.0.0.0/8"):
        assert cidr in never
    rules = _access(conf)
    allow = rules.index("http_access allow allowed_domains")
    assert rules.index("http_access deny to_localhost") < allow
    assert rules.index("http_access deny never_ranges") < allow


def test_private_ranges_denied_unless_a_range_is_listed() -> None:
    default = _conf(["example.com"])
    assert _acl(default, "private_ranges")[1:] == list(PRIVATE_RANGES)
    assert "http_access deny private_ranges" in _access(default)

    opened = _conf(["example.com", "10.89.3.0/24"])
    assert _acl(opened, "allowed_ranges") == ["dst", "10.89.3.0/24"]
    assert "http_access deny private_ranges !allowed_ranges" in _access(opened)
    assert "http_access allow allowed_ranges" not in opened  # a range allows no request alone


def test_everything_else_denied_last() -> None:
    for entries in ([], ["example.com"], ["192.0.2.7"]):
        assert _access(_conf(entries))[-1] == "http_access deny all"
    assert "allow" not in " ".join(_access(_conf([])))


def test_cache_manager_denied_first() -> None:
    assert _access(_conf(["example.com"]))[0] == "http_access deny manager"


def test_privacy_and_lifecycle_settings() -> None:
    lines = _lines(_conf(["example.com"]))
    for expected in (
        "cache deny all",
        "via off",
        "forwarded_for delete",
        "shutdown_lifetime 0 seconds",
        "pid_filename none",
        "access_log stdio:/var/log/squid/access.log paude",
    ):
        assert expected in lines


def test_clients_restrict_who_may_use_the_proxy() -> None:
    conf = _conf(["example.com"], clients=["10.90.3.0/24"])
    assert _acl(conf, "paude_clients") == ["src", "10.90.3.0/24"]
    assert _access(conf)[:2] == ["http_access deny manager", "http_access deny !paude_clients"]
    assert "paude_clients" not in _conf(["example.com"])
    with pytest.raises(ValueError, match="host bits"):
        _conf(["example.com"], clients=["10.90.3.7/24"])


def test_invalid_entry_raises() -> None:
    with pytest.raises(ValueError, match="is a wildcard"):
        Allowlist.parse(["*.example.com"])


PARSE_CASES = {
    "default": [".googleapis.com", ".google.com"],
    "empty": [],
    "overlapping": [
        "example.com",
        ".example.com",
        "a.example.com",
        ".b.example.com",
        "api.anthropic.com",
        "10.0.0.0/8",
        "10.89.0.0/16",
        "192.0.2.7",
        "2001:db8::7",
        "fd00::/8",
        "fd00:1::/32",
    ],
    "ips_only": ["192.0.2.7", "169.254.169.254"],
}


@pytest.mark.parametrize("case", [*sorted(PARSE_CASES), "clients"])
def test_real_squid_parses_rendered_config(case: str, tmp_path: Path) -> None:
    squid = shutil.which("squid", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert squid, "squid is not installed (scripts/setup installs it)"
    conf = tmp_path / "squid.conf"
    text = (
        _conf(PARSE_CASES["overlapping"], clients=["10.90.3.0/24", "fd00:1::/64"])
        if case == "clients"
        else _conf(PARSE_CASES[case])
    )
    conf.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [squid, "-k", "parse", "-f", str(conf)], capture_output=True, text=True, timeout=30
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    problems = [
        line
        for line in out.splitlines()
        if any(w in line for w in ("ERROR", "FATAL", "WARNING", "NOTICE"))
        and "HTTP requires the use of Via" not in line  # `via off` is deliberate
    ]
    assert problems == []

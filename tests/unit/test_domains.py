"""Allowlist entry validation and normalisation."""

from __future__ import annotations

import pytest

from paude.domains import (
    Allowlist,
    host_of_base_url,
    is_ip_literal,
    is_ip_range,
    is_name,
    normalize_domains,
    validate_domain,
)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Example.COM", "example.com"),
        ("  api.anthropic.com  ", "api.anthropic.com"),
        ("example.com.", "example.com"),
        (".googleapis.com", ".googleapis.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("192.0.2.7", "192.0.2.7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("10.89.0.0/24", "10.89.0.0/24"),
        ("fd00::/8", "fd00::/8"),
    ],
)
def test_valid_entries_are_normalised(entry: str, expected: str) -> None:
    assert validate_domain(entry) == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("*", "every destination"),
        (".", "every destination"),
        ("*.example.com", "wildcard; write '.example.com'"),
        ("exa*mple.com", "wildcard"),
        ("https://example.com/path", "not a domain; write the host name only, e.g. 'example.com'"),
        ("example.com:443", "not a domain; write the host name only, e.g. 'example.com'"),
        ("user@example.com", "not a domain"),
        ("example.com/", "not a domain"),
        ("localhost", "not a full domain name"),
        (".com", "a whole top-level domain"),
        ("exa mple.com", "not a valid domain name"),
        ("-bad.example.com", "not a valid domain name"),
        ("bad-.example.com", "not a valid domain name"),
        ("under_score.example.com", "not a valid domain name"),
        ("..example.com", "not a valid domain name"),
        ("bücher.example", "not a valid domain name"),
        ("a." * 127 + "com", "not a valid domain name"),
        ("10.1", "looks like an IP address"),
        ("1.2.3", "looks like an IP address"),
        ("0x7f.1", "looks like an IP address"),
        ("10.89.0.5/24", "not a valid CIDR range"),
        ("0.0.0.0/0", "every address"),
        ("::/0", "every address"),
        ("fe80::1%eth0", "zone index"),
    ],
)
def test_invalid_entries_are_refused_with_a_reason(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace(".", r"\.")):
        validate_domain(entry)


def test_entry_kinds() -> None:
    assert is_ip_literal("192.0.2.7") and not is_ip_range("192.0.2.7")
    assert is_ip_range("10.0.0.0/8") and not is_ip_literal("10.0.0.0/8")
    assert is_name(".example.com") and is_name("example.com")
    assert not is_name("10.0.0.0/8") and not is_name("::1")


def test_wildcard_swallows_exact_and_sub_entries() -> None:
    got = normalize_domains(
        ["example.com", ".example.com", "a.example.com", ".b.example.com", "EXAMPLE.com."]
    )
    assert got == (".example.com",)


def test_no_suffix_or_prefix_confusion_in_deduplication() -> None:
    entries = [
        ".googleapis.com",
        "googleapis.com.evil.net",
        "evilgoogleapis.com",
        ".oogleapis.com",
    ]
    got = normalize_domains(entries)
    assert set(got) == set(entries)


def test_exact_duplicates_collapse_and_order_is_stable() -> None:
    first = normalize_domains(["b.example.org", "a.example.org", "B.example.org"])
    second = normalize_domains(["a.example.org", "b.example.org"])
    assert first == second == ("a.example.org", "b.example.org")


def test_nested_ranges_collapse_but_ips_stay() -> None:
    got = normalize_domains(["10.0.0.0/8", "10.89.0.0/16", "10.89.0.5", "fd00::/8", "fd00::/16"])
    assert got == ("10.0.0.0/8", "10.89.0.5", "fd00::/8")


def test_normalize_raises_on_any_bad_entry() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        normalize_domains(["example.com", "*.example.com"])


def test_host_of_base_url() -> None:
    assert host_of_base_url("V", "https://API.anthropic.com:443/v1") == "api.anthropic.com"
    assert host_of_base_url("V", "http://10.1.2.3/v1") == "10.1.2.3"


@pytest.mark.parametrize("url", ["https://gw.example.com:8443/v1", "http://10.1.2.3:4000"])
def test_a_base_url_may_use_any_port(url: str) -> None:
    # The session's gateway calls it directly; the proxy's 80/443 rule is not in the way.
    host = url.split("//")[1].split(":")[0]
    assert host_of_base_url("ANTHROPIC_BASE_URL", url) == host


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8080", "points at localhost, the host's loopback"),
        ("https://LOCALHOST./v1", "points at localhost, the host's loopback"),
        ("http://api.localhost", "the host's loopback"),
        ("http://127.0.0.2", "points at 127.0.0.2, the host's loopback"),
        ("http://[::1]:80", "points at ::1, the host's loopback"),
        ("http://0.0.0.0", "the host's loopback"),
        ("not a url", "must be an http:// or https:// URL"),
        ("ftp://example.com", "must be an http:// or https:// URL"),
        ("https://gw.example.com:99999", "is not a valid URL"),
        ("https://*.example.com", "wildcard"),
    ],
)
def test_bad_base_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        host_of_base_url("ANTHROPIC_BASE_URL", url)


def test_allowlist_is_normalised_once_and_hashed() -> None:
    a = Allowlist.parse(["B.example.com", ".example.com", "10.0.0.0/8", "10.1.0.0/16", "192.0.2.7"])
    assert a.entries == (".example.com", "10.0.0.0/8", "192.0.2.7")
    assert (a.names, a.ranges, a.ips) == ((".example.com",), ("10.0.0.0/8",), ("192.0.2.7",))
    assert a.digest == Allowlist.parse(list(reversed(a.entries))).digest
    assert a.digest != Allowlist.parse(["example.com"]).digest
    assert Allowlist().digest == Allowlist.parse([]).digest

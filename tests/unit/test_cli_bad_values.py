"""Bad allowlist values from every source, through the real CLI in a subprocess.

Each is refused when the session spec is built: exit 2, one ``Error:`` line
and its hint, no traceback, nothing printed on stdout (``--dry-run`` would
print a plan).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SOURCES = ("ANTHROPIC_BASE_URL", "ANTHROPIC_VERTEX_BASE_URL", "PAUDE_ALLOWED_DOMAINS",
           "ANTHROPIC_API_KEY", "PAUDE_BACKEND", "PAUDE_EXTRA_CA_CERTS", "PAUDE_DEBUG")

# case: (environment, extra argv, workspace files, what the one error line says)
REFUSED: dict[str, tuple[dict[str, str], tuple[str, ...], dict[str, str], str]] = {
    "base-url-localhost": (
        {"ANTHROPIC_BASE_URL": "http://localhost:8080"}, (), {},
        "ANTHROPIC_BASE_URL points at localhost, the host's loopback, which the sandbox "
        "cannot reach"),
    "base-url-127": ({"ANTHROPIC_BASE_URL": "http://127.0.0.1:80/v1"}, (), {},
                     "127.0.0.1, the host's loopback"),
    "vertex-url-ipv6-loopback": ({"ANTHROPIC_VERTEX_BASE_URL": "https://[::1]/"}, (), {},
                                 "ANTHROPIC_VERTEX_BASE_URL points at ::1"),
    "base-url-no-scheme": ({"ANTHROPIC_BASE_URL": "gateway.example.com"}, (), {},
                           "must be an http:// or https:// URL"),
    "env-allowlist": ({"PAUDE_ALLOWED_DOMAINS": "example.com,*"}, (), {},
                      "would allow every destination"),
    "config-file": ({}, (), {"paude.json": '{"allowed_domains": ["a..b"]}'},
                    "paude.json: allowed_domains.0: 'a..b' is not a valid domain name"),
    "flag": ({}, ("--allow-domain", "https://x.example.com/p"), {},
             "'https://x.example.com/p' is not a domain"),
}
# Any port: the gateway, not the allowlist proxy (80/443 only), calls the upstream.
ACCEPTED = ({"ANTHROPIC_BASE_URL": "https://GW.example.com:8443/v1",
             "ANTHROPIC_API_KEY": "sk-test-not-a-key"}, (), {}, "")


def _start(root: Path, case: tuple[dict[str, str], tuple[str, ...], dict[str, str], str]
           ) -> subprocess.Popen[str]:
    env, argv, files, _ = case
    workspace = root / "project"
    workspace.mkdir(parents=True)
    for name, text in files.items():
        (workspace / name).write_text(text)
    clean = {k: v for k, v in os.environ.items() if k not in SOURCES}
    clean.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"),
                 XDG_STATE_HOME=str(root / "state"), NO_COLOR="1", **env)
    return subprocess.Popen([sys.executable, "-m", "paude", "--dry-run", *argv], cwd=workspace,
                            env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Run every case at once (each is a whole interpreter start)."""
    cases = {**REFUSED, "accepted": ACCEPTED}
    procs = {name: _start(tmp_path_factory.mktemp(name), case) for name, case in cases.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_values_are_one_error_line_and_exit_2(
    results: dict[str, tuple[int, str, str]], case: str
) -> None:
    code, stdout, stderr = results[case]
    lines = stderr.splitlines()
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 2 and lines[0].startswith("Error: "), stderr
    assert lines[1].startswith("Hint: ")
    assert REFUSED[case][3] in lines[0]
    assert stdout == ""  # no plan printed


def test_a_reachable_base_url_is_the_gateways_upstream_not_an_allowlist_entry(
    results: dict[str, tuple[int, str, str]]
) -> None:
    code, stdout, stderr = results["accepted"]
    assert code == 0, stderr
    assert "start the model gateway" in stdout and "podman secret create" in stdout
    assert "dstdomain" not in stdout  # the default allowlist is empty
    assert "sk-test-not-a-key" not in stdout

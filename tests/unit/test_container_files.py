"""The shipped files in container/data/ and the Containerfiles rendered from them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from paude.container.files import (
    CONTAINERFILES,
    SHIPPED_FILES,
    ImageKind,
    read_data,
    render_containerfile,
    shipped_files,
)
from paude.facts import STATE_DIR, STOP_CODES

DATA = resources.files("paude.container").joinpath("data")


@pytest.mark.parametrize("kind", ["agent", "proxy", "gateway"])
def test_checked_in_containerfile_matches_rendering(kind: ImageKind) -> None:
    checked_in = read_data(CONTAINERFILES[kind]).decode()
    assert checked_in == render_containerfile(kind), (
        f"data/{CONTAINERFILES[kind]} is stale: re-render it with "
        "paude.container.files.render_containerfile"
    )


def test_every_data_file_is_listed() -> None:
    on_disk = {entry.name for entry in DATA.iterdir() if entry.name != "__pycache__"}
    listed = {f.name for f in SHIPPED_FILES if f.package == "paude.container"}
    listed |= set(CONTAINERFILES.values())
    assert on_disk == listed


def test_every_shipped_file_is_copied_by_its_containerfile() -> None:
    for kind in ("agent", "proxy", "gateway"):
        text = render_containerfile(kind)
        for shipped in shipped_files(kind):
            assert f"COPY {shipped.name} {shipped.dest}\n" in text
            assert f"chmod {shipped.mode:o} {shipped.dest}" in text


def test_agent_containerfile_order_and_user() -> None:
    text = render_containerfile("agent", has_ca_bundle=True)
    lines = text.splitlines()
    assert lines[2] == "FROM docker.io/library/debian:bookworm-slim"
    # The CA is trusted before npm fetches anything over HTTPS.
    assert text.index("update-ca-certificates") < text.index("npm install -g")
    assert "@anthropic-ai/claude-code@2.1.332" in text
    assert "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" in text
    assert lines[-2:] == ["USER 1000", 'ENTRYPOINT ["/usr/local/bin/paude-entrypoint"]']
    assert "ENV DISABLE_AUTOUPDATER=1" in lines


def test_agent_without_ca_sets_no_ca_env() -> None:
    text = render_containerfile("agent")
    assert "update-ca-certificates" not in text
    assert "NODE_EXTRA_CA_CERTS" not in text


def test_setup_command_is_a_json_exec_form_run_line() -> None:
    command = "echo \"hi\" && printf '%s\\n' $HOME \\\nRUN evil"
    text = render_containerfile("agent", setup_command=command)
    run_lines = [line for line in text.splitlines() if line.startswith('RUN ["/bin/sh"')]
    assert len(run_lines) == 1
    assert json.loads(run_lines[0].removeprefix("RUN ")) == ["/bin/sh", "-c", command]
    # Runs as root, before the permissions for arbitrary UIDs are applied.
    assert text.index(run_lines[0]) < text.index("chmod -R g=u")


def test_packages_are_added_to_the_apt_line() -> None:
    text = render_containerfile("agent", packages=("jq", "python3"))
    assert "ca-certificates curl git inotify-tools jq nodejs npm python3 rsync tmux" in text


def test_proxy_runs_squid_in_foreground_with_mounted_config() -> None:
    text = render_containerfile("proxy")
    assert "apt-get install -y --no-install-recommends squid" in text
    assert text.rstrip().endswith('ENTRYPOINT ["squid", "-N", "-f", "/etc/squid/paude/squid.conf"]')
    assert "chown -R proxy:0 /var/log/squid" in text
    assert "USER 13" in text  # numeric non-root: runAsNonRoot admits it
    assert "COPY" not in text


def test_entrypoint_stop_codes_are_the_ones_paude_reads() -> None:
    text = read_data("paude-entrypoint").decode()
    for code, reason in STOP_CODES.items():
        assert f"EXIT_{reason.upper()}={code}\n" in text
    assert f"STATE_DIR={STATE_DIR}\n" in text

"""One source for the facts shared with the images, and one package-name rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paude import facts
from paude.config.models import PaudeConfig
from paude.container.files import read_data, render_containerfile
from paude.container.image import ImageSpec
from paude.errors import ConfigError

SRC = Path(facts.__file__).parent


def test_the_entrypoint_script_uses_the_same_paths_and_session() -> None:
    script = read_data("paude-entrypoint").decode()
    assigned = dict(re.findall(r"^([A-Z_]+)=(\S+)$", script, flags=re.MULTILINE))
    assert assigned["SEED_DIR"] == facts.SEED_DIR
    assert assigned["SESSION"] == facts.TMUX_SESSION
    assert assigned["TMUX_CONF"] == facts.TMUX_CONF_PATH


def test_the_containerfiles_are_rendered_from_the_facts() -> None:
    agent = render_containerfile("agent")
    assert f"--uid {facts.AGENT_UID} --gid 0 --home-dir {facts.CONTAINER_HOME}" in agent
    assert f"ENV HOME={facts.CONTAINER_HOME} PAUDE_WORKSPACE={facts.DEFAULT_WORKSPACE}" in agent
    assert f"FROM {facts.DEFAULT_BASE_IMAGE}" in agent
    assert f"claude-code@{facts.DEFAULT_CLAUDE_CODE_VERSION}" in agent
    proxy = render_containerfile("proxy")
    assert f'"-f", "{facts.SQUID_CONF_PATH}"]' in proxy and f"EXPOSE {facts.PROXY_PORT}" in proxy


def test_no_module_spells_a_shared_fact_again() -> None:
    literals = ["/home/paude", "/run/paude", "/etc/squid/paude", "debian:bookworm-slim",
                facts.DEFAULT_CLAUDE_CODE_VERSION, '"app.kubernetes.io/managed-by"']
    offenders = [
        f"{path.relative_to(SRC)}: {literal}"
        for path in SRC.rglob("*.py")
        if path.name not in {"facts.py", "naming.py"}
        for literal in literals
        if literal in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize("name", ["jq", "jq=1.6-2.1", "g++", "python3.11", "libc6-dev",
                                  "tzdata=1:2024a-0+deb12u1"])
def test_config_and_builder_accept_the_same_packages(name: str) -> None:
    config = PaudeConfig.model_validate({"image": {"packages": [name]}})
    assert ImageSpec(kind="agent", packages=config.image.packages).packages == (name,)


@pytest.mark.parametrize("name", ["Jq", "jq; rm -rf /", "-x", "a", "jq\nRUN x", "jq=", "jq=v1"])
def test_config_and_builder_refuse_the_same_packages(name: str) -> None:
    with pytest.raises(ValueError, match="is not a Debian package name"):
        PaudeConfig.model_validate({"image": {"packages": [name]}})
    with pytest.raises(ConfigError, match="invalid Debian package name"):
        ImageSpec(kind="agent", packages=(name,))

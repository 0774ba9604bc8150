"""Image specs, tags, build argv and the ensure_image executor."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from paude.container import image as image_mod
from paude.container.files import SHIPPED_FILES
from paude.container.image import (
    ImageSpec,
    build_context,
    build_image_argv,
    build_image_tag,
    ensure_image,
)
from paude.errors import ConfigError, ImageBuildError
from paude.runner import TIMEOUT_BUILD, Result

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class FakeRunner:
    """Record argv and answer with scripted return codes, in order."""

    def __init__(self, returncodes: Sequence[int], output: str = "") -> None:
        self.returncodes = list(returncodes)
        self.output = output
        self.calls: list[tuple[list[str], float]] = []
        self.contexts: list[dict[str, bytes]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        self.calls.append((list(argv), timeout))
        if argv[:2] == ["podman", "build"]:
            self.contexts.append(_read_dir(argv[-1]))
        return Result(tuple(argv), self.returncodes.pop(0), self.output, "")

    def follow(self, argv: Sequence[str], *, timeout: float, on_line: Callable[[str], None],
               env: Any = None) -> Result:
        result = self.run(argv, timeout=timeout, check=False)
        for line in result.stdout.splitlines():
            on_line(line)
        return result

    def stream(self, argv: Sequence[str], *, timeout: float | None, env: Any = None) -> int:
        raise AssertionError("not used")

    def exec_replace(self, argv: Sequence[str]) -> None:
        raise AssertionError("not used")


def _read_dir(path: str) -> dict[str, bytes]:
    import pathlib

    return {p.name: p.read_bytes() for p in pathlib.Path(path).iterdir()}


AGENT = ImageSpec(kind="agent")

CHANGED_FIELDS = {
    "base_image": "localhost/other:1",
    "claude_code_version": "2.1.333",
    "packages": ("jq",),
    "setup_command": "true",
    "ca_bundle": CA,
    "dockerfile": "FROM debian:bookworm\n",
}


def test_tag_shape_and_stability() -> None:
    tag = build_image_tag(AGENT)
    assert re.fullmatch(r"localhost/paude-agent:[0-9a-f]{12}", tag)
    assert build_image_tag(ImageSpec(kind="agent")) == tag
    assert build_image_tag(ImageSpec(kind="proxy")).startswith("localhost/paude-proxy:")


@pytest.mark.parametrize("field", sorted(CHANGED_FIELDS))
def test_tag_changes_with_each_field(field: str) -> None:
    changed = dataclasses.replace(AGENT, **{field: CHANGED_FIELDS[field]})
    assert build_image_tag(changed) != build_image_tag(AGENT)


@pytest.mark.parametrize("name", [f.name for f in SHIPPED_FILES])
def test_tag_changes_with_each_shipped_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = next(f for f in SHIPPED_FILES if f.name == name)
    spec = ImageSpec(kind=shipped.kinds[0])
    before = build_image_tag(spec)
    original = image_mod.read_shipped
    monkeypatch.setattr(
        image_mod, "read_shipped",
        lambda f: original(f) + (b"\n# changed" if f.name == name else b""))
    assert build_image_tag(spec) != before


def test_proxy_ignores_agent_only_inputs() -> None:
    proxy = ImageSpec(kind="proxy")
    assert build_image_tag(dataclasses.replace(proxy, ca_bundle=CA)) == build_image_tag(proxy)
    assert "paude-extra-ca.crt" not in build_context(dataclasses.replace(proxy, ca_bundle=CA))


def test_context_holds_containerfile_shipped_files_and_ca() -> None:
    context = build_context(dataclasses.replace(AGENT, ca_bundle=CA))
    assert set(context) == {"Containerfile", "paude-entrypoint", "tmux.conf", "paude-extra-ca.crt"}
    assert context["paude-extra-ca.crt"] == CA
    assert (
        b"COPY paude-extra-ca.crt /usr/local/share/ca-certificates/paude-extra.crt"
        in (context["Containerfile"])
    )


def test_dockerfile_becomes_the_base() -> None:
    spec = dataclasses.replace(AGENT, dockerfile="FROM debian:bookworm\nRUN true\n")
    context = build_context(spec)
    assert context["Containerfile.user-base"] == b"FROM debian:bookworm\nRUN true\n"
    assert re.search(
        rb"^FROM localhost/paude-user-base:[0-9a-f]{12}$", context["Containerfile"], re.M
    )


def test_build_argv_shape() -> None:
    argv = build_image_argv(AGENT, "/ctx", "localhost/paude-agent:abc")
    assert argv[:2] == ["podman", "build"]
    assert argv[-1] == "/ctx"
    assert argv[argv.index("-t") + 1] == "localhost/paude-agent:abc"
    assert argv[argv.index("-f") + 1] == "/ctx/Containerfile"
    assert "app.kubernetes.io/managed-by=paude" in argv
    assert "--pull=missing" in argv


@pytest.mark.parametrize(
    "packages", [("Jq",), ("jq; rm -rf /",), ("-x",), ("a",), ("jq\nRUN x",), ("jq=",)]
)
def test_bad_package_names_are_rejected(packages: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="invalid Debian package name"):
        ImageSpec(kind="agent", packages=packages)


def test_good_package_names_are_accepted() -> None:
    spec = ImageSpec(kind="agent", packages=("libc6-dev", "g++", "jq=1.6-2.1", "python3.11"))
    assert spec.packages[1] == "g++"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("claude_code_version", "1.0 && curl x", "invalid agent version"),
        ("base_image", "debian\nRUN x", "invalid base image"),
        ("setup_command", "  ", "setup command is empty"),
    ],
)
def test_other_bad_values_are_rejected(field: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ImageSpec(kind="agent", **{field: value})  # type: ignore[arg-type]


def test_ensure_image_cached_makes_one_call() -> None:
    runner = FakeRunner([0])
    built: list[str] = []
    tag = ensure_image(runner, AGENT, on_build=built.append)
    assert tag == build_image_tag(AGENT)
    assert [argv for argv, _ in runner.calls] == [["podman", "image", "exists", tag]]
    assert built == []


def test_ensure_image_builds_when_missing() -> None:
    runner = FakeRunner([1, 1, 0])  # missing, still missing once the build lock is held
    built: list[str] = []
    tag = ensure_image(runner, dataclasses.replace(AGENT, ca_bundle=CA), on_build=built.append)
    assert built == [tag]
    argv, timeout = runner.calls[2]
    assert argv[:2] == ["podman", "build"] and timeout == TIMEOUT_BUILD
    assert runner.contexts[0]["paude-extra-ca.crt"] == CA


def test_ensure_image_rebuild_builds_even_when_present() -> None:
    runner = FakeRunner([0])
    ensure_image(runner, AGENT, rebuild=True)
    assert [argv[:2] for argv, _ in runner.calls] == [["podman", "build"]]


def test_ensure_image_builds_user_dockerfile_first() -> None:
    runner = FakeRunner([1, 1, 0, 0])
    spec = dataclasses.replace(AGENT, dockerfile="FROM debian:bookworm\n")
    ensure_image(runner, spec)
    first, second = runner.calls[2][0], runner.calls[3][0]
    assert first[first.index("-t") + 1].startswith("localhost/paude-user-base:")
    assert first[first.index("-f") + 1].endswith("Containerfile.user-base")
    assert second[second.index("-t") + 1] == build_image_tag(spec)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Build logs go to a scratch state directory, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_ensure_image_failure_shows_log_tail_and_hint(_state_home: Path) -> None:
    log = "\n".join(f"step {i}" for i in range(100)) + "\nnpm ERR! self-signed certificate"
    runner = FakeRunner([1, 1, 1], output=log)
    with pytest.raises(ImageBuildError, match=r"(?s)exit code 1.*step 99\nnpm ERR") as info:
        ensure_image(runner, AGENT)
    assert "step 50" not in info.value.message
    assert info.value.hint is not None and "CA bundle" in info.value.hint
    # The whole log is kept in a file the message names.
    path = _state_home / "paude" / "logs" / f"build-paude-agent-{build_image_tag(AGENT)[-12:]}.log"
    assert f"Full log: {path}" in info.value.message
    assert path.read_text() == log + "\n"  # written line by line as the build runs


def test_ensure_image_missing_base_hint() -> None:
    log = "Error: creating build container: initializing source docker://x: pinging"
    runner = FakeRunner([1, 1, 125], output=log)
    with pytest.raises(ImageBuildError, match="exit code 125") as info:
        ensure_image(runner, AGENT)
    assert info.value.hint is not None and "base image" in info.value.hint


def test_ensure_image_waits_for_another_build_of_the_tag_then_uses_it() -> None:
    """Another paude holds the tag's build lock: this one says so, waits, and finds
    the image that one built (no second build)."""
    import os
    import threading

    from paude.session_lock import image_lock

    tag = build_image_tag(AGENT)
    said: list[str] = []
    waiting, done = threading.Event(), threading.Event()
    runner = FakeRunner([1, 0])  # missing; there once the lock is ours

    def on_wait(message: str) -> None:
        said.append(message)
        waiting.set()

    def start() -> None:
        ensure_image(runner, AGENT, on_build=lambda _: pytest.fail("built again"),
                     on_wait=on_wait)
        done.set()

    with image_lock(tag, on_wait=pytest.fail):
        thread = threading.Thread(target=start)
        thread.start()
        assert waiting.wait(10)
        assert not done.is_set()
    thread.join(10)
    assert done.is_set()
    assert said == [f"Waiting for another paude building image {tag} (pid {os.getpid()})"]
    assert [argv[1] for argv, _ in runner.calls] == ["image", "image"]

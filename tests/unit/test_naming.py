"""Session names."""

from __future__ import annotations

from pathlib import Path

import pytest

from paude.errors import ConfigError
from paude.naming import derive_session_name, validate_session_name


def test_derived_name_is_dir_plus_stable_hash(tmp_path: Path) -> None:
    ws = tmp_path / "My Project_2"
    ws.mkdir()
    name = derive_session_name(ws)
    assert name.startswith("my-project-2-")
    assert len(name.rsplit("-", 1)[1]) == 6
    assert derive_session_name(ws) == name
    assert validate_session_name(name) == name


def test_same_dir_name_elsewhere_gets_another_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "app", tmp_path / "b" / "app"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    assert derive_session_name(a) != derive_session_name(b)


def test_long_and_odd_dir_names_still_give_valid_names(tmp_path: Path) -> None:
    ws = tmp_path / ("x" * 80)
    ws.mkdir()
    assert len(validate_session_name(derive_session_name(ws))) <= 40
    odd = tmp_path / "---"
    odd.mkdir()
    assert derive_session_name(odd).startswith("workspace-")


@pytest.mark.parametrize("bad", ["a;rm -rf", "../x", "a/b", "Upper", "-lead", "trail-", "",
                                 "x" * 41, "a b", "$(id)", "a`b`"])
def test_bad_session_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid session name"):
        validate_session_name(bad)


def test_network_mode_is_an_enum_with_the_label_values() -> None:
    from paude.backends.base import Session, SessionStatus
    from paude.naming import NetworkMode

    assert NetworkMode.of(allow_network=True) is NetworkMode.UNRESTRICTED
    assert NetworkMode.from_label(None) is NetworkMode.RESTRICTED  # the default
    assert NetworkMode.from_label("unrestricted") is NetworkMode.UNRESTRICTED
    session = Session("s", "podman", SessionStatus.RUNNING, "/w", "t", NetworkMode.RESTRICTED)
    assert session.to_dict()["network"] == "restricted"
    assert type(session.to_dict()["network"]) is str  # stable --json

"""The live line of a build or push, from podman's own output lines."""

from __future__ import annotations

import io

import pytest

from paude.progress import StepProgress, render_elapsed


def test_build_steps_give_step_n_of_m_what_it_does_and_the_time() -> None:
    p = StepProgress("Building the agent image x", started=100.0)
    assert p.render(100.4) == "Building the agent image x · 0s"
    for line in ["STEP 1/12: FROM debian", "Getting image source signatures",
                 "STEP 3/12: RUN apt-get update && apt-get install -y curl git nodejs npm rsync"
                 " tmux inotify-tools", "Reading package lists..."]:
        p.feed(line)
    live = p.render(142.9)
    assert live.startswith("Building the agent image x · step 3/12: RUN apt-get update")
    assert live.endswith("… · 42s") and len(live) < 120
    assert p.summary(205.0, done="Built the agent image x") == \
        "Built the agent image x in 1m45s (3 steps)"


def test_push_counts_layers_without_a_total() -> None:
    p = StepProgress("Pushing x to r", started=0.0)
    p.feed("Copying blob sha256:0123456789abcdef0123")
    p.feed("Copying blob 89abcdef0123aaaa")
    assert p.render(3.0) == "Pushing x to r · layer 2: blob 89abcdef0123 · 3s"
    assert p.summary(5.0, done="Pushed x") == "Pushed x in 5s (2 layers)"


def test_elapsed_is_seconds_then_minutes() -> None:
    assert [render_elapsed(s) for s in (0, 59.9, 60, 3725)] == ["0s", "59s", "1m00s", "62m05s"]


def test_two_builds_at_once_share_one_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from paude.cli.output import RichReporter

    out = io.StringIO()
    reporter = RichReporter()
    reporter._console = Console(file=out, force_terminal=True, width=120, highlight=False)
    monkeypatch.setattr(reporter, "_animate", lambda: True)
    with reporter.follow("Building the agent image a", done="Built the agent image a") as agent:
        agent("STEP 2/9: RUN apt-get update")
        with reporter.follow("Building the proxy image p", done="Built the proxy image p") as px:
            px("STEP 1/4: FROM debian")
        assert reporter._display is not None  # still shown for the agent
    assert reporter._display is None
    text = out.getvalue()
    assert "Built the proxy image p in 0s (1 step)" in text
    assert "Built the agent image a in 0s (2 steps)" in text


def test_verbose_streams_every_line_and_no_terminal_prints_the_step_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from paude.cli.output import RichReporter

    lines = ["STEP 1/2: FROM debian", "Getting image source signatures", "STEP 2/2: RUN true"]
    with RichReporter(verbosity=1).follow("Building x", done="Built x") as feed:
        for line in lines:
            feed(line)
    err = capsys.readouterr().err
    assert err.splitlines()[:4] == ["Building x...", *lines]
    assert err.splitlines()[-1] == "Built x in 0s (2 steps)"
    with RichReporter().follow("Building x", done="Built x") as feed:  # stderr is no terminal
        for line in lines:
            feed(line)
    assert capsys.readouterr().err.splitlines() == ["Building x...", "Built x in 0s (2 steps)"]

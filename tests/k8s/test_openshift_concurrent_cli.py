"""Two ``paude --backend openshift --detach`` processes for one workspace at once.

The real CLI, twice, as the user bound only to paude's Role, on kwok's nodes.
Both commands succeed and end with one healthy session, listed by label
(oshift_state.py):

* launched at the same moment, on one machine (one HOME: the session lock);
* the second launched while the first is held before its first step (it
  holds the lock): the second says it waits, then finds the session;
* on two machines (two HOMEs, no lock in common): the second runs its whole
  start while the first is held after its first step, then the first goes
  on; server-side apply makes them converge.

The in-process versions (two backends in one process) are in
``test_openshift_concurrency.py``; the podman ones in ``tests/podman/test_interrupt.py``.
"""

from __future__ import annotations

import shutil

import pytest
from oshift_state import assert_healthy, assert_stops_clean, planned, spawn
from stepgate import StepGate
from test_openshift_attach import OpenShiftCLI
from test_openshift_attach import openshift_cli as openshift_cli  # a fixture

from paude.naming import derive_session_name

pytestmark = pytest.mark.k8s
START = ("--backend", "openshift", "--detach")
WAITS = "Waiting for another paude command"


def test_two_detached_starts_at_once_end_with_one_session(openshift_cli: OpenShiftCLI) -> None:
    cli = openshift_cli
    name = derive_session_name(cli.workspace)
    plan = planned(cli)
    first, second = spawn(cli, *START), spawn(cli, *START)
    results = [first.finish(), second.finish()]
    assert [code for code, _ in results] == [0, 0], results
    assert all("Traceback" not in out for _, out in results), results
    assert_healthy(cli, name, plan)
    assert_stops_clean(cli, name)


def test_a_second_start_waits_for_the_first_then_finds_its_session(
    openshift_cli: OpenShiftCLI,
) -> None:
    cli = openshift_cli
    name = derive_session_name(cli.workspace)
    plan = planned(cli)
    gate = StepGate(cli.root / "gate")
    first = spawn(cli, *START, env=gate.env())
    gate.wait_held(first.proc)  # it holds the session lock, before its first step
    second = spawn(cli, *START)
    cli.cluster.wait_for(lambda: WAITS in second.stderr(), timeout=120,
                         what="the second start to wait for the first")
    gate.release(first.proc)
    assert first.finish()[0] == 0
    code, out = second.finish()
    assert code == 0, out
    assert f"Attach with: paude attach {name}" in out
    assert_healthy(cli, name, plan)
    assert_stops_clean(cli, name)


def test_starts_from_two_machines_interleaved_converge_on_one_session(
    openshift_cli: OpenShiftCLI,
) -> None:
    cli = openshift_cli
    name = derive_session_name(cli.workspace)
    plan = planned(cli)
    other = cli.root / "other-home"  # another machine's HOME: its own state and lock
    shutil.copytree(cli.home, other)
    elsewhere = {"HOME": str(other), "XDG_CONFIG_HOME": str(other / ".config")}
    gate = StepGate(cli.root / "gate")
    first = spawn(cli, *START, env=gate.env())
    gate.let_through_until(first.proc, "kind: PersistentVolumeClaim\n")
    code, out = spawn(cli, *START, env=elsewhere).finish()  # the whole start, meanwhile
    assert code == 0, out
    assert WAITS not in out
    gate.release(first.proc)
    code, out = first.finish()
    assert code == 0, out
    assert_healthy(cli, name, plan)
    assert_stops_clean(cli, name)

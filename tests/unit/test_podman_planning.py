"""The podman start plan from a given state (pure: no podman)."""

from __future__ import annotations

from pathlib import Path

from paude.backends.base import SessionSpec
from paude.backends.podman.network import EGRESS_POOL, candidate_subnets
from paude.backends.podman.parse import Container
from paude.backends.podman.planning import (
    PodmanState,
    StartInputs,
    build_start_plan,
    parse_network_subnets,
)
from paude.container.image import ImageSpec
from paude.plan import Argv, Build, File, render_plan
from paude.trust.paths import GuardMount

SPEC = SessionSpec(name="s1", workspace=Path("/w"), allowed_domains=("example.com",))
INPUTS = StartInputs(agent_image=ImageSpec(kind="agent"), proxy_image=ImageSpec(kind="proxy"),
                     squid_conf_path="/state/s1/squid.conf", user_args=("--user=0:0",),
                     workspace_owner=(0, 0), created_at="2026-01-01T00:00:00+00:00")


def _container(role: str, state: str) -> Container:
    labels = {"app.kubernetes.io/managed-by": "paude", "paude.io/session": "s1",
              "paude.io/role": role, "paude.io/workspace": "/w", "paude.io/network": "restricted"}
    return Container(f"paude-s1-{role}", state, labels, 1)


def _argvs(plan_steps: tuple[object, ...]) -> list[tuple[str, ...]]:
    return [s.argv[:3] for s in plan_steps if isinstance(s, Argv)]


def test_a_new_session_gets_images_networks_conf_and_both_containers() -> None:
    plan = build_start_plan(SPEC, PodmanState(), INPUTS)
    kinds = [type(s).__name__ for s in plan.steps]
    assert kinds.count("Build") == 2 and all(isinstance(s, Build) and s.skip_if_exists
                                             for s in plan.steps if isinstance(s, Build))
    assert _argvs(plan.steps) == [("podman", "network", "create")] * 2 + [
        ("podman", "run", "-d")] * 2
    conf = [s for s in plan.steps if isinstance(s, File) and s.path == INPUTS.squid_conf_path]
    assert len(conf) == 1 and "example.com" in conf[0].content


def test_a_taken_subnet_is_skipped_in_the_plan_itself() -> None:
    first = candidate_subnets("s1")[0]
    plan = build_start_plan(SPEC, PodmanState(subnets={"mine": first.replace("/24", "/25")}),
                            INPUTS)
    text = render_plan(plan)
    assert f"--subnet {first}" not in text and f"--subnet {candidate_subnets('s1')[1]}" in text


def test_a_stopped_proxy_is_started_and_its_conf_rewritten_only_when_it_changed() -> None:
    state = PodmanState(containers={"agent": _container("agent", "running"),
                                    "proxy": _container("proxy", "exited")},
                        subnets={"paude-s1": "10.90.7.0/24", "paude-s1-egress": "10.91.7.0/24"})
    plan = build_start_plan(SPEC, state, INPUTS)
    assert _argvs(plan.steps) == [("podman", "start", "paude-s1-proxy")]
    assert "--ip 10.90.7.2" not in render_plan(plan)  # nothing re-created
    conf = next(s for s in plan.steps if isinstance(s, File) and s.path == INPUTS.squid_conf_path)
    same = build_start_plan(SPEC, PodmanState(**{**state.__dict__, "squid_conf": conf.content}),
                            INPUTS)
    assert not [s for s in same.steps if isinstance(s, File) and s.path == conf.path]


def test_a_running_session_plans_nothing_unless_its_allowlist_changed() -> None:
    running = {"agent": _container("agent", "running"), "proxy": _container("proxy", "running")}
    assert build_start_plan(SPEC, PodmanState(containers=running), INPUTS).steps == ()
    old = "acl paude_clients src 10.90.7.0/24\n"
    plan = build_start_plan(SPEC, PodmanState(containers=running, squid_conf=old), INPUTS)
    assert [type(s).__name__ for s in plan.steps] == ["File", "Argv"]
    assert plan.steps[1].argv[:2] == ("podman", "kill")  # type: ignore[union-attr]


def test_missing_mount_points_are_created_before_the_agent() -> None:
    spec = SessionSpec(name="s1", workspace=Path("/w"), allowed_domains=(),
                       guard_mounts=(GuardMount("/w/.git/hooks", create="dir"),
                                     GuardMount("/w/.git/config", create="file")))
    plan = build_start_plan(spec, PodmanState(missing_mount_points=frozenset(
        {"/w/.git/hooks"})), INPUTS)
    made = [s for s in plan.steps if isinstance(s, File) and s.exclusive]
    assert [(m.path, m.directory) for m in made] == [("/w/.git/hooks", True)]
    assert plan.steps.index(made[0]) < len(plan.steps) - 2  # before both containers


def test_parse_network_subnets() -> None:
    text = '[{"name": "a", "subnets": [{"subnet": "10.90.1.0/24"}]}, {"name": "host"}]'
    assert parse_network_subnets(text) == {"a": "10.90.1.0/24", "host": ""}


def test_host_routes_are_taken_subnets_but_not_the_default_route() -> None:
    from paude.backends.podman.planning import parse_host_routes

    route = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "podman19\t00345B0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert parse_host_routes(route) == ("10.91.52.0/24",)


def test_a_subnet_routed_on_the_host_is_skipped() -> None:
    # Another user's bridge (rootful vs rootless) is not in this podman's list.
    egress = candidate_subnets("s1", EGRESS_POOL)
    plan = build_start_plan(SPEC, PodmanState(host_subnets=(egress[0],)), INPUTS)
    text = render_plan(plan)
    assert f"--subnet {egress[0]}" not in text and f"--subnet {egress[1]}" in text


def _gateway_spec() -> SessionSpec:
    from paude.auth import find_model_auth

    auth = find_model_auth({"ANTHROPIC_API_KEY": "sk-test"}, None, "-")
    return SessionSpec(name="s1", workspace=Path("/w"), allowed_domains=("example.com",),
                       model_auth=auth)


def test_a_secret_left_without_its_gateway_is_removed_before_it_is_made_again() -> None:
    from dataclasses import replace

    inputs = replace(INPUTS, gateway_image=ImageSpec(kind="gateway"))
    fresh = _argvs(build_start_plan(_gateway_spec(), PodmanState(), inputs).steps)
    assert ("podman", "secret", "create") in fresh
    assert ("podman", "secret", "rm") not in fresh
    left = _argvs(build_start_plan(_gateway_spec(), PodmanState(gateway_secret=True),
                                   inputs).steps)
    assert left.index(("podman", "secret", "rm")) + 1 == left.index(
        ("podman", "secret", "create"))
    # with its gateway there (stopped), the secret is the gateway's: kept
    stopped = PodmanState(containers={"gateway": _container("gateway", "exited")},
                          gateway_secret=True)
    kept = _argvs(build_start_plan(_gateway_spec(), stopped, inputs).steps)
    assert ("podman", "start", "paude-s1-gateway") in kept
    assert not [a for a in kept if a[1] == "secret"]

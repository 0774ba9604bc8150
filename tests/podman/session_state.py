"""What exists of a podman session, listed by its label and by its name prefix.

Secrets have no label filter in podman 4.3: they are listed by name prefix.
"""

from __future__ import annotations

import json

from conftest import PaudeCLI


def what_exists(cli: PaudeCLI, name: str) -> dict[str, list[str]]:
    """List the session's containers (with state), networks, volumes and secrets."""
    label = f"label=paude.io/session={name}"

    def lines(*args: str) -> list[str]:
        return sorted(cli.podman(*args).stdout.split("\n")[:-1])

    return {
        "containers": sorted(f"{c['Names'][0]} {c['State']}" for c in json.loads(
            cli.podman("ps", "-a", "--filter", label, "--format", "json").stdout or "[]")),
        "networks": lines("network", "ls", "--filter", label, "--format", "{{.Name}}"),
        "volumes": lines("volume", "ls", "--filter", label, "--format", "{{.Name}}"),
        "secrets": lines("secret", "ls", "--filter", f"name=^paude-{name}-", "--format",
                         "{{.Name}}"),
        "named": lines("ps", "-a", "--filter", f"name=^paude-{name}-", "--format", "{{.Names}}")
        + [n for n in lines("network", "ls", "--format", "{{.Name}}")
           if n.startswith(f"paude-{name}")],
    }


def one_healthy_session(name: str, *, gateway: bool = False) -> dict[str, list[str]]:
    """What a running session has (``gateway``: with a model gateway and its secret)."""
    containers = [f"paude-{name}-{role}" for role in ("agent", "proxy")]
    containers += [f"paude-{name}-gateway"] if gateway else []
    network, egress = f"paude-{name}", f"paude-{name}-egress"
    return {"containers": sorted(f"{c} running" for c in containers),
            "networks": sorted([network, egress]), "volumes": [],
            "secrets": [f"paude-{name}-gateway"] if gateway else [],
            "named": sorted(containers) + sorted([network, egress])}


NOTHING: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": [], "secrets": [],
                                 "named": []}


def assert_healthy(cli: PaudeCLI, name: str, *, gateway: bool = False) -> None:
    found = what_exists(cli, name)
    assert found == one_healthy_session(name, gateway=gateway), found
    sessions = json.loads(cli.run("sessions", "--json").stdout)
    assert [s["status"] for s in sessions if s["name"] == name] == ["running"], sessions
    # The agent reaches its proxy (the session is usable, not only listed).
    probe = cli.run("exec", name, "--", "timeout", "20", "bash", "-c",
                    "exec 3<>/dev/tcp/paude-proxy/3128 && echo proxy-reachable", check=False)
    assert "proxy-reachable" in probe.stdout, probe


def assert_stops_clean(cli: PaudeCLI, name: str) -> None:
    cli.run("stop", name)
    found = what_exists(cli, name)
    assert found == NOTHING, found

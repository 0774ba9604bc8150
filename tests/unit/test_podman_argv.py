"""The podman argv builders: what the sandbox is made of."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from paude.backends.base import Credentials, SessionSpec
from paude.backends.podman import argv as pa
from paude.backends.podman.planning import build_agent_run, user_args
from paude.config.models import PROXY_RESOURCES, Amounts, Resources

SECRET = "sk-ant-very-secret"


def spec(tmp_path: Path, **kw: object) -> SessionSpec:
    base: dict[str, object] = {
        "name": "demo-123abc",
        "workspace": tmp_path,
        "allowed_domains": (".googleapis.com",),
        "env": {"ANTHROPIC_API_KEY": SECRET, "CLOUD_ML_REGION": "us-east5"},
    }
    base.update(kw)
    return SessionSpec(**base)  # type: ignore[arg-type]


def agent_argv(s: SessionSpec, proxy_ip: str | None = "10.89.0.2",
               gateway_ip: str | None = None) -> list[str]:
    run = build_agent_run(s, image="localhost/paude-agent:abc", proxy_ip=proxy_ip,
                          gateway_ip=gateway_ip, claude_json_path="/state/claude.json",
                          user_args=(), created_at="2026-01-01T00:00:00+00:00")
    return pa.build_agent_run_argv(run)


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_restricted_agent_is_only_on_the_internal_network(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path))
    assert flag_values(argv, "--network") == ["paude-demo-123abc"]
    assert "paude-proxy:10.89.0.2" in flag_values(argv, "--add-host")
    env = flag_values(argv, "-e")
    assert "HTTPS_PROXY=http://paude-proxy:3128" in env
    assert "http_proxy=http://paude-proxy:3128" in env
    assert "--http-proxy=false" in argv


def test_unrestricted_agent_gets_no_proxy(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path, allow_network=True), proxy_ip=None)
    # its own routed network, never podman's shared default one (network.py)
    assert flag_values(argv, "--network") == ["paude-demo-123abc-egress"]
    assert not [e for e in flag_values(argv, "-e") if "PROXY" in e.upper()]
    assert "paude.io/network=unrestricted" in flag_values(argv, "--label")


def test_agent_drops_privileges(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path))
    assert flag_values(argv, "--cap-drop") == ["ALL"]
    assert "--cap-add" not in argv
    assert "no-new-privileges" in flag_values(argv, "--security-opt")
    assert "--privileged" not in argv


def test_secret_values_never_appear_in_argv(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path))
    assert SECRET not in " ".join(argv)
    assert "ANTHROPIC_API_KEY" in flag_values(argv, "-e")


def test_workspace_is_mounted_read_write_at_the_same_path(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path))
    assert f"{tmp_path}:{tmp_path}:z" in flag_values(argv, "-v")
    assert flag_values(argv, "-w") == [str(tmp_path)]


def _creds(home: Path) -> Credentials:
    return Credentials(gcloud_dir=home / ".config/gcloud", gitconfig=home / ".gitconfig",
                       claude_dir=home / ".claude", claude_json=home / ".claude.json",
                       claude_entries=(home / ".claude/settings.json", home / ".claude/agents"))


def test_credentials_are_read_only_and_never_ssh_gh_or_gcloud(tmp_path: Path) -> None:
    home = tmp_path / "home"
    argv = agent_argv(spec(tmp_path, credentials=_creds(home)))
    workspace_mount = f"{tmp_path}:{tmp_path}"
    mounts = [m for m in flag_values(argv, "-v") if not m.startswith(workspace_mount)]
    assert sorted(mounts) == sorted([
        f"{home}/.gitconfig:/home/paude/.gitconfig:ro",
        f"{home}/.claude/settings.json:/run/paude/seed/claude/settings.json:ro",
        f"{home}/.claude/agents:/run/paude/seed/claude/agents:ro",
        "/state/claude.json:/run/paude/seed/claude.json:ro"])
    joined = " ".join(argv)
    assert ".ssh" not in joined and "gcloud" not in joined
    assert "gh/" not in joined and "hosts.yml" not in joined


def test_pass_credentials_mounts_gcloud_only_with_allow_network(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = spec(tmp_path, credentials=_creds(home), allow_network=True, pass_credentials=True)
    assert f"{home}/.config/gcloud:/home/paude/.config/gcloud:ro" in flag_values(
        agent_argv(old, proxy_ip=None), "-v")
    restricted = spec(tmp_path, credentials=_creds(home), pass_credentials=True)
    assert "gcloud" not in " ".join(agent_argv(restricted))


def test_agent_reaches_the_gateway_directly_not_through_the_proxy(tmp_path: Path) -> None:
    model_env = {"ANTHROPIC_BASE_URL": "http://paude-gateway:8080",
                 "ANTHROPIC_AUTH_TOKEN": "paude-gateway"}
    argv = agent_argv(spec(tmp_path, env={}, model_env=model_env), gateway_ip="10.89.0.3")
    assert "paude-gateway:10.89.0.3" in flag_values(argv, "--add-host")
    env = flag_values(argv, "-e")
    assert "NO_PROXY=localhost,127.0.0.1,paude-gateway" in env
    assert "ANTHROPIC_BASE_URL=http://paude-gateway:8080" in env


def test_gateway_container_gets_the_secret_and_listens_inside_only() -> None:
    names = pa.Names("demo-123abc")
    argv = pa.build_gateway_run_argv(names, image="g", gateway_ip="10.89.0.3", created_at="t")
    assert flag_values(argv, "--network") == ["paude-demo-123abc:ip=10.89.0.3",
                                              "paude-demo-123abc-egress"]
    assert flag_values(argv, "--secret") == [
        "paude-demo-123abc-gateway,target=paude-gateway,uid=65532,mode=0400"]
    assert flag_values(argv, "--cap-drop") == ["ALL"]
    assert argv[-3:] == ["/run/secrets/paude-gateway", "10.89.0.3", "8080"]
    secret = pa.build_gateway_secret_argv(names)
    # the content comes from podman's environment, never argv
    assert secret[-2:] == ["paude-demo-123abc-gateway", "PAUDE_GATEWAY_CONFIG"]
    assert "--env" in secret
    assert pa.gateway_ip_for_subnet("10.89.4.0/24") == "10.89.4.3"


def test_every_object_is_labelled(tmp_path: Path) -> None:
    names = pa.Names("demo-123abc")
    network = pa.build_network_create_argv(names, subnet="10.90.1.0/24")
    egress = pa.build_egress_network_create_argv(names, subnet="10.91.1.0/24")
    proxy = pa.build_proxy_run_argv(names, image="i", proxy_ip="10.0.0.2",
                                    squid_conf_path="/s", created_at="t")
    gateway = pa.build_gateway_run_argv(names, image="g", gateway_ip="10.0.0.3", created_at="t")
    secret = pa.build_gateway_secret_argv(names)
    for argv in (agent_argv(spec(tmp_path)), network, egress, proxy, gateway, secret):
        labels = flag_values(argv, "--label")
        assert "app.kubernetes.io/managed-by=paude" in labels
        assert "paude.io/session=demo-123abc" in labels


def test_network_is_internal_without_dns() -> None:
    argv = pa.build_network_create_argv(pa.Names("s"), subnet="10.90.1.0/24")
    assert "--internal" in argv and "--disable-dns" in argv


def test_egress_network_is_routed_without_dns() -> None:
    argv = pa.build_egress_network_create_argv(pa.Names("s"), subnet="10.91.1.0/24")
    assert "--internal" not in argv and "--disable-dns" in argv
    assert argv[-1] == "paude-s-egress" and flag_values(argv, "--subnet") == ["10.91.1.0/24"]


def test_agent_addresses_never_take_the_proxys() -> None:
    argv = pa.build_network_create_argv(pa.Names("s"), subnet="10.90.1.0/24")
    assert flag_values(argv, "--ip-range") == ["10.90.1.128/25"]
    proxy_ip = pa.proxy_ip_for_subnet("10.90.1.0/24")
    assert ipaddress.ip_address(proxy_ip) not in ipaddress.ip_network("10.90.1.128/25")


def test_proxy_has_a_static_address_and_a_way_out() -> None:
    argv = pa.build_proxy_run_argv(pa.Names("s"), image="i", proxy_ip="10.89.3.2",
                                   squid_conf_path="/state/squid.conf", created_at="t")
    # the way out is the session's own network, shared with no other container
    assert flag_values(argv, "--network") == ["paude-s:ip=10.89.3.2", "paude-s-egress"]
    assert "/state/squid.conf:/etc/squid/paude/squid.conf:ro,Z" in flag_values(argv, "-v")


@pytest.mark.parametrize(("subnet", "ip"), [("10.89.0.0/24", "10.89.0.2"),
                                            ("fd00:1::/64", "fd00:1::2")])
def test_proxy_ip_is_second_host(subnet: str, ip: str) -> None:
    assert pa.proxy_ip_for_subnet(subnet) == ip


def test_yolo_and_agent_args_follow_the_image(tmp_path: Path) -> None:
    argv = agent_argv(spec(tmp_path, yolo=True, claude_args=("--model", "opus")))
    assert argv[-4:] == ["localhost/paude-agent:abc", "--dangerously-skip-permissions",
                         "--model", "opus"]


@pytest.mark.parametrize(
    ("euid", "owner", "expected"),
    [(1000, 1000, ["--userns=keep-id:uid=1000,gid=1000"]),
     (0, 1234, ["--user=1234:0"]),
     (0, 0, ["--user=0:0"])],
)
def test_user_mapping(euid: int, owner: int, expected: list[str]) -> None:
    assert user_args(euid, owner) == expected


def test_attach_and_exec_argv() -> None:
    names = pa.Names("s")
    assert pa.build_attach_argv(names) == ["podman", "exec", "-it", "paude-s-agent", "tmux",
                                           "attach", "-t", "paude"]
    assert pa.build_exec_argv(names, ["ls", "-l"], workdir="/w", tty=False) == [
        "podman", "exec", "-i", "-w", "/w", "paude-s-agent", "ls", "-l"]


def test_resources_become_podman_limit_flags() -> None:
    resources = Resources(requests=Amounts(cpu="500m", memory="1Gi"),
                          limits=Amounts(cpu="1.5", memory="2Gi", pids=256))
    assert pa.build_resource_args(resources) == [
        "--memory", "2147483648", "--memory-swap", "2147483648",
        "--memory-reservation", "1073741824", "--cpus", "1.5", "--cpu-shares", "512",
        "--pids-limit", "256"]


def test_agent_and_proxy_run_with_the_configured_limits(tmp_path: Path) -> None:
    limits = Resources(requests=Amounts(), limits=Amounts(memory="64Mi", pids=100))
    run = build_agent_run(SessionSpec(name="s", workspace=tmp_path, allowed_domains=()),
                          image="img", proxy_ip="10.0.0.2", gateway_ip=None, claude_json_path="",
                          user_args=(), created_at="t",
                          resources=limits)
    argv = pa.build_agent_run_argv(run)
    assert argv[argv.index("--memory") + 1] == str(64 * 2**20)
    assert argv[argv.index("--pids-limit") + 1] == "100"
    assert argv.index("--memory") < argv.index("img")  # a podman flag, not the agent's
    proxy = pa.build_proxy_run_argv(pa.Names("s"), image="p", proxy_ip="10.0.0.2",
                                    squid_conf_path="/c", created_at="t",
                                    resources=PROXY_RESOURCES)
    assert proxy[proxy.index("--memory") + 1] == str(256 * 2**20)
    assert proxy[proxy.index("--cpus") + 1] == "0.5"


def test_gpus_become_podmans_cdi_devices_the_first_n_of_their_kind() -> None:
    gpu = Resources(requests=Amounts(), limits=Amounts(**{"nvidia.com/gpu": 2}))
    assert pa.build_resource_args(gpu) == ["--device", "nvidia.com/gpu=0",
                                           "--device", "nvidia.com/gpu=1"]  # fmt: skip
    only_requested = Resources(requests=Amounts(**{"amd.com/gpu": "1"}), limits=Amounts())
    assert pa.build_resource_args(only_requested) == ["--device", "amd.com/gpu=0"]
    none = Resources(requests=Amounts(), limits=Amounts(**{"nvidia.com/gpu": 0}))
    assert pa.build_resource_args(none) == []


def test_stop_removes_the_gateway_secret_last_with_or_without_its_gateway() -> None:
    from paude.backends.podman.removal import build_remove_argvs

    gateway = "paude-demo-123abc-gateway"
    with_gateway = build_remove_argvs(["paude-demo-123abc-agent", gateway], ["n"], gateway)
    assert with_gateway[-1] == ["podman", "secret", "rm", gateway]
    # a start killed before it created the gateway left only the secret
    assert build_remove_argvs([], [], gateway) == [["podman", "secret", "rm", gateway]]
    assert not [a for a in build_remove_argvs(["a"], ["n"]) if a[1] == "secret"]

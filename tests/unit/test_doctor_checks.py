"""The pure parts of ``paude doctor``: podman info, limits, RBAC coverage, the lines."""

from __future__ import annotations

from pathlib import Path

from paude.backends.openshift.objects import ClusterSettings
from paude.backends.openshift.policies import (
    build_netpol_check_container,
    build_probe_pod,
    build_probe_policy,
)
from paude.backends.openshift.rbac import build_role
from paude.doctor.checks import (
    Check,
    CheckStatus,
    build_rlimit_check,
    find_missing_grants,
    parse_podman_info,
    render_checks,
)
from paude.doctor.local import build_ca_check

CAPTURE = Path(__file__).parent / "captures" / "podman-info-rootful.json"


def test_podman_info_says_mode_runtime_and_version() -> None:
    check = parse_podman_info(CAPTURE.read_text())
    assert check.status is CheckStatus.OK
    assert check.detail == "podman 4.3.1, rootful, runtime runc, cgroups v1"
    rootless = CAPTURE.read_text().replace('"rootless": false', '"rootless": true')
    assert ", rootless," in parse_podman_info(rootless).detail


def test_unreadable_podman_info_fails_with_the_command_to_run() -> None:
    check = parse_podman_info("{}")
    assert check.status is CheckStatus.FAIL and check.fix == "Run: podman info"


def test_low_limits_warn_and_unlimited_is_fine() -> None:
    low = build_rlimit_check(256, -1)
    assert low.status is CheckStatus.WARN and "open files 256 < 1024" in low.detail
    assert low.fix is not None and "ulimit -n" in low.fix
    ok = build_rlimit_check(65536, -1)
    assert ok.status is CheckStatus.OK and ok.detail == "open files 65536, processes unlimited"


def test_the_role_covers_itself_and_a_wildcard_covers_all() -> None:
    needed = build_role("ns")["rules"]
    assert find_missing_grants(needed, needed) == []
    admin = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert find_missing_grants(needed, admin) == []


def test_missing_verbs_and_name_limited_rules_are_reported() -> None:
    needed = [{"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get", "patch"]},
              {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]
    granted = [{"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]},
               {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"],
                "resourceNames": ["one-pod"]}]
    assert find_missing_grants(needed, granted) == [
        ("patch", "apps", "statefulsets"), ("create", "", "pods/exec")]
    subresources = [{"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}]
    assert find_missing_grants(needed[1:], subresources) == []


def test_one_line_per_check_with_the_fix_only_when_not_ok() -> None:
    text = render_checks([
        Check("podman", CheckStatus.OK, "podman 5.0", fix="never shown"),
        Check("extra CA", CheckStatus.FAIL, "/x.pem is missing", fix="Fix the path"),
    ])
    assert text.splitlines() == [
        "ok    podman    podman 5.0",
        "FAIL  extra CA  /x.pem is missing  Fix: Fix the path",
    ]


def test_a_ca_file_that_is_not_a_certificate_fails() -> None:
    bad = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    check = build_ca_check(["/ca.pem"], bad)
    assert check.status is CheckStatus.FAIL and "/ca.pem: not a usable CA" in check.detail
    assert build_ca_check([], None).status is CheckStatus.OK


def test_the_networkpolicy_probe_runs_the_agent_pods_own_check_under_a_deny_all_policy() -> None:
    settings = ClusterSettings(namespace="team-a", image="reg/agent@sha256:1", pull_secret="pull")
    policy = build_probe_policy("paude-doctor-abc", settings)
    pod = build_probe_pod("paude-doctor-abc", settings, policy_uid="u-1")
    assert policy["kind"] == "NetworkPolicy" and pod["kind"] == "Pod"
    (owner,) = pod["metadata"]["ownerReferences"]  # deleting the policy deletes the pod
    assert owner == {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "name": "paude-doctor-abc", "uid": "u-1"}
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= pod["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []
    assert pod["spec"]["initContainers"] == [build_netpol_check_container("reg/agent@sha256:1")]
    (done,) = pod["spec"]["containers"]
    assert done["command"] == ["true"] and done["image"] == "reg/agent@sha256:1"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "pull"}]
    assert pod["spec"]["automountServiceAccountToken"] is False
    for obj in (policy, pod):
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "paude"
        assert obj["metadata"]["labels"]["paude.io/session"] == "paude-doctor-abc"

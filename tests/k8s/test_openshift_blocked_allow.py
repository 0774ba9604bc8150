"""``paude blocked`` and ``paude allow`` on an OpenShift-backend session, on the real node.

As paude's limited user (the Role ``paude setup --print-rbac`` prints), in a
restricted namespace whose pods run on the real node: the real squid denies
a name that is not allowlisted, ``paude blocked`` shows it (read through the
API from the proxy pod's ``access-log`` container), ``paude allow`` adds it
through the proxy's ConfigMap and waits until squid has re-read it, and the
same request then gets through, with the agent pod never restarted. Every
destination is a pod and Services this test made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from test_openshift_real_node import run_paude, server_pod

if TYPE_CHECKING:
    from conftest import Cluster, RealImages, RealNode

pytestmark = pytest.mark.k8s


def test_blocked_and_allow_on_a_real_session_as_the_limited_user(
    cluster: Cluster,
    real_node: RealNode,
    real_limited_kubeconfig: Path,
    real_images: RealImages,
    tmp_path: Path,
) -> None:
    kc = real_limited_kubeconfig
    ns = yaml.safe_load(kc.read_text())["contexts"][0]["context"]["namespace"]
    cluster.apply(server_pod(real_images.agent, ns), kubeconfig=kc)
    for service in ("server", "later"):  # two names for the same server pod
        cluster.apply({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": ns},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }, kubeconfig=kc)  # fmt: skip
    cluster.wait_pod_running(ns, "server", timeout=600)  # a first pull of 1.4 GB, under load
    allowed, later = f"server.{ns}.svc.cluster.local", f"later.{ns}.svc.cluster.local"

    home, workspace, bindir = tmp_path / "home", tmp_path / "workspace", tmp_path / "bin"
    for d in (home / ".config" / "paude", workspace, bindir):
        d.mkdir(parents=True)
    (bindir / "kubectl").symlink_to(cluster.kubectl)
    backend = {"type": "openshift", "namespace": ns, "image": real_images.agent_tag,
               "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                             "limits": {"memory": "1Gi"}}}
    # squid refuses private ranges unless a range is listed: the pod network.
    config = {"backend": backend, "sync": {"enabled": False},
              "allowed_domains": [allowed, real_node.pod_cidr, real_node.service_cidr]}
    (home / ".config" / "paude" / "paude.json").write_text(json.dumps(config))

    def paude(*args: str) -> tuple[int, str, str]:
        done = run_paude(workspace, home, kc, bindir / "kubectl", *args)
        return done.returncode, done.stdout, done.stderr

    def fetch(host: str) -> str:
        """Return the body and status of a GET through the proxy, from inside the agent."""
        code, out, err = paude("exec", "--", "curl", "-s", "--max-time", "20", "-w",
                               " %{http_code}", f"http://{host}/")
        return out if code in {0, 22} else f"exit {code}: {out} {err}"

    code, out, err = paude("--backend", "openshift", "--detach")
    assert code == 0, out + err
    try:
        (session,) = [s for s in json.loads(paude("sessions", "--json")[1])
                      if s["workspace"] == str(workspace)]
        pod_name = f"paude-{session['name']}-0"
        agent = cluster.get("pod", pod_name, ns)
        assert agent is not None
        assert fetch(allowed) == "ok-from-server 200"
        assert fetch(later).endswith(" 403")

        # blocked: the denied name, read through the API, with the command that allows it.
        def denied() -> list[dict[str, object]]:
            code, out, err = paude("blocked", "--json")
            assert code == 0, out + err
            return [b for b in json.loads(out) if b["domain"] == later]

        (entry,) = cluster.wait_for(denied, timeout=60, what=f"{later} in paude blocked")
        assert entry["ports"] == [80] and entry["hint"] == f"paude --allow-domain {later}"
        assert not [b for b in json.loads(paude("blocked", "--json")[1])
                    if b["domain"] == allowed]

        # allow: returns once squid has re-read its ConfigMap; the agent keeps running.
        code, out, err = paude("allow", later)
        assert code == 0, out + err
        assert "now allows: " in err and later in err, err
        cluster.wait_for(lambda: fetch(later) == "ok-from-server 200", timeout=15,
                         what=f"{later} to be allowed")
        assert fetch("example.com").endswith(" 403")  # the rest is still refused
        after = cluster.get("pod", pod_name, ns)
        assert after is not None and after["metadata"]["uid"] == agent["metadata"]["uid"]
        assert after["status"]["containerStatuses"][0]["restartCount"] == \
            agent["status"]["containerStatuses"][0]["restartCount"]
        proxies = cluster.run("get", "pods", "-n", ns, "-l", "paude.io/role=proxy", "-o",
                              "json").stdout
        for proxy in json.loads(proxies)["items"]:  # squid was re-read, not restarted
            assert all(c["restartCount"] == 0 for c in proxy["status"]["containerStatuses"])
    finally:
        code, out, err = paude("stop")
        assert code == 0, out + err

# shellcheck shell=bash
# The test cluster's network facts, one place (sourced by up.sh, real-node.sh
# and down.sh). The real node is machine-wide: one bridge, one containerd,
# one kubelet port, so one test cluster on a machine has it at a time.
SERVICE_CIDR=10.0.0.0/24
DNS_IP=10.0.0.10              # the kube-dns Service (CoreDNS on the node)
CLUSTER_CIDR=10.244.0.0/16
POD_CIDR=10.244.0.0/24        # the real node's pods
NODE_IP=10.244.0.1            # the bridge's address: kubelet, CoreDNS listen here
BRIDGE=paude-node0
NODE_NAME="${PAUDE_REAL_NODE_NAME:-paude-node}"
REGISTRY_ADDR=127.0.0.1:5443  # TLS (cluster CA) + htpasswd; pushing needs the password
# Real-node namespaces carry these (tests/k8s/conftest.py): the
# PodNodeSelector and PodTolerationRestriction admission plugins put their
# pods on the real node, which is tainted so that nothing else lands there.
NODE_LABEL=paude.io/real-node
NODE_TAINT=paude.io/real-node
# Machine-wide state of the real node (short: socket paths have a length limit).
NODE_RUN=/run/paude-node

#!/usr/bin/env bash
# Start the test Kubernetes cluster on loopback: the real kube-apiserver
# (admission + RBAC on), kube-controller-manager, kube-scheduler and etcd,
# with kwok faking the nodes and the kubelet. Builds the binaries first when
# they are not cached yet (tests/cluster/build.sh). See docs/test-cluster.md.
#
# Usage: tests/cluster/up.sh [--real-node]
# Prints KEY=VALUE lines on stdout (also written to $STATE/cluster.env):
#   KUBECONFIG (admin), SERVER, KUBECTL, EXEC_ROOT, LOGS_FILE, ..., and
#   STARTED=1 when this run started the cluster (0 when it was running).
# --real-node (root) also starts a real kubelet node beside the kwok ones
# (tests/cluster/real-node.sh) and prints its lines: REAL_NODE, REGISTRY, ...
# Idempotent: a healthy running cluster of the same name and configuration
# is reused (and so is a running real node).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="${PAUDE_CLUSTER_NAME:-paude-test}"
STATE="${PAUDE_CLUSTER_STATE:-${TMPDIR:-/tmp}/paude-test-cluster-$NAME}"
NODES="${PAUDE_CLUSTER_NODES:-1}"
# shellcheck source=realnode/network.sh
source "$HERE/realnode/network.sh"

log() { printf 'up.sh: %s\n' "$*" >&2; }

REAL_NODE=0
for arg in "$@"; do
    case "$arg" in
        --real-node) REAL_NODE=1 ;;
        *) log "unknown argument: $arg (usage: up.sh [--real-node])"; exit 2 ;;
    esac
done

# Binary paths from build.sh (KUBE_APISERVER=..., KWOKCTL=..., ...); a failed
# build stops here. The real node's binaries are built only when asked for.
if ((REAL_NODE)); then
    binaries="$("$HERE/build.sh" all)"
else
    binaries="$("$HERE/build.sh" cluster)"
fi
while IFS='=' read -r key value; do
    printf -v "$key" '%s' "$value"
done <<<"$binaries"

export KWOK_WORKDIR="$STATE/kwok"
# So that kwokctl never looks for (or downloads) binaries of its own.
export KWOK_KUBE_VERSION="$KUBE_VERSION" KWOK_KUBECTL_BINARY="$KUBECTL"
KUBECONFIG_PATH="$STATE/kubeconfig"
EXEC_ROOT="$STATE/exec"
LOGS_FILE="$STATE/logs/container.log"
PKI="$KWOK_WORKDIR/clusters/$NAME/pki"
# A running cluster made by other scripts or configs is made again.
CONFIG_HASH="$(cat "$HERE/up.sh" "$HERE/kwok-config.yaml" "$HERE/node.yaml" \
    "$HERE/realnode/network.sh" | sha256sum | cut -d' ' -f1)"
kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

is_healthy() {
    [[ -f "$STATE/cluster.env" && -f "$KUBECONFIG_PATH" ]] &&
        grep -qx "CONFIG_HASH=$CONFIG_HASH" "$STATE/cluster.env" &&
        kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

print_env() {
    cat "$STATE/cluster.env"
    log "cluster $NAME is up; admin kubeconfig: $KUBECONFIG_PATH"
}

# The kwok config: kwokctl options, the stages (node + pod stages as kwok's
# defaults, plus the volume stages so PVCs bind), and the exec/logs rules.
# A --config with any Stage replaces kwok's default stages, hence all of them.
render_config() {
    local stage="$KWOK_MODULE/kustomize/stage" f
    sed -e "s|@EXEC_ROOT@|$EXEC_ROOT|g" -e "s|@LOGS_FILE@|$LOGS_FILE|g" \
        -e "s|@PKI@|$PKI|g" -e "s|@SERVICE_CIDR@|$SERVICE_CIDR|g" \
        "$HERE/kwok-config.yaml"
    for f in \
        node/fast/node-initialize.yaml \
        node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
        volume/fast/pv-bind.yaml volume/fast/pv-delete.yaml volume/fast/pvc-delete.yaml; do
        printf -- '---\n'
        cat "$stage/$f"
    done
    printf -- '---\n'
    local_volume_stage "$stage/volume/fast/pvc-provision.yaml"
}

# kwok's pvc-provision stage, its PVs made local volumes (a directory per PV
# under the real node's $STATE/node/volumes, made by realnode/volumes.sh)
# instead of hostPath ones: the kubelet applies a pod's fsGroup to a local
# volume (never to hostPath), as to the fresh filesystem a real provisioner
# gives. Every node has kubernetes.io/hostname, so kwok's pods still
# schedule.
local_volume_stage() {
    local out
    out="$(sed -e 's|^\( *\)hostPath:$|\1local:|' \
        -e "s|/tmp/kwok-local-path-provisioner/|$STATE/node/volumes/|" \
        -e 's|^\( *\)  type: DirectoryOrCreate$|\1nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: Exists}]}]}}|' \
        "$1")"
    if grep -q 'hostPath\|DirectoryOrCreate' <<<"$out" || ! grep -q 'nodeAffinity' <<<"$out"; then
        log "kwok's pvc-provision stage changed: $1 (cannot make its PVs local)"
        exit 1
    fi
    printf '%s\n' "$out"
}

# A key and a certificate signed by the cluster CA: sign_cert NAME SUBJECT [SAN].
sign_cert() {
    local name="$1" subject="$2" san="${3:-}" ext="$PKI/$1.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ -n "$san" ]]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$san"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key"
    openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -days 30 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$ext" "$PKI/$name.csr"
}

# The cluster's PKI, made here instead of by kwokctl (which uses a pki
# directory it finds): the CA, the certificate kwokctl's components share
# ("admin": serving and client, system:masters, as kwokctl makes it) and the
# API server's client certificate for kubelets (kube-apiserver-kubelet-client;
# RBAC lets it use the kubelet API, see create_nodes).
make_pki() {
    mkdir -p "$PKI"
    (
        umask 077
        openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key"
        openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=paude-test-ca" -days 30 \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -out "$PKI/ca.crt"
        local sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
        sans+=",DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1"
        sans+=",IP:${SERVICE_CIDR%.*}.1"
        sign_cert admin "/O=system:masters/CN=kwok-admin" "$sans"
        sign_cert kubelet-client "/CN=kube-apiserver-kubelet-client"
    )
    rm -f "$PKI/ca.srl"
}

create_cluster() {
    log "creating cluster $NAME in $STATE"
    if [[ -d "$STATE" ]]; then
        PAUDE_CLUSTER_LOCKED=1 "$HERE/down.sh" >&2
    fi
    mkdir -p "$STATE/logs" "$EXEC_ROOT/shared" "$EXEC_ROOT/pods"
    : >"$LOGS_FILE"
    make_pki >&2
    render_config >"$STATE/kwok.yaml"
    "$KWOKCTL" create cluster \
        --name "$NAME" \
        --runtime binary \
        --config "$STATE/kwok.yaml" \
        --kubeconfig "$KUBECONFIG_PATH" \
        --kube-admission \
        --kube-authorization \
        --enable-crds Exec,Logs \
        --kube-apiserver-binary "$KUBE_APISERVER" \
        --kube-controller-manager-binary "$KUBE_CONTROLLER_MANAGER" \
        --kube-scheduler-binary "$KUBE_SCHEDULER" \
        --kwok-controller-binary "$KWOK" \
        --etcd-binary "$ETCD" \
        --wait 2m >&2 9>&- # the daemons it starts must not hold our lock
}

create_nodes() {
    local i
    for ((i = 0; i < NODES; i++)); do
        sed -e "s|@NAME@|kwok-node-$i|g" "$HERE/node.yaml"
        printf -- '---\n'
    done | kubectl apply -f - >&2
    kubectl apply -f "$KWOK_MODULE/kustomize/stage/volume/fast/storage-class.yaml" >&2
    # The kubelet authorizes the API server's requests (exec, logs, attach)
    # by webhook: RBAC must grant the API server's client certificate the
    # kubelet API.
    kubectl create clusterrolebinding paude-test:kubelet-api-admin \
        --clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client \
        --dry-run=client -o yaml | kubectl apply -f - >&2
    kubectl wait --for=condition=Ready node --all --timeout=60s >&2
    # The ServiceAccount controller must have made "default" before pods can
    # be created; poll for it with a deadline.
    local deadline=$((SECONDS + 60))
    until kubectl get serviceaccount default -n default >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { log "no default ServiceAccount after 60s"; exit 1; }
        sleep 0.2
    done
}

write_env() {
    local server
    server="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
    cat >"$STATE/cluster.env" <<EOF
NAME=$NAME
STATE=$STATE
KUBECONFIG=$KUBECONFIG_PATH
SERVER=$server
KUBECTL=$KUBECTL
KWOKCTL=$KWOKCTL
EXEC_ROOT=$EXEC_ROOT
LOGS_FILE=$LOGS_FILE
KUBE_VERSION=$KUBE_VERSION
PKI=$PKI
CONFIG_HASH=$CONFIG_HASH
EOF
}

# real-node.sh up (under our lock) prints its own KEY=VALUE lines.
start_real_node() {
    ((REAL_NODE)) || return 0
    [[ $(id -u) -eq 0 ]] || { log "--real-node needs root (containerd, a bridge, iptables)"; exit 1; }
    PAUDE_CLUSTER_ENV="$STATE/cluster.env" "$HERE/real-node.sh" up <<<"$binaries" 9>&-
}

main() {
    # Callers that start the same cluster at once (parallel test sessions)
    # take turns; the second one finds it healthy and reuses it.
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    flock 9
    if is_healthy; then
        print_env
        start_real_node
        echo STARTED=0
        return 0
    fi
    local start=$SECONDS
    create_cluster
    create_nodes
    write_env
    log "started in $((SECONDS - start))s"
    print_env
    start_real_node
    # Tells the caller (tests/k8s/conftest.py) that it may stop the cluster.
    echo STARTED=1
}

main "$@"

#!/usr/bin/env bash
# Start the test Kubernetes cluster on loopback: the real kube-apiserver
# (admission + RBAC on), kube-controller-manager, kube-scheduler and etcd,
# with kwok faking the nodes and the kubelet. Builds the binaries first when
# they are not cached yet (tests/cluster/build.sh). See docs/test-cluster.md.
#
# Usage: tests/cluster/up.sh
# Prints KEY=VALUE lines on stdout (also written to $STATE/cluster.env):
#   KUBECONFIG (admin), SERVER, KUBECTL, EXEC_ROOT, LOGS_FILE, ..., and
#   STARTED=1 when this run started the cluster (0 when it was running).
# Idempotent: a healthy running cluster of the same name is reused.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="${PAUDE_CLUSTER_NAME:-paude-test}"
STATE="${PAUDE_CLUSTER_STATE:-${TMPDIR:-/tmp}/paude-test-cluster-$NAME}"
NODES="${PAUDE_CLUSTER_NODES:-1}"

log() { printf 'up.sh: %s\n' "$*" >&2; }

# Binary paths from build.sh (KUBE_APISERVER=..., KWOKCTL=..., ...); a failed
# build stops here.
binaries="$("$HERE/build.sh")"
while IFS='=' read -r key value; do
    printf -v "$key" '%s' "$value"
done <<<"$binaries"

export KWOK_WORKDIR="$STATE/kwok"
# So that kwokctl never looks for (or downloads) binaries of its own.
export KWOK_KUBE_VERSION="$KUBE_VERSION" KWOK_KUBECTL_BINARY="$KUBECTL"
KUBECONFIG_PATH="$STATE/kubeconfig"
EXEC_ROOT="$STATE/exec"
LOGS_FILE="$STATE/logs/container.log"
kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

is_healthy() {
    [[ -f "$STATE/cluster.env" && -f "$KUBECONFIG_PATH" ]] &&
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
        "$HERE/kwok-config.yaml"
    for f in \
        node/fast/node-initialize.yaml \
        node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
        volume/fast/pv-bind.yaml volume/fast/pv-delete.yaml \
        volume/fast/pvc-provision.yaml volume/fast/pvc-delete.yaml; do
        printf -- '---\n'
        cat "$stage/$f"
    done
}

create_cluster() {
    log "creating cluster $NAME in $STATE"
    if [[ -d "$STATE" ]]; then
        PAUDE_CLUSTER_LOCKED=1 "$HERE/down.sh" >&2
    fi
    mkdir -p "$STATE/logs" "$EXEC_ROOT/shared" "$EXEC_ROOT/pods"
    : >"$LOGS_FILE"
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
EOF
}

main() {
    # Callers that start the same cluster at once (parallel test sessions)
    # take turns; the second one finds it healthy and reuses it.
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    flock 9
    if is_healthy; then
        print_env
        echo STARTED=0
        return 0
    fi
    local start=$SECONDS
    create_cluster
    create_nodes
    write_env
    log "started in $((SECONDS - start))s"
    print_env
    # Tells the caller (tests/k8s/conftest.py) that it may stop the cluster.
    echo STARTED=1
}

main "$@"

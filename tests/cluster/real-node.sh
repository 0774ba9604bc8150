#!/usr/bin/env bash
# The test cluster's real node: a kubelet that runs containers, beside the
# kwok nodes. Debian's containerd (own socket and root), runc and CNI bridge
# plugin; kubelet and kube-proxy (iptables) of the control plane's release;
# kube-router enforcing NetworkPolicy; a minimal CoreDNS behind the kube-dns
# Service; Debian's docker-registry (TLS, htpasswd) for images. Root only.
# See docs/test-cluster.md.
#
# Usage (normally through up.sh --real-node and down.sh):
#   real-node.sh up            stdin: build.sh's KEY=PATH lines; env:
#                              PAUDE_CLUSTER_ENV (the cluster's cluster.env)
#   real-node.sh down STATE    stop everything it started for that cluster
#   real-node.sh netpol off|on stop kube-router and remove its rules / start it
# `up` prints KEY=VALUE lines (also in $STATE/node/node.env): REAL_NODE,
# REGISTRY, REGISTRY_USER, REGISTRY_PASSWORD, REGISTRY_AUTH_FILE,
# REGISTRY_CERT_DIR, NODE_IP, POD_CIDR, DNS_IP, NODE_HOSTS, ...
# Everything it starts is recorded by pid in /run/paude-node/pids (outside
# $STATE, so that a removed state directory orphans no daemon); `down` stops
# those, removes the pods' sandboxes, mounts, network namespaces, cgroups,
# the bridge, the KUBE-* iptables chains and ipsets, and $STATE/node.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=realnode/network.sh
source "$HERE/realnode/network.sh"
# One real node per machine: this lock serialises up/down/netpol of anyone.
MACHINE_LOCK=/run/paude-node.lock
REGISTRY_USER=paude

log() { printf 'real-node.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

lock_machine() {
    exec 8>"$MACHINE_LOCK"
    flock 8
}

# Paths of one cluster's node state.
set_paths() {
    NODE="$1/node"
    # Under /run, not $NODE: if the cluster's state directory is removed
    # while the node runs, the next up or down still finds its daemons.
    PIDS="$NODE_RUN/pids"
    LOGS="$NODE/logs"
    SOCK="$NODE_RUN/containerd.sock"
}

read_env() { # FILE: KEY=VALUE lines into variables
    local key value
    while IFS='=' read -r key value; do
        [[ -n "$key" ]] && printf -v "$key" '%s' "$value"
    done <"$1"
}

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
ctr() { command ctr --address "$SOCK" "$@"; }

# start NAME CMD...: a daemon in its own session, its pid in $PIDS/NAME,
# without our lock descriptors.
start() {
    local name="$1"
    shift
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
    echo $! >"$PIDS/$name"
}

alive() { [[ -f "$PIDS/$1" ]] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

# group_alive PGID: a process of that group still runs (zombies do not count:
# PID 1 here may be slow to reap them).
group_alive() {
    local member
    for member in $(pgrep -g "$1" 2>/dev/null); do
        [[ "$(awk '{print $3}' "/proc/$member/stat" 2>/dev/null)" != Z ]] && return 0
    done
    return 1
}

stop() { # NAME: TERM to its whole process group (start() made it a session), KILL after 10 s
    local pid i
    [[ -f "$PIDS/$1" ]] || return 0
    pid="$(cat "$PIDS/$1")"
    # The group, not only the leader: volumes.sh's kubectl watch and its
    # subshells outlived a stop that signalled the leader alone.
    if kill -- "-$pid" 2>/dev/null; then
        for ((i = 0; i < 100; i++)); do
            group_alive "$pid" || break
            sleep 0.1
        done
        kill -9 -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$1"
}

wait_for() { # SECONDS WHAT CMD...: poll CMD until it succeeds
    local limit="$1" deadline=$((SECONDS + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what (logs: $LOGS)"
        sleep 0.2
    done
}

node_ready() {
    [[ "$(kubectl get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

DAEMONS=(containerd registry volumes kubelet kube-proxy kube-router coredns)

is_running() {
    local d
    [[ -f "$NODE/node.env" ]] || return 1
    for d in "${DAEMONS[@]}"; do alive "$d" || return 1; done
    node_ready
}

# A client certificate issued by the API server (the CSR API, signed by the
# controller manager with the cluster CA), and a kubeconfig using it:
# issue_kubeconfig NAME SUBJECT SIGNER.
issue_kubeconfig() {
    local name="$1" subject="$2" signer="$3" dir="$NODE/pki" csr
    csr="paude-test-$name-$(date +%s%N)"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key"
    openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr"
    kubectl apply -f - >/dev/null <<EOF
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: $csr
spec:
  request: $(base64 -w0 <"$dir/$name.csr")
  signerName: $signer
  expirationSeconds: 86400
  usages: [digital signature, client auth]
EOF
    kubectl certificate approve "$csr" >/dev/null
    wait_for 30 "certificate $csr" \
        sh -c "'$KUBECTL' --kubeconfig '$KUBECONFIG' get csr '$csr' -o jsonpath='{.status.certificate}' | grep -q ."
    kubectl get csr "$csr" -o jsonpath='{.status.certificate}' | base64 -d >"$dir/$name.crt"
    kubectl delete csr "$csr" >/dev/null
    rm -f "$dir/$name.csr"
    cat >"$NODE/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: paude-test
  cluster: {server: "$SERVER", certificate-authority: "$PKI/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$dir/$name.crt", client-key: "$dir/$name.key"}
contexts:
- name: $name
  context: {cluster: paude-test, user: $name}
current-context: $name
EOF
}

render() { # TEMPLATE OUT: replace @KEY@ with the variable KEY
    local t="$HERE/realnode/$1" out="$2" expr=() k
    for k in NODE NODE_RUN SOCK PKI NODE_IP POD_CIDR CLUSTER_CIDR SERVICE_CIDR DNS_IP \
        BRIDGE NODE_NAME REGISTRY_ADDR REGISTRY_USER REGISTRY_PASSWORD PAUSE_IMAGE KUBECONFIG; do
        expr+=(-e "s|@$k@|${!k:?$k is not set}|g")
    done
    sed "${expr[@]}" "$t" >"$out"
}

make_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
}

start_containerd() {
    mkdir -p "$NODE/containerd" "$NODE_RUN" "$NODE/cni" "$NODE/certs.d/$REGISTRY_ADDR"
    render containerd.toml "$NODE/containerd.toml"
    render cni.conflist "$NODE/cni/10-paude-node.conflist"
    cat >"$NODE/certs.d/$REGISTRY_ADDR/hosts.toml" <<EOF
server = "https://$REGISTRY_ADDR"
[host."https://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
  ca = "$PKI/ca.crt"
EOF
    start containerd containerd --config "$NODE/containerd.toml"
    wait_for 30 containerd ctr version
    ctr -n k8s.io images import "$PAUSE_TAR" >/dev/null
}

start_registry() {
    local dir="$NODE/registry" auth
    mkdir -p "$dir/data" "$dir/certs.d/$REGISTRY_ADDR"
    htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$dir/htpasswd" 2>/dev/null
    # Serving certificate for 127.0.0.1 from the cluster CA.
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/tls.key"
    openssl req -new -key "$dir/tls.key" -subj "/CN=paude-test-registry" -out "$dir/tls.csr"
    openssl x509 -req -in "$dir/tls.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -CAserial "$dir/ca.srl" -days 2 -out "$dir/tls.crt" \
        -extfile <(printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "${REGISTRY_ADDR%:*}") \
        2>/dev/null
    # What a client needs: the CA (podman --cert-dir) and credentials
    # (podman/skopeo --authfile).
    cp "$PKI/ca.crt" "$dir/certs.d/$REGISTRY_ADDR/ca.crt"
    auth="$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASSWORD" | base64 -w0)"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY_ADDR" "$auth" >"$dir/auth.json"
    chmod 600 "$dir/auth.json" "$dir/htpasswd"
    render registry.yml "$dir/config.yml"
    start registry docker-registry serve "$dir/config.yml"
    wait_for 30 registry curl -s -o /dev/null --cacert "$PKI/ca.crt" "https://$REGISTRY_ADDR/v2/"
}

# The Node object, made before the kubelet registers: its pod CIDR (nothing
# else allocates one here), the label real-node namespaces select, and the
# taint that keeps every other pod off it.
create_node_object() {
    kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  labels: {$NODE_LABEL: "true", kubernetes.io/hostname: $NODE_NAME, kubernetes.io/os: linux}
spec:
  podCIDR: $POD_CIDR
  podCIDRs: [$POD_CIDR]
  taints: [{key: $NODE_TAINT, value: "true", effect: NoSchedule}]
EOF
}

# The directories of the cluster's local PersistentVolumes (up.sh renders
# kwok's pvc-provision stage to make them local volumes under $NODE/volumes).
start_volumes() {
    start volumes "$HERE/realnode/volumes.sh" "$KUBECTL" "$KUBECONFIG" "$NODE/volumes"
}

start_kubelet() {
    mkdir -p "$NODE/kubelet" "$NODE/pki"
    : >"$NODE/resolv.conf"
    issue_kubeconfig kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" \
        kubernetes.io/kube-apiserver-client-kubelet
    render kubelet.yaml "$NODE/kubelet.yaml"
    create_node_object
    start kubelet "$KUBELET" --config="$NODE/kubelet.yaml" --kubeconfig="$NODE/kubelet.kubeconfig" \
        --root-dir="$NODE/kubelet" --cert-dir="$NODE/pki/kubelet-serving" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
    wait_for 60 "node $NODE_NAME Ready" node_ready
}

start_kube_proxy() {
    issue_kubeconfig kube-proxy "/CN=system:kube-proxy" kubernetes.io/kube-apiserver-client
    KUBECONFIG="$NODE/kube-proxy.kubeconfig" render kube-proxy.yaml "$NODE/kube-proxy.yaml"
    start kube-proxy "$KUBE_PROXY" --config="$NODE/kube-proxy.yaml"
    wait_for 30 kube-proxy curl -sf http://127.0.0.1:10256/healthz
}

start_kube_router() {
    start kube-router "$KUBE_ROUTER" --kubeconfig="$KUBECONFIG" --hostname-override="$NODE_NAME" \
        --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
        --service-cluster-ip-range="$SERVICE_CIDR" --health-port=20244 --metrics-port=0
    wait_for 30 kube-router curl -sf http://127.0.0.1:20244/healthz
}

start_coredns() {
    mkdir -p "$NODE/coredns"
    : >"$NODE/coredns/hosts"
    render Corefile "$NODE/coredns/Corefile"
    render kube-dns.yaml "$NODE/coredns/kube-dns.yaml"
    kubectl apply -f "$NODE/coredns/kube-dns.yaml" >/dev/null
    start coredns "$COREDNS" -conf "$NODE/coredns/Corefile"
    wait_for 30 coredns curl -sf http://127.0.0.1:18181/ready
}

write_node_env() {
    cat >"$NODE/node.env" <<EOF
REAL_NODE=$NODE_NAME
REAL_NODE_LABEL=$NODE_LABEL
REAL_NODE_TAINT=$NODE_TAINT
NODE_IP=$NODE_IP
POD_CIDR=$POD_CIDR
SERVICE_CIDR=$SERVICE_CIDR
DNS_IP=$DNS_IP
NODE_HOSTS=$NODE/coredns/hosts
REGISTRY=$REGISTRY_ADDR
REGISTRY_USER=$REGISTRY_USER
REGISTRY_PASSWORD=$REGISTRY_PASSWORD
REGISTRY_AUTH_FILE=$NODE/registry/auth.json
REGISTRY_CERT_DIR=$NODE/registry/certs.d
CONTAINERD_ADDRESS=$SOCK
EOF
    chmod 600 "$NODE/node.env"
}

up() {
    [[ $(id -u) -eq 0 ]] || die "needs root"
    local env_file="${PAUDE_CLUSTER_ENV:?PAUDE_CLUSTER_ENV: the cluster.env of up.sh}" binaries
    binaries="$(cat)" # build.sh's KEY=PATH lines
    read_env <(printf '%s\n' "$binaries")
    read_env "$env_file"
    set_paths "$STATE"
    lock_machine
    local owner=""
    [[ -f "$NODE_RUN/owner" ]] && owner="$(cat "$NODE_RUN/owner")"
    if [[ -n "$owner" && "$owner" != "$STATE" ]]; then
        [[ -d "$owner/node" ]] &&
            die "the real node belongs to the cluster in $owner (PAUDE_CLUSTER_STATE=$owner tests/cluster/down.sh)"
        log "removing what a vanished cluster ($owner) left of the real node"
        down_node "$owner"
    fi
    if is_running; then
        cat "$NODE/node.env"
        return 0
    fi
    local start=$SECONDS
    # What is left of an earlier node of this cluster (its state directory
    # may be gone while its daemons still run: their pids are in $PIDS).
    if [[ -d "$NODE" || -d "$PIDS" ]]; then down_node "$STATE"; fi
    mkdir -p "$NODE_RUN" "$PIDS" "$LOGS"
    echo "$STATE" >"$NODE_RUN/owner"
    printf '%s\n' "$binaries" >"$NODE/binaries"
    make_bridge
    # containerd pulls with the registry's credentials: chosen first.
    REGISTRY_PASSWORD="$(openssl rand -hex 16)"
    start_containerd
    start_registry
    start_volumes
    start_kubelet
    start_kube_proxy
    start_kube_router
    start_coredns
    write_node_env
    log "real node $NODE_NAME up in $((SECONDS - start))s"
    cat "$NODE/node.env"
}

# Remove the KUBE-* chains of kubelet, kube-proxy and kube-router (and the
# rules that jump to them) and kube-router's ipsets; podman's rules stay.
remove_kube_rules() {
    local ipt t chain rule
    for ipt in iptables ip6tables; do
        for t in filter nat mangle raw; do
            "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A ' | grep -vE '^-A KUBE-' |
                grep -E -- '-j KUBE-' | sed 's/^-A //' |
                while read -r rule; do
                    eval "$ipt -w -t $t -D $rule" 2>/dev/null || true
                done || true
            for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' || true); do
                "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' || true); do
                "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true
            done
        done
    done
    for chain in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' || true); do
        ipset destroy "$chain" 2>/dev/null || true
    done
}

# Only kube-router's rules (netpol off): its chains and ipsets.
remove_netpol_rules() {
    local ipt t chain rule
    for ipt in iptables ip6tables; do
        for t in filter nat mangle raw; do
            "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A ' |
                grep -E -- '-j KUBE-(ROUTER|NWPLCY|POD-FW)' | grep -vE '^-A KUBE-(ROUTER|NWPLCY|POD-FW)' |
                sed 's/^-A //' |
                while read -r rule; do
                    eval "$ipt -w -t $t -D $rule" 2>/dev/null || true
                done || true
            for chain in $("$ipt-save" -t "$t" 2>/dev/null |
                sed -n 's/^:\(KUBE-\(ROUTER\|NWPLCY\|POD-FW\)[^ ]*\) .*/\1/p'); do
                "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$ipt-save" -t "$t" 2>/dev/null |
                sed -n 's/^:\(KUBE-\(ROUTER\|NWPLCY\|POD-FW\)[^ ]*\) .*/\1/p'); do
                "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true
            done
        done
    done
    for chain in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' || true); do
        ipset destroy "$chain" 2>/dev/null || true
    done
}

# Everything the node made for the cluster in STATE (safe to repeat).
down_node() {
    local state="$1" d pid ns cg
    set_paths "$state"
    [[ -f "$state/cluster.env" ]] && read_env "$state/cluster.env"
    [[ -f "$NODE/binaries" ]] && read_env "$NODE/binaries"
    # Pods first, while kubelet and containerd run: their sandboxes, network
    # namespaces and mounts go the ordinary way.
    if alive kubelet && alive containerd && [[ -n "${KUBECTL:-}" && -f "${KUBECONFIG:-}" ]]; then
        kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
            --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
        local deadline=$((SECONDS + 30))
        while [[ -n "$(ctr -n k8s.io tasks ls -q 2>/dev/null)" ]] && ((SECONDS < deadline)); do
            sleep 0.2
        done
    fi
    for d in coredns kube-router kube-proxy kubelet volumes registry; do stop "$d"; done
    if alive containerd; then
        for d in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do
            ctr -n k8s.io tasks kill -s KILL "$d" >/dev/null 2>&1 || true
        done
        for d in $(ctr -n k8s.io containers ls -q 2>/dev/null); do
            ctr -n k8s.io tasks delete -f "$d" >/dev/null 2>&1 || true
        done
    fi
    stop containerd
    # Shims outlive containerd: the ones of our socket.
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" || true); do
        kill -9 "$pid" 2>/dev/null || true
    done
    # Mounts under the node's directories (deepest first).
    awk -v a="$NODE/" -v b="$NODE_RUN/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' \
        /proc/mounts | sort -r | while read -r d; do umount -l "$d" 2>/dev/null || true; done
    # Network namespaces of our pods (an address in the pod CIDR).
    for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
        if ip -n "$ns" -4 addr 2>/dev/null | grep -q "inet ${POD_CIDR%.*}\."; then
            ip netns delete "$ns" 2>/dev/null || true
        fi
    done
    ip link delete "$BRIDGE" 2>/dev/null || true
    "${KUBE_PROXY:-false}" --cleanup >/dev/null 2>&1 || true
    remove_kube_rules
    # The kubelet's cgroups (cgroupfs driver: /kubepods in every hierarchy).
    for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    if [[ -n "${KUBECTL:-}" && -f "${KUBECONFIG:-}" ]]; then
        kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
    fi
    case "$NODE" in
        */node) rm -rf -- "$NODE" ;;
    esac
    rm -rf -- "$NODE_RUN"
}

down() {
    [[ $(id -u) -eq 0 ]] || exit 0 # a non-root down.sh has no node to remove
    local state="${1:?usage: real-node.sh down STATE}"
    lock_machine
    set_paths "$state"
    [[ -d "$NODE" ]] || [[ "$(cat "$NODE_RUN/owner" 2>/dev/null)" == "$state" ]] || return 0
    down_node "$state"
    log "real node removed"
}

# Stop the NetworkPolicy controller and remove its rules (a cluster that does
# not enforce NetworkPolicy), or start it again. The caller holds the
# shared-node lock exclusively (tests/k8s/conftest.py) while it is off.
netpol() {
    local owner
    owner="$(cat "$NODE_RUN/owner" 2>/dev/null)" || die "no real node is running"
    set_paths "$owner"
    read_env "$owner/cluster.env"
    read_env "$NODE/binaries"
    case "${1:-}" in
        off) stop kube-router; remove_netpol_rules ;;
        on) alive kube-router || start_kube_router ;;
        *) die "usage: real-node.sh netpol off|on" ;;
    esac
}

case "${1:-}" in
    up) up ;;
    down) down "${2:-}" ;;
    netpol) lock_machine; netpol "${2:-}" ;;
    *) die "usage: real-node.sh up|down STATE|netpol off|on" ;;
esac

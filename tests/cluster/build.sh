#!/usr/bin/env bash
# Build (once, cached by version) the binaries of the test Kubernetes cluster:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, and kwok + kwokctl
# (sigs.k8s.io/kwok, patched: see build_kwok). For the real node
# (up.sh --real-node): kubelet and kube-proxy from the same Kubernetes
# module, kube-router (its NetworkPolicy firewall only), a minimal CoreDNS
# (realnode/coredns.go) and a static pause binary (realnode/pause.c, gcc).
#
# Everything comes from the Go module proxy; nothing is downloaded from
# anywhere else. See docs/test-cluster.md.
#
# Usage: tests/cluster/build.sh [all|cluster|node|kube|etcd|kwok|kubelet|kube-router|coredns|pause]...
#   cluster = kube etcd kwok (what up.sh needs); node = kubelet kube-router
#   coredns pause (what up.sh --real-node adds); all (the default) = both.
# Prints KEY=PATH lines (one per binary) on stdout; progress goes to stderr.
# Idempotent: a component whose stamp file exists is not rebuilt.
set -euo pipefail

KUBE_VERSION="${PAUDE_KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${PAUDE_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${PAUDE_KWOK_VERSION:-v0.8.0}"
KUBE_ROUTER_VERSION="${PAUDE_KUBE_ROUTER_VERSION:-v2.1.0}"
COREDNS_VERSION="${PAUDE_COREDNS_VERSION:-v1.15.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

CACHE="${PAUDE_CLUSTER_CACHE:-$HOME/.cache/paude-test-cluster}"
GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
    else GO=/usr/local/go/bin/go
    fi
fi

export GOMODCACHE="$CACHE/gomod"
export GOCACHE="$CACHE/gocache"
export GOPATH="$CACHE/gopath"
# Never download another Go toolchain; use the one installed.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

KUBE_DIR="$CACHE/bin/kubernetes-$KUBE_VERSION"
ETCD_DIR="$CACHE/bin/etcd-$ETCD_VERSION"
KWOK_DIR="$CACHE/bin/kwok-$KWOK_VERSION"
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
NODE_CMDS=(kubelet kube-proxy)
KUBE_ROUTER_DIR="$CACHE/bin/kube-router-$KUBE_ROUTER_VERSION"
COREDNS_DIR="$CACHE/bin/coredns-$COREDNS_VERSION"
PAUSE_DIR="$CACHE/bin/pause"
PAUSE_IMAGE=localhost/paude-test/pause:1

log() { printf 'build.sh: %s\n' "$*" >&2; }

# go.mod of a module version, from the module proxy (cached in GOMODCACHE).
module_gomod() {
    (cd "$CACHE" && "$GO" mod download -json "$1@$2") |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p'
}

# Start a throwaway wrapper module in $1 named $2 that copies the godebug
# lines of the go.mod at $3 (they change runtime behaviour of the binaries).
init_wrapper() {
    local dir="$1" name="$2" gomod="$3"
    rm -rf "$dir"
    mkdir -p "$dir"
    {
        printf 'module %s\n\ngo %s\n\n' "$name" "$("$GO" env GOVERSION | sed 's/^go//')"
        grep -E '^godebug' "$gomod" || true
    } >"$dir/go.mod"
}

build_kube() {
    [[ -f "$KUBE_DIR/.stamp" ]] && return 0
    ((CHECK_ONLY)) && return 1
    log "building Kubernetes $KUBE_VERSION (about 15-20 minutes on 2 cores)"
    local gomod src staging
    local staging_version="v0.${KUBE_VERSION#v1.}"
    gomod="$(module_gomod k8s.io/kubernetes "$KUBE_VERSION")"
    src="$CACHE/src/kubernetes-$KUBE_VERSION"
    init_wrapper "$src" paude.test/kube-build "$gomod"
    (
        cd "$src"
        "$GO" mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
        # k8s.io/kubernetes requires its staging modules at v0.0.0 and points
        # them at ./staging with replace lines that only apply inside its own
        # repository. Point them at the published releases instead.
        staging="$(sed -n 's/^[[:space:]]*\(k8s\.io\/[^[:space:]]*\) v0\.0\.0$/\1/p' "$gomod")"
        for mod in $staging; do
            "$GO" mod edit -replace="$mod=$mod@$staging_version"
        done
        {
            printf '//go:build tools\n\npackage tools\n\nimport (\n'
            for cmd in "${KUBE_CMDS[@]}"; do
                printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"
            done
            printf ')\n'
        } >tools.go
        "$GO" mod tidy >&2
        mkdir -p "$KUBE_DIR"
        # One go build for all four: they share most packages, and the links
        # run in parallel.
        log "  go build ${KUBE_CMDS[*]}"
        "$GO" build -trimpath -tags selinux,notest -ldflags "$(kube_ldflags)" \
            -o "$KUBE_DIR/" "${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}"
    )
    touch "$KUBE_DIR/.stamp"
}

# -X flags that give the Kubernetes binaries their version (without them
# /version says v0.0.0 and version-checking clients break).
kube_ldflags() {
    local minor="${KUBE_VERSION#v1.}" p ldflags="-s -w"
    minor="${minor%%.*}"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldflags+=" -X $p.gitTreeState=clean"
    done
    printf '%s' "$ldflags"
}

# kubelet and kube-proxy: a second wrapper module with the control plane's
# go.mod and go.sum (the same Kubernetes release and replaces), so most
# packages come from the warm GOCACHE.
build_kubelet() {
    [[ -f "$KUBE_DIR/.stamp-node" ]] && return 0
    ((CHECK_ONLY)) && return 1
    build_kube
    log "building ${NODE_CMDS[*]} $KUBE_VERSION"
    local src="$CACHE/src/kube-node-$KUBE_VERSION" cmd
    rm -rf "$src"
    mkdir -p "$src"
    cp "$CACHE/src/kubernetes-$KUBE_VERSION/go.mod" "$CACHE/src/kubernetes-$KUBE_VERSION/go.sum" "$src/"
    (
        cd "$src"
        {
            printf '//go:build tools\n\npackage tools\n\nimport (\n'
            for cmd in "${NODE_CMDS[@]}"; do
                printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"
            done
            printf ')\n'
        } >tools.go
        "$GO" mod tidy >&2
        "$GO" build -trimpath -tags selinux,notest -ldflags "$(kube_ldflags)" \
            -o "$KUBE_DIR/" "${NODE_CMDS[@]/#/k8s.io/kubernetes/cmd/}"
    )
    touch "$KUBE_DIR/.stamp-node"
}

# Copy a module version from the module proxy into $CACHE/src/$3 (writable).
module_source() {
    local dir src="$CACHE/src/$3"
    dir="$(cd "$CACHE" && "$GO" mod download -json "$1@$2" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    rm -rf "$src"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    printf '%s' "$src"
}

# kube-router enforces NetworkPolicy with iptables + ipset (the kernel here
# has no nft queue, so nftables-based controllers cannot). Only its firewall
# runs; no routing, no service proxy, no CNI.
build_kube_router() {
    [[ -f "$KUBE_ROUTER_DIR/.stamp" ]] && return 0
    ((CHECK_ONLY)) && return 1
    log "building kube-router $KUBE_ROUTER_VERSION (about 6 minutes)"
    local src
    src="$(module_source github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION" \
        "kube-router-$KUBE_ROUTER_VERSION")"
    mkdir -p "$KUBE_ROUTER_DIR"
    (cd "$src" && "$GO" build -trimpath -ldflags "-s -w" -o "$KUBE_ROUTER_DIR/kube-router" ./cmd/kube-router)
    touch "$KUBE_ROUTER_DIR/.stamp"
}

# CoreDNS with only the plugins cluster DNS needs (realnode/coredns.go): no
# forward plugin, so no name ever resolves outside the cluster.
build_coredns() {
    local main="$HERE/realnode/coredns.go" want src
    want="$(sha256sum <"$main" | cut -d' ' -f1)"
    [[ -f "$COREDNS_DIR/.stamp" && "$(cat "$COREDNS_DIR/.stamp")" == "$want" ]] && return 0
    ((CHECK_ONLY)) && return 1
    log "building CoreDNS $COREDNS_VERSION (about 3 minutes)"
    src="$CACHE/src/coredns-$COREDNS_VERSION"
    rm -rf "$src"
    mkdir -p "$src" "$COREDNS_DIR"
    cp "$main" "$src/main.go"
    (
        cd "$src"
        printf 'module paude.test/coredns\n\ngo %s\n' "$("$GO" env GOVERSION | sed 's/^go//')" >go.mod
        "$GO" mod edit -require="github.com/coredns/coredns@$COREDNS_VERSION"
        "$GO" mod tidy >&2
        "$GO" build -trimpath -ldflags "-s -w" -o "$COREDNS_DIR/coredns" .
    )
    printf '%s' "$want" >"$COREDNS_DIR/.stamp"
}

# The pod sandbox's pause process: no registry can be pulled from, so a
# static one is compiled here; up.sh --real-node wraps it in an image.
build_pause() {
    local c="$HERE/realnode/pause.c" want
    want="$(cat "$c" "$HERE/realnode/pause_image.py" | sha256sum | cut -d' ' -f1)"
    [[ -f "$PAUSE_DIR/.stamp" && "$(cat "$PAUSE_DIR/.stamp")" == "$want" ]] && return 0
    ((CHECK_ONLY)) && return 1
    command -v gcc >/dev/null || { log "gcc not found (scripts/setup installs it)"; exit 1; }
    mkdir -p "$PAUSE_DIR"
    gcc -static -Os -o "$PAUSE_DIR/pause" "$c"
    strip "$PAUSE_DIR/pause"
    python3 "$HERE/realnode/pause_image.py" "$PAUSE_DIR/pause" "$PAUSE_IMAGE" "$PAUSE_DIR/pause.tar"
    printf '%s' "$want" >"$PAUSE_DIR/.stamp"
}

build_etcd() {
    [[ -f "$ETCD_DIR/.stamp" ]] && return 0
    ((CHECK_ONLY)) && return 1
    log "building etcd $ETCD_VERSION"
    local gomod src
    gomod="$(module_gomod go.etcd.io/etcd/server/v3 "$ETCD_VERSION")"
    src="$CACHE/src/etcd-$ETCD_VERSION"
    init_wrapper "$src" paude.test/etcd-build "$gomod"
    (
        cd "$src"
        "$GO" mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
        "$GO" mod tidy >&2
        mkdir -p "$ETCD_DIR"
        "$GO" build -trimpath -ldflags "-s -w" -o "$ETCD_DIR/etcd" go.etcd.io/etcd/server/v3
    )
    touch "$ETCD_DIR/.stamp"
}

build_kwok() {
    # kwok is built from its module with a small patch (kwok-$V-exec.patch):
    # v0.8.0's exec loses the command's exit code (kubectl exec always exits
    # 1) and never closes the command's stdin (`kubectl exec -i -- cat` hangs).
    local patch="$HERE/kwok-$KWOK_VERSION-exec.patch" want="unpatched" src dir
    [[ -f "$patch" ]] && want="$(sha256sum <"$patch" | cut -d' ' -f1)"
    [[ -f "$KWOK_DIR/.stamp" && "$(cat "$KWOK_DIR/.stamp")" == "$want" ]] && return 0
    ((CHECK_ONLY)) && return 1
    log "building kwok $KWOK_VERSION"
    dir="$(cd "$CACHE" && "$GO" mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    src="$CACHE/src/kwok-$KWOK_VERSION"
    rm -rf "$src"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    if [[ -f "$patch" ]]; then
        if command -v patch >/dev/null 2>&1; then
            patch -d "$src" -p1 --quiet <"$patch"
        else
            # git apply works outside a repository too ($src is not in one).
            git -C "$src" apply -p1 "$patch"
        fi
    fi
    mkdir -p "$KWOK_DIR"
    (
        cd "$src"
        "$GO" build -trimpath -ldflags "-s -w" -o "$KWOK_DIR/" ./cmd/kwok ./cmd/kwokctl
    )
    printf '%s' "$want" >"$KWOK_DIR/.stamp"
}

# The build functions of a target.
target_funcs() {
    case "$1" in
        all) echo build_kube build_etcd build_kwok build_kubelet build_kube_router build_coredns build_pause ;;
        cluster) echo build_kube build_etcd build_kwok ;;
        node) echo build_kubelet build_kube_router build_coredns build_pause ;;
        kube | etcd | kwok | kubelet | kube-router | coredns | pause) echo "build_${1//-/_}" ;;
        *) log "unknown target: $1"; exit 2 ;;
    esac
}

# Build the targets; with CHECK_ONLY=1 only check that all are built (in an
# `if`: errexit is off there, so each check's status is tested by hand).
build_targets() {
    local t f funcs
    for t in "$@"; do
        funcs="$(target_funcs "$t")"
        for f in $funcs; do
            if ((CHECK_ONLY)); then
                "$f" || return 1
            else
                "$f"
            fi
        done
    done
}

main() {
    local targets=("$@")
    [[ ${#targets[@]} -eq 0 ]] && targets=(all)
    mkdir -p "$CACHE"
    [[ -x "$GO" ]] || { log "Go not found (set GO=/path/to/go)"; exit 1; }
    local t
    for t in "${targets[@]}"; do target_funcs "$t" >/dev/null; done
    # One build at a time per cache; a second caller waits, then finds the
    # stamps and builds nothing. A caller whose binaries are all built takes
    # no lock (up.sh never waits for someone else's build of other parts).
    if ! CHECK_ONLY=1 build_targets "${targets[@]}"; then
        exec 8>"$CACHE/build.lock"
        flock 8
        CHECK_ONLY=0 build_targets "${targets[@]}"
    fi
    # up.sh reads kwok's stage definitions from its module source.
    if [[ ! -d "$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize" ]]; then
        (cd "$CACHE" && "$GO" mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
    fi
    for cmd in "${KUBE_CMDS[@]}" "${NODE_CMDS[@]}"; do
        printf '%s=%s\n' "$(echo "$cmd" | tr 'a-z-' 'A-Z_')" "$KUBE_DIR/$cmd"
    done
    printf 'KUBE_ROUTER=%s\nCOREDNS=%s\nPAUSE_TAR=%s\nPAUSE_IMAGE=%s\n' \
        "$KUBE_ROUTER_DIR/kube-router" "$COREDNS_DIR/coredns" "$PAUSE_DIR/pause.tar" "$PAUSE_IMAGE"
    printf 'ETCD=%s\n' "$ETCD_DIR/etcd"
    printf 'KWOK=%s\nKWOKCTL=%s\n' "$KWOK_DIR/kwok" "$KWOK_DIR/kwokctl"
    printf 'KWOK_MODULE=%s\n' "$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION"
    printf 'KUBE_VERSION=%s\nETCD_VERSION=%s\nKWOK_VERSION=%s\n' \
        "$KUBE_VERSION" "$ETCD_VERSION" "$KWOK_VERSION"
}

CHECK_ONLY=0
main "$@"

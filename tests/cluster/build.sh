#!/usr/bin/env bash
# Build (once, cached by version) the binaries of the test Kubernetes cluster:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, and kwok + kwokctl
# (sigs.k8s.io/kwok, patched: see build_kwok).
#
# Everything comes from the Go module proxy; nothing is downloaded from
# anywhere else. See docs/test-cluster.md.
#
# Usage: tests/cluster/build.sh [all|kube|etcd|kwok]...
# Prints KEY=PATH lines (one per binary) on stdout; progress goes to stderr.
# Idempotent: a component whose stamp file exists is not rebuilt.
set -euo pipefail

KUBE_VERSION="${PAUDE_KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${PAUDE_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${PAUDE_KWOK_VERSION:-v0.8.0}"
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
    log "building Kubernetes $KUBE_VERSION (about 15-20 minutes on 2 cores)"
    local gomod src staging minor="${KUBE_VERSION#v1.}"
    minor="${minor%%.*}"
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
        local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
        local ldflags="-s -w"
        for p in "$pkg" "$cpkg"; do
            ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
            ldflags+=" -X $p.gitTreeState=clean"
        done
        mkdir -p "$KUBE_DIR"
        # One go build for all four: they share most packages, and the links
        # run in parallel.
        log "  go build ${KUBE_CMDS[*]}"
        "$GO" build -trimpath -tags selinux,notest -ldflags "$ldflags" \
            -o "$KUBE_DIR/" "${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}"
    )
    touch "$KUBE_DIR/.stamp"
}

build_etcd() {
    [[ -f "$ETCD_DIR/.stamp" ]] && return 0
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

main() {
    local targets=("$@")
    [[ ${#targets[@]} -eq 0 ]] && targets=(all)
    mkdir -p "$CACHE"
    [[ -x "$GO" ]] || { log "Go not found (set GO=/path/to/go)"; exit 1; }
    # One build at a time per cache; a second caller waits, then finds the
    # stamps and builds nothing.
    exec 8>"$CACHE/build.lock"
    flock 8
    for t in "${targets[@]}"; do
        case "$t" in
            all) build_kube; build_etcd; build_kwok ;;
            kube) build_kube ;;
            etcd) build_etcd ;;
            kwok) build_kwok ;;
            *) log "unknown target: $t"; exit 2 ;;
        esac
    done
    # up.sh reads kwok's stage definitions from its module source.
    if [[ ! -d "$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize" ]]; then
        (cd "$CACHE" && "$GO" mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
    fi
    for cmd in "${KUBE_CMDS[@]}"; do
        printf '%s=%s\n' "$(echo "$cmd" | tr 'a-z-' 'A-Z_')" "$KUBE_DIR/$cmd"
    done
    printf 'ETCD=%s\n' "$ETCD_DIR/etcd"
    printf 'KWOK=%s\nKWOKCTL=%s\n' "$KWOK_DIR/kwok" "$KWOK_DIR/kwokctl"
    printf 'KWOK_MODULE=%s\n' "$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION"
    printf 'KUBE_VERSION=%s\nETCD_VERSION=%s\nKWOK_VERSION=%s\n' \
        "$KUBE_VERSION" "$ETCD_VERSION" "$KWOK_VERSION"
}

main "$@"

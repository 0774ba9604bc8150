#!/usr/bin/env bash
# Stop the test cluster started by up.sh (and its real node, if any) and
# remove all of its state.
# Usage: tests/cluster/down.sh   (safe to run when nothing is running)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="${PAUDE_CLUSTER_NAME:-paude-test}"
STATE="${PAUDE_CLUSTER_STATE:-${TMPDIR:-/tmp}/paude-test-cluster-$NAME}"
CACHE="${PAUDE_CLUSTER_CACHE:-$HOME/.cache/paude-test-cluster}"
KWOK_VERSION="${PAUDE_KWOK_VERSION:-v0.8.0}"
KWOKCTL="$CACHE/bin/kwok-$KWOK_VERSION/kwokctl"

log() { printf 'down.sh: %s\n' "$*" >&2; }

# Same lock as up.sh (which sets PAUDE_CLUSTER_LOCKED when it calls us).
if [[ -z "${PAUDE_CLUSTER_LOCKED:-}" ]]; then
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    flock 9
fi

# The real node first (its pods are deleted through the API server).
"$HERE/real-node.sh" down "$STATE"
if [[ -d "$STATE/kwok" && -x "$KWOKCTL" ]]; then
    # kwokctl stops the processes it started (by their pid files).
    KWOK_WORKDIR="$STATE/kwok" "$KWOKCTL" delete cluster --name "$NAME" \
        --kubeconfig "$STATE/kubeconfig" >&2
fi
if [[ -d "$STATE" ]]; then
    case "$STATE" in
        / | "$HOME" | "$HERE"*) log "refusing to remove $STATE"; exit 1 ;;
    esac
    rm -rf -- "$STATE"
    log "removed $STATE"
fi

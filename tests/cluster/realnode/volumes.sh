#!/usr/bin/env bash
# The real node's volume provisioner (a daemon of real-node.sh): makes the
# directory of every local PersistentVolume under ROOT, as a provisioner
# makes a fresh filesystem: root's, mode 0755. kwok's pvc-provision stage
# (rendered by up.sh to give local volumes) creates the PVs; the kubelet
# gives the directory to the pod's fsGroup when it mounts it (it does that
# for local volumes, not for hostPath ones). A pod scheduled before its
# directory exists waits: the kubelet retries the mount.
# Usage: volumes.sh KUBECTL KUBECONFIG ROOT
set -uo pipefail

kubectl="$1" kubeconfig="$2" root="$3"
mkdir -p -m 0755 -- "$root"
while :; do
    # --watch lists every PV first, then prints each change.
    "$kubectl" --kubeconfig "$kubeconfig" get pv --watch --request-timeout=0 \
        -o jsonpath='{.spec.local.path}{"\n"}' |
        while read -r path; do
            case "$path" in
                */..*) ;;
                "$root"/pvc-*) mkdir -p -m 0755 -- "$path" ;;
            esac
        done
    sleep 1 # the watch ended (API server restart or timeout): watch again
done

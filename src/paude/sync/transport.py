"""How the sync reaches the pod: argv over an exec stream, built by pure functions.

A transport is the argv prefix that runs a command in the agent container
with stdin attached (``kubectl exec -i`` / ``oc exec -i`` on a cluster,
``podman exec -i`` for a container), plus the workspace root inside it.
Every remote step is a constant ``sh`` script; paths and names travel as
positional arguments or NUL-separated on stdin, never inside the script.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from paude.facts import DEFAULT_WORKSPACE
from paude.sync.paths import DEFAULT_EXCLUDED_DIRS, PAUDE_DIR

REMOTE_ROOT = DEFAULT_WORKSPACE  # the agent image's workspace

# One long-lived exec serves every step, so a step costs a round trip, not
# an exec. Requests: "CMD N\n" then N payload bytes (GNU head -c reads exactly
# N bytes, so the stream stays framed). Replies: "RC OUTLEN ERRLEN\n", out, err.
# scan: payload = start path ("" = whole tree); find prints six NUL-ended
# fields per path (type, octal mode, size, mtime, ./path, link target),
# pruning the default-excluded directories ($2...). pull: payload = NUL-ended
# paths; missing ones are skipped. push: N is 0 and the payload is a tar sent
# as it is made, in chunks "M\n" + M bytes, ended by "0\n" (the pod extracts
# while the rest is still being read here). pushnew: a push into an empty
# workspace only (the default-excluded directories and .paude aside): the
# server first answers "go" or "no"; after a no it extracts nothing.
# delf/deld: payload = NUL-ended paths to remove (a directory still holding
# files stays).
# The ready line names the workspace volume: a random id kept in .paude/volume
# (made by the first server on a new volume; ln never replaces one). An index
# is about one volume: a new, empty one is not "every file deleted in the pod".
SERVER_SCRIPT = r"""cd -- "$1" || exit 3
t="$1/.paude/tmp"; mkdir -p "$t" || exit 3
v="$1/.paude/volume"
if [ ! -s "$v" ]; then
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$v.$$" && ln "$v.$$" "$v" 2>/dev/null
  rm -f "$v.$$"
fi
id=$(head -c 64 "$v" | tr -cd 0-9a-f); [ -n "$id" ] || exit 3
o="$t/out.$$"; e="$t/err.$$"; l="$t/list.$$"
trap 'rm -f "$o" "$e" "$l"' EXIT
shift; n=$#; first=1
for name do
  if [ $first = 1 ]; then set -- "$@" "(" -name "$name"; first=0
  else set -- "$@" -o -name "$name"; fi
done
shift $n
if [ $# -gt 0 ]; then set -- "$@" ")" -prune -o; fi
echo "paude-sync-ready $id"
while read -r cmd n; do
  rc=0
  case $cmd in
  push|pushnew) x=go
        if [ "$cmd" = pushnew ]; then
          [ -z "$(find . -mindepth 1 "$@" -path ./.paude -prune -o -print -quit)" ] || x=no
          echo $x
        fi
        { while read -r m && [ "$m" -gt 0 ]; do head -c "$m"; done; } |
        { if [ $x = go ]; then tar -x -f - -p --no-same-owner --no-overwrite-dir >"$o" 2>"$e"
          echo $? >"$l"; else : >"$o"; : >"$e"; echo 0 >"$l"; fi; cat >/dev/null; }
        rc=$(cat "$l") ;;
  *) head -c "$n" >"$l"
     case $cmd in
     scan) s=$(cat "$l"); d=0; if [ -z "$s" ]; then s=.; d=1; else s="./$s"; fi
           find "$s" -mindepth $d "$@" -printf '%y\0%m\0%s\0%T@\0%p\0%l\0' >"$o" 2>"$e" || rc=$? ;;
     pull) tar -c -f - --format=posix --no-recursion --hard-dereference --ignore-failed-read \
             --null --verbatim-files-from -T "$l" >"$o" 2>"$e" || rc=$? ;;
     delf) xargs -0 -r rm -f -- <"$l" >"$o" 2>"$e" || rc=$? ;;
     deld) xargs -0 -r rmdir --ignore-fail-on-non-empty -- <"$l" >"$o" 2>"$e" || rc=$? ;;
     *) : >"$o"; echo "unknown request $cmd" >"$e"; rc=127 ;;
     esac ;;
  esac
  printf '%s %s %s\n' "$rc" "$(wc -c <"$o")" "$(wc -c <"$e")"
  cat "$o" "$e"
done
"""
SERVER_READY = b"paude-sync-ready "  # then the volume id and a newline
# One event per line: "EVENTS ROOT/path" NUL-terminated; stderr says
# "Watches established." once every watch is in place.
WATCH_SCRIPT = r"""exec inotifywait -m -r \
  -e modify,attrib,close_write,create,delete,moved_to,moved_from \
  --format '%e %w%f%0' --no-newline --exclude "$2" -- "$1"
"""
WATCH_READY = "Watches established."


@dataclass(frozen=True)
class ExecTransport:
    """Run constant scripts in the agent container through an exec stream."""

    prefix: tuple[str, ...]
    root: str = REMOTE_ROOT

    def argv(self, script: str, *args: str) -> list[str]:
        """Return the argv that runs ``script`` with the root and ``args`` as $1...."""
        return [*self.prefix, "sh", "-c", script, "sh", self.root, *args]

    def server_argv(self) -> list[str]:
        """Return the argv of the long-lived step server (see ``SERVER_SCRIPT``)."""
        return self.argv(SERVER_SCRIPT, *DEFAULT_EXCLUDED_DIRS)

    def watch_argv(self) -> list[str]:
        """Return the argv of the pod's file watcher."""
        return self.argv(WATCH_SCRIPT, build_watch_exclude(self.root))


def build_watch_exclude(root: str) -> str:
    """Return inotifywait's --exclude regex: default-excluded dirs and paude's own."""
    names = "|".join(re.escape(n) for n in DEFAULT_EXCLUDED_DIRS)
    own = re.escape(f"{root.rstrip('/')}/{PAUDE_DIR}")
    return f"(^|/)({names})(/|$)|^{own}(/|$)"


def build_kube_prefix(
    cli: str, *, pod: str, namespace: str, container: str, context: str | None = None
) -> tuple[str, ...]:
    """Return ``oc``/``kubectl exec -i`` into the agent container (through the API server)."""
    argv = [cli]
    if context:
        argv += ["--context", context]
    return (*argv, "--namespace", namespace, "exec", "-i", pod, "-c", container, "--")


def build_podman_prefix(container: str, *, podman: str = "podman") -> tuple[str, ...]:
    """Return ``podman exec -i`` into ``container`` (the same engine, without a cluster)."""
    return (podman, "exec", "-i", container)


def parse_scan(data: bytes) -> list[tuple[str, str, int, int, float, str]]:
    """Parse the scan's output into (path, type, mode, size, mtime, link) rows.

    Rows whose path is not a clean relative path are dropped by the caller.
    """
    fields = data.split(b"\0")
    rows = []
    for i in range(0, len(fields) - 5, 6):
        kind, mode, size, mtime, path, link = (f.decode("utf-8", "surrogateescape")
                                                for f in fields[i:i + 6])
        path = path[2:] if path.startswith("./") else path
        rows.append((path, kind, int(mode, 8), int(size), float(mtime), link))
    return rows


def parse_watch_event(raw: bytes, root: str) -> tuple[str, bool, bool] | None:
    """Parse one watch event into (path, is_dir, created); None if outside ``root``."""
    text = raw.decode("utf-8", "surrogateescape")
    events, _, full = text.partition(" ")
    prefix = root.rstrip("/") + "/"
    if not full.startswith(prefix):
        return None
    flags = set(events.split(","))
    created = bool(flags & {"CREATE", "MOVED_TO"})
    return full[len(prefix):].rstrip("/"), "ISDIR" in flags, created


def describe(argv: Sequence[str]) -> str:
    """Return a short name of a transport step for errors (its exec program)."""
    return argv[0] if argv else "?"

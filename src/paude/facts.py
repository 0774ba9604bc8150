"""Facts paude shares with its images: paths, the agent's uid, versions, names.

The Containerfiles (``container/files.py``), the podman argv builders and the
OpenShift objects all import these, so the image and what runs it cannot
disagree. ``container/data/paude-entrypoint`` is a shell script and repeats
some of them; a unit test compares its values with these. Labels live in
:mod:`paude.naming`. No imports beyond the standard library: the quick
reattach path loads this module.
"""

from __future__ import annotations

import re

DEFAULT_BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
DEFAULT_CLAUDE_CODE_VERSION = "2.1.332"

# The agent image's user: uid 1000, group 0 (OpenShift runs an arbitrary uid with gid 0).
AGENT_UID = 1000
CONTAINER_HOME = "/home/paude"
DEFAULT_WORKSPACE = "/workspace"
ENTRYPOINT_PATH = "/usr/local/bin/paude-entrypoint"
TMUX_CONF_PATH = "/etc/paude/tmux.conf"
TMUX_SESSION = "paude"  # the entrypoint's tmux session, what attach and exec target
# Read-only credential mounts live under here; the entrypoint copies the seeds.
CREDENTIALS_ROOT = "/run/paude"
SEED_DIR = f"{CREDENTIALS_ROOT}/seed"
CLAUDE_SEED_DIR = f"{SEED_DIR}/claude"
CLAUDE_JSON_SEED = f"{SEED_DIR}/claude.json"
# Why the entrypoint stopped a session, kept across a container restart (an
# emptyDir on Kubernetes), and the exit codes it stops with, by reason (the
# entrypoint repeats them: EXIT_IDLE, EXIT_MAX, EXIT_OOM; a unit test compares).
STATE_DIR = f"{CREDENTIALS_ROOT}/state"
STOP_CODES = {80: "idle", 81: "max", 82: "oom"}

# The proxy image runs `squid -N -f SQUID_CONF_PATH`; the backend mounts the file.
SQUID_CONF_DIR = "/etc/squid/paude"
SQUID_CONF_NAME = "squid.conf"
SQUID_CONF_PATH = f"{SQUID_CONF_DIR}/{SQUID_CONF_NAME}"
PROXY_PORT = 3128
# A cluster proxy's htpasswd is mounted here, and the proxy image's squid
# package checks it with this helper (the proxy's credential: docs/openshift.md).
SQUID_AUTH_DIR = "/etc/squid/paude-auth"
SQUID_BASIC_AUTH_HELPER = "/usr/lib/squid/basic_ncsa_auth"

# A Debian package name (Policy 5.6.1), optionally pinned as name=version
# (the version starts with a digit; an epoch is "1:"). Used by paude.json's
# ``image.packages`` and by the image builder: one rule for both.
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[0-9][A-Za-z0-9.+~:-]*)?")
PACKAGE_EXAMPLES = "'python3' or 'jq=1.6-2.1'"
# An npm version or dist-tag of the agent: no spaces, slashes or shell syntax.
AGENT_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def is_debian_package(name: str) -> bool:
    """Answer whether ``name`` is a Debian package name, optionally ``=version``."""
    return DEBIAN_PACKAGE.fullmatch(name) is not None

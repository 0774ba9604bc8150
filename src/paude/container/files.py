"""The one list of files shipped in paude's images, and the Containerfiles made from it.

Every file under ``container/data/`` is listed here: either it is copied into
an image (:data:`SHIPPED_FILES`) or it is a checked-in rendered Containerfile
(:data:`CONTAINERFILES`). Unit tests fail when ``data/`` and this module
disagree, so adding a file is one edit here plus the file itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from paude.facts import (
    AGENT_UID,
    CONTAINER_HOME,
    DEFAULT_BASE_IMAGE,
    DEFAULT_CLAUDE_CODE_VERSION,
    DEFAULT_WORKSPACE,
    ENTRYPOINT_PATH,
    PROXY_PORT,
    SEED_DIR,
    SQUID_CONF_DIR,
    SQUID_CONF_PATH,
    STATE_DIR,
    TMUX_CONF_PATH,
)

ImageKind = Literal["agent", "proxy", "gateway"]
AGENT_HOME = CONTAINER_HOME

# Name of the extra CA bundle inside the build context, and where it lands.
CA_CONTEXT_NAME = "paude-extra-ca.crt"
CA_INSTALL_PATH = "/usr/local/share/ca-certificates/paude-extra.crt"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV_VARS = ("NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "SSL_CERT_FILE")

AGENT_APT_PACKAGES = (
    "ca-certificates", "curl", "git", "inotify-tools", "nodejs", "npm", "rsync", "tmux",
)
# inotify-tools: the OpenShift proxy pod's reload container waits on the mounted
# ConfigMap with inotifywait (backends/openshift/proxy.py).
PROXY_APT_PACKAGES = ("squid", "inotify-tools")
GATEWAY_APT_PACKAGES = ("ca-certificates", "python3", "python3-venv")
# The gateway's Python dependencies, pinned (Debian's google-auth is 1.5, from 2018).
GATEWAY_PIP_PACKAGES = ("aiohttp==3.14.5", "google-auth==2.63.0", "requests==2.34.2")
GATEWAY_VENV = "/opt/paude-gateway"
GATEWAY_SRC = "/opt/paude"  # on PYTHONPATH: paude.gateway lives under it
GATEWAY_UID = 65532  # no passwd entry needed; owns nothing in the image


@dataclass(frozen=True)
class ShippedFile:
    """A file from ``data/`` that is copied into an image."""

    name: str  # its path in the build context
    dest: str
    mode: int
    kinds: tuple[ImageKind, ...]
    package: str = "paude.container"  # read from this package (``data/`` for the default)


SHIPPED_FILES: tuple[ShippedFile, ...] = (
    ShippedFile("paude-entrypoint", ENTRYPOINT_PATH, 0o755, ("agent",)),
    ShippedFile("tmux.conf", TMUX_CONF_PATH, 0o644, ("agent",)),
    # The gateway runs paude's own modules (paude is a namespace package there).
    *(ShippedFile(f"gateway/{module}", f"{GATEWAY_SRC}/paude/gateway/{module}", 0o644,
                  ("gateway",), package="paude.gateway")
      for module in ("__init__.py", "policy.py", "tokens.py", "app.py")),
)

# Checked-in renderings (with default settings) of each kind's Containerfile.
CONTAINERFILES: dict[ImageKind, str] = {
    "agent": "Containerfile.agent",
    "proxy": "Containerfile.proxy",
    "gateway": "Containerfile.gateway",
}


def read_data(name: str) -> bytes:
    """Return the bytes of the file ``name`` in ``container/data/``."""
    return resources.files("paude.container").joinpath("data", name).read_bytes()


def read_shipped(shipped: ShippedFile) -> bytes:
    """Return the bytes of ``shipped`` (from ``data/`` or from its Python package)."""
    if shipped.package == "paude.container":
        return read_data(shipped.name)
    return resources.files(shipped.package).joinpath(shipped.name.rpartition("/")[2]).read_bytes()


def shipped_files(kind: ImageKind) -> tuple[ShippedFile, ...]:
    """Return the shipped files that go into an image of ``kind``."""
    return tuple(f for f in SHIPPED_FILES if kind in f.kinds)


def render_containerfile(
    kind: ImageKind,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    claude_code_version: str = DEFAULT_CLAUDE_CODE_VERSION,
    packages: tuple[str, ...] = (),
    setup_command: str | None = None,
    has_ca_bundle: bool = False,
) -> str:
    """Render the Containerfile of an image of ``kind`` (inputs must be validated)."""
    if kind == "proxy":
        lines = _proxy_lines(base_image)
    elif kind == "gateway":
        lines = _gateway_lines(base_image, has_ca_bundle=has_ca_bundle)
    else:
        lines = _agent_lines(
            base_image,
            claude_code_version=claude_code_version,
            packages=packages,
            setup_command=setup_command,
            has_ca_bundle=has_ca_bundle,
        )
    header = [
        f"# paude {kind} image. Rendered by paude.container.files; do not edit by hand.",
        "",
    ]
    return "\n".join(header + lines) + "\n"


def _apt_install(packages: tuple[str, ...]) -> str:
    # Debian's mirror answers over plain HTTP, so apt works before any extra CA
    # is installed; ca-certificates must be there before update-ca-certificates.
    names = " ".join(packages)
    return (
        "RUN apt-get update \\\n"
        f"    && apt-get install -y --no-install-recommends {names} \\\n"
        "    && rm -rf /var/lib/apt/lists/*"
    )


def _ca_lines() -> list[str]:
    env = " \\\n    ".join(f"{name}={SYSTEM_CA_BUNDLE}" for name in CA_ENV_VARS)
    return [
        f"COPY {CA_CONTEXT_NAME} {CA_INSTALL_PATH}",
        "RUN update-ca-certificates",
        f"ENV {env}",
    ]


def _agent_lines(
    base_image: str,
    *,
    claude_code_version: str,
    packages: tuple[str, ...],
    setup_command: str | None,
    has_ca_bundle: bool,
) -> list[str]:
    apt = tuple(sorted(set(AGENT_APT_PACKAGES) | set(packages)))
    lines = [f"FROM {base_image}", "ENV DEBIAN_FRONTEND=noninteractive", _apt_install(apt)]
    if has_ca_bundle:
        lines += _ca_lines()
    lines += [
        # The agent updates only by rebuilding the image with a new pin.
        "ENV DISABLE_AUTOUPDATER=1",
        f"RUN npm install -g @anthropic-ai/claude-code@{claude_code_version} \\\n"
        "    && npm cache clean --force",
        f"RUN useradd --uid {AGENT_UID} --gid 0 --home-dir {AGENT_HOME} "
        "--create-home --shell /bin/bash paude",
    ]
    if setup_command is not None:
        # Exec form with a JSON string: the command text is never re-parsed here.
        lines.append(f'RUN ["/bin/sh", "-c", {json.dumps(setup_command)}]')
    lines += [
        *_agent_dir_lines(),
        *_copy_lines("agent"),
        f"USER {AGENT_UID}",
        f'ENTRYPOINT ["{ENTRYPOINT_PATH}"]',
    ]
    return lines


def _agent_dir_lines() -> list[str]:
    # uid 1000 by default, but OpenShift's restricted SCC runs an arbitrary UID
    # with GID 0: everything the agent writes is group 0 and group-writable
    # (applied after the user's setup command, which may add files to HOME),
    # and HOME is explicit because that UID has no passwd entry. /etc/passwd
    # is group-writable so the entrypoint can add one (see paude-entrypoint).
    dirs = f"{AGENT_HOME} {DEFAULT_WORKSPACE} {SEED_DIR} {STATE_DIR}"
    return [
        f"RUN mkdir -p {dirs} \\\n"
        f"    && chgrp -R 0 {dirs} /etc/passwd \\\n"
        f"    && chmod -R g=u {dirs} /etc/passwd \\\n"
        # The agent writes why its session stopped here (rootless: as uid 1000).
        f"    && chown {AGENT_UID} {STATE_DIR}",
        f"ENV HOME={AGENT_HOME} PAUDE_WORKSPACE={DEFAULT_WORKSPACE}",
        f"WORKDIR {DEFAULT_WORKSPACE}",
    ]


def _copy_lines(kind: ImageKind) -> list[str]:
    lines = [f"COPY {f.name} {f.dest}" for f in shipped_files(kind)]
    if not lines:
        return []
    modes = " && ".join(f"chmod {f.mode:o} {f.dest}" for f in shipped_files(kind))
    return [*lines, f"RUN {modes}"]


PROXY_UID = 13  # Debian's `proxy` user


def _proxy_lines(base_image: str) -> list[str]:
    # squid.conf is not baked in: the backend mounts the rendered one read-only
    # at SQUID_CONF_PATH. squid runs unprivileged from the start (the `proxy`
    # user, or any UID with group 0 on OpenShift), so it never needs root's
    # capabilities, and it cannot open /dev/stdout; that squid.conf must say:
    #   access_log stdio:/var/log/squid/access.log
    #   cache_log /var/log/squid/cache.log
    #   pid_filename none            (or a path the user can write)
    #   shutdown_lifetime 0 seconds  (else `podman stop` waits out its timeout)
    # No extra CA: the build fetches over plain HTTP and squid only tunnels TLS.
    dirs = "/var/log/squid /var/spool/squid /var/run/squid"
    return [
        f"FROM {base_image}",
        "ENV DEBIAN_FRONTEND=noninteractive",
        _apt_install(PROXY_APT_PACKAGES),
        f"RUN mkdir -p {dirs} {SQUID_CONF_DIR} \\\n"
        f"    && chown -R proxy:0 {dirs} && chmod -R g=u {dirs}",
        f"EXPOSE {PROXY_PORT}",
        # A numeric non-root user, so runAsNonRoot admits it as written.
        f"USER {PROXY_UID}",
        # -N: no daemon, so squid is the container's main process.
        f'ENTRYPOINT ["squid", "-N", "-f", "{SQUID_CONF_PATH}"]',
    ]


def _gateway_lines(base_image: str, *, has_ca_bundle: bool) -> list[str]:
    # The extra CA is trusted by pip at build time and by the gateway's TLS
    # clients at run time (a TLS-inspecting proxy, or a test's stand-ins).
    pip = f"{GATEWAY_VENV}/bin/pip"
    lines = [f"FROM {base_image}", "ENV DEBIAN_FRONTEND=noninteractive",
             _apt_install(GATEWAY_APT_PACKAGES)]
    if has_ca_bundle:
        lines += _ca_lines()
    lines += [
        f"RUN python3 -m venv {GATEWAY_VENV} \\\n"
        f"    && {pip} install --no-cache-dir --cert {SYSTEM_CA_BUNDLE} "
        f"{' '.join(GATEWAY_PIP_PACKAGES)}",
        *_copy_lines("gateway"),
        f"ENV PYTHONPATH={GATEWAY_SRC} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        f"USER {GATEWAY_UID}",
        f'ENTRYPOINT ["{GATEWAY_VENV}/bin/python", "-m", "paude.gateway.app"]',
    ]
    return lines


def write_rendered_containerfiles() -> None:
    """Rewrite the checked-in Containerfiles from this module (for developers)."""
    data = Path(__file__).parent / "data"
    for kind, name in CONTAINERFILES.items():
        (data / name).write_text(render_containerfile(kind), encoding="utf-8")


if __name__ == "__main__":
    write_rendered_containerfiles()

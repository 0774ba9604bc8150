"""Assemble what a command needs: workspace, config, backend and session spec."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paude.auth import build_agent_model_env, find_model_auth, read_adc
from paude.backends.base import Backend, Credentials, SessionSpec
from paude.claude_home import CLAUDE_DIR_ENTRIES, render_claude_json_seed
from paude.config import LoadedConfig, load_config
from paude.domains import DEFAULT_DOMAINS, Allowlist, host_of_base_url
from paude.errors import ConfigError
from paude.naming import derive_session_name, validate_session_name

if TYPE_CHECKING:
    from paude.runner import Runner

# With --allow-network --pass-credentials only (the old way): the model
# variables, secrets included, reach the agent. Values never appear in argv.
PASSTHROUGH_ENV = (
    "CLAUDE_CODE_USE_VERTEX",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUD_ML_REGION",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_VERTEX_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
)
# Model endpoints the agent is pointed at: their hosts join the allowlist.
BASE_URL_ENV = ("ANTHROPIC_BASE_URL", "ANTHROPIC_VERTEX_BASE_URL")


@dataclass
class Globals:
    """Options given before the command (``paude [OPTIONS] COMMAND``)."""

    backend: str | None = None
    verbosity: int = 0
    workspace: Path | None = None
    openshift_context: str | None = None
    openshift_namespace: str | None = None
    extra_args: list[str] = field(default_factory=list)  # what followed ``--``


def resolve_workspace(path: Path | None) -> Path:
    """Return the absolute workspace, refusing one that does not exist."""
    workspace = (path or Path.cwd()).expanduser()
    if not workspace.is_dir():
        raise ConfigError(f"workspace {str(workspace)!r} does not exist or is not a directory",
                          hint="Run paude in your project directory, or pass --workspace DIR.")
    return workspace.resolve()


def config_overrides(
    g: Globals, *, backend: str | None = None, allow_domains: Sequence[str] = ()
) -> dict[str, Any]:
    """Return the command-line layer of the configuration."""
    section: dict[str, Any] = {}
    if backend or g.backend:
        section["type"] = backend or g.backend
    if g.openshift_context:
        section["context"] = g.openshift_context
    if g.openshift_namespace:
        section["namespace"] = g.openshift_namespace
    out: dict[str, Any] = {"backend": section} if section else {}
    if allow_domains:
        out["allowed_domains"] = list(allow_domains)
    return out


def load(g: Globals, workspace: Path, overrides: Mapping[str, Any]) -> LoadedConfig:
    """Load the configuration for ``workspace``."""
    return load_config(workspace, env=os.environ, overrides=overrides)


def session_name(name: str | None, workspace: Path) -> str:
    """Return the explicit (validated) or derived session name."""
    return validate_session_name(name) if name else derive_session_name(workspace)


def session_allowlist(loaded: LoadedConfig, env: Mapping[str, str]) -> Allowlist:
    """Return the session's allowlist, parsed once: config and flags (the default is empty).

    Model traffic needs no entry: it goes to the session's gateway, whose
    upstreams are fixed (on both backends).

    Raises:
        ConfigError: an environment value (a model endpoint URL) or an entry is not valid.
    """
    domains = list(DEFAULT_DOMAINS)
    _check_model_urls(env)
    try:
        return Allowlist.parse([*domains, *loaded.config.allowed_domains])
    except ValueError as err:  # config entries are checked on load; this is a safety net
        raise ConfigError(str(err), hint="Fix allowed_domains or --allow-domain.") from err


def _check_model_urls(env: Mapping[str, str]) -> None:
    """Refuse a model endpoint URL the session's gateway (or agent) could not use.

    Their hosts need no allowlist entry: the gateway reaches them itself.
    """
    for variable in BASE_URL_ENV:
        if env.get(variable):
            try:
                host_of_base_url(variable, env[variable])
            except ValueError as err:
                raise ConfigError(str(err), hint=f"Point {variable} at an address the sandbox "
                                  f"can reach, or unset it.") from err


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


def host_credentials(home: Path) -> Credentials:
    """Return the credential paths that exist under ``home`` (never ~/.ssh or gh)."""
    return Credentials(
        gcloud_dir=_existing(home / ".config" / "gcloud"),
        gitconfig=_existing(home / ".gitconfig"),
        claude_dir=_existing(home / ".claude"),
        claude_json=_existing(home / ".claude.json"),
        claude_entries=tuple(p for p in (home / ".claude" / e for e in CLAUDE_DIR_ENTRIES)
                             if p.exists()),
    )


def read_ca_bundle(
    paths: Sequence[str], workspace: Path, *, confined: Sequence[str] = ()
) -> bytes | None:
    """Return the concatenated extra CA certificates, or ``None`` when there are none.

    The ``confined`` entries came from the workspace's paude.json: they must
    resolve inside the workspace or the user's paude config directory.
    """
    from paude.config.load import user_config_path
    from paude.trust.refuse import read_confined

    chunks = []
    for raw in paths:
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else workspace / path
        try:
            if raw in confined:
                roots = [workspace, user_config_path(os.environ).parent]
                data = read_confined(path, roots, what="extra CA certificate file")[0]
            else:
                data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"extra CA certificate file {str(path)!r}: {err.strerror}",
                              hint="Fix extra_ca_certificates or PAUDE_EXTRA_CA_CERTS.") from err
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError(f"extra CA certificate file {str(path)!r} holds no PEM certificate")
        chunks.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(chunks) or None


@dataclass(frozen=True)
class StartOptions:
    """The start command's flags."""

    name: str | None = None
    yolo: bool = False
    allow_network: bool = False
    rebuild: bool = False
    claude_args: tuple[str, ...] = ()
    pass_credentials: bool = False  # only with allow_network


def _read_text(path: Path | None) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path else None
    except OSError:
        return None


def build_session_spec(
    loaded: LoadedConfig, workspace: Path, opts: StartOptions
) -> SessionSpec:
    """Return the spec of the session for ``workspace``."""
    env = os.environ
    dev = loaded.devcontainer
    credentials = host_credentials(Path.home())
    allowlist = session_allowlist(loaded, env)  # checks the endpoint URLs first
    no_gateway = opts.allow_network
    old_way = opts.allow_network and opts.pass_credentials
    auth = None if no_gateway else find_model_auth(env, *read_adc(env, Path.home()))
    return SessionSpec(
        name=session_name(opts.name, workspace),
        workspace=workspace,
        allowed_domains=allowlist,
        allow_network=opts.allow_network,
        yolo=opts.yolo,
        claude_args=opts.claude_args,
        env={k: env[k] for k in PASSTHROUGH_ENV if env.get(k)} if old_way else {},
        credentials=credentials,
        model_auth=auth,
        model_env={} if no_gateway else build_agent_model_env(auth, env),
        pass_credentials=old_way,
        claude_json_seed=render_claude_json_seed(_read_text(credentials.claude_json)),
        rebuild=opts.rebuild,
        ca_bundle=read_ca_bundle(loaded.config.extra_ca_certificates, workspace,
                                 confined=loaded.workspace_ca),
        base_image=dev.image if dev else None,
        dockerfile=dev.dockerfile if dev else None,
    )


def make_runner(g: Globals) -> Runner:
    """Return the process runner (tests swap this for a recording one)."""
    from paude.runner import SystemRunner

    return SystemRunner(show_stderr=g.verbosity > 0)


def make_backend(loaded: LoadedConfig, g: Globals) -> Backend:
    """Return the configured backend."""
    from paude.backends.registry import get_backend
    from paude.cli.output import RichReporter

    return get_backend(
        loaded.config.backend.type,
        config=loaded.config,
        runner=make_runner(g),
        reporter=RichReporter(verbosity=g.verbosity),
    )

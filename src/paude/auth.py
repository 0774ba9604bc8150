"""Which credential the session's model calls use, found on the host (never in the agent).

Modes, first match wins:

* Vertex AI: ``CLAUDE_CODE_USE_VERTEX=1`` and Application Default Credentials
  (``$GOOGLE_APPLICATION_CREDENTIALS`` or ``~/.config/gcloud/application_default_credentials.json``,
  made by ``gcloud auth application-default login``) and a project
  (``ANTHROPIC_VERTEX_PROJECT_ID``, else ``GOOGLE_CLOUD_PROJECT``);
* Anthropic API key: ``ANTHROPIC_API_KEY``;
* Claude subscription: ``CLAUDE_CODE_OAUTH_TOKEN`` (made by ``claude setup-token``).

The credential goes to the gateway only; the agent gets a base URL and a
placeholder token (:func:`build_agent_model_env`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paude.errors import ConfigError
from paude.gateway.policy import (
    ANTHROPIC_UPSTREAM,
    GATEWAY_HOST,
    GATEWAY_PORT,
    PLACEHOLDER_TOKEN,
    AuthMode,
    GatewayConfig,
)

ADC_RELATIVE = Path(".config") / "gcloud" / "application_default_credentials.json"
NO_CREDENTIAL_HINT = (
    "Run `claude setup-token` on this machine and export CLAUDE_CODE_OAUTH_TOKEN "
    "(Claude subscription), or export ANTHROPIC_API_KEY, or run "
    "`gcloud auth application-default login` and export CLAUDE_CODE_USE_VERTEX=1 "
    "ANTHROPIC_VERTEX_PROJECT_ID=... CLOUD_ML_REGION=...  (see: paude setup --help)"
)
# Not secret, and what Claude Code needs to pick its provider and region.
VERTEX_ENV = ("CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION")
VERTEX_REGION_PREFIX = "VERTEX_REGION_"  # Claude Code's per-model region overrides


@dataclass(frozen=True)
class ModelAuth:
    """The session's model credential, as found on the host. Its secrets never print."""

    mode: AuthMode
    source: str  # where it came from, for messages
    secret: str = field(default="", repr=False)
    adc: Mapping[str, Any] = field(default_factory=dict, repr=False)
    project: str = ""
    anthropic_upstream: str = ANTHROPIC_UPSTREAM

    def gateway_config(self, clients: tuple[str, ...]) -> GatewayConfig:
        """Return the gateway's config for a session whose agent sits in ``clients``."""
        return GatewayConfig(mode=self.mode, clients=clients, secret=self.secret,
                             adc=self.adc, project=self.project,
                             anthropic_upstream=self.anthropic_upstream)


def find_model_auth(env: Mapping[str, str], adc_text: str | None,
                    adc_path: str) -> ModelAuth | None:
    """Return the credential ``env`` (and the ADC file's text) select, or ``None``.

    Raises:
        ConfigError: the selected mode is incomplete (no ADC, no project, a
            non-https ANTHROPIC_BASE_URL).
    """
    if env.get("CLAUDE_CODE_USE_VERTEX", "") not in ("", "0", "false"):
        return _vertex(env, adc_text, adc_path)
    upstream = env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_UPSTREAM
    if not upstream.startswith("https://"):
        raise ConfigError(f"ANTHROPIC_BASE_URL {upstream!r} is not an https URL",
                          hint="The gateway forwards over TLS only: use an https URL.")
    upstream = upstream.rstrip("/")
    if env.get("ANTHROPIC_API_KEY"):
        return ModelAuth(AuthMode.API_KEY, "ANTHROPIC_API_KEY", secret=env["ANTHROPIC_API_KEY"],
                         anthropic_upstream=upstream)
    if env.get("CLAUDE_CODE_OAUTH_TOKEN"):
        return ModelAuth(AuthMode.OAUTH, "CLAUDE_CODE_OAUTH_TOKEN",
                         secret=env["CLAUDE_CODE_OAUTH_TOKEN"], anthropic_upstream=upstream)
    return None


def _vertex(env: Mapping[str, str], adc_text: str | None, adc_path: str) -> ModelAuth:
    if adc_text is None:
        raise ConfigError(f"CLAUDE_CODE_USE_VERTEX is set but there are no credentials at "
                          f"{adc_path}", hint="Run: gcloud auth application-default login")
    try:
        adc = json.loads(adc_text)
    except ValueError as err:
        raise ConfigError(f"{adc_path} is not JSON: {err}",
                          hint="Run: gcloud auth application-default login") from err
    project = env.get("ANTHROPIC_VERTEX_PROJECT_ID") or env.get("GOOGLE_CLOUD_PROJECT") or ""
    if not project:
        raise ConfigError("CLAUDE_CODE_USE_VERTEX is set but no project is",
                          hint="Export ANTHROPIC_VERTEX_PROJECT_ID=<your GCP project>")
    return ModelAuth(AuthMode.VERTEX, adc_path, adc=adc, project=project)


def build_agent_model_env(auth: ModelAuth | None, env: Mapping[str, str]) -> dict[str, str]:
    """Return the (non-secret) variables that point the agent's Claude Code at the gateway."""
    out = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    if auth is None:
        return out
    base = f"http://{GATEWAY_HOST}:{GATEWAY_PORT}"
    if auth.mode is AuthMode.VERTEX:
        out.update({k: env[k] for k in VERTEX_ENV if env.get(k)})
        out.update({k: v for k, v in env.items() if k.startswith(VERTEX_REGION_PREFIX)})
        out.update({"CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": auth.project,
                    "ANTHROPIC_VERTEX_BASE_URL": f"{base}/v1",
                    "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1"})
        out.setdefault("CLOUD_ML_REGION", "global")
    else:
        out.update({"ANTHROPIC_BASE_URL": base, "ANTHROPIC_AUTH_TOKEN": PLACEHOLDER_TOKEN})
    return out


def read_adc(env: Mapping[str, str], home: Path) -> tuple[str | None, str]:
    """Return the ADC file's text (``None`` when absent) and its path."""
    path = Path(env.get("GOOGLE_APPLICATION_CREDENTIALS") or home / ADC_RELATIVE)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError:
        return None, str(path)

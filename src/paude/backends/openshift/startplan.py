"""The OpenShift start plan: the session's Secrets, then its objects (pure).

The Secrets are ``SecretManifest`` steps: ``--dry-run`` prints them with
their values redacted, the executor applies exactly these steps, and
``paude manifests`` (an export holding references only) leaves them out.
"""

from __future__ import annotations

from paude.backends.base import SessionSpec
from paude.backends.openshift.credentials import build_env_secret
from paude.backends.openshift.gateway import build_gateway_secret, has_gateway
from paude.backends.openshift.manifests import build_session_plan, secret_env_keys
from paude.backends.openshift.objects import ClusterSettings
from paude.backends.openshift.proxy import build_proxy_auth_secret
from paude.plan import Plan, SecretManifest


def build_secret_steps(
    spec: SessionSpec, settings: ClusterSettings, *, proxy_password: str
) -> list[SecretManifest]:
    """Return the Secrets a start applies before the session's objects.

    The session's env Secret (only with secret env values) and its gateway's
    credential (restricted, with a model credential) are applied on every
    start; the proxy's credential (restricted sessions) is made once, with
    ``proxy_password``, and kept: the agents using that proxy hold it.
    """
    steps: list[SecretManifest] = []
    keys = secret_env_keys(spec)
    if keys:
        env = build_env_secret(spec, keys, settings)
        steps.append(SecretManifest(
            env, f"Secret {env['metadata']['name']}: the secret env values {', '.join(keys)}"))
    if not spec.allow_network:
        auth = build_proxy_auth_secret(spec.allowed_domains, settings, proxy_password)
        steps.append(SecretManifest(
            auth, f"Secret {auth['metadata']['name']}: the proxy's credential, made once and"
                  " kept (its agents hold it)", keep_existing=True))
    if has_gateway(spec):
        gateway = build_gateway_secret(spec, settings)
        steps.append(SecretManifest(
            gateway, f"Secret {gateway['metadata']['name']}: the model credential, mounted"
                     " by the session's gateway only"))
    return steps


def build_start_plan(
    spec: SessionSpec, settings: ClusterSettings, *, proxy_password: str
) -> Plan:
    """Return what a start applies, in order: the workspace PVC, the Secrets, the rest.

    The PVC first, before the proxy's credential too: it names the session's
    proxy for a stop after an interrupted start (see ``build_session_objects``).
    """
    secrets = build_secret_steps(spec, settings, proxy_password=proxy_password)
    claim, *rest = build_session_plan(spec, settings).steps
    return Plan((claim, *secrets, *rest))

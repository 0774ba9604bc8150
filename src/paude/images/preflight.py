"""Before a long build, check in a second that the registries it needs take our TLS trust.

Behind a TLS-intercepting proxy a build without the proxy's CA fails only
when npm runs, minutes in. When a proxy is set in the environment or an
extra CA is configured, one HTTPS request to each registry the build needs
(through the proxy, as the build goes) trusting what the build will trust
(the system's CAs plus the extra CA) tells at once; a certificate it does
not trust stops the start with the fix. Nothing is sent but a HEAD request.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paude.container.image import ImageSpec
from paude.errors import ImageBuildError

NPM_REGISTRY = "https://registry.npmjs.org/"  # the agent image's npm install
PROBE_TIMEOUT = 10.0
CA_HINT = ("Give paude the proxy's CA: export PAUDE_EXTRA_CA_CERTS=/path/to/proxy-ca.pem "
           "(or extra_ca_certificates in paude.json), then retry.")


@dataclass(frozen=True)
class Probe:
    """One HTTPS request a build depends on: ``url``, through ``proxy`` (None: direct)."""

    url: str
    proxy: str | None


def build_probes(specs: Sequence[ImageSpec], env: Mapping[str, str]) -> list[Probe]:
    """Return the probes to run before building ``specs`` (none without a proxy or a CA)."""
    proxies = {k.lower(): v for k, v in env.items() if k.lower() in ("https_proxy", "no_proxy")}
    has_ca = any(s.ca_bundle for s in specs)
    if not (proxies.get("https_proxy") or has_ca):
        return []
    urls = [NPM_REGISTRY] if any(s.kind == "agent" for s in specs) else []
    probes = []
    for url in urls:
        host = urllib.parse.urlsplit(url).hostname or ""
        bypass = _bypassed(host, proxies.get("no_proxy", ""))
        probes.append(Probe(url, None if bypass else proxies.get("https_proxy") or None))
    return probes


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",") if e.strip()):
        if entry == "*" or host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")):
            return True
    return False


def _context(ca_bundle: bytes | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cadata=ca_bundle.decode("ascii", "replace"))
    return context


def _connection(probe: Probe, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    target = urllib.parse.urlsplit(probe.url)
    if probe.proxy is None:
        return http.client.HTTPSConnection(target.hostname or "", target.port or 443,
                                           context=context, timeout=PROBE_TIMEOUT)
    proxy = urllib.parse.urlsplit(probe.proxy if "://" in probe.proxy else f"http://{probe.proxy}")
    conn = http.client.HTTPSConnection(proxy.hostname or "", proxy.port or 80, context=context,
                                       timeout=PROBE_TIMEOUT)
    conn.set_tunnel(target.hostname or "", target.port or 443)
    return conn


def run_probe(probe: Probe, ca_bundle: bytes | None) -> None:
    """Make ``probe``'s request; any HTTP answer will do, an untrusted certificate will not.

    Raises:
        ImageBuildError: TLS to the registry is intercepted by a certificate we do not
            trust, or the proxy refuses connections.
    """
    host = urllib.parse.urlsplit(probe.url).hostname
    via = f" through the proxy {probe.proxy}" if probe.proxy else ""
    conn = _connection(probe, _context(ca_bundle))
    try:
        conn.request("HEAD", urllib.parse.urlsplit(probe.url).path or "/")
        conn.getresponse().read()
    except ssl.SSLCertVerificationError as err:
        configured = " (the configured extra CA does not sign it)" if ca_bundle else ""
        raise ImageBuildError(
            f"HTTPS to {host}{via} shows a certificate this build would not trust:"
            f" {err.verify_message}{configured}; the build would fail at npm install",
            hint=CA_HINT) from err
    except ConnectionRefusedError as err:
        if probe.proxy is None:
            return  # no proxy to blame: the build reports what it meets
        raise ImageBuildError(f"the proxy {probe.proxy} (HTTPS_PROXY) refuses connections",
                              hint="Check HTTPS_PROXY, or unset it.") from err
    except (OSError, http.client.HTTPException):
        return  # offline or a slow network: not the CA question; the build says what it meets
    finally:
        conn.close()


def run_preflight(specs: Sequence[ImageSpec], env: Mapping[str, str]) -> None:
    """Run the probes for building ``specs``, with the extra CA the agent image trusts."""
    ca = next((s.ca_bundle for s in specs if s.ca_bundle), None)
    for probe in build_probes(specs, env):
        run_probe(probe, ca)



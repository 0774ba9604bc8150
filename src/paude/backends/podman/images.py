"""Which images a podman session uses: the builders shared with the openshift backend."""

from paude.backends.images import agent_image_spec, gateway_image_spec, proxy_image_spec

__all__ = ["agent_image_spec", "gateway_image_spec", "proxy_image_spec"]

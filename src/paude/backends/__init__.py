"""Backends: podman (default) and openshift, behind one protocol."""

"""The podman backend."""

"""Workspace trust: what a workspace may decide, and what the agent may never change.

- :mod:`paude.trust.paths`: the workspace paths that must never reach the
  host from inside the sandbox (mounted read-only on podman, never synced
  back on OpenShift).
- :mod:`paude.trust.git`: the git metadata that runs on the host, and the
  settings in it that are worth a warning.
- :mod:`paude.trust.refuse`: workspaces and host paths paude refuses.
- :mod:`paude.trust.approval`: the approved digests of a workspace's
  paude.json and devcontainer files (``paude trust``), and the readable diff.
"""

"""Getting paude's images to a registry a cluster pulls from.

``refs`` (what a pushed image is called), ``auth`` (temporary login files),
``argv`` (skopeo/podman commands) and ``failures`` (stderr -> one-line errors)
are pure; ``publish`` is the thin executor that checks, builds and pushes.
"""

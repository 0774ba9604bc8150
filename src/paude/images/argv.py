"""The skopeo and podman commands that check and push an image (pure)."""

from __future__ import annotations

from paude.images.refs import RegistryTarget


def _options(target: RegistryTarget, authfile: str | None) -> list[str]:
    options = [] if authfile is None else ["--authfile", authfile]
    if not target.tls_verify:
        options.append("--tls-verify=false")
    if target.cert_dir is not None:
        options += ["--cert-dir", target.cert_dir]
    return options


def build_inspect_argv(target: RegistryTarget, ref: str, authfile: str | None) -> list[str]:
    """Return the one manifest request that tells whether ``ref`` is in the registry.

    ``--raw`` prints the manifest's exact bytes (their sha256 is the digest)
    and fetches nothing else: no config blob, no layers.
    """
    return ["skopeo", "inspect", "--raw", "--retry-times=0", *_options(target, authfile),
            f"docker://{ref}"]  # fmt: skip


def build_push_argv(
    target: RegistryTarget, local_tag: str, ref: str, *, authfile: str | None, digestfile: str
) -> list[str]:
    """Return the ``podman push`` that uploads the layers the registry lacks.

    ``--digestfile`` receives the digest of the manifest as pushed, which is
    what pods reference.
    """
    return ["podman", "push", *_options(target, authfile),
            "--digestfile", digestfile, local_tag, f"docker://{ref}"]  # fmt: skip

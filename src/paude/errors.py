"""The one exception tree of paude.

Every failure a user can act on is a ``PaudeError``: one message, an optional
hint (the next thing to run) and an exit code. Only the CLI catches them.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class PaudeError(Exception):
    """Root of every expected failure."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str | None]:
        """Return the error as the stable ``{"error", "hint"}`` JSON shape."""
        return {"error": self.message, "hint": self.hint}


class ConfigError(PaudeError):
    """Bad configuration, names or flags: refused before anything is created."""

    exit_code = EXIT_USAGE


class RuntimeMissingError(PaudeError):
    """A required program (podman, oc, kubectl, rsync) is not installed."""


class NotLoggedInError(PaudeError):
    """No usable cluster credentials."""


class SessionNotFoundError(PaudeError):
    """The named session does not exist."""


class SessionNotRunningError(PaudeError):
    """The named session exists but does not run (stopped, pending or failed)."""


class ClusterError(PaudeError):
    """The Kubernetes API refused or failed a request."""


class OperationTimeoutError(PaudeError):
    """A step did not finish within its deadline."""


class ImageBuildError(PaudeError):
    """An image could not be built."""


class ImagePullError(ClusterError):
    """A node cannot pull a session's image (ErrImagePull / ImagePullBackOff)."""


class NetworkPolicyError(ClusterError):
    """The cluster does not enforce NetworkPolicy: a restricted session's agent is not started."""


class RegistryError(PaudeError):
    """An image registry is unreachable, refused the login, or refused a push."""


class CommandFailedError(PaudeError):
    """An external command exited non-zero."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stderr: str,
        *,
        hint: str | None = None,
    ) -> None:
        from paude.redact import redact_argv

        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        shown = redact_argv(argv)
        message = f"command failed with exit code {returncode}: {shown}"
        if tail:
            message += f"\n{tail}"
        super().__init__(message, hint=hint)


class SyncOffError(ConfigError):
    """The workspace sync is switched off (``sync.enabled`` is false)."""


class StorageFullError(PaudeError):
    """The disk holding podman's storage (images, containers) has no space left."""


class NameTakenError(PaudeError):
    """A container or network name paude needs belongs to something that is not paude's."""


class ImageMissingError(PaudeError):
    """A session's image was removed while the session exists."""


class DeviceMissingError(PaudeError):
    """A device the session asks for (a GPU, by its CDI name) is not on this host."""

"""podman's stderr → typed errors (paude.backends.podman.classify), and the
refusal of same-named objects paude did not make (network.require_ours)."""

from __future__ import annotations

import pytest

from paude.backends.podman.classify import ClassifyingRunner, classify_podman_error
from paude.backends.podman.network import require_ours
from paude.errors import (
    CommandFailedError,
    DeviceMissingError,
    ImageMissingError,
    NameTakenError,
    StorageFullError,
)
from paude.runner import Result

FULL = ("Error: creating container storage: creating read-write layer with ID \"ab12\": "
        "mkdir /var/lib/containers/storage/overlay/ab12: no space left on device")
GONE = "Error: localhost/paude-agent:0123: image not known"
# podman 4.3.1 on this machine, which has no CDI spec (no GPU).
NO_GPU = "Error: setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=0"


def failed(argv: list[str], stderr: str) -> CommandFailedError:
    return CommandFailedError(argv, 125, stderr)


def test_storage_full_is_one_line_with_a_hint() -> None:
    err = classify_podman_error(failed(["podman", "run", "-d", "--name", "x", "img"], FULL))
    assert isinstance(err, StorageFullError)
    assert "\n" not in err.message and "no space left" in err.message
    assert err.hint is not None and "podman system prune" in err.hint


def test_a_removed_image_names_the_container() -> None:
    err = classify_podman_error(failed(["podman", "run", "--name", "paude-s-agent", "img"], GONE))
    assert isinstance(err, ImageMissingError)
    assert err.message == "the image of paude-s-agent was removed"
    start = classify_podman_error(failed(["podman", "start", "paude-s-proxy"], GONE))
    assert isinstance(start, ImageMissingError) and "paude-s-proxy" in start.message


def test_a_gpu_the_host_lacks_is_one_line_naming_the_cdi_spec() -> None:
    argv = ["podman", "run", "-d", "--name", "x", "--device", "nvidia.com/gpu=0", "img"]
    err = classify_podman_error(failed(argv, NO_GPU))
    assert isinstance(err, DeviceMissingError)
    assert err.message == "this host has no device nvidia.com/gpu=0 (resources asks for it)"
    assert err.hint is not None and "nvidia-ctk cdi generate" in err.hint


@pytest.mark.parametrize("stderr", [
    'Error: network name paude-s already used: network already exists',
    'Error: the container name "paude-s-agent" is already in use by 47615ad',
    "Error: some failure nobody classified",
])
def test_other_failures_stay_command_failures(stderr: str) -> None:
    assert classify_podman_error(failed(["podman", "run", "--name", "n", "i"], stderr)) is None


class _Failing:
    def __init__(self, stderr: str) -> None:
        self.stderr = stderr

    def run(self, argv: object, **_: object) -> Result:
        raise failed(list(argv), self.stderr)  # type: ignore[call-overload]

    def stream(self, argv: object, **_: object) -> int:
        return 0

    def exec_replace(self, argv: object) -> None:
        return None


def test_the_runner_raises_the_typed_error_from_podmans() -> None:
    runner = ClassifyingRunner(_Failing(FULL))
    with pytest.raises(StorageFullError, match="storage is full") as caught:
        runner.run(["podman", "ps"], timeout=5)
    assert isinstance(caught.value.__cause__, CommandFailedError)
    unknown = ClassifyingRunner(_Failing("Error: network already exists"))
    with pytest.raises(CommandFailedError, match="already exists"):
        unknown.run(["podman", "network", "create", "n"], timeout=5)


def test_only_paudes_own_objects_of_the_session_are_used() -> None:
    ours = {"app.kubernetes.io/managed-by": "paude", "paude.io/session": "s"}
    require_ours(ours, "s", what="network paude-s")
    for labels in (None, {}, {"paude.io/test": "1"}, {**ours, "paude.io/session": "other"}):
        with pytest.raises(NameTakenError, match="network paude-s already exists and is not"
                                                 " paude's session s") as caught:
            require_ours(labels, "s", what="network paude-s")
        assert caught.value.hint is not None
        assert "podman network rm paude-s" in caught.value.hint
    with pytest.raises(NameTakenError) as caught:
        require_ours(None, "s", what="container paude-s-agent")
    assert caught.value.hint is not None and "podman rm paude-s-agent" in caught.value.hint

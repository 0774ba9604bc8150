"""scripts/test runs each podman module's tests in reverse order (tests/podman/conftest.py).

The order must really change, in parametrised modules too: grouping items by
every parameter once made blocks of one item in the modules whose ``paude_cli``
is function-scoped, and "reverse" moved nothing there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _collected(order: str) -> list[str]:
    env = {**os.environ, "PAUDE_TEST_ORDER": order}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "tests/podman"], cwd=REPO, env=env, capture_output=True, text=True, check=True,
        timeout=120).stdout
    return [line for line in out.splitlines() if "::" in line]


def _functions_by_module(items: list[str]) -> dict[str, list[str]]:
    """Each module's test functions in the order of their first item."""
    seen: dict[str, list[str]] = defaultdict(list)
    for item in items:
        module, _, name = item.partition("::")
        function = name.partition("[")[0]
        if function not in seen[module]:
            seen[module].append(function)
    return seen


def test_reverse_order_reverses_every_podman_module_with_two_tests_or_more() -> None:
    default, reverse = _collected("none"), _collected("reverse")
    assert sorted(default) == sorted(reverse)  # the same items, only moved
    before, after = _functions_by_module(default), _functions_by_module(reverse)
    multi = {m: fns for m, fns in before.items() if len(fns) > 1}
    assert len(multi) >= 10, multi.keys()  # the podman modules are all collected
    unchanged = [m for m, fns in multi.items() if after[m] == fns]
    assert not unchanged, f"reverse order leaves these modules' tests in order: {unchanged}"


def test_reverse_order_keeps_a_module_scoped_mode_together() -> None:
    """test_egress's session starts once per mode: all rootful items, then all rootless."""
    modes = [item.rpartition("[")[2].rstrip("]") for item in _collected("reverse")
             if item.startswith("tests/podman/test_egress.py::")]
    changes = sum(1 for a, b in zip(modes, modes[1:], strict=False) if a != b)
    assert set(modes) == {"rootful", "rootless"} and changes == 1, modes

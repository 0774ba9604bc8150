"""Size limits of shared/STYLE.md that ruff cannot check: modules stay small."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "paude"
MODULE_LIMIT = 400


def test_no_module_is_over_the_limit() -> None:
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert sizes, "no modules found"
    over = {str(p): n for p, n in sizes.items() if n > MODULE_LIMIT}
    assert not over, f"modules over {MODULE_LIMIT} lines (make them packages): {over}"


def test_only_the_runner_package_imports_subprocess() -> None:
    users = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                   if "import subprocess" in p.read_text())
    assert users == ["runner/pipes.py", "runner/system.py", "runner/terminal.py"]

"""``python -m paude.sync STATE_DIR``: the background sync of one session."""

from __future__ import annotations

import sys
from pathlib import Path

from paude.sync.api import run_daemon
from paude.sync.daemon import SyncBusyError, SyncFiles


def main() -> int:
    """Run until stopped; exit 0 quietly when this session's sync already runs."""
    try:
        return run_daemon(SyncFiles(Path(sys.argv[1])))
    except SyncBusyError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

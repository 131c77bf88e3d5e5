"""Files that hold callers' data or secrets are for the service's user only: folders 0700, files 0600.

The embedded database and the caller key live in the data folder; whatever the umask, nobody else on the machine may
read them. An existing folder or file with wider permissions is tightened (and said so) at start-up.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        os.chmod(path, mode)
        log.warning("permissions of %s tightened from %o to %o", path, current, mode)


def private_dir(path: Path) -> Path:
    """Make the folder (and its missing parents) or tighten it: readable by its owner only."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create the file empty, or tighten it: readable and writable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(descriptor)
    _tighten(path, PRIVATE_FILE_MODE)
    return path

"""Secret keys generated on first use and kept in the data directory, readable by their owner only."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from telephony.storage.private_files import private_dir, private_file


def read_or_create_key(path: Path, make: Callable[[], str]) -> str:
    """The key in `path`; on first use `make()` is written there (mode 0600) and returned. A key file made before, or
    copied in, with wider permissions is tightened, and so is its folder (0700).

    Raises:
        OSError: the file or its folder cannot be made or read.
    """
    private_dir(path.parent)
    if not path.exists():
        # O_EXCL: two processes starting together must not each write a different key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(make())
    private_file(path)
    return path.read_text(encoding="ascii").strip()

"""The error every model lookup raises, in a module of its own so that the integrity checks, the cache and the
lookups can all raise it without importing one another in a circle."""

from __future__ import annotations


class ModelNotFound(ValueError):  # noqa: N818 (the project's agreed name, see STYLE.md)
    """No usable model files were found; the message says what to install or which variable to set."""

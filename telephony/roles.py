"""The two roles of the call API and the desk, shared by the tokens, the desk accounts and the audit trail."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a token, a desk account or a desk session may do."""

    AGENT = "agent"
    """Read live and finished calls, work the call-back queue (reveal a number, play a voicemail, mark it done)."""
    ADMIN = "admin"
    """Everything an agent may, and also purge, export, forget a caller and read the audit trail."""

    def includes(self, other: Role) -> bool:
        """Whether this role may do what `other` may (admin includes agent)."""
        return self is Role.ADMIN or self is other

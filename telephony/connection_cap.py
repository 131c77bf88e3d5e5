"""`ConnectionsPerAddress`: at most so many open media streams from one client address.

Opened streams are bounded by admission once they start; this bounds the sockets that never will (each is also
closed after VOICE_AGENT_STREAM_START_TIMEOUT_S), so that one peer cannot hold thousands of them open meanwhile.
"""

from __future__ import annotations


class ConnectionsPerAddress:
    """Counts open connections by client address. Used from the event loop only, so no locking."""

    def __init__(self, max_per_address: int) -> None:
        if max_per_address < 1:
            raise ValueError(f"max_per_address must be at least 1, got {max_per_address}")
        self.max_per_address = max_per_address
        self._open: dict[str, int] = {}

    def open(self, address: str) -> bool:
        """Count one more connection from `address`; False (and not counted) when it already has the most."""
        count = self._open.get(address, 0)
        if count >= self.max_per_address:
            return False
        self._open[address] = count + 1
        return True

    def close(self, address: str) -> None:
        """One connection from `address` ended (after a successful `open`)."""
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

"""Progress for a long delegation: at most one notification a second, and a heartbeat.

Codex can emit dozens of events a second; Claude Code needs only to see that the call is
alive (a notification resets its idle timeout) and roughly what is happening. `note` is
synchronous and keeps only the newest event; a new phase (`enter`) is sent before it. `run`
(a background task) sends at most once per `interval`, and says "still <phase>" after
`heartbeat` seconds of silence (a long `pytest`, a model thinking).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

Send = Callable[[str], Awaitable[None]]


class Throttle:
    def __init__(self, send: Send | None, interval: float = 1.0, heartbeat: float = 20.0) -> None:
        self._send = send
        self.interval = interval
        self.heartbeat = heartbeat
        self.phase = "starting"
        self._phase_started = time.monotonic()
        self._pending: str | None = None
        self._announce: str | None = None
        self._last_sent = time.monotonic() - interval
        self.sent: list[str] = []

    def note(self, message: str) -> None:
        self._pending = message

    def enter(self, phase: str) -> None:
        """A new step ("codex working", "verifying"): announced, and named by the heartbeat."""
        self.phase = phase
        self._phase_started = time.monotonic()
        self._announce = phase  # sent before any event noted after it

    async def run(self) -> None:
        if self._send is None:
            return
        while True:
            now = time.monotonic()
            message = self._announce or self._pending
            if message is None and now - self._last_sent >= self.heartbeat:
                message = f"still {self.phase} ({now - self._phase_started:.0f} s)"
            if message is not None and now - self._last_sent >= self.interval:
                if self._announce:
                    self._announce = None
                else:
                    self._pending = None
                self._last_sent = now
                self.sent.append(message)
                await self._send(message)
            await anyio.sleep(self.interval / 4)

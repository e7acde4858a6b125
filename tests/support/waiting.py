"""Waiting for a condition in async tests: poll with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def wait_for(condition: Callable[[], Any], limit_s: float = 15.0) -> Any:
    """Poll until ``condition`` is truthy (bounded, so a bug fails instead of hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)

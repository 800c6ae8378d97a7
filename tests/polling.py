"""The one wait of the tests: poll observable state (offsets, metrics, Redis) until it holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float,
               every: float = 0.2) -> T:
    """``fetch`` again every ``every`` s until ``done`` holds for its value or ``timeout`` has
    passed; returns the last value (the caller asserts on it). Tests time faults and deliveries
    on observable state this way, never on sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every)

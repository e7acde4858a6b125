"""A process whose scan is kept over its impact budget, for the kill and Ctrl-C tests.

``python -m support.paced_scan_child PROJECT`` scans PROJECT at low priority
while its guard (published on its own bus) stays five times over its level;
once both workers are paused it prints their pids as a JSON list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

from secperf.bus.memory import AsyncEventBus
from secperf.commands.pacing import ScanPacing
from secperf.config.sections.impact import ImpactConfig, parse_selector
from secperf.events import now_ms
from secperf.security.validator import SecurityValidator
from support.pacing import GUARD_SELECTOR, SlowScanner, guard_batch, stopped


async def run(project: Path) -> None:
    async with AsyncEventBus() as bus:
        validator = SecurityValidator([SlowScanner(0.2)], jobs=2)
        impact = ImpactConfig(
            guard=[parse_selector(GUARD_SELECTOR)], stale_after="60s", max_slowdown=1000.0
        )
        pacing = ScanPacing(impact, priority="low", store=None, bus=bus)
        pacing.configure(validator)
        await pacing.attach()
        start = now_ms()
        for seconds in range(60, 0, -5):
            await bus.publish(guard_batch(10.0, start - seconds * 1000))
        while len(pacing.feeds[0].values_between(start - 61_000, start)) < 12:
            await asyncio.sleep(0.02)

        async def over_budget() -> None:
            told = False
            while True:
                await bus.publish(guard_batch(50.0, now_ms()))
                pids = validator.worker_pids()
                if not told and len(pids) == 2 and len(stopped(pids)) == 2:
                    print(json.dumps(pids), flush=True)
                    told = True
                await asyncio.sleep(0.1)

        task = asyncio.create_task(over_budget())
        try:
            await pacing.scan(validator, project, ["."])
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            validator.close()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))

"""``secperf scan --plan`` and ``--when-quiet``: a scan's prediction and its schedule.

``plan_scan_run`` predicts the scan the command would run (without running
it) and plans it as the quiet-time schedule would; ``wait_until_quiet``
polls the schedule until the guards are quiet, the planned quiet hour comes
or the wait runs out, and says why the scan may start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from secperf.config import LoadedConfig
from secperf.events import local_host, now_ms
from secperf.security.factory import ScanOptions, make_validator, scan_paths
from secperf.security.pacing.prediction import ScanPrediction, predict_validator_scan
from secperf.security.pacing.schedule import (
    QuietWaiter,
    SchedulePlan,
    Settings,
    configured_guards,
    measure_host_cpu,
    plan_scan,
)
from secperf.store import Store

log = logging.getLogger(__name__)

#: How often ``--when-quiet`` looks at the guards again.
WAIT_POLL_S = 2.0


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What ``secperf scan --plan`` shows: the prediction and when the scan would start."""

    target: str
    prediction: ScanPrediction
    schedule: SchedulePlan

    def to_document(self) -> dict[str, Any]:
        """``--plan --format json``."""
        return {
            "target": self.target,
            "prediction": self.prediction.to_document(),
            "schedule": self.schedule.to_document(),
        }


def schedule_settings(loaded: LoadedConfig, max_wait_ms: int | None) -> Settings:
    """``[scan.schedule]``, with ``--max-wait`` in place of ``max_delay`` when given."""
    settings = Settings.from_config(loaded.config.scan)
    if max_wait_ms is not None:
        settings = dataclasses.replace(settings, max_delay_ms=max_wait_ms)
    return settings


def plan_scan_run(
    loaded: LoadedConfig,
    options: ScanOptions,
    *,
    max_wait_ms: int | None = None,
    store_url: str | None = None,
) -> ScanPlan:
    """Predict and plan the scan ``options`` describe, without scanning (blocking)."""
    store = Store.open(store_url or loaded.config.store.url)
    try:
        prediction = predict_scan(loaded, options, store)
        schedule = plan_scan(
            store,
            schedule_settings(loaded, max_wait_ms),
            configured_guards(loaded.config.scan, local_host()),
            now_ms=now_ms(),
            measure=measure_host_cpu,
            expected_ms=prediction.duration_ms,
        )
    finally:
        store.close()
    return ScanPlan(str(options.root.resolve()), prediction, schedule)


def predict_scan(loaded: LoadedConfig, options: ScanOptions, store: Store) -> ScanPrediction:
    """The prediction of the scan ``options`` describe, without scanning (blocking)."""
    validator = make_validator(loaded.config.scan, options, None, {}, None, None)
    try:
        paths = (
            list(options.paths) if options.paths else scan_paths(loaded.config.scan, options.root)
        )
        return predict_validator_scan(
            store, validator, options.root.resolve(), paths, host=local_host()
        )
    finally:
        validator.close()
        if validator.cache is not None:
            validator.cache.close()


async def wait_until_quiet(
    loaded: LoadedConfig,
    *,
    max_wait_ms: int | None,
    on_wait: Callable[[SchedulePlan], None],
    poll_s: float = WAIT_POLL_S,
    store_url: str | None = None,
    options: ScanOptions | None = None,
) -> str:
    """Wait for a quiet moment (see ``QuietWaiter``); returns why the scan may start now.

    ``options``: the scan that waits, predicted first so that hours are judged
    over the stretch it will run. ``on_wait`` gets the plan each time it is
    judged and the scan must wait. Cancelling (Ctrl-C) ends the wait; the
    store is closed either way.
    """
    store = Store.open(store_url or loaded.config.store.url)
    try:
        expected_ms = None
        if options is not None:
            try:
                prediction = await asyncio.to_thread(predict_scan, loaded, options, store)
            except Exception:  # as a scan does: it waits, judging an hour at a time
                log.warning(
                    "predicting the scan failed; it waits without a prediction", exc_info=True
                )
            else:
                expected_ms = prediction.duration_ms
        waiter = QuietWaiter(
            store,
            schedule_settings(loaded, max_wait_ms),
            configured_guards(loaded.config.scan, local_host()),
            due_ms=now_ms(),
            measure=measure_host_cpu,
            expected_ms=expected_ms,
        )
        while True:
            start, plan, why = await asyncio.to_thread(waiter.check, now_ms())
            if start:
                return why
            on_wait(plan)
            await asyncio.sleep(poll_s)
    finally:
        store.close()

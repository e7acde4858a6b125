"""The impact budget's controller: throttles a running scan while a guard is over budget.

``PacingController`` is the validator's ``ScanPacer``. When the scan's cache
misses start, a thread learns each guard's level (``guards.Guard.prepare``)
and then, every ``tick_s``, reads the guards:

- slow start: a scan with two or more workers begins with one of them running
  (``fewer_workers``, the others stopped as soon as the pool has forked them)
  until a guard reading taken at least ``settle_ms`` after the scan began
  says what the scan does to the guards: within budget, all workers run (or
  half, see below); over, the ladder below goes on from there. Without it the scan ran at full speed
  until the first reading that could see it, a second or two for a guard
  scraped every second over a 1 s window: the whole of a short scan;
- a fresh reading more than ``max_increase_pct`` over (for ``host_cpu_others``:
  under) the level throttles the scan: with two or more workers, half of them
  are stopped (``fewer_workers``); if the next fresh reading is still over,
  all of them (``pause``); a scan without workers holds its next batch
  (``batch_pause``); while some workers are held, which ones run turns every
  ``ROTATE_MS`` (``throttle`` says why);
- paused, yet over budget in two readings in a row taken ``settle_ms`` or
  more into the pause: the excess is not the scan's doing (another process,
  a burst of traffic). Each such guard's level becomes its median over those
  readings (``Guard.paused``), the reason says so, and the scan steps back
  to ``fewer_workers``. Without it a guard pushed up by other work held the
  scan paused until its deadline (measured on a shared host: paused to its
  deadline, 4.6 times the unthrottled duration, while the guard's median
  stayed 78 % over its quiet level with every worker stopped);
- two fresh readings in a row within half the budget step back one level
  (``pause`` to ``fewer_workers``, then to full speed): hysteresis, so a
  guard hovering at the budget does not make it flap. Once full speed has
  been over budget, ``fewer_workers`` is as far as it steps back (and where a
  slow start ends) for ``full_speed_retry_ms`` of scanning (not of the
  clock), doubled each time full speed is over again up to
  ``FULL_SPEED_RETRY_MAX_MS``; ``FullSpeed`` carries this
  from one scan of a target to the next (``ScanPacing`` keeps it), so each
  scan does not pay for finding it out again: on the demo (2 CPUs) one
  nice-19 worker left the guard within budget and two put it 70 to 110 %
  over, so stepping back to full speed whenever the guard had recovered made
  a spike every few seconds;
- a deadline guarantees every scan finishes: once ``max_slowdown`` times the
  predicted duration (at least ``deadline_floor_ms``) has passed since the
  scan began, it is not throttled again and the workers' priority is raised
  back as far as the OS allows (``priority.restore_normal_priority``), whatever
  the budget's state: nice 19 alone can slow a scan on a busy host many times
  over. The pacing record says when the deadline passed and what could be
  restored. Without a prediction the same factor caps the throttled time: at
  most ``max_slowdown - 1`` times the time the scan has run;
- a guard matching no series, or whose data stops arriving for
  ``stale_after``, switches the budget off for the rest of the scan (the
  workers keep their low priority); the reason is kept.

Every change is published as ``ScanThrottled`` and kept as a stretch of the
pacing document (``document.PacingDocument``). The events leave from a thread
of their own (``_Publisher``): a publish waits for room on the bus, and the
controller, which decides under its lock, never waits for the bus to stop,
resume or release workers.
"""

from __future__ import annotations

import logging
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from secperf.events import Event, ScanThrottled, now_ms
from secperf.security.pacing.document import (
    BUDGET_NOT_CONFIGURED,
    BUDGET_OFF,
    BUDGET_ON,
    GuardReport,
    PacingDocument,
    Stretch,
)
from secperf.security.pacing.guards import Guard, Reading
from secperf.security.pacing.priority import read_priority, restore_normal_priority
from secperf.security.pacing.throttle import WorkerThrottle

log = logging.getLogger(__name__)

#: Fresh readings within half the budget, in a row, that end throttling.
RECOVER_READINGS = 2
#: The longest wait before full speed, over budget before, is tried again.
FULL_SPEED_RETRY_MAX_MS = 600_000
#: Settled readings over budget with the scan paused, in a row, that re-level a guard.
RELEVEL_READINGS = 2
#: While some workers are held, the running ones change places this often.
ROTATE_MS = 500
#: Slow start: how long to wait for the pool's workers to appear, and how often to look.
FIRST_WORKERS_WAIT_S = 1.0
FIRST_WORKERS_POLL_S = 0.01
SLOW_START_REASON = (
    "slow start: one worker until a guard reading taken during the scan is within budget"
)
#: The shortest deadline: a sub-second prediction would otherwise give a deadline
#: shorter than starting the worker pool and reading the guards' first samples.
DEADLINE_FLOOR_MS = 3_000
#: How long the end of a scan waits for its ``ScanThrottled`` events to reach the bus.
PUBLISH_DRAIN_S = 10.0


class _Publisher:
    """Publishes a controller's events in order, from a thread of its own.

    The thread starts with the first event (a scan at normal priority sends
    none). An event sent after ``close`` (a controller thread that outlived
    ``scan_finished``'s wait for it) is published in the sender's thread, so
    none is dropped.
    """

    def __init__(self, publish: Callable[[Event], None], name: str) -> None:
        self._publish = publish
        self._name = name
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        with self._lock:
            if not self._closed:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
                self._queue.put(event)
                return
        self._deliver(event)

    def close(self, timeout_s: float) -> bool:
        """Publish what is queued, then stop; False when that took longer than ``timeout_s``."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        try:
            self._publish(event)
        except Exception:  # a closed bus: the scan and its pacing record go on
            log.warning("%s not published", type(event).__name__, exc_info=True)


@dataclass(slots=True)
class _GuardStats:
    increases: list[float] = field(default_factory=list)
    last_ts: int = 0


@dataclass(slots=True)
class FullSpeed:
    """When full speed was last over budget, and how much scanning to wait before trying it again.

    The wait counts scanning time, not the clock: with the clock, a scan run
    less often than the wait (hourly, say) would try full speed at each start
    and pay its spike every time; counted in scanning time, a try (a reading
    or two over budget) comes once per ``retry_ms`` of scanning at most.
    """

    over_ms: int | None = None
    retry_ms: int | None = None
    scanned_ms: float = 0.0  # scanning time since full speed was last over budget

    def held(self) -> bool:
        """Whether full speed is not to be tried yet."""
        return (
            self.over_ms is not None
            and self.retry_ms is not None
            and self.scanned_ms < self.retry_ms
        )

    def scanning(self, elapsed_ms: float) -> None:
        """A scan of the target ran ``elapsed_ms`` more."""
        self.scanned_ms += max(0.0, elapsed_ms)

    def was_over(self, now: int, first_retry_ms: int) -> None:
        """Full speed was over budget at ``now``: wait ``first_retry_ms``, else twice as long."""
        self.retry_ms = (
            first_retry_ms
            if self.retry_ms is None
            else min(FULL_SPEED_RETRY_MAX_MS, 2 * self.retry_ms)
        )
        self.over_ms = now
        self.scanned_ms = 0.0


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """The budget's numbers (``[scan.impact]``), in the units the controller uses."""

    max_increase_pct: float = 10.0
    max_slowdown: float = 4.0
    before_window_ms: int = 120_000
    stale_after_ms: int = 10_000
    deadline_floor_ms: int = DEADLINE_FLOOR_MS
    #: How long after the scan's pace changed a guard reading shows the change (a
    #: series scraped every second over a 1 s window); 0 turns the slow start off.
    settle_ms: int = 1_000
    #: After full speed was over budget, how much scanning before it is tried again
    #: (then doubled): a try costs a reading or two over budget, under 5 % of a minute's.
    full_speed_retry_ms: int = 60_000


class PacingController:
    """Paces one scan at a time (see the module doc); ``document()`` says what it did."""

    def __init__(
        self,
        *,
        target: str,
        priority: str,
        guards: list[Guard],
        settings: BudgetSettings,
        started_ms: int | None = None,
        predicted_ms: float | None = None,
        prediction_basis: str | None = None,
        publish: Callable[[Event], None] | None = None,
        not_configured: str | None = None,
        tick_s: float = 0.25,
        full_speed: FullSpeed | None = None,
    ) -> None:
        self.target = target
        self.priority = priority
        self.guards = guards
        self.settings = settings
        self.started_ms = started_ms if started_ms is not None else now_ms()
        self.predicted_ms = predicted_ms
        self.prediction_basis = prediction_basis
        self.publish = publish
        self.tick_s = tick_s
        self.scan_id = ""
        self.state = BUDGET_ON if not_configured is None and guards else BUDGET_NOT_CONFIGURED
        self.reason: str | None = not_configured
        if self.state == BUDGET_NOT_CONFIGURED and self.reason is None:
            self.reason = "no guard ([scan.impact] guard = [])"
        # A deadline ends throttling and lowered priority: a normal-priority scan has
        # neither, so it has none (and nothing to warn about when it runs long).
        self.deadline_ms: int | None = (
            self.started_ms
            + max(settings.deadline_floor_ms, round(settings.max_slowdown * predicted_ms))
            if priority == "low" and predicted_ms is not None and predicted_ms > 0
            else None
        )
        self.deadline_reached = False
        #: When the deadline was seen passed (ms since the epoch), and what was done then.
        self.deadline_reached_ms: int | None = None
        self.deadline_action: str | None = None
        self._restored_pids: set[int] = set()
        self._restore_failures: list[str] = []
        self.stretches: list[Stretch] = []
        self.priority_applied: dict[str, object] | None = None
        self._stats = {id(g): _GuardStats() for g in guards}
        self._throttle = WorkerThrottle()
        self._worker_pids: Callable[[], list[int]] = list
        self._hold = threading.Event()
        self._done = threading.Event()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._publisher: _Publisher | None = None
        self._action: str | None = None
        self._action_ts = 0  # newest reading when the action began
        self._recovered = 0
        self._loop_started_ms = 0
        self._last_tick_ms = 0  # the previous tick: the scanning time between them counts
        self._slow_start = False
        self.full_speed = full_speed if full_speed is not None else FullSpeed()
        self._action_began_ms = 0
        self._paused_over: dict[int, list[float]] = {}  # id(guard): readings while paused
        self._rotation = 0
        self._rotated_ms = 0

    # ------------------------------------------------------------------ ScanPacer

    def scan_started(self, scan_id: str, worker_pids: Callable[[], list[int]]) -> None:
        self.scan_id = scan_id
        self._worker_pids = worker_pids
        if self.publish is not None:
            self._publisher = _Publisher(self.publish, f"scan-pacing-events-{scan_id}")
        self._thread = threading.Thread(
            target=self._run, name=f"scan-pacing-{scan_id}", daemon=True
        )
        self._thread.start()

    def hold(self, stop: Future[None]) -> None:
        while self._hold.is_set() and not stop.done() and not self._done.is_set():
            self._done.wait(0.05)

    def scan_finished(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        # A loop starved on a busy host may not have seen the deadline pass.
        self._check_deadline(now_ms(), scan_ended=True)
        with self._lock:
            self._set_action(None, "the scan ended", None)
        self._throttle.release()  # whatever the thread did or did not do
        self._read_priority()
        if self._publisher is not None and not self._publisher.close(PUBLISH_DRAIN_S):
            log.warning(
                "scan %s: the bus did not take its throttling events within %g s; the rest"
                " are published if it takes them before it closes",
                self.scan_id,
                PUBLISH_DRAIN_S,
            )

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            if self.state == BUDGET_ON:
                for guard in self.guards:
                    problem = guard.prepare(self.started_ms, self.settings.before_window_ms)
                    if problem is not None:
                        self._turn_off(problem)
                        break
            if self.state == BUDGET_ON and self.settings.settle_ms > 0:
                self._hold_first_workers()
            self._loop_started_ms = now_ms()
            while not self._done.is_set():
                self._check_deadline(now_ms())
                if self.state == BUDGET_ON and not self.deadline_reached:
                    self._tick(now_ms())
                self._done.wait(self.tick_s)
        except Exception as exc:  # the scan goes on without its budget
            log.exception("scan %s: the impact budget failed", self.scan_id)
            self._turn_off(f"the budget controller failed: {exc}")
        finally:
            self._throttle.release()
            self._hold.clear()

    def _hold_first_workers(self) -> None:
        """Slow start: hold all workers but one as soon as the pool has forked them.

        The pool forks its workers at the scan's first batch, just after
        ``scan_started``, all in one go: once two looks a few milliseconds
        apart find the same two or more, the slow start begins. A scan whose
        pool has one worker, or none within ``FIRST_WORKERS_WAIT_S``, has none.
        """
        deadline = time.monotonic() + FIRST_WORKERS_WAIT_S
        seen: list[int] = []
        while not self._done.is_set() and time.monotonic() < deadline:
            pids = sorted(self._worker_pids())
            if pids and pids == seen:
                if len(pids) < 2:
                    return
                with self._lock:
                    if self.state != BUDGET_ON or self.deadline_reached:
                        return
                    self._slow_start = True
                    # Readings taken before this cannot see what the scan does.
                    self._set_action(
                        "fewer_workers",
                        SLOW_START_REASON,
                        None,
                        now_ms() + self.settings.settle_ms - 1,
                    )
                return
            seen = pids
            self._done.wait(FIRST_WORKERS_POLL_S)

    def _check_deadline(self, now: int, *, scan_ended: bool = False) -> None:
        """Past the deadline: stop throttling and raise the workers' priority (new ones too)."""
        if self.deadline_ms is None or now < self.deadline_ms:
            return
        with self._lock:
            first = not self.deadline_reached
            self._slow_start = False
            if first:
                self.deadline_reached = True
                self.deadline_reached_ms = now
                self._set_action(None, "deadline reached: the scan runs to its end", None)
            self._throttle.release()
            self._hold.clear()
            if scan_ended:
                if first:
                    self.deadline_action = "the scan ended before the deadline was acted on"
                return
            if self.priority == "low":
                # Workers forked after the deadline lower their own priority: raise them too.
                for pid in self._worker_pids():
                    if pid in self._restored_pids or pid == os.getpid():
                        continue
                    self._restored_pids.add(pid)
                    for problem in restore_normal_priority(pid):
                        if problem not in self._restore_failures:
                            self._restore_failures.append(problem)
                self.deadline_action = _deadline_action(
                    bool(self._restored_pids), self._restore_failures
                )
            elif first:
                self.deadline_action = "throttling stopped"
        if first:
            log.warning(
                "scan %s: deadline passed after %.1f s (predicted %s): %s",
                self.scan_id or self.target,
                (now - self.started_ms) / 1000,
                f"{self.predicted_ms / 1000:.1f} s" if self.predicted_ms else "unknown",
                self.deadline_action,
            )

    def _read_priority(self) -> None:
        """What the workers run with, read at the end: a worker just forked has not yet
        lowered its priority; the most lowered one shows what the others did too."""
        states = [read_priority(pid) for pid in self._worker_pids()]
        if states:
            chosen = max(states, key=lambda state: state.nice if state.nice is not None else -99)
            self.priority_applied = chosen.to_document()

    def _tick(self, now: int) -> None:
        settings = self.settings
        if self._last_tick_ms:
            self.full_speed.scanning(now - self._last_tick_ms)
        self._last_tick_ms = now
        readings: list[tuple[Guard, Reading, float]] = []
        fresh = False
        for guard in self.guards:
            reading = guard.read(now)
            if reading is None:
                if now - self._loop_started_ms > settings.stale_after_ms:
                    self._turn_off(
                        f"guard {guard.name}: no data for {settings.stale_after_ms / 1000:g} s"
                        " during the scan"
                    )
                    return
                continue
            increase = guard.increase_pct(reading.value)
            stats = self._stats[id(guard)]
            if reading.ts_ms > stats.last_ts:
                stats.last_ts = reading.ts_ms
                stats.increases.append(increase)
                fresh = fresh or reading.ts_ms > self._action_ts
            readings.append((guard, reading, increase))
        with self._lock:
            if self.deadline_reached:
                return
            if self._over_slowdown_cap(now):
                self._set_action(None, "the scan was throttled as long as it may be", None)
                return
            over = [(g, r, inc) for g, r, inc in readings if inc > settings.max_increase_pct]
            if self._slow_start and fresh:
                self._slow_start = False
                if not over:
                    if self.full_speed.held():
                        newest = max(r.ts_ms for _, r, _ in readings)
                        # The same action for another reason: a stretch of its own.
                        self.stretches[-1].end_ms = now_ms()
                        self._action = None
                        self._set_action(
                            "fewer_workers",
                            "slow start over: the guards are within budget; half the workers"
                            " run, as full speed was over budget"
                            f" {(now - (self.full_speed.over_ms or now)) / 1000:.0f} s ago",
                            None,
                            newest,
                        )
                    else:
                        self._set_action(
                            None, "slow start over: the guards are within budget", None
                        )
                    return
            if over and fresh:
                self._recovered = 0
                guard, _, increase = max(over, key=lambda item: item[2])
                reason = self._why(guard, increase)
                pids = self._worker_pids()
                newest = max(r.ts_ms for _, r, _ in readings)
                # Held between batches until the pool has workers to pause.
                if self._action is None and pids:
                    self.full_speed.was_over(now, settings.full_speed_retry_ms)
                if self._action is None or (self._action == "batch_pause" and pids):
                    action = "batch_pause"
                    if pids:
                        action = "fewer_workers" if len(pids) >= 2 else "pause"
                    self._set_action(action, reason, guard.name, newest)
                elif self._action == "fewer_workers":
                    self._set_action("pause", reason, guard.name, newest)
                elif self._action in ("pause", "batch_pause"):
                    self._over_while_paused(over, newest)
            elif self._action is not None and fresh:
                self._paused_over.clear()
                if all(inc <= settings.max_increase_pct / 2 for _, _, inc in readings):
                    self._recovered += 1
                    if self._recovered >= RECOVER_READINGS:
                        # One step at a time: all workers at once would bring the
                        # guard straight back over (measured: it oscillated).
                        if self._action == "pause" and len(self._worker_pids()) >= 2:
                            newest = max(r.ts_ms for _, r, _ in readings)
                            self._set_action(
                                "fewer_workers",
                                "the guards recovered: half the workers resume",
                                None,
                                newest,
                            )
                        elif self._action != "fewer_workers" or not self.full_speed.held():
                            self._set_action(None, "the guards recovered", None)
                else:
                    self._recovered = 0
            if self._action == "fewer_workers" and now - self._rotated_ms >= ROTATE_MS:
                self._rotation += 1
                self._rotated_ms = now
            self._apply()

    def _over_while_paused(self, over: list[tuple[Guard, Reading, float]], newest: int) -> None:
        """Over budget with the scan held: settled twice in a row, not the scan's doing."""
        settled_from = self._action_began_ms + self.settings.settle_ms
        if any(reading.ts_ms < settled_from for _, reading, _ in over):
            return  # a reading that may still show the scan running
        if set(self._paused_over) - {id(guard) for guard, _, _ in over}:
            self._paused_over.clear()  # another guard: a new run of readings
        for guard, reading, _ in over:
            self._paused_over.setdefault(id(guard), []).append(reading.value)
        if min(len(values) for values in self._paused_over.values()) < RELEVEL_READINGS:
            return
        levels = []
        for guard, _, _ in over:
            guard.paused = statistics.median(self._paused_over[id(guard)])
            levels.append(f"{guard.name} {guard.paused:.3g}")
        pids = self._worker_pids()
        action = "fewer_workers" if len(pids) >= 2 else None
        resume = "half the workers resume" if action else "the scan resumes"
        reason = (
            "over budget with the scan paused, so not the scan's doing: the level is now"
            f" the one while paused ({', '.join(levels)}); {resume}"
        )
        self._set_action(action, reason, None, newest)

    def _over_slowdown_cap(self, now: int) -> bool:
        """Without a prediction: held at most (max_slowdown - 1) x the time the scan ran.

        A stretch with half the workers running counts half.
        """
        if self.deadline_ms is not None:
            return False
        elapsed = now - self.started_ms
        held = self.throttled_ms(now, fewer_workers_weight=0.5)
        return held > 0 and held >= (self.settings.max_slowdown - 1) * max(0.0, elapsed - held)

    def _why(self, guard: Guard, increase: float) -> str:
        budget = self.settings.max_increase_pct
        if guard.direction == "down":
            return (
                f"{guard.name} {increase:.0f} % under its level before the scan while the host"
                f" is busy (budget {budget:g} %)"
            )
        return (
            f"{guard.name} +{increase:.0f} % over its level before the scan (budget {budget:g} %)"
        )

    def _apply(self) -> None:
        """Hold the workers as the current action says (new workers included)."""
        pids = self._worker_pids()
        if self._action == "pause":
            self._throttle.apply(pids, keep_running=0)
        elif self._action == "fewer_workers":
            keep = 1 if self._slow_start else max(1, len(pids) - len(pids) // 2)
            self._throttle.apply(pids, keep_running=keep, offset=self._rotation)
        else:
            self._throttle.release()
        if self._action is not None:
            self._hold.set()
        else:
            self._hold.clear()

    def _set_action(
        self, action: str | None, reason: str, guard: str | None, reading_ts: int = 0
    ) -> None:
        if action == self._action:
            return
        now = now_ms()
        if self.stretches and self._action is not None:
            self.stretches[-1].end_ms = now
        self._action = action
        self._action_ts = reading_ts
        self._action_began_ms = now
        self._paused_over.clear()
        self._recovered = 0
        if action is not None:
            self.stretches.append(Stretch(now, now, action, reason))
        self._apply()
        if self._publisher is not None and self.scan_id:
            self._publisher.send(
                ScanThrottled(
                    scan_id=self.scan_id,
                    target=self.target,
                    action=action or "resume",
                    reason=reason,
                    throttled_ms=self.throttled_ms(now),
                    guard=guard,
                )
            )

    def _turn_off(self, reason: str) -> None:
        with self._lock:
            self.state = BUDGET_OFF
            self.reason = reason
            self._slow_start = False
            self._set_action(None, f"impact budget off: {reason}", None)
        self._throttle.release()
        log.warning("scan %s: impact budget off: %s", self.scan_id or self.target, reason)

    # ------------------------------------------------------------------ results

    def throttled_ms(self, now: int | None = None, *, fewer_workers_weight: float = 1.0) -> float:
        """Time throttled so far (the open stretch up to ``now``)."""
        now = now if now is not None else now_ms()
        total = 0.0
        for index, stretch in enumerate(self.stretches):
            is_open = index == len(self.stretches) - 1 and self._action is not None
            weight = fewer_workers_weight if stretch.action == "fewer_workers" else 1.0
            total += weight * ((now if is_open else stretch.end_ms) - stretch.start_ms)
        return float(total)

    def document(self) -> PacingDocument:
        """What this controller did, as the ``scans.pacing`` document."""
        reports: list[GuardReport] = []
        within: bool | None = None
        if self.state == BUDGET_ON:
            within = True
        for guard in self.guards:
            stats = self._stats[id(guard)]
            increases = [i for i in stats.increases if i != float("inf")]
            mean = statistics.fmean(increases) if increases else None
            if within and mean is not None and mean > self.settings.max_increase_pct:
                within = False
            reports.append(
                GuardReport(
                    series=guard.name,
                    before=_rounded(guard.before),
                    quiet=_rounded(guard.quiet),
                    peak_increase_pct=_rounded(max(increases)) if increases else None,
                    samples=len(stats.increases),
                    mean_increase_pct=_rounded(mean),
                )
            )
        return PacingDocument(
            priority=self.priority,
            budget_state=self.state,
            reason=self.reason,
            max_increase_pct=self.settings.max_increase_pct,
            guards=reports if self.state != BUDGET_NOT_CONFIGURED else [],
            throttled_ms=self.throttled_ms(),
            stretches=list(self.stretches),
            deadline_ms=self.deadline_ms,
            deadline_reached=self.deadline_reached,
            deadline_reached_ms=self.deadline_reached_ms,
            deadline_after_ms=(
                self.deadline_reached_ms - self.started_ms
                if self.deadline_reached_ms is not None
                else None
            ),
            deadline_action=self.deadline_action,
            within_budget=within,
            priority_applied=self.priority_applied,
            predicted_ms=self.predicted_ms,
            prediction_basis=self.prediction_basis,
        )


def _deadline_action(restored_any: bool, failures: list[str]) -> str:
    """What the deadline did to the workers, for the pacing record and the scan's output."""
    if not restored_any:
        return "throttling stopped (no worker to raise)"
    if not failures:
        return "throttling stopped, workers raised to nice 0 and best-effort I/O"
    return "throttling stopped; " + "; ".join(failures)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

"""The alert engine: evaluates rules, runs each alert's lifecycle, notifies.

The lifecycle itself (pending -> firing -> resolved, ``for``,
``keep_firing_for``, hysteresis, flapping) is the pure state machine of
``alerts.lifecycle``; the engine feeds it each tick's observations and
publishes the transitions it returns.

Every transition is published as ``AlertChanged``. The ``StoreWriter`` on the
bus stores those events (``record_alert_transition``); pass
``persist_transitions=True`` when no writer runs, and the engine stores them.

Evaluation runs every ``evaluation_interval_s`` and at once when a scan
completes (security rules only). The store writes each scan's security series
(``Store.record_scan_completed``); the engine derives the same samples with the
same function (``security.series.scan_series``) from each ``ScanCompleted`` and
keeps them in memory only, so its rules see them before the store holds them,
and nothing is stored twice.

Who is told of an alert (silences, inhibition, grouping, the feed to the
notifiers) is ``alerts.muting``; what the API reads (the alerts, one alert's
context, its JSON) is ``alerts.describe``. The engine keeps setup, the loop
and evaluation, and routes the operators' actions through ``alerts.operator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from secperf.alerts import operator
from secperf.alerts.context import ContextBuilder, ScanTracker
from secperf.alerts.describe import AlertBook, alert_json
from secperf.alerts.evaluate import (
    Observation,
    RecentSamples,
    SeriesReader,
    Waiting,
    evaluate_scan_impact,
    evaluate_threshold,
    evaluate_unexplained_anomaly,
)
from secperf.alerts.grouping import (
    DEFAULT_INHIBIT_RULES,
    Grouper,
    GroupSettings,
    Inhibitor,
    InhibitRule,
    Notification,
)
from secperf.alerts.lifecycle import AlertSlot, Damping, advance_rule
from secperf.alerts.muting import NotificationFeed
from secperf.alerts.notifiers import notifier_from_config
from secperf.alerts.notifiers.interface import Notifier
from secperf.alerts.notifiers.runner import NotifierRunner, NotifierStats
from secperf.alerts.rule_loading import effective_rules
from secperf.alerts.rules import Rule
from secperf.analysis.windows import ScanWindow
from secperf.bus.interface import EventBus, Subscription
from secperf.config import AlertsConfig
from secperf.events import (
    AlertChanged,
    Event,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
    local_host,
    now_ms,
)
from secperf.model import Alert, AlertState
from secperf.security.series import KIND_IMPORT, counted_metrics, scan_series
from secperf.store import Silence, Store

log = logging.getLogger(__name__)

Clock = Callable[[], int]

ACTIVE_STATES = frozenset(
    {AlertState.PENDING, AlertState.FIRING, AlertState.NODATA, AlertState.ERROR}
)
RESOLVED_KEPT_MS = 3_600_000  # resolved alerts stay visible in memory this long


@dataclass(frozen=True, slots=True)
class _RuleResult:
    rule: Rule
    observations: list[Observation]
    error: str | None = None
    waiting: tuple[Waiting, ...] = ()


def _waiting_summary(waiting: Sequence[Waiting]) -> str | None:
    """One line for a rule whose series all wait for data: the first, and how many more."""
    if not waiting:
        return None
    more = f" (and {len(waiting) - 1} more series)" if len(waiting) > 1 else ""
    return waiting[0].text() + more


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters of the engine."""

    evaluations: int
    rule_errors: int
    transitions: int
    last_evaluation_ms: float
    notifiers: tuple[NotifierStats, ...]


class AlertEngine:
    """Evaluates rules over the store and runs the alerts' lifecycle (see module doc)."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        rules: Sequence[Rule],
        *,
        evaluation_interval_s: float = 15.0,
        notifiers: Iterable[Notifier] = (),
        group_settings: GroupSettings | None = None,
        inhibit_rules: Iterable[InhibitRule] = DEFAULT_INHIBIT_RULES,
        clock: Clock = now_ms,
        host: str | None = None,
        persist_transitions: bool = False,
        min_firing_ms: int = 60_000,
        flap_threshold: int = 3,
        flap_window_ms: int = 30 * 60_000,
        flap_hold_ms: int = 5 * 60_000,
        resend_interval_ms: int = 60_000,
        notifier_backoff_s: float = 0.5,
        notifier_attempts: int = 4,
    ) -> None:
        if evaluation_interval_s <= 0:
            raise ValueError(f"evaluation_interval_s must be positive, got {evaluation_interval_s}")
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; used twice: {', '.join(dupes)}")
        self.store = store
        self.bus = bus
        self.rules = {r.name: r for r in rules}
        self.evaluation_interval_s = evaluation_interval_s
        self.clock = clock
        self.host = host or local_host()
        self.persist_transitions = persist_transitions
        self.min_firing_ms = min_firing_ms
        self.flap_threshold = flap_threshold
        self.flap_window_ms = flap_window_ms
        self.flap_hold_ms = flap_hold_ms
        runners = [
            NotifierRunner(n, max_attempts=notifier_attempts, backoff_s=notifier_backoff_s)
            for n in notifiers
        ]
        self.feed = NotificationFeed(
            Grouper(group_settings or GroupSettings()),
            Inhibitor(inhibit_rules),
            runners,
            resend_interval_ms,
        )
        # The feed's parts, under the names they have always had on the engine.
        self.grouper = self.feed.grouper
        self.inhibitor = self.feed.inhibitor
        self.runners = self.feed.runners
        self.tracker = ScanTracker()
        self.recent = RecentSamples()
        self.contexts = ContextBuilder(store, self.tracker)
        self._slots: dict[str, AlertSlot] = {}
        self.book = AlertBook(store, self._slots, self.rules, self.contexts)
        self._impact_cache: dict[str, tuple[int, int, list[Observation], tuple[Waiting, ...]]] = {}
        # (rule, series) pairs already told to be waiting for data: said once each.
        self._waiting_told: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        #: The value of each pending or firing alert as the store last got it.
        self._stored_values: dict[str, float | None] = {}
        self.evaluations = 0
        self.rule_errors = 0
        self.transitions = 0
        self.last_evaluation_ms = 0.0

    @classmethod
    def from_config(
        cls,
        store: Store,
        bus: EventBus,
        config: AlertsConfig,
        *,
        extra_rules: Iterable[Rule] = (),
        external_url: str = "http://127.0.0.1:8765",
        **options: Any,
    ) -> AlertEngine:
        """An engine as ``[alerts]`` describes it (default inhibition kept, rules added)."""
        # RuleError (a ValueError) naming each file, rule and problem.
        rules = effective_rules(config).require_valid()
        rules += list(extra_rules)
        return cls(
            store,
            bus,
            rules,
            evaluation_interval_s=config.evaluation_interval / 1000,
            notifiers=[notifier_from_config(n, external_url) for n in config.notifiers],
            group_settings=GroupSettings(
                tuple(config.group_by),
                config.group_wait,
                config.group_interval,
                config.repeat_interval,
            ),
            inhibit_rules=[
                *DEFAULT_INHIBIT_RULES,
                *(InhibitRule.from_config(r) for r in config.inhibit_rules),
            ],
            **options,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, run_loop: bool = True) -> None:
        """Load state from the store, subscribe to security events, start evaluating.

        ``run_loop=False`` leaves evaluation to explicit ``evaluate()`` calls
        (tests with an injected clock do so).
        """
        scans = await asyncio.to_thread(self.store.scans, 500)
        self.tracker.seed(scans)
        stored = await asyncio.to_thread(self.store.alerts, list(ACTIVE_STATES))
        for alert in stored:
            rule = self.rules.get(alert.rule)
            if rule is None:
                continue
            series = {
                k: v
                for k, v in alert.labels.items()
                if k not in rule.labels and k not in ("alertname", "severity", "scope")
            }
            self._slots[alert.fingerprint] = AlertSlot(alert, rule, series, alert.updated_ms)
        await self._refresh_silences()
        self._subscription = await self.bus.subscribe(
            "security.>", self._on_event, name="alert-engine"
        )
        for runner in self.runners:
            runner.start()
        if run_loop:
            self._task = asyncio.create_task(self._run(), name="alert-engine")

    async def stop(self) -> None:
        """Stop evaluating, then send what the notifiers have queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        for runner in self.runners:
            await runner.close()

    async def _run(self) -> None:
        interval_ms = round(self.evaluation_interval_s * 1000)
        next_eval = self.clock()
        while True:
            now = self.clock()
            if now >= next_eval:
                try:
                    await self.evaluate()
                except Exception:  # the loop must survive anything
                    log.exception("alert evaluation failed")
                next_eval = now + interval_ms
            else:
                await self.flush_notifications()
            wake_at = next_eval
            due = self.grouper.next_due_ms()
            if due is not None:
                wake_at = min(wake_at, due)
            delay = max(0.0, (wake_at - self.clock()) / 1000)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))

    # ------------------------------------------------------------------ events

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, ScanStarted):
            self.tracker.started(event)
        elif isinstance(event, ViolationDetected):
            self.tracker.violation(event)
        elif isinstance(event, ScanCompleted):
            await self.handle_scan_completed(event)

    async def handle_scan_completed(self, event: ScanCompleted) -> None:
        """Record the scan, keep its security samples in memory, evaluate security rules.

        The store writes the same samples with the scan (``record_scan_completed``);
        they are not published again.
        """
        info = self.tracker.completed(event)
        m = event.metrics
        if m.kind == KIND_IMPORT:  # another tool's results: no scan window
            self.tracker.scans.pop(m.scan_id, None)
        try:
            decisions = await asyncio.to_thread(self.store.triage_all)
        except Exception:  # counting with no triage beats skipping the evaluation
            log.exception("reading triage for scan %s failed", m.scan_id)
            decisions = {}
        tally = self.tracker.tally(m.scan_id)
        counts = tally.counts(decisions, m.finished_ms)
        if counts.findings < m.violations_found + m.false_positives + m.accepted_risks:
            # Heard through the event log, a scan's findings come as those first
            # seen only: the store holds them all (stored before the completion).
            try:
                stored = await asyncio.to_thread(
                    self.store.scan_finding_counts, m.scan_id, at_ms=m.finished_ms
                )
            except Exception:  # the tally still counts what it heard
                log.exception("reading the findings of scan %s failed", m.scan_id)
            else:
                if stored.findings > counts.findings:
                    counts = stored
        tally.seen.clear()  # counted: only the new findings kept for context stay
        self.recent.add(scan_series(counted_metrics(m, counts), event.host, counts))
        log.debug("scan %s completed: %s new findings", info.scan_id, info.new_findings)
        await self.evaluate(security_only=True)

    # ------------------------------------------------------------------ evaluation

    async def evaluate(self, *, security_only: bool = False) -> list[AlertChanged]:
        """One evaluation tick; returns the transitions it published."""
        async with self._lock:
            now = self.clock()
            rules = [r for r in self.rules.values() if r.is_security or not security_only]
            started = time.perf_counter()
            results = await asyncio.to_thread(self._observe, rules, now)
            self.last_evaluation_ms = (time.perf_counter() - started) * 1000
            self.evaluations += 1
            events = self._apply(results, now)
            await self._attach_context(events, now)
            for event in events:
                await self._publish(event)
            await self._store_moved_values(events)
            await self._refresh_silences()
            await self._refresh_acknowledgements()
            self.feed.feed(self._slots, now, [e.alert.fingerprint for e in events])
            self._prune(now)
            await self.flush_notifications()
            return events

    def observe(self, rules: Sequence[Rule] | None = None) -> list[_RuleResult]:
        """Evaluate rules without changing any state (benchmarks, ``rules check``)."""
        return self._observe(list(rules or self.rules.values()), self.clock())

    def _observe(self, rules: Sequence[Rule], now: int) -> list[_RuleResult]:
        self.recent.prune(now)
        reader = SeriesReader(self.store, self.recent)
        # One read per metric, as wide as the widest window of this tick's rules.
        widest: dict[str, int] = {}
        for rule in rules:
            if rule.kind != "scan_impact":
                widest[rule.metric] = max(widest.get(rule.metric, 0), rule.window_ms)
        for name, window in widest.items():
            try:
                reader.prefetch(name, now - window, now)
            except Exception:  # the rules reading it will report the error
                log.exception("reading %s failed", name)
        windows = self.tracker.windows(now)
        results: list[_RuleResult] = []
        for rule in rules:
            waiting: list[Waiting] = []
            try:
                if rule.kind == "threshold":
                    obs = evaluate_threshold(rule, reader, now)
                elif rule.kind == "unexplained_anomaly":
                    obs = evaluate_unexplained_anomaly(rule, reader, now, windows, waiting)
                else:
                    obs, waiting = self._scan_impact(rule, reader, now, windows)
            except Exception as exc:
                self.rule_errors += 1
                log.warning("alert rule %s failed: %s: %s", rule.name, type(exc).__name__, exc)
                results.append(_RuleResult(rule, [], f"{type(exc).__name__}: {exc}"))
                continue
            self._tell_waiting(rule, waiting)
            results.append(_RuleResult(rule, obs, waiting=tuple(waiting)))
        return results

    def _tell_waiting(self, rule: Rule, waiting: Sequence[Waiting]) -> None:
        """Log once per rule and series that it waits for data (not on every tick)."""
        for item in waiting:
            key = (rule.name, item.series)
            if key not in self._waiting_told:
                self._waiting_told.add(key)
                log.info("alert rule %s: %s", rule.name, item.text())

    def _scan_impact(
        self, rule: Rule, reader: SeriesReader, now: int, windows: list[ScanWindow]
    ) -> tuple[list[Observation], list[Waiting]]:
        # Correlating a day of data is costly: recompute when a scan completed or
        # the result is older than ``recompute_every``.
        cached = self._impact_cache.get(rule.name)
        every = int(rule.params.get("recompute_every", 600_000))
        if cached is not None and cached[1] == self.tracker.version and now - cached[0] < every:
            return cached[2], list(cached[3])
        waiting: list[Waiting] = []
        obs = evaluate_scan_impact(rule, reader, now, windows, waiting)
        self._impact_cache[rule.name] = (now, self.tracker.version, obs, tuple(waiting))
        return obs, waiting

    # ------------------------------------------------------------------ lifecycle

    def _damping(self) -> Damping:
        return Damping(
            self.min_firing_ms, self.flap_threshold, self.flap_window_ms, self.flap_hold_ms
        )

    def _apply(self, results: list[_RuleResult], now: int) -> list[AlertChanged]:
        """Run every rule's results through the lifecycle; its transitions as events."""
        damping = self._damping()
        events: list[AlertChanged] = []
        for result in results:
            changes = advance_rule(
                self._slots,
                result.rule,
                result.observations,
                result.error,
                now,
                damping,
                waiting=_waiting_summary(result.waiting),
            )
            self.transitions += len(changes)
            events.extend(
                AlertChanged(
                    alert=c.alert, previous_state=c.previous_state, ts_ms=c.ts_ms, host=self.host
                )
                for c in changes
            )
        return events

    async def _attach_context(self, events: list[AlertChanged], now: int) -> None:
        """Add the both-sides sentence to the summary of alerts that start or fire."""
        wanted = [e for e in events if e.alert.state in (AlertState.PENDING, AlertState.FIRING)]
        if not wanted:
            return

        def build() -> dict[str, str]:
            texts: dict[str, str] = {}
            for event in wanted:
                slot = self._slots.get(event.alert.fingerprint)
                if slot is None:
                    continue
                try:
                    ctx = self.contexts.build(slot.alert, slot.rule, slot.series_labels, now)
                except Exception as exc:  # context must never stop a transition
                    log.warning("alert context failed: %s", exc)
                    continue
                self.book.remember_context(slot.alert.fingerprint, now, ctx)
                texts[slot.alert.fingerprint] = ctx["text"]
            return texts

        texts = await asyncio.to_thread(build)
        for index, event in enumerate(events):
            text = texts.get(event.alert.fingerprint)
            slot = self._slots.get(event.alert.fingerprint)
            if (
                text is None
                or slot is None
                or event.alert.state
                not in (
                    AlertState.PENDING,
                    AlertState.FIRING,
                )
            ):
                continue
            base = event.alert.annotations.get("summary", "")
            annotations = {**event.alert.annotations, "summary": f"{base} — {text}"}
            annotations["context"] = text
            alert = replace(event.alert, annotations=annotations)
            if slot.alert.state is alert.state:
                slot.alert = replace(slot.alert, annotations=annotations)
            events[index] = replace(event, alert=alert)

    async def _store_moved_values(self, events: Sequence[AlertChanged]) -> None:
        """Keep the store's copy of pending and firing alerts at their latest value.

        A transition stores an alert as it is then; between two transitions its
        value moves (a firing alert held by the minimum firing time while its
        value is back under the threshold). ``alerts list`` reads the store and
        the API this engine: they must show the same value.
        """
        changed = {event.alert.fingerprint for event in events}
        moved: list[Alert] = []
        for fingerprint, slot in self._slots.items():
            alert = slot.alert
            if alert.state not in (AlertState.PENDING, AlertState.FIRING):
                self._stored_values.pop(fingerprint, None)
                continue
            if fingerprint in changed:  # stored with its transition
                self._stored_values[fingerprint] = alert.value
            elif fingerprint not in self._stored_values or not _same_value(
                self._stored_values[fingerprint], alert.value
            ):
                moved.append(alert)
        if not moved:
            return
        values = {alert.fingerprint: alert.value for alert in moved}
        try:
            found = await asyncio.to_thread(self.store.update_alert_values, values)
        except Exception:  # the next tick tries again
            log.exception("storing the values of %d alert(s) failed", len(values))
            return
        # One not stored yet (its transition still on the bus) is tried again next tick.
        self._stored_values.update((fp, values[fp]) for fp in found)

    async def _publish(self, event: AlertChanged) -> None:
        try:
            await self.bus.publish(event)
        except Exception:
            log.exception("publishing %s failed", type(event).__name__)
        if self.persist_transitions:
            try:
                await asyncio.to_thread(self.store.record_alert_transition, event)
            except Exception:
                log.exception("storing the transition of alert %s failed", event.alert.fingerprint)

    def _prune(self, now: int) -> None:
        for fp, slot in list(self._slots.items()):
            state = slot.alert.state
            if state is AlertState.INACTIVE or (
                state is AlertState.RESOLVED and now - slot.alert.updated_ms > RESOLVED_KEPT_MS
            ):
                del self._slots[fp]
                self.book.forget(fp)

    # ------------------------------------------------------------------ notifications

    async def flush_notifications(self) -> list[Notification]:
        """Send every notification that is due now; returns what was queued."""
        return self.feed.flush(self._slots, self.clock())

    async def wait_notifications(self) -> None:
        """Wait until every notifier has sent (or given up on) what it was given."""
        await self.feed.wait_idle()

    # ------------------------------------------------------------------ API

    def alerts(self, states: Iterable[AlertState | str] | None = None) -> list[Alert]:
        """The alerts the engine holds (active and recently resolved), newest change first."""
        return self.book.alerts(states)

    def get(self, fingerprint: str) -> Alert:
        """One alert by fingerprint, from memory or the store; AlertNotFoundError."""
        return self.book.get(fingerprint)

    def acknowledge(self, fingerprint: str, author: str, note: str) -> Alert:
        """Record who acknowledged an alert and why; stored at once (``operator`` rules)."""
        alert = operator.acknowledge(self.store, self.get(fingerprint), author, note, self.clock())
        slot = self._slots.get(fingerprint)
        if slot is not None:
            slot.alert = alert
        return alert

    def add_silence(
        self,
        matchers: Any,
        starts_ms: int | None,
        ends_ms: int,
        author: str,
        reason: str,
    ) -> Silence:
        """Mute matching alerts from ``starts_ms`` (None: now) to ``ends_ms``.

        Raises ``operator.OperatorError`` (a ValueError) naming the field at fault.
        """
        now = self.clock()
        silence = operator.add_silence(
            self.store, matchers, starts_ms, ends_ms, author, reason, now
        )
        self.feed.set_silences(self.store.silences(active_at_ms=None))
        self.feed.resync(self._slots, now)
        return silence

    def expire_silence(self, silence_id: int) -> bool:
        """End a silence now; False when it does not exist or has already ended."""
        now = self.clock()
        ended = operator.expire_silence(self.store, silence_id, now)
        self.feed.set_silences(self.store.silences(active_at_ms=now))
        self.feed.resync(self._slots, now)
        return ended

    def silences(self, active_only: bool = False) -> list[Silence]:
        """Stored silences (only those active now with ``active_only``)."""
        return self.store.silences(active_at_ms=self.clock() if active_only else None)

    async def _refresh_silences(self) -> None:
        # Silences may be added by other processes (the CLI): read them each tick.
        try:
            silences = await asyncio.to_thread(self.store.silences, None)
        except Exception:
            log.exception("reading silences failed")
            return
        now = self.clock()
        self.feed.set_silences(s for s in silences if s.ends_ms > now)

    async def _refresh_acknowledgements(self) -> None:
        # Acks may come from other processes (the CLI) straight into the store.
        try:
            stored = await asyncio.to_thread(
                self.store.alerts, [AlertState.PENDING, AlertState.FIRING]
            )
        except Exception:
            log.exception("reading acknowledgements failed")
            return
        for alert in stored:
            slot = self._slots.get(alert.fingerprint)
            if slot is None or not alert.acknowledged_by:
                continue
            if slot.alert.acknowledged_by != alert.acknowledged_by or (
                slot.alert.acknowledgement_note != alert.acknowledgement_note
            ):
                slot.alert = replace(
                    slot.alert,
                    acknowledged_by=alert.acknowledged_by,
                    acknowledgement_note=alert.acknowledgement_note,
                )

    def is_silenced(self, alert: Alert) -> bool:
        """Whether an active silence mutes ``alert``."""
        return self.feed.is_silenced(alert, self.clock())

    def inhibited_by(self, alert: Alert) -> Alert | None:
        """The firing alert that inhibits ``alert``, or None."""
        return self.inhibitor.inhibited_by(alert)

    def context(self, fingerprint: str) -> dict[str, Any]:
        """The security and performance context of one alert (cached for 10 s)."""
        return self.book.context(fingerprint, self.clock())

    def describe(self, alert: Alert, *, with_context: bool = True) -> dict[str, Any]:
        """The API's AlertJson: the alert's fields, ``silenced`` and ``context``."""
        ctx: dict[str, Any] | None = None
        if with_context:
            try:
                ctx = self.context(alert.fingerprint)
            except Exception as exc:
                log.warning("context of alert %s failed: %s", alert.fingerprint, exc)
        # In this order, as the API has always read them: context, inhibition, silence.
        inhibitor = self.inhibited_by(alert)
        silenced = self.is_silenced(alert)
        return alert_json(alert, silenced=silenced, inhibited_by=inhibitor, context=ctx)

    def stats(self) -> EngineStats:
        """Counters of the engine and its notifiers."""
        return EngineStats(
            self.evaluations,
            self.rule_errors,
            self.transitions,
            self.last_evaluation_ms,
            tuple(r.stats() for r in self.runners),
        )


__all__ = ["AlertEngine", "EngineStats"]


def _same_value(a: float | None, b: float | None) -> bool:
    """Equal values, NaN included (a NaN is not equal to itself)."""
    if a is None or b is None:
        return a is b
    return a == b or (a != a and b != b)

"""Model and store objects as the API's JSON (see docs/api.md for each shape).

A finding carries a secret's redacted preview only, never anything derived
from its value: the scanners redact before a ``Finding`` exists, so every
field of it may be shown.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from secperf.model import Alert, Finding, Severity
from secperf.security.triage import TriageDecision
from secperf.store import ScanRecord, Silence, StoredFinding

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}

_FINDING_FIELDS = tuple(f.name for f in fields(Finding))


def ok(data: Any, status: int = 200) -> JSONResponse:
    """A JSON answer rendered directly (no second pass through a response model)."""
    return JSONResponse(data, status_code=status)


def to_jsonable(obj: Any) -> Any:
    """A model dataclass (or a list of them) as JSON-ready Python data."""
    cls = type(obj)
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter.dump_python(obj, mode="json")


def severity_counts(counts: dict[str, int] | None) -> dict[str, int]:
    """Counts for every severity, most severe first, zeros included."""
    counts = counts or {}
    return {sev.value: int(counts.get(sev.value, 0)) for sev in Severity}


def _metrics_json(record: ScanRecord) -> dict[str, Any] | None:
    if record.metrics is None:
        return None
    data: dict[str, Any] = to_jsonable(record.metrics)
    if record.is_import:  # another tool's results: coverage was not measured
        data["scan_coverage_percent"] = None
    return data


def scan_json(record: ScanRecord) -> dict[str, Any]:
    """ScanJson."""
    return {
        "scan_id": record.scan_id,
        "target": record.target,
        "status": record.status,
        "started_ms": record.started_ms,
        "finished_ms": record.finished_ms,
        "error": record.error,
        "scanners": list(record.scanners),
        "kind": record.kind,
        "metrics": _metrics_json(record),
        "cost": to_jsonable(record.cost) if record.cost is not None else None,
        "pacing": record.pacing,
        "prediction": record.prediction,
    }


def triage_json(decision: TriageDecision | None) -> dict[str, Any] | None:
    """The triage part of a FindingJson (a decision without a reason has reason null)."""
    if decision is None:
        return None
    return {
        "author": decision.author,
        "reason": decision.reason or None,
        "decided_ms": decision.decided_ms,
        "expires_ms": decision.expires_ms,
    }


def finding_json(stored: StoredFinding) -> dict[str, Any]:
    """FindingJson: the finding's fields plus state, novelty and triage."""
    data = to_jsonable(stored.finding)
    out = {name: data[name] for name in _FINDING_FIELDS}
    out["state"] = stored.triage_state.value
    out["is_new"] = stored.is_new
    out["scan_id"] = stored.scan_id
    out["triage"] = triage_json(stored.triage)
    return out


def alert_json(
    alert: Alert, *, silenced: bool = False, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """AlertJson."""
    out: dict[str, Any] = to_jsonable(alert)
    out["silenced"] = silenced
    out["context"] = context
    return out


def silence_json(silence: Silence, now_ms: int) -> dict[str, Any]:
    """A silence with whether it is in force now."""
    return {
        "id": silence.id,
        "matchers": silence.matchers,
        "starts_ms": silence.starts_ms,
        "ends_ms": silence.ends_ms,
        "author": silence.author,
        "reason": silence.reason,
        "created_ms": silence.created_ms,
        "active": silence.active(now_ms),
    }

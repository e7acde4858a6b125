"""Scan pacing and prediction documents: stored beside the scan, read back as written."""

from __future__ import annotations

from pathlib import Path

from secperf.store import Store


def test_pacing_and_prediction_are_stored_beside_the_scan(store_url: str) -> None:
    store = Store.open(store_url)
    other = Store.open(store_url)
    store.record_scan_prediction(
        "s1", {"duration_ms": 1200.0, "basis": "builtin"}, target="app", started_ms=1_000
    )
    store.record_scan_pacing("s1", {"priority": "low", "throttled_ms": 250.0})
    record = other.scan("s1")  # another process reads what this one wrote
    assert record is not None
    assert record.target == "app"
    assert record.prediction == {"basis": "builtin", "duration_ms": 1200.0}
    assert record.pacing == {"priority": "low", "throttled_ms": 250.0}
    store.record_scan_pacing("s1", {"priority": "normal"})
    again = store.scan("s1")
    assert again is not None and again.pacing == {"priority": "normal"}
    other.close()
    store.close()


def test_a_scan_without_documents_reads_none(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'secperf.db'}")
    store.record_scan_pacing("s2", {"priority": "low"})
    record = store.scan("s2")
    assert record is not None and record.prediction is None
    store.close()

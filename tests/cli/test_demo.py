"""`secperf demo`: the service, its load, the sample project and a real bounded run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from secperf.analysis.correlate_store import latest_run, scan_windows
from secperf.demo.load import LoadGenerator, make_order
from secperf.demo.runner import DemoOptions, config_text, guard_ms, prepare
from secperf.demo.sample import (
    SUFFIX,
    SampleError,
    fill_placeholders,
    packaged_project,
    write_sample_project,
)
from secperf.demo.service import (
    DemoService,
    OrderError,
    RequestWindow,
    price_order,
    quantile,
)
from secperf.store import COMPLETE_SCAN_STATUSES, Store
from support.cli import run_cli

# --------------------------------------------------------------------------- the service


def test_price_order_prices_a_valid_order() -> None:
    body = json.dumps(
        {
            "email": "a@example.com",
            "items": [{"sku": "ABC-1234", "quantity": 2, "price": 10.0}],
            "coupon": "SAVE10",
        }
    ).encode()
    answer = price_order(body, work=10)
    assert answer["subtotal"] == 20.0
    assert answer["total"] == 18.0
    assert len(answer["order_id"]) == 20
    # The id is derived from the order: the same order gives the same id.
    assert price_order(body, work=10)["order_id"] == answer["order_id"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"email": "nobody", "items": []}', "email"),
        (b'{"email": "a@example.com", "items": []}', "items"),
        (b'{"email": "a@example.com", "items": [{"sku": "x"}]}', "items[0].sku"),
        (
            b'{"email": "a@example.com", "items": [{"sku": "ABC-1234", "quantity": "2"}]}',
            "items[0].quantity",
        ),
        (
            b'{"email": "a@example.com", "items": [{"sku": "ABC-1234", "quantity": 1,'
            b' "price": -1}]}',
            "items[0].price",
        ),
    ],
)
def test_price_order_names_the_bad_field(body: bytes, where: str) -> None:
    with pytest.raises(OrderError, match=where.replace("[", r"\[").replace("]", r"\]")):
        price_order(body, work=10)


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_request_window_forgets_old_requests() -> None:
    window = RequestWindow(window_s=1.0)
    for i in range(10):
        window.record(float(i + 1), error=i == 0, at=100.0 + i * 0.01)
    stats = window.stats(at=100.5)
    assert stats.count == 10
    assert stats.errors == 1
    assert stats.error_rate == pytest.approx(0.1)
    assert stats.throughput == pytest.approx(10.0)
    assert stats.quantiles_ms[0.5] == pytest.approx(5.5)
    assert window.stats(at=102.0).count == 0
    assert window.stats(at=102.0).quantiles_ms == {}


def test_service_answers_and_exposes_its_latency() -> None:
    server = DemoService(("127.0.0.1", 0), work=10)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop = threading.Event()
        generator = LoadGenerator(server.url, rps=200, clients=2, bad_fraction=0.5, seed=3)
        load = threading.Thread(target=generator.run, args=(stop,), daemon=True)
        load.start()
        deadline = time.monotonic() + 10
        while sum(s.sent for s in generator.stats) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        stop.set()
        load.join(5)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        quantiles = {s.labels["quantile"] for s in families["response_time_ms"].samples}
        assert quantiles == {"0.5", "0.95", "0.99"}
        assert families["throughput"].samples[0].value > 0
        # Half the orders are malformed on purpose: the service counts them as errors.
        assert 0 < families["error_rate"].samples[0].value < 1
        assert sum(s.failed for s in generator.stats) == 0
    finally:
        server.shutdown()
        server.server_close()


def test_load_generator_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        LoadGenerator("ftp://127.0.0.1:1")
    with pytest.raises(ValueError, match="rps"):
        LoadGenerator("http://127.0.0.1:1", rps=0)
    bad = [json.loads(make_order(random.Random(i), bad_fraction=1.0)) for i in range(5)]
    assert all(isinstance(order["items"][0]["quantity"], str) for order in bad)


# --------------------------------------------------------------------------- the sample


def test_sample_project_is_written_with_its_fake_credentials(tmp_path: Path) -> None:
    project = write_sample_project(tmp_path / "p", modules=2)
    names = {p.relative_to(project.root).as_posix() for p in project.files}
    assert {"requirements.txt", "shop/admin.py", "shop/settings.py"} <= names
    assert "shop/domain/rules_002.py" in names
    settings = (project.root / "shop" / "settings.py").read_text()
    assert "{{fake:" not in settings
    assert 'AWS_ACCESS_KEY_ID = "AKIA' in settings
    for path in project.files:
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")  # real Python, not a template


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(SampleError, match=r"x\.py\.sample: unknown placeholder"):
        fill_placeholders("{{fake:nope}}", "x.py.sample")


def test_packaged_sample_is_invisible_to_scanners_of_the_repository() -> None:
    # No file under the package's project/ is Python source or a manifest, and
    # no credential sits there verbatim: only placeholders.
    root = Path(str(packaged_project()))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    assert all(p.name.endswith(SUFFIX) for p in files)
    for path in files:
        text = path.read_text()
        assert "AKIA" not in text and "ghp_" not in text


def test_demo_config_is_valid_and_scrapes_the_service(tmp_path: Path) -> None:
    from secperf.config import load_config

    options = DemoOptions(root=tmp_path, modules=0)
    layout = prepare(options)
    layout.rules.write_text("")
    layout.config.write_text(config_text(layout, "http://127.0.0.1:9", options))
    loaded = load_config(layout.config, project_dir=layout.project)
    target = loaded.config.monitor.prometheus.targets[0]
    assert target.url == "http://127.0.0.1:9/metrics"
    assert loaded.config.scan.cache is False
    assert loaded.config.scan.deps.osv_db == layout.osv
    assert guard_ms(30) == 5_000
    assert guard_ms(1) == 2_000
    with pytest.raises(ValueError, match="scan_every_s"):
        DemoOptions(root=tmp_path, scan_every_s=0)


# --------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_demo_runs_scans_correlates_gates_and_stops(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "secperf",
            "demo",
            "--duration",
            "25s",
            "--scan-every",
            "6s",
            "--correlate-every",
            "10s",
            "--modules",
            "10",
            "--port",
            "0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert time.monotonic() - started >= 25  # --duration was honoured
    assert "secperf is up: dashboard http://127.0.0.1:" in output
    assert "load generator:" in output  # the child stopped and said so

    store = Store.open(f"sqlite:///{tmp_path / '.secperf' / 'demo' / 'secperf.db'}")
    try:
        latency = store.query("response_time_ms", {"job": "acme-shop"}, 0, 2**62)
        assert {p.labels["quantile"] for p in latency} == {"0.5", "0.95", "0.99"}
        assert all(p.timestamps.size >= 10 for p in latency)

        # A scan cut short by the stop is interrupted or abandoned: only whole scans count.
        scans = [s for s in store.scans(limit=100) if s.status in COMPLETE_SCAN_STATUSES]
        assert len(scans) >= 2, output
        for scan in scans[:2]:
            found = store.findings(scan_id=scan.scan_id, limit=None)
            assert {f.finding.scanner for f in found} >= {"bandit", "secrets", "deps"}
        windows = scan_windows(scans, 0, 2**62)
        assert len(windows) >= 2

        run = latest_run(store)
        assert run is not None, output
        assert run.n_scans >= 2

        gate_runs = store.gate_runs()
        assert gate_runs, output
        assert gate_runs[0].verdict.value == "block"  # critical findings and secrets
    finally:
        store.close()


def test_demo_cli_refuses_a_bad_duration(tmp_path: Path) -> None:
    result = run_cli(["demo", "--scan-every", "soon"], cwd=tmp_path)
    assert result.returncode == 2
    assert "--scan-every" in result.stderr
    assert not (tmp_path / ".secperf").exists()


@pytest.mark.slow
def test_children_exit_when_the_parent_dies(tmp_path: Path) -> None:
    # A service whose --parent-pid is not (or no longer) its parent stops by itself.
    parent = subprocess.Popen([sys.executable, "-c", "pass"])
    parent.wait()
    child = subprocess.Popen(
        [sys.executable, "-m", "secperf.demo.service", "--parent-pid", str(parent.pid)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert child.stdout is not None
        child.stdout.close()

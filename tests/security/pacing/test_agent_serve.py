"""A real ``secperf agent`` on the real NATS here, a real ``secperf serve`` consuming: the
agent's scan is stored by the server with its prediction and pacing documents."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secperf.store import Store
from support.services import NATS_URL, nats_unreachable

HOST = "batch-4"


@pytest.fixture
def nats_space() -> Iterator[tuple[str, str]]:
    """A stream and subject prefix of this test's own on the NATS server (dropped after)."""
    reason = nats_unreachable()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("nats", reason="nats-py is not installed")
    tag = uuid.uuid4().hex[:12]
    stream = f"SECPERF_P_{tag}"
    yield stream, f"secperf_p_{tag}"

    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(drop())


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.mark.slow
def test_serve_stores_an_agents_scan_with_its_prediction_and_pacing(
    nats_space: tuple[str, str], tmp_path: Path
) -> None:
    stream, prefix = nats_space
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (project / "secperf.toml").write_text(
        f'[bus]\nstream = "{stream}"\nsubject_prefix = "{prefix}"\n'
        '[scan]\nscanners = ["bandit"]\n'
        '[monitor]\ninterval = "200ms"\n[monitor.process]\nenabled = false\n'
    )
    db = tmp_path / "central.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve_err = tmp_path / "serve.stderr"
    agent_err = tmp_path / "agent.stderr"
    command = [sys.executable, "-m", "secperf", "--project-dir", str(project)]
    with serve_err.open("wb") as err:
        serve = subprocess.Popen(
            [*command, "serve", "--bus", NATS_URL, "--store", f"sqlite:///{db}", "--port", "0"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    agent: subprocess.Popen[bytes] | None = None
    record = None
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline().decode(errors="replace")
        assert re.search(r"http://127\.0\.0\.1:\d+", line), (line, serve_err.read_text())
        with agent_err.open("wb") as err:
            agent = subprocess.Popen(
                [*command, "agent", "--bus", NATS_URL, "--host", HOST, "--scan-interval", "1h"],
                cwd=project,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        deadline = time.monotonic() + 120
        with Store.open(f"sqlite:///{db}") as store:
            while time.monotonic() < deadline and record is None:
                found = [s for s in store.scans(limit=5) if s.status == "ok"]
                if found and found[0].prediction is not None and found[0].pacing is not None:
                    record = found[0]
                else:
                    assert agent.poll() is None, agent_err.read_text()
                    time.sleep(0.2)  # polling the server's store, not waiting a fixed time
    finally:
        if agent is not None:
            assert _stop(agent) == 0, agent_err.read_text()
        _stop(serve)
    assert record is not None, f"no paced agent scan stored:\n{agent_err.read_text()}"
    assert record.prediction is not None and record.prediction["basis"] == "builtin"
    assert record.prediction["inputs"]["files"] == 1
    assert record.pacing is not None and record.pacing["priority"] == "low"
    assert "Traceback" not in serve_err.read_text() + agent_err.read_text()

"""No secret leaves secperf: not in any output, event, message, database row or cache entry.

Fake but real-looking secrets are planted on lines bandit flags for other
reasons (``verify=False``, ``shell=True``, ``eval``, a ``/tmp`` path,
``urlopen``), where the secrets scanner's own findings are not the only
place they could surface, and in the message and snippet of a SARIF result
from a tool that is not a secret scanner. Then everything secperf produces is
searched for each value, for a large piece of it, and for its salted hash:

- the real CLI (``python -m secperf``): ``scan`` as a table, JSON and SARIF,
  ``gate`` with its reports, ``findings list --json`` and ``findings show``;
- the raw bytes of the SQLite store (and its WAL) and of the scan cache;
- a scan published on the real NATS server to a running ``serve`` app (its
  store writer on the real PostgreSQL): every raw message of the stream, the
  live SSE stream, ``/api/v1/findings`` and every row of every PostgreSQL table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from secperf.web.server import bind_socket, make_server, socket_url
from support.leaks import value_hashes
from support.services import NATS_URL

#: The test runs secperf as real processes and servers.
pytestmark = pytest.mark.slow

TOKEN = "leak-test-token-0123456789abcdef"

# Fake values in real formats (none of them works anywhere).
GITHUB_TOKEN = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
AWS_KEY = "AKIAQ7XK4LMN2PQRSTUV"
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEAq7Lz9XkF2vTn4pRw8sYb3Hj6Mc1Qe5Ud0Gi7Ko2Wx9Zt4Vn8Bs"
SLACK_TOKEN = "xoxb-2840917365-5193740286155-Qw3Er5Ty7Ui9Op1As3Df5Gh"
URL_PASSWORD = "S3cr3t-Pa55w0rd!x"
STRIPE_KEY = "sk_live_9Fq2Lx7Vb3Nm8Kr1Tz4Wp6Yd"
GITLAB_TOKEN = "glpat-Hx7Qm2Vz9Lp4Rt6Kw1Nb"
# Credentials on command lines: no token format, only the option says what they are.
CURL_PASSWORD = "Hunter2Pass99zz"
PG_PASSWORD = "Pg7Secr3tWq4Lm9Xv"
MYSQL_PASSWORD = "My5qlPw41KdZr8Tn"
OPTION_PASSWORD = "0ptPassw0rdR9Jx2"
LIST_PASSWORD = "L1stPassQ8vzHw3K"
COMMAND_LINE = (CURL_PASSWORD, PG_PASSWORD, MYSQL_PASSWORD, OPTION_PASSWORD, LIST_PASSWORD)
PLANTED = (
    GITHUB_TOKEN,
    AWS_KEY,
    PRIVATE_KEY_BODY,
    SLACK_TOKEN,
    URL_PASSWORD,
    STRIPE_KEY,
    GITLAB_TOKEN,
    *COMMAND_LINE,
)

# The long lines are built in pieces: each planted secret sits on one flagged line.
_HEADERS = '{"Authorization": "token ' + GITHUB_TOKEN + '"}'
_PEM = "-----BEGIN RSA PRIVATE KEY-----\\n" + PRIVATE_KEY_BODY + "\\n-----END RSA PRIVATE KEY-----"
_SHELL = (
    f"curl -u admin:{CURL_PASSWORD} https://x.example"
    f" && PGPASSWORD={PG_PASSWORD} pg_dump -h db shop"
    f" | mysql -h replica -uroot -p{MYSQL_PASSWORD} shop"
    f" && deploy-tool --password {OPTION_PASSWORD}"
)
_ARGV = f'["curl", "--user", "ci:{LIST_PASSWORD}", "https://x.example"]'
APP = f"""import subprocess
import urllib.request

import requests


def fetch():
    return requests.get("https://x", headers={_HEADERS}, verify=False)


def sync():
    return subprocess.call("aws s3 sync . s3://bucket --key {AWS_KEY}", shell=True)


def load_key():
    return eval("{_PEM}")


def spool():
    return open("/tmp/slack-{SLACK_TOKEN}.log", "w")


def download():
    return urllib.request.urlopen("ftp://deploy:{URL_PASSWORD}@files.example.com/db.dump")


def backup():
    return subprocess.getoutput("{_SHELL}")


def fetch_as_ci():
    return subprocess.check_output({_ARGV})
"""

#: (bandit rule, the line of APP it flags) for the planted lines.
FLAGGED = {"B501": 8, "B602": 12, "B307": 16, "B108": 20, "B310": 24, "B605": 28, "B603": 32}


def sarif_log() -> dict[str, Any]:
    """A log of a tool that is not a secret scanner: secrets in a message and a snippet."""
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": "app/service.py"},
            "region": {
                "startLine": 8,
                "snippet": {"text": f'log.info("gitlab %s", "{GITLAB_TOKEN}")'},
            },
        }
    }
    escaping = {
        "physicalLocation": {
            "artifactLocation": {"uri": "../../../../etc/passwd"},
            "region": {"startLine": 1},
        }
    }
    negative = {
        "physicalLocation": {
            "artifactLocation": {"uri": "app/service.py"},
            "region": {"startLine": -5},
        }
    }
    return {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "LogAudit", "version": "2.0"}},
                "results": [
                    {
                        "ruleId": "clear-text-logging",
                        "level": "error",
                        "message": {"text": f"Data logged in clear text: {STRIPE_KEY}"},
                        "locations": [location],
                    },
                    {"ruleId": "x", "message": {"text": "escapes"}, "locations": [escaping]},
                    {"ruleId": "x", "message": {"text": "negative"}, "locations": [negative]},
                ],
            }
        ],
    }


def secperf(cwd: Path, *args: str, expect: tuple[int, ...] = (0, 1)) -> tuple[str, str]:
    """Run the real CLI; its (stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd.parent / "home"), "COLUMNS": "200"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode in expect, f"secperf {' '.join(args)}: {output}"
    assert "Traceback" not in output, output
    return result.stdout, result.stderr


@contextlib.contextmanager
def serving(app: Any, bus: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port, closing ``bus`` after it, as ``serve`` does."""
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(app, log_level="warning")
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await bus.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="uvicorn-leak-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started or bool(failure) or not thread.is_alive(), "uvicorn start")
    assert server.started, f"uvicorn did not start: {failure!r}"
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not failure, failure


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "svc"
    (root / "app").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "service.py").write_text(APP)
    (root / "reports").mkdir()
    (root / "reports" / "logaudit.sarif").write_text(json.dumps(sarif_log(), indent=1))
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets", "sarif"]\n')
    return root


@pytest.fixture
def nats_space() -> Iterator[tuple[str, str]]:
    """A JetStream stream and subject prefix of this test alone, deleted afterwards."""
    pytest.importorskip("nats", reason="nats-py is not installed")
    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2).close()
    except OSError as exc:
        pytest.skip(f"NATS at {NATS_URL} is unreachable: {exc}")
    tag = uuid.uuid4().hex[:12]
    space = (f"SECPERF_LEAK_{tag}", f"secperf_leak_{tag}")
    yield space

    async def delete() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(space[0])
        except Exception:  # never created: nothing to clean
            pass
        finally:
            await nc.close()

    asyncio.run(delete())


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        time.sleep(0.05)


def forbidden(salt: bytes) -> dict[str, str]:
    """Every text that must not appear, named for the failure message."""
    out: dict[str, str] = {}
    for value in PLANTED:
        name = value[:4] + "..."
        out[f"{name} (value)"] = value
        # A preview shows at most 4 characters at each end: never the middle.
        out[f"{name} (middle)"] = value[4:-4]
        for number, digest in enumerate(sorted(value_hashes(salt, value))):
            out[f"{name} (hash {number})"] = digest
    out["the secret_hash field"] = "secret_hash"
    return out


def assert_clean(where: str, data: bytes | str, salt: bytes) -> None:
    blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    for name, text in forbidden(salt).items():
        assert text.encode() not in blob, f"{where} holds {name}"


def cli_outputs(project: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Every CLI output on the embedded default (SQLite store, scan cache), and the scan JSON."""
    out: dict[str, str] = {}

    def run(name: str, *args: str, expect: tuple[int, ...] = (0, 1)) -> str:
        stdout, stderr = secperf(project, *args, expect=expect)
        out[name] = stdout + stderr
        return stdout

    reports = project.parent / "out"
    run("scan (table)", "scan")
    report: dict[str, Any] = json.loads(run("scan --format json", "scan", "--format", "json"))
    run("scan --format sarif", "scan", "--format", "sarif", "-o", str(reports / "scan.sarif"))
    out["scan.sarif"] = (reports / "scan.sarif").read_text()
    run("gate", "gate", "--report-dir", str(reports / "gate"), expect=(0, 1, 3))
    gate_reports = sorted((reports / "gate").iterdir())
    assert {p.name for p in gate_reports} >= {
        "gate.md",
        "gate.junit.xml",
        "gate.sarif",
        "gate.json",
    }
    for path in gate_reports:
        out[f"gate report {path.name}"] = path.read_text()
    listed = json.loads(
        run("findings list --json", "findings", "list", "--json", "--limit", "1000")
    )
    shown = {f["fingerprint"] for f in listed if f["rule_id"] in FLAGGED or f["scanner"] == "sarif"}
    assert len(shown) == len(FLAGGED) + 1, listed
    for fingerprint in sorted(shown):
        run(f"findings show {fingerprint[:8]}", "findings", "show", fingerprint)
    return out, report


def check_findings_report(report: dict[str, Any]) -> None:
    """The scan found what the test relies on, so a clean grep means something."""
    found = {(f["rule_id"], f["line"]) for f in report["findings"]}
    for rule, line in FLAGGED.items():
        assert (rule, line) in found, f"bandit did not flag {rule} on line {line}: {found}"
    imported = [f for f in report["findings"] if f["scanner"] == "sarif"]
    assert [(f["rule_id"], f["path"], f["line"]) for f in imported] == [
        ("logaudit/clear-text-logging", "app/service.py", 8)
    ]
    assert "****" in imported[0]["message"] and "****" in imported[0]["snippet"]
    b501 = next(f for f in report["findings"] if f["rule_id"] == "B501")
    assert "ghp_****8Ue2" in b501["snippet"], b501["snippet"]
    # Command-line credentials are masked as URL passwords are: the user stays.
    b605 = next(f for f in report["findings"] if f["rule_id"] == "B605")
    for preview in ("admin:Hu****zz", "PGPASSWORD=Pg****Xv", "-pMy****Tn", "--password 0p****x2"):
        assert preview in b605["snippet"], b605["snippet"]
    b603 = next(f for f in report["findings"] if f["rule_id"] == "B603")
    assert '"ci:L1****3K"' in b603["snippet"], b603["snippet"]
    # The nonsense SARIF results are listed with their fields, not stored.
    reasons = " ".join(s["reason"] for s in report["skipped"] if s["scanner"] == "sarif")
    assert "runs[0].results[1].locations[0].physicalLocation.artifactLocation.uri" in reasons
    assert "runs[0].results[2].locations[0].physicalLocation.region.startLine: -5" in reasons
    assert not any("passwd" in f["path"] or f["line"] < 0 for f in report["findings"])


def published_scan(
    project: Path, postgres_url: str, nats_space: tuple[str, str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """A scan published on NATS to a running server storing in PostgreSQL.

    Returns the texts read (raw NATS messages, the SSE stream, the API) and the
    scan's JSON report.
    """
    from secperf.bus.nats import NatsEventBus
    from secperf.store import Store
    from secperf.store.writer import StoreWriter
    from secperf.web import create_app

    stream, prefix = nats_space
    (project / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets", "sarif"]\n'
        f'[store]\nurl = "{postgres_url}"\n'
        f'[bus]\nurl = "{NATS_URL}"\nstream = "{stream}"\nsubject_prefix = "{prefix}"\n'
    )
    texts: dict[str, str] = {}
    store = Store.open(postgres_url)
    bus = NatsEventBus(NATS_URL, stream=stream, subject_prefix=prefix)
    app = create_app(
        store, bus, token=TOKEN, writer=StoreWriter(store), manage_writer=True, heartbeat_s=0.3
    )
    frames: list[str] = []
    stream_open = threading.Event()
    stop = threading.Event()
    try:
        with serving(app, bus) as url:

            def read_stream() -> None:
                stream_url = f"{url}/api/v1/stream?topics=security.>&token={TOKEN}"
                with (
                    httpx.Client(timeout=httpx.Timeout(60.0)) as client,
                    client.stream("GET", stream_url) as response,
                ):
                    stream_open.set()
                    # Heartbeats every 0.3 s keep lines coming, so the stop is seen.
                    for line in response.iter_lines():
                        frames.append(line)
                        if stop.is_set():
                            return

            reader = threading.Thread(target=read_stream, daemon=True)
            reader.start()
            assert stream_open.wait(30), "the SSE stream did not open"
            stdout, stderr = secperf(project, "scan", "--no-cache", "--format", "json")
            texts["scan published on NATS (CLI output)"] = stdout + stderr
            report: dict[str, Any] = json.loads(stdout)
            expected = len(report["findings"])
            wait_until(
                lambda: sum(line == "event: ViolationDetected" for line in frames) >= expected,
                f"{expected} violations on the SSE stream",
            )
            stop.set()
            reader.join(timeout=30)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                wait_until(
                    lambda: (
                        len(client.get("/api/v1/findings?limit=1000").json()["findings"])
                        >= expected
                    ),
                    "the published findings in the API",
                )
                for path in ("/api/v1/findings?limit=1000", "/api/v1/scans", "/api/v1/overview"):
                    texts[f"API {path}"] = client.get(path).text
            texts["SSE stream"] = "\n".join(frames)
    finally:
        store.close()
    texts["NATS messages"] = asyncio.run(raw_nats_messages(stream))
    return texts, report


async def raw_nats_messages(stream: str) -> str:
    """Every message of the JetStream stream, as the raw bytes that crossed the wire."""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        assert info.state.messages > 0, "nothing was published on NATS"
        bodies = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            bodies.append((message.data or b"").decode("utf-8", "replace"))
        return "\n".join(bodies)
    finally:
        await nc.close()


def postgres_rows(postgres_url: str) -> str:
    """Every row of every table of the test's PostgreSQL schema, as text."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(postgres_url)
    schema = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)["schema"]
    dsn = postgres_url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://", 1)
    rows: list[str] = []
    with psycopg.connect(dsn) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        assert "findings" in tables, tables
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {}.{} t").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            rows += [f"{table}: {text}" for (text,) in conn.execute(query)]
    return "\n".join(rows)


def test_no_planted_secret_leaks_anywhere(
    project: Path, postgres_url: str, nats_space: tuple[str, str]
) -> None:
    outputs, report = cli_outputs(project)
    check_findings_report(report)
    salt = bytes.fromhex((project / ".secperf" / "salt").read_text().strip())

    published, published_report = published_scan(project, postgres_url, nats_space)
    check_findings_report(published_report)
    outputs.update(published)
    assert "event: ViolationDetected" in outputs["SSE stream"]
    assert "ghp_****8Ue2" in outputs["NATS messages"]
    pg_rows = postgres_rows(postgres_url)
    assert "ghp_****8Ue2" in pg_rows, "the published findings did not reach PostgreSQL"
    outputs["PostgreSQL rows"] = pg_rows

    for name, text in outputs.items():
        assert_clean(name, text, salt)
    files = [
        p for p in (project / ".secperf").iterdir() if p.name.startswith(("secperf.db", "cache.db"))
    ]
    assert {"secperf.db", "cache.db"} <= {p.name for p in files}
    for path in files:
        assert_clean(path.name, path.read_bytes(), salt)


def test_command_line_credentials_leak_nowhere_without_services(project: Path) -> None:
    """The credentials on the command lines bandit flags (B605, B603) stay out of the
    scan's JSON and SARIF, of the table of a scan served from the cache, and of the
    bytes of the store and the cache: the CLI on its embedded defaults, no server needed.
    """
    outputs: dict[str, str] = {}
    stdout, stderr = secperf(project, "scan", "--format", "json")
    outputs["scan --format json"] = stdout + stderr
    report: dict[str, Any] = json.loads(stdout)
    check_findings_report(report)
    sarif = project.parent / "out" / "scan.sarif"
    stdout, stderr = secperf(project, "scan", "--format", "sarif", "-o", str(sarif))
    outputs["scan --format sarif"] = stdout + stderr + sarif.read_text()
    assert "admin:Hu****zz" in outputs["scan --format sarif"]
    stdout, stderr = secperf(project, "scan", "--format", "json")
    outputs["scan --format json (cached)"] = stdout + stderr
    assert json.loads(stdout)["findings"] == report["findings"]
    stdout, stderr = secperf(project, "scan")
    outputs["scan (table)"] = stdout + stderr

    salt = bytes.fromhex((project / ".secperf" / "salt").read_text().strip())
    for name, text in outputs.items():
        for value in COMMAND_LINE:
            assert value not in text, f"{name} holds {value}"
        assert_clean(name, text, salt)
    files = [
        p for p in (project / ".secperf").iterdir() if p.name.startswith(("secperf.db", "cache.db"))
    ]
    assert {"secperf.db", "cache.db"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for value in COMMAND_LINE:
            assert value.encode() not in data, f"{path.name} holds {value}"
        assert_clean(path.name, data, salt)

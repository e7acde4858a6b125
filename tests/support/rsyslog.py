"""A real rsyslog (Debian package ``rsyslog``) receiving syslog over TCP on a loopback port.

Each ``RsyslogServer`` runs ``rsyslogd -n`` with a config file of its own
(``imtcp`` on a free port, ``omfile`` writing every message whole, one per
line, to ``received.log``), its own work directory and pid file: no root, no
system paths. ``stop`` sends SIGTERM and waits until the process is gone;
``start`` again listens on the same port. With ``tls`` (rsyslog's ``ossl``
network stream driver, package ``rsyslog-openssl``) it takes TLS with a
self-signed certificate made by ``openssl``. The ``rsyslog`` fixture makes
servers and stops every one when the test ends, passed or failed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.services import free_port

RSYSLOGD = "/usr/sbin/rsyslogd"
#: rsyslog's OpenSSL driver (package rsyslog-openssl).
OSSL_DRIVER = Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so")


def require_rsyslogd() -> str:
    """The rsyslogd binary, or skip the test naming the package."""
    binary = RSYSLOGD if Path(RSYSLOGD).exists() else shutil.which("rsyslogd")
    if binary is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog)")
    return binary


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (skips without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class RsyslogServer:
    """rsyslogd listening on 127.0.0.1:``port``, writing what it receives to ``received``."""

    def __init__(self, directory: Path, *, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = require_rsyslogd()
        if tls is not None and not OSSL_DRIVER.exists():
            pytest.skip("rsyslog's TLS driver is not installed (apt-get install rsyslog-openssl)")
        self.directory = directory
        self.port = free_port()
        self.received = directory / "received.log"
        self.config = directory / "rsyslog.conf"
        self.pidfile = directory / "rsyslogd.pid"
        self.log = directory / "rsyslogd.out"
        work = directory / "work"
        work.mkdir(parents=True, exist_ok=True)
        driver = ""
        listen_tls = ""
        if tls is not None:
            cert, key = tls
            driver = (
                f' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="{cert}"'
                f' defaultNetstreamDriverCertFile="{cert}" defaultNetstreamDriverKeyFile="{key}"'
            )
            listen_tls = (
                ' streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon"'
            )
        self.config.write_text(
            f'global(workDirectory="{work}" maxMessageSize="64k"{driver})\n'
            f'module(load="imtcp"{listen_tls})\n'
            'template(name="whole" type="string" string="%rawmsg%\\n")\n'
            'ruleset(name="siem") {\n'
            f'  action(type="omfile" file="{self.received}" template="whole"'
            ' flushOnTXEnd="on" asyncWriting="off")\n'
            "}\n"
            f'input(type="imtcp" port="{self.port}" address="127.0.0.1" ruleset="siem")\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    def validate(self) -> str:
        """``rsyslogd -N1``: the config's check; returns its output (fails the test when bad)."""
        done = subprocess.run(
            [self.binary, "-N1", "-f", str(self.config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    def start(self, limit_s: float = 20.0) -> None:
        """Start rsyslogd and wait until it accepts connections."""
        self.pidfile.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + limit_s
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"rsyslogd exited early:\n{self.log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"rsyslogd did not listen on {self.port} within {limit_s} s")
                time.sleep(0.05)

    def stop(self, limit_s: float = 20.0) -> None:
        """SIGTERM, then wait until the process is gone (SIGKILL past ``limit_s``)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(limit_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def lines(self) -> list[str]:
        """Every message received so far, in the order written."""
        if not self.received.exists():
            return []
        return self.received.read_text(encoding="utf-8", errors="replace").splitlines()


#: Makes an ``RsyslogServer`` in the test's tmp_path (``name``: its directory; ``tls``).
RsyslogFactory = Callable[..., RsyslogServer]


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[RsyslogFactory]:
    """A factory of rsyslog servers, each stopped when the test ends."""
    made: list[RsyslogServer] = []

    def make(name: str = "rsyslog", *, tls: tuple[Path, Path] | None = None) -> RsyslogServer:
        server = RsyslogServer(tmp_path / name, tls=tls)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()

"""RFC 5424 syslog messages, RFC 6587 octet-counting frames, and a TCP/TLS sender.

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG``:
PRI is facility * 8 + severity, the timestamp RFC 3339 in UTC with
milliseconds, MSGID the record's kind, and one structured-data element
``[secperf@32473 seq="…" key="…"]`` carries the output queue's sequence number
(it only grows) and the record's key, so a receiver can drop a message it got
twice. (32473 is the private enterprise number RFC 5612 sets aside for
examples; secperf has none of its own.) MSG is the CEF or ECS text, UTF-8,
without a BOM (CEF parsers expect ``CEF:`` first).

On the wire each message is framed by octet counting (RFC 6587 3.4.1): its
length in bytes, a space, the message — so a message may hold line breaks.

Syslog over TCP has no acknowledgement of its own. ``SyslogConnection.send``
therefore counts a batch as delivered only once the receiver's TCP stack has
acknowledged every byte of it (the socket's send queue is empty, Linux
``SIOCOUTQ``) and the connection is still open; anything short of that raises
``SyslogError`` and the caller sends the batch again on a new connection. What
remains is a receiver that acknowledged bytes and then died before
processing them (lost), or one that processed them without our seeing the
acknowledgement (sent twice: the sequence number tells).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: The SD-ID of secperf's structured data (RFC 5424 6.3.2, enterprise number 32473).
SD_ID = "secperf@32473"
#: RFC 5424 field limits.
MAX_HOSTNAME = 255
MAX_APP_NAME = 48
MAX_PROCID = 128
MAX_MSGID = 32
NILVALUE = "-"

# Linux: bytes in a TCP socket's send queue not yet acknowledged by the peer.
_SIOCOUTQ = 0x5411
_TCP_ESTABLISHED = 1
_TCP_CLOSE_WAIT = 8


class SyslogError(Exception):
    """Sending to the receiver failed, or its receipt could not be confirmed."""


def _printable(text: str, limit: int) -> str:
    """RFC 5424 header text: printable US-ASCII only (33-126), at most ``limit`` characters."""
    cleaned = "".join(ch if 33 <= ord(ch) <= 126 else "_" for ch in text)[:limit]
    return cleaned or NILVALUE


def escape_sd_value(text: str) -> str:
    """A structured-data PARAM-VALUE: ``\\``, ``"`` and ``]`` escaped (RFC 5424 6.3.3)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc3339(ms: int) -> str:
    """UTC milliseconds as an RFC 5424 TIMESTAMP (``2024-05-01T12:00:00.000Z``)."""
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SyslogHeader:
    """What an output puts in every message's header."""

    facility: int
    app_name: str
    procid: str = NILVALUE


def build_message(
    header: SyslogHeader,
    *,
    severity: int,
    ts_ms: int,
    hostname: str,
    msgid: str,
    sequence: int,
    key: str,
    text: str,
) -> bytes:
    """One RFC 5424 message (without framing) as UTF-8 bytes."""
    if not 0 <= header.facility <= 23 or not 0 <= severity <= 7:
        raise ValueError(f"facility {header.facility} / severity {severity} out of range")
    pri = header.facility * 8 + severity
    sd = f'[{SD_ID} seq="{sequence}" key="{escape_sd_value(key)}"]'
    head = " ".join(
        (
            f"<{pri}>1",
            rfc3339(ts_ms),
            _printable(hostname, MAX_HOSTNAME),
            _printable(header.app_name, MAX_APP_NAME),
            _printable(header.procid, MAX_PROCID),
            _printable(msgid, MAX_MSGID),
            sd,
        )
    )
    return f"{head} {text}".encode()


def frame(message: bytes) -> bytes:
    """``message`` framed by octet counting: ``LEN SP MSG`` (RFC 6587 3.4.1)."""
    return b"%d %s" % (len(message), message)


def tls_context(
    *,
    ca_file: Path | None = None,
    verify: bool = True,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> ssl.SSLContext:
    """A client TLS context: the system CAs (or ``ca_file``); ``verify`` checks cert and name."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
    )
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return context


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes sent but not yet acknowledged by the peer (None where the OS cannot tell)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        raw = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return None
    return int(struct.unpack("i", raw)[0])


def _tcp_state(sock: socket.socket) -> int | None:
    """The TCP state (Linux ``tcp_info.tcpi_state``), None where unknown."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return None
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 8)[0])
    except OSError:
        return None


class SyslogConnection:
    """One TCP (or TLS) connection to a syslog receiver; blocking, for one thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext | None = None,
        server_name: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.context = context
        self.server_name = server_name
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open (as far as this side knows)."""
        return self._sock is not None

    def connect(self) -> None:
        """Open the connection (and the TLS session); SyslogError when it cannot."""
        self.close()
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise SyslogError(f"cannot connect to {self.host}:{self.port}: {_why(exc)}") from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock: socket.socket = raw
            if self.context is not None:
                sock = self.context.wrap_socket(raw, server_hostname=self.server_name or self.host)
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise SyslogError(f"TLS with {self.host}:{self.port} failed: {_why(exc)}") from None
        self._sock = sock

    def peer_closed(self) -> bool:
        """Whether the receiver closed or reset the connection (checked without blocking).

        Receivers never send on a syslog connection, so anything readable is
        the end of it (or, with TLS, a session ticket, which is read and ignored).
        """
        sock = self._sock
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        sock.setblocking(False)
        try:
            data = sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(True)
                sock.settimeout(self.timeout_s)
        return data == b""

    def send(self, frames: Sequence[bytes], confirm_timeout_s: float = 10.0) -> None:
        """Write ``frames`` and wait until the receiver's TCP stack acknowledged all of them.

        Raises SyslogError when writing fails, the connection ends, or the
        acknowledgement does not come within ``confirm_timeout_s``; the
        connection is then closed and nothing of the batch counts as delivered.
        """
        sock = self._sock
        if sock is None:
            raise SyslogError("not connected")
        try:
            sock.sendall(b"".join(frames))
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise SyslogError(f"sending to {self.host}:{self.port} failed: {_why(exc)}") from None
        deadline = time.monotonic() + confirm_timeout_s
        pause = 0.001
        while True:
            pending = _unacknowledged(sock)
            if pending is None:
                return  # the OS cannot tell: the write is all there is
            if pending == 0:
                break
            if time.monotonic() > deadline:
                self.close()
                raise SyslogError(
                    f"{self.host}:{self.port} did not acknowledge {pending} byte(s) within"
                    f" {confirm_timeout_s:g} s",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        # A reset purges the send queue too: only an open connection confirms.
        state = _tcp_state(sock)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error or (state is not None and state not in (_TCP_ESTABLISHED, _TCP_CLOSE_WAIT)):
            self.close()
            why = errno.errorcode.get(error, str(error)) if error else "the connection closed"
            raise SyslogError(f"{self.host}:{self.port}: {why} before confirming receipt")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)

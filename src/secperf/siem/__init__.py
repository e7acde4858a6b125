"""SIEM out: security events forwarded as RFC 5424 syslog (CEF or ECS JSON) over TCP/TLS.

``translate`` turns bus events into ``SiemRecord`` s (new and fixed findings,
secrets, triage, alerts, gate verdicts, throttled scans); ``format_cef`` and
``format_ecs`` write a record as text; ``syslog`` frames it (RFC 5424 inside
RFC 6587 octet counting) and sends it; ``queue`` keeps it on disk until the
receiver took it; ``forwarder`` ties them together on the bus. ``secperf
serve`` and ``secperf up`` run a forwarder when ``[[siem.outputs]]`` are set.
"""

from __future__ import annotations

from secperf.siem.forwarder import SiemForwarder, SiemOutput, SiemOutputStats

__all__ = ["SiemForwarder", "SiemOutput", "SiemOutputStats"]

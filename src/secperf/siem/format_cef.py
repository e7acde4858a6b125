"""A ``SiemRecord`` in ArcSight's Common Event Format (CEF version 0).

``CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|Extension``: the
seven header fields are separated by ``|``, so a ``|`` or ``\\`` inside one is
escaped with a backslash (a line break, which the header may not hold, becomes
a space). The extension is ``key=value`` pairs separated by spaces; in a value
``\\`` and ``=`` are escaped with a backslash and line breaks are written
``\\n`` / ``\\r`` (``|`` needs no escape there).

The Signature ID is the record's kind (``finding.new``, ``gate`` ...), the
severity CEF's 0-10 scale. Extension keys are CEF's own dictionary names
(``rt``, ``dvchost``, ``cat``, ``act``, ``msg``, ``outcome``, ``reason``,
``suser``, ``filePath``, ``externalId``) plus labelled custom fields
(``cs1Label=ruleId cs1=B105``); see docs/integrations.md for the full list.
Every free-text value is redacted first (``records.redact_record``).
"""

from __future__ import annotations

from secperf import __version__
from secperf.siem.records import CEF_SEVERITY, PRODUCT, VENDOR, SiemRecord, redact_record


def escape_header(text: str) -> str:
    """A CEF header field: ``\\`` and ``|`` escaped, line breaks turned into spaces."""
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(text: str) -> str:
    """A CEF extension value: ``\\`` and ``=`` escaped, line breaks as ``\\n`` / ``\\r``."""
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def extension_pairs(record: SiemRecord, sequence: int | None = None) -> list[tuple[str, str]]:
    """The extension's ``(key, value)`` pairs of an already redacted record, unescaped."""
    pairs: list[tuple[str, str]] = [
        ("rt", str(record.ts_ms)),
        ("dvchost", record.host),
        ("cat", record.kind),
    ]
    if record.state:
        pairs.append(("act", record.state))
    if record.outcome:
        pairs.append(("outcome", record.outcome))
    if record.reason:
        pairs.append(("reason", record.reason))
    if record.user:
        pairs.append(("suser", record.user))
    if record.reference:
        pairs.append(("externalId", record.reference))
    finding = record.finding
    if finding is not None:
        pairs.append(("filePath", finding.path))
    if record.rule:
        pairs += [("cs1Label", "ruleId"), ("cs1", record.rule)]
    if record.target:
        pairs += [("cs2Label", "target"), ("cs2", record.target)]
    if record.scan_id:
        pairs += [("cs3Label", "scanId"), ("cs3", record.scan_id)]
    if finding is not None:
        if finding.snippet:
            label = "preview" if record.kind == "secret" else "snippet"
            pairs += [("cs4Label", label), ("cs4", finding.snippet)]
        pairs += [("cs5Label", "scanner"), ("cs5", finding.scanner)]
        if finding.line:
            pairs += [("cn1Label", "line"), ("cn1", str(finding.line))]
        if finding.cwe is not None:
            pairs += [("cn2Label", "cwe"), ("cn2", str(finding.cwe))]
        if record.baselined is not None:
            baselined = "true" if record.baselined else "false"
            pairs += [("flexString1Label", "baselined"), ("flexString1", baselined)]
    if record.labels:
        text = ",".join(f"{k}={v}" for k, v in sorted(record.labels.items()))
        pairs += [("cs6Label", "labels"), ("cs6", text)]
    if sequence is not None:
        pairs += [("cn3Label", "sequence"), ("cn3", str(sequence))]
    if record.value is not None:
        pairs += [("cfp1Label", "value"), ("cfp1", _number(record.value))]
    pairs.append(("msg", record.message))
    return pairs


def format_cef(record: SiemRecord, sequence: int | None = None) -> str:
    """``record`` as one CEF line (redacted); ``sequence`` is the queue's number for it."""
    record = redact_record(record)
    header = [
        "CEF:0",
        escape_header(VENDOR),
        escape_header(PRODUCT),
        escape_header(__version__),
        escape_header(record.kind),
        escape_header(record.name),
        str(CEF_SEVERITY[record.severity]),
    ]
    extension = " ".join(
        f"{key}={escape_extension(value)}" for key, value in extension_pairs(record, sequence)
    )
    return "|".join(header) + "|" + extension

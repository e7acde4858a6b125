"""The report's SHA-256: over the canonical JSON of its data section, and its check.

Canonical JSON: keys sorted, no white space (``separators=(",", ":")``),
UTF-8, non-ASCII kept as is. The JSON report holds ``data`` and ``sha256``;
the HTML report embeds the same data in ``<pre id="secperf-report-data">``
(HTML-escaped) and shows the hash in ``<code id="secperf-report-sha256">``.
Anyone can recompute it without secperf:

    python -c "import json,hashlib,sys; d=json.load(sys.stdin)['data'];
    print(hashlib.sha256(json.dumps(d,sort_keys=True,separators=(',',':'),
    ensure_ascii=False).encode()).hexdigest())" < report.json
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from typing import Any

DATA_ELEMENT_ID = "secperf-report-data"
HASH_ELEMENT_ID = "secperf-report-sha256"

_DATA_RE = re.compile(rf'<pre id="{DATA_ELEMENT_ID}"[^>]*>(?P<body>.*?)</pre>', re.DOTALL)
_HASH_RE = re.compile(rf'<code id="{HASH_ELEMENT_ID}"[^>]*>(?P<hash>[0-9a-f]*)</code>')


def canonical_json(data: Any) -> bytes:
    """``data`` as canonical JSON bytes (what the hash is taken over)."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def data_sha256(data: Any) -> str:
    """The hex SHA-256 of ``data``'s canonical JSON."""
    return hashlib.sha256(canonical_json(data)).hexdigest()


class VerifyError(ValueError):
    """A report that cannot be checked (not a secperf report, or damaged)."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a report: the hash it states and the one its data gives."""

    stated: str
    computed: str

    @property
    def ok(self) -> bool:
        """Whether the data is what the hash says."""
        return self.stated == self.computed


def verify_text(text: str) -> Verification:
    """Check a JSON or HTML report's data against its hash; VerifyError when it holds none.

    This checks the data only: ``compliance.verify`` also checks an HTML
    report's visible page against its data.
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise VerifyError(f"not valid JSON: {exc}") from None
        if not isinstance(document, dict) or "data" not in document or "sha256" not in document:
            raise VerifyError("a JSON report holds 'data' and 'sha256'; this file does not")
        return Verification(str(document["sha256"]), data_sha256(document["data"]))
    stated = _HASH_RE.search(text)
    data = html_embedded_data(text)
    if stated is None:
        raise VerifyError(_NOT_HTML_REPORT)
    return Verification(stated.group("hash"), data_sha256(data))


_NOT_HTML_REPORT = (
    f'an HTML report holds <pre id="{DATA_ELEMENT_ID}"> and <code id="{HASH_ELEMENT_ID}">;'
    " this file does not (a PDF cannot be checked: check the JSON or HTML report)"
)


def html_embedded_data(text: str) -> Any:
    """The report data an HTML report embeds; VerifyError when it holds none or it is damaged."""
    found = _DATA_RE.search(text)
    if found is None:
        raise VerifyError(_NOT_HTML_REPORT)
    try:
        return json.loads(html.unescape(found.group("body")))
    except ValueError as exc:
        raise VerifyError(f"the embedded report data is not valid JSON: {exc}") from None

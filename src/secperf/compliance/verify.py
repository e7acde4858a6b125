"""``secperf report --verify``: a report's data against its hash, and an HTML report's page.

The hash covers the data only; an HTML report's tables, tiles and charts are
drawn from that data. So an HTML report is also drawn again from its embedded
data and hash and compared, character for character, with the file: an edit
to a visible number fails even when the embedded data was left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from secperf import __version__
from secperf.compliance.digest import VerifyError, html_embedded_data, verify_text
from secperf.compliance.render_html import render_html

PDF_MAGIC = b"%PDF"
#: Characters of context shown around the first difference of a page.
CONTEXT = 60


@dataclass(frozen=True, slots=True)
class ReportCheck:
    """The outcome of checking a report file."""

    stated: str
    computed: str
    #: HTML only: whether the page is what its data draws (None for JSON).
    page_matches: bool | None = None
    #: Where the page first differs from what its data draws, quoted (None when equal).
    difference: str | None = None
    #: The secperf that wrote the report, when another version than this one.
    other_generator: str | None = None

    @property
    def hash_ok(self) -> bool:
        """Whether the data is what the hash says."""
        return self.stated == self.computed

    @property
    def ok(self) -> bool:
        """Whether nothing was edited: the data matches its hash and the page its data."""
        return self.hash_ok and self.page_matches is not False


def _first_difference(found: str, expected: str) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(found, expected, strict=False)) if a != b),
        min(len(found), len(expected)),
    )
    start = max(0, at - CONTEXT // 2)
    return (
        f"at character {at}: the file has {found[start : at + CONTEXT]!r},"
        f" the data draws {expected[start : at + CONTEXT]!r}"
    )


def verify_report_bytes(body: bytes) -> ReportCheck:
    """Check a JSON or HTML report's bytes; VerifyError when they hold no checkable report."""
    if body.startswith(PDF_MAGIC):
        raise VerifyError(
            "a PDF cannot be verified (its text is laid out, not data):"
            " check the HTML or JSON report of the same data instead"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise VerifyError(
            "not a JSON or HTML report (not UTF-8 text); a PDF cannot be verified:"
            " check the HTML or JSON report of the same data instead"
        ) from None
    result = verify_text(text)
    if text.lstrip().startswith("{"):
        return ReportCheck(result.stated, result.computed)
    data = html_embedded_data(text)
    generator = data.get("generator") if isinstance(data, dict) else None
    other = generator if generator != f"secperf {__version__}" else None
    try:
        expected = render_html(data, result.stated)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        # Data a renderer cannot draw was not written by it.
        return ReportCheck(
            result.stated,
            result.computed,
            page_matches=False,
            difference="the embedded data cannot be drawn as a report",
            other_generator=other,
        )
    if text == expected:
        return ReportCheck(result.stated, result.computed, page_matches=True)
    return ReportCheck(
        result.stated,
        result.computed,
        page_matches=False,
        difference=_first_difference(text, expected),
        other_generator=other,
    )

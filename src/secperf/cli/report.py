"""``secperf report``: the compliance report of a period, as JSON, HTML or PDF; ``--verify``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import fail, load_or_exit, open_store, say

if TYPE_CHECKING:
    from secperf.config import LoadedConfig


def report(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Start: a duration back from --until (90d, 12h) or a UTC date."
        ),
    ] = "90d",
    until: Annotated[
        str | None,
        typer.Option("--until", help="End: a UTC date or time, or a duration back (default: now)."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only this target (default: every target).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="json, html or pdf.")
    ] = "html",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="File to write; - for stdout (json and html)."),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Check a JSON or HTML report against its SHA-256 (and an HTML page against"
            " its data); exit 1 if edited.",
        ),
    ] = None,
) -> None:
    """Write the compliance report of a period: findings, SLAs, gates, objectives, evidence.

    Exit 0 when written, 2 for bad input or when PDF output is not installed.
    With --verify FILE: exit 0 when the report's data matches its hash, 1 when not.
    """
    from secperf.compliance.output import parse_format

    if verify is not None:
        _verify(verify)
        return
    try:
        fmt = parse_format(output_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--format") from None
    if output is None:
        fail("--output/-o is required: a file name, or - for stdout (json and html)")
    if output == "-" and fmt == "pdf":
        fail("PDF is not written to a terminal: give -o FILE.pdf")
    loaded = load_or_exit(ctx)
    body = _build(loaded, since, until, target, fmt)
    if output == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    try:
        path.write_bytes(body)
    except OSError as exc:
        fail(f"{path}: cannot write the report: {exc.strerror or exc}")
    say(f"wrote {path} ({fmt}, {len(body):,} bytes)")


def _build(
    loaded: LoadedConfig, since: str, until: str | None, target: str | None, fmt: str
) -> bytes:
    """The report's bytes; exits 2 on a bad period or missing PDF support."""
    from secperf.compliance.data import ReportInputs, collect_report
    from secperf.compliance.output import ReportFormat, render
    from secperf.compliance.period import parse_period
    from secperf.compliance.render_pdf import PdfUnavailable
    from secperf.compliance.scope import UnknownTarget, resolve_target
    from secperf.compliance.settings import config_sha256, scanner_versions
    from secperf.events import now_ms

    now = now_ms()
    try:
        period = parse_period(since, until, now)
    except ValueError as exc:
        fail(str(exc))
    chosen: ReportFormat = "pdf" if fmt == "pdf" else ("json" if fmt == "json" else "html")
    if chosen == "pdf":
        # Fail before reading the store when the PDF cannot be made here.
        from secperf.compliance.render_pdf import require_pdf_support

        try:
            require_pdf_support()
        except PdfUnavailable as exc:
            fail(str(exc))
    with open_store(loaded) as store:
        # A name that matches no stored target would report nothing, which reads as clean.
        try:
            chosen_target = (
                None if target is None else resolve_target(store, target, cwd=Path.cwd())
            )
        except UnknownTarget as exc:
            fail(str(exc))
        inputs = ReportInputs(
            period=period,
            target=chosen_target,
            config=loaded.config.report,
            scanner_versions=scanner_versions(loaded.config),
            config_hash=config_sha256(loaded.config),
            generated_ms=now,
        )
        data = collect_report(store, inputs)
    try:
        return render(data, chosen)
    except PdfUnavailable as exc:
        fail(str(exc))


def _verify(path: Path) -> None:
    from secperf.compliance.digest import VerifyError
    from secperf.compliance.verify import verify_report_bytes

    try:
        body = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the report: {exc.strerror or exc}")
    try:
        result = verify_report_bytes(body)
    except VerifyError as exc:
        fail(f"{path}: {exc}")
    if not result.hash_ok:
        fail(
            f"{path}: EDITED: the report states SHA-256 {result.stated or '(none)'}"
            f" but its data hashes to {result.computed}",
            code=1,
        )
    if result.page_matches is False:
        written_by = (
            f" (written by {result.other_generator}: another version may draw it otherwise)"
            if result.other_generator
            else ""
        )
        fail(
            f"{path}: EDITED: the data matches its SHA-256 {result.stated}, but the page"
            f" is not what that data draws{written_by}; first difference {result.difference}",
            code=1,
        )
    checked = ", and the page is what that data draws" if result.page_matches else ""
    say(f"{path}: ok, the data matches its SHA-256 {result.stated}{checked}")

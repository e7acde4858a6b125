"""The report as PDF: the HTML report laid out by WeasyPrint (the ``pdf`` extra)."""

from __future__ import annotations


class PdfUnavailable(RuntimeError):
    """WeasyPrint (or the Pango library it needs) is not installed here."""


def require_pdf_support() -> None:
    """Return when PDF can be written here; PdfUnavailable saying what to install otherwise."""
    try:
        # Loaded only here: WeasyPrint is an optional extra and slow to import.
        import weasyprint  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: the package is there, Pango is not
        raise PdfUnavailable(
            "PDF output needs WeasyPrint: install secperf[pdf]"
            f" (pip install 'secperf[pdf]'); it could not be loaded: {exc}"
        ) from None


def render_pdf(html_text: str) -> bytes:
    """The HTML report printed to PDF bytes; PdfUnavailable when WeasyPrint cannot load."""
    require_pdf_support()
    import weasyprint

    # No base URL: the report refers to nothing outside itself, so nothing is fetched.
    document = weasyprint.HTML(string=html_text)
    pdf: bytes = document.write_pdf()
    return pdf

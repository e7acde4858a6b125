"""Gate report formats, one module each behind ``interface.Report``, and the list of them."""

from secperf.gates.reports.interface import Report
from secperf.gates.reports.json_report import JsonReport
from secperf.gates.reports.junit import JunitReport
from secperf.gates.reports.markdown import MarkdownReport
from secperf.gates.reports.sarif import SarifReport

#: Every report ``secperf gate`` writes, in this order.
REPORTS: tuple[Report, ...] = (MarkdownReport(), JunitReport(), SarifReport(), JsonReport())

__all__ = ["REPORTS", "JsonReport", "JunitReport", "MarkdownReport", "Report", "SarifReport"]

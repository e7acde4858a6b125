"""The report contract: each gate report format is one module implementing ``Report``.

``secperf gate`` writes every format in ``secperf.gates.reports.REPORTS`` to its
``file_name`` in the report directory; adding a format is adding one module and
one entry in that list.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, ClassVar

from secperf.gates.evidence import GateOutcome


class Report(abc.ABC):
    """One gate report format: the file it is written to and how it renders an outcome."""

    #: The file name in the report directory, e.g. ``gate.md``.
    file_name: ClassVar[str]

    @abc.abstractmethod
    def render(self, outcome: GateOutcome, root: Path) -> str:
        """The whole report as text; ``root`` is the scanned project (for file URIs)."""


def json_text(data: Any) -> str:
    """JSON as the JSON-based reports write it: two-space indent, a final new line."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


__all__ = ["Report", "json_text"]

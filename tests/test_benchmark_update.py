"""``python -m benchmarks --only A --update``: A's rows and header line replace the older ones."""

from __future__ import annotations

import pytest
from benchmarks.__main__ import TABLE_HEADER, _update, main
from benchmarks.common import Figure

RULE = "|---|---|---|---|---|---|---|---|---|"


def _page(*header: str, rows: tuple[str, ...]) -> str:
    return (
        "\n".join(
            ["# Performance", "", "Measured by a full run.", *header, "", TABLE_HEADER, RULE, *rows]
        )
        + "\n"
    )


def test_an_area_measured_again_leaves_the_older_header_lines() -> None:
    existing = _page(
        "Rows of startup: measured by `python -m benchmarks --only startup` on 2026-12-01.",
        "Rows of scan impact budget, startup: measured by `... --only startup scan_budget`.",
        rows=(
            "| scan impact budget | p95 | 60.7 % | <= 10 % | **no** |  |  |  |  |",
            "| startup | --version | 30 ms | <= 100 ms | yes |  |  |  |  |",
        ),
    )
    line = "Rows of startup: measured by `python -m benchmarks --only startup` on 2026-12-07."
    figure = Figure("startup", "--version", 25.0, "ms", "<= 100 ms", True)

    text = _update(existing, [figure], {"startup"}, line)

    header = text.split(TABLE_HEADER)[0]
    # The line naming only startup is gone; the one naming both keeps the other area.
    assert "2026-12-01" not in header
    assert "Rows of scan impact budget: measured by `... --only startup scan_budget`." in header
    assert header.rstrip().endswith(line)
    assert header.count("Rows of") == 2
    rows = text.split(RULE)[1].strip().splitlines()
    assert rows[0].startswith("| scan impact budget | p95 | 60.7 % |")
    assert rows[1].startswith("| startup | --version | 25.0 ms |")
    assert len(rows) == 2


def test_an_unknown_area_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--only", "startup", "no_such_area"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--only: unknown area 'no_such_area'" in err
    assert "scan_budget" in err and "startup" in err

"""TextTable: the fast layout of long listings, printed through a real Rich console."""

from __future__ import annotations

import io
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from secperf.cli.text_table import Cell, TextColumn, TextTable, _path_pieces, _wrap_path


def printed(table: TextTable, *, terminal: bool = False) -> str:
    out = io.StringIO()
    if terminal:
        console = Console(file=out, width=table.width, force_terminal=True, color_system="standard")
    else:
        console = Console(file=out, width=table.width, color_system=None)
    console.print(table)
    return out.getvalue()


def test_a_long_path_folds_at_the_column_edge_and_reads_whole() -> None:
    path = "src/" + "very_long_directory_name/" * 4 + "module.py:12"
    table = TextTable([TextColumn("id"), TextColumn("location", wrap=True)], 40)
    table.add_row("abc", path)
    lines = printed(table).splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[0].split() == ["id", "location"]
    start = lines[0].index("location")
    assert "".join(line[start:] for line in lines[2:]) == path
    assert "…" not in "".join(lines)
    assert all(line == line.rstrip() for line in lines)  # no trailing padding


def test_narrow_columns_give_their_room_to_the_wide_ones() -> None:
    table = TextTable(
        [TextColumn("a", wrap=True, ratio=1), TextColumn("b", wrap=True, ratio=1)], 60
    )
    table.add_row("short", "word " * 30)
    assert table.widths() == [5, 60 - 5 - 2]


def test_wrapping_columns_never_go_below_their_header_or_least_width() -> None:
    table = TextTable(
        [TextColumn("fixed-width-column"), TextColumn("location", wrap=True, min_width=4)], 20
    )
    table.add_row("x" * 18, "a/b/c/d/e/f")
    assert table.widths()[1] == len("location")


def test_right_justified_numbers_and_styles_on_a_terminal() -> None:
    table = TextTable([TextColumn("name"), TextColumn("n", justify="right")], 30)
    table.add_row("a", Cell("7", "bold red"))
    table.add_row("b", "123")
    text = printed(table)
    assert text.splitlines()[2:] == ["a       7", "b     123"]
    assert "\x1b[" in printed(table, terminal=True) and "\x1b[" not in text


def test_a_row_must_have_a_cell_per_column() -> None:
    table = TextTable([TextColumn("a"), TextColumn("b")], 20)
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        table.add_row("only one")


@given(
    words=st.lists(st.text(alphabet="ab/:=.", min_size=1, max_size=60), min_size=1, max_size=15),
    width=st.integers(min_value=1, max_value=50),
)
def test_wrapping_keeps_every_character_within_the_width(words: list[str], width: int) -> None:
    text = " ".join(words)
    lines = TextTable._wrap(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def printed_directly(table: TextTable, width: int | None = None) -> str:
    out = io.StringIO()
    table.print_to(Console(file=out, width=width or table.width, color_system=None))
    return out.getvalue()


@given(
    rows=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
            st.text(alphabet="abc XYZ/._-", max_size=60),
            st.text(alphabet="abc XYZ/._-", max_size=40),
            st.sampled_from(["", " ", "yes", "-"]),
        ),
        max_size=12,
    ),
    width=st.integers(min_value=20, max_value=100),
)
def test_printing_without_colour_skips_rich_and_prints_what_rich_prints(
    rows: list[tuple[str, str, str, str]], width: int
) -> None:
    table = TextTable(
        [
            TextColumn("id"),
            TextColumn("finding", wrap=True, ratio=3),
            TextColumn("location", wrap=True, ratio=2),
            TextColumn("n", justify="right"),
        ],
        width,
    )
    for key, finding, location, last in rows:
        table.add_row(Cell(key, "bold red"), finding, location, last)
    assert printed_directly(table) == printed(table)


def test_lines_rich_would_crop_or_measure_otherwise_still_go_through_rich() -> None:
    table = TextTable([TextColumn("id"), TextColumn("path")], 80)
    table.add_row("abc", "données/ファイル.py")  # wide characters: Rich measures cells
    table.add_row("tab", "a\tb")  # control characters: Rich's own handling
    assert printed_directly(table) == printed(table)
    wide = TextTable([TextColumn("id"), TextColumn("path")], 80)
    wide.add_row("abc", "x" * 70)
    # Printed on a narrower console than laid out for: Rich crops, so Rich prints.
    out = io.StringIO()
    console = Console(file=out, width=40, color_system=None)
    console.print(wide)
    assert printed_directly(wide, width=40) == out.getvalue()


def _breaks_inside_a_name(lines: list[str]) -> list[str]:
    """The lines of a wrapped path that end inside a name: not at a ``/`` nor before ``:line``."""
    return [
        line
        for line, after in pairwise(lines)
        if not line.endswith("/") and not (after.startswith(":") and after[1:].isdigit())
    ]


def test_a_path_breaks_after_a_slash_or_before_its_line_never_inside_a_name() -> None:
    path = "services/payments/internal/adapters/legacy_gateway_client/connection.py:128"
    assert _wrap_path(path, 30) == [
        "services/payments/internal/",
        "adapters/",
        "legacy_gateway_client/",
        "connection.py:128",
    ]
    # The name keeps its line when both fit, else the line goes on a line of its own.
    assert _wrap_path("requirements.txt:1", 16) == ["requirements.txt", ":1"]
    assert _wrap_path("/tmp/explore-a/b8.json", 20) == ["/tmp/explore-a/", "b8.json"]
    assert _wrap_path("a/b.py:7", 20) == ["a/b.py:7"]
    # A name wider than the column, alone, is the one thing folded at the edge.
    assert _wrap_path("src/a_very_long_module_name.py:3", 12) == [
        "src/",
        "a_very_long_",
        "module_name.",
        "py:3",
    ]
    # Only ":<digits>" at the end is a line number.
    assert _path_pieces("C:/x/y.py:12") == (["C:/", "x/", "y.py"], ":12")
    assert _path_pieces("dir/notes:draft") == (["dir/", "notes:draft"], "")


@given(
    parts=st.lists(st.text(alphabet="ab_.-", min_size=1, max_size=20), min_size=1, max_size=8),
    line=st.integers(min_value=0, max_value=99999),
    width=st.integers(min_value=1, max_value=60),
)
def test_a_wrapped_path_reads_whole_and_breaks_inside_only_names_too_wide(
    parts: list[str], line: int, width: int
) -> None:
    path = "/".join(parts) + (f":{line}" if line else "")
    lines = _wrap_path(path, width)
    assert all(len(part) <= width for part in lines)
    assert "".join(lines) == path
    if max(map(len, parts)) < width and len(f":{line}") <= width:  # each fits, "/" and all
        assert _breaks_inside_a_name(lines) == []


@given(st.lists(st.text(alphabet="ab/:1", max_size=30), min_size=1, max_size=6))
def test_the_least_width_of_a_path_column_is_its_widest_piece(paths: list[str]) -> None:
    """The widths count the pieces ``_wrap_path`` breaks into (found apart, for speed)."""
    table = TextTable([TextColumn("p", path=True)], 80)
    for path in paths:
        table.add_row(path)
    with_line = without = 0
    for path in paths:
        pieces, suffix = _path_pieces(path)
        without = max(without, *map(len, pieces), len(suffix))
        with_line = max(with_line, *map(len, pieces), len(pieces[-1]) + len(suffix))
    assert table._longest_names(0) == (with_line, without)


FINDINGS = [
    TextColumn("id"),
    TextColumn("severity"),
    TextColumn("finding", wrap=True, ratio=3, min_width=16, yield_width=12),
    TextColumn("location", path=True, ratio=2),
    TextColumn("state"),
    TextColumn("new"),
]
MESSAGE = "B602 subprocess call with shell=True seems safe, but may be changed in the future"


def findings(width: int, *locations: str, state: str = "false_positive") -> TextTable:
    table = TextTable(FINDINGS, width)
    for location in locations:
        table.add_row("0123456789", "medium", MESSAGE, location, state, "yes")
    return table


def location_lines(table: TextTable) -> list[list[str]]:
    """Each row's location, line by line, as printed."""
    lines = printed(table).splitlines()
    start, end = lines[0].index("location"), lines[0].index("state")
    rows: list[list[str]] = []
    for line in lines[2:]:
        if line[:1] != " ":
            rows.append([])
        if fragment := line[start:end].strip():
            rows[-1].append(fragment)
    return rows


def test_the_location_widens_at_the_message_s_expense_to_keep_a_name_whole() -> None:
    """80 columns, state false_positive: "requirements.txt:1" once folded as "requirements.t"."""
    table = findings(80, "requirements.txt:1", "app/run.py:3")
    assert location_lines(table) == [["requirements.txt:1"], ["app/run.py:3"]]
    deep = "services/payments/internal/adapters/outbound/legacy_gateway_client/gateway.py:12"
    table = findings(80, deep, "tests/cli/test_scan_table_paths.py:3", state="open")
    layout = location_lines(table)
    assert all(_breaks_inside_a_name(lines) == [] for lines in layout), layout
    assert ["".join(lines) for lines in layout] == [deep, "tests/cli/test_scan_table_paths.py:3"]
    assert all(len(line) <= 80 for line in printed(table).splitlines())


def test_a_path_that_fits_whole_takes_its_width_and_the_message_keeps_its_least() -> None:
    path = "src/secperf/cli/render_scan.py:120"
    widths = findings(100, path).widths()
    assert widths[3] == len(path)
    assert widths[2] >= 16
    # A file report's width: paths whole, each on one line.
    deep = "services/payments/internal/adapters/outbound/legacy_gateway_client/gateway.py:12"
    assert location_lines(findings(160, deep, path)) == [[deep], [path]]


def test_a_name_wider_than_the_room_folds_and_the_message_keeps_its_least_width() -> None:
    name = "a_module_name_so_long_no_80_column_table_holds_it_whole.py:1"
    table = findings(80, f"src/{name}")
    widths = table.widths()
    assert widths[2] == 16  # the message is not squeezed for nothing
    assert sum(widths) + 2 * (len(widths) - 1) == 80
    assert "".join(location_lines(table)[0]) == f"src/{name}"


@given(
    # From 60 columns up, where the findings table keeps all six (the headers fit).
    width=st.integers(min_value=60, max_value=200),
    locations=st.lists(
        st.lists(st.text(alphabet="abc_.", min_size=1, max_size=30), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    ),
    state=st.sampled_from(["open", "false_positive", "accepted_risk"]),
)
def test_every_column_keeps_its_header_and_the_table_its_width(
    width: int, locations: list[list[str]], state: str
) -> None:
    table = findings(width, *("/".join(parts) + ":12" for parts in locations), state=state)
    widths = table.widths()
    assert all(w >= len(col.header) for w, col in zip(widths, FINDINGS, strict=True))
    assert sum(widths) + 2 * (len(widths) - 1) <= width
    lines = printed(table).splitlines()
    assert lines[0].split() == [col.header for col in FINDINGS]
    assert all(len(line) <= width for line in lines)

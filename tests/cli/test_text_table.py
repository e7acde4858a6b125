"""TextTable: the fast layout of long listings, printed through a real Rich console."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from secperf.cli.text_table import Cell, TextColumn, TextTable


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

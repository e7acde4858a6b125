"""A plain, fast column layout for long listings (thousands of findings).

Rich's ``Table`` measures and wraps every cell through its renderer: right
for a summary, but a scan of the standard library lists over 4,000 findings
and Rich took seconds to lay them out. ``TextTable`` lays out plain strings
with a plain greedy wrap and hands Rich finished lines, so a long listing costs a
few milliseconds per hundred rows.

Columns that do not wrap take their widest cell; the wrapping columns share
what is left of ``width`` by ratio (a column narrower than its share gives the
rest away). Wrapping folds long words (a path breaks at the column edge, it is
never cut with an ellipsis); headers are never wrapped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

#: Between two columns.
GAP = "  "


@dataclass(frozen=True, slots=True)
class TextColumn:
    """One column: its header, whether it wraps, its share of the room left, its least width."""

    header: str
    wrap: bool = False
    ratio: int = 1
    min_width: int = 0
    justify: str = "left"  # left | right


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell's text and its style (a Rich style string, "" for none)."""

    text: str
    style: str = ""


class TextTable:
    """Rows of plain cells laid out in ``width`` terminal columns; a Rich renderable."""

    def __init__(self, columns: Sequence[TextColumn], width: int) -> None:
        self.columns = list(columns)
        self.width = width
        self.rows: list[list[Cell]] = []

    def add_row(self, *cells: Cell | str) -> None:
        """Add one row, a cell per column (a plain string is a cell without style)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([c if isinstance(c, Cell) else Cell(c) for c in cells])

    def widths(self) -> list[int]:
        """Each column's width at ``self.width``."""
        natural = [
            max([len(col.header), *(len(row[i].text) for row in self.rows)])
            for i, col in enumerate(self.columns)
        ]
        widths = [0 if col.wrap else natural[i] for i, col in enumerate(self.columns)]
        room = self.width - sum(widths) - len(GAP) * (len(self.columns) - 1)
        flexible = [i for i, col in enumerate(self.columns) if col.wrap]
        # Water-filling: a column that needs less than its share keeps only what it needs.
        while flexible:
            total = sum(self.columns[i].ratio for i in flexible)
            share = {i: room * self.columns[i].ratio // total for i in flexible}
            settled = [i for i in flexible if natural[i] <= share[i]]
            if not settled:
                for i in flexible:
                    least = max(self.columns[i].min_width, len(self.columns[i].header))
                    widths[i] = max(share[i], least)
                break
            for i in settled:
                widths[i] = natural[i]
                room -= natural[i]
                flexible.remove(i)
        return widths

    def lines(self) -> Iterator[list[Cell]]:
        """The header, a rule, then every row's lines: one padded cell per column each."""
        widths = self.widths()
        yield from self.lines_before_rows(widths)
        for row in self.rows:
            for texts in self._row_lines(row, widths):
                yield [Cell(text, cell.style) for text, cell in zip(texts, row, strict=True)]

    def lines_before_rows(self, widths: list[int]) -> Iterator[list[Cell]]:
        """The header and the rule under it, at ``widths``."""
        columns = zip(self.columns, widths, strict=True)
        yield [Cell(self._fit(c.header, w, c), "bold") for c, w in columns]
        yield [Cell("─" * (sum(widths) + len(GAP) * (len(widths) - 1)))]

    def _row_lines(self, row: list[Cell], widths: list[int]) -> Iterator[list[str]]:
        """The padded text of each cell, for each line of one row."""
        fits = [
            (str.rjust if col.justify == "right" else str.ljust, w)
            for col, w in zip(self.columns, widths, strict=True)
        ]
        wrapped = [
            self._wrap(cell.text, w) if col.wrap else [cell.text]
            for cell, col, w in zip(row, self.columns, widths, strict=True)
        ]
        height = max(map(len, wrapped))
        if height == 1:  # most rows: no cell wraps
            yield [fit(parts[0], w) for parts, (fit, w) in zip(wrapped, fits, strict=True)]
            return
        for n in range(height):
            yield [
                fit(parts[n] if n < len(parts) else "", w)
                for parts, (fit, w) in zip(wrapped, fits, strict=True)
            ]

    @staticmethod
    def _wrap(text: str, width: int) -> list[str]:
        """Greedy word wrap; a word longer than ``width`` is folded at the edge.

        What ``textwrap.wrap`` does with ``break_long_words``, without its regular
        expressions: this runs once per cell of listings thousands of rows long.
        """
        if len(text) <= width:
            return [text]
        lines: list[str] = []
        line = ""
        for word in text.split():
            while len(word) > width:
                room = width - len(line) - 1 if line else width
                if room <= 0:
                    lines.append(line)
                    line = ""
                    continue
                lines.append(f"{line} {word[:room]}" if line else word[:room])
                line, word = "", word[room:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line = f"{line} {word}"
            else:
                lines.append(line)
                line = word
        if line or not lines:
            lines.append(line)
        return lines

    @staticmethod
    def _fit(text: str, width: int, column: TextColumn) -> str:
        return text.rjust(width) if column.justify == "right" else text.ljust(width)

    def print_to(self, console: Console) -> None:
        """Print through ``console``; without colour, plain lines straight to its file.

        Rich re-reads every segment of every line (0.3 s for 4,000 findings).
        Without colour a line of printable ASCII within the console's width
        prints as its text: such lines are written as they are. Any other line
        (Rich crops a longer one, measures wide characters by cell and handles
        control codes) is printed by Rich, alone, as part of the table it is.
        """
        if console.color_system is not None or console.record:
            console.print(self)
            return
        width = console.width
        styles: dict[str, Style] = {}
        plain: list[str] = []

        def add(texts: list[str], row: list[Cell], cut: int) -> None:
            nonlocal plain
            text = _line_text(texts, cut)
            if len(text) <= width and _plain(text):
                plain.append(text)
                return
            if plain:
                console.file.write("\n".join(plain) + "\n")
                plain = []
            cells = [Cell(t, cell.style) for t, cell in zip(texts, row, strict=True)]
            console.print(_Lines([_line_segments(cells, styles)]))

        widths = self.widths()
        for line in self.lines_before_rows(widths):
            add([cell.text for cell in line], line, _last_styled(line))
        # Rows: their text straight from the padded cells (no cell or segment objects
        # per line: a listing of thousands of findings is mostly this loop).
        for row in self.rows:
            cut = _last_styled(row)
            for texts in self._row_lines(row, widths):
                add(texts, row, cut)
        if plain:
            console.file.write("\n".join(plain) + "\n")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        styles: dict[str, Style] = {}
        for line in self.lines():
            yield from _line_segments(line, styles)
            yield Segment.line()


class _Lines:
    """Lines of segments already laid out: a Rich renderable."""

    def __init__(self, lines: list[list[Segment]]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        for line in self.lines:
            yield from line
            yield Segment.line()


def _line_segments(line: list[Cell], styles: dict[str, Style]) -> list[Segment]:
    """One laid-out line as segments: one per run of unstyled text (a listing is mostly plain)."""
    segments: list[Segment] = []
    plain: list[str] = []
    last = len(line) - 1
    for i, cell in enumerate(line):
        if i:
            plain.append(GAP)
        # The last cell's padding is only trailing space: leave it out.
        text = cell.text.rstrip() if i == last else cell.text
        if not cell.style:
            plain.append(text)
            continue
        if plain:
            segments.append(Segment("".join(plain)))
            plain = []
        style = styles.get(cell.style)
        if style is None:
            style = styles[cell.style] = Style.parse(cell.style)
        segments.append(Segment(text, style))
    # Empty cells at the end of a wrapped row leave only spaces: drop them too.
    rest = "".join(plain).rstrip()
    if rest:
        segments.append(Segment(rest))
    return segments


def _last_styled(cells: list[Cell]) -> int:
    """The index of the last cell with a style, -1 when none has one."""
    return max((i for i, cell in enumerate(cells) if cell.style), default=-1)


def _line_text(texts: list[str], cut: int) -> str:
    """The text of ``_line_segments`` for one line of padded cells (``cut``: the last styled).

    Trailing padding goes as there: the last cell's, and the unstyled cells'
    after the last styled one.
    """
    if cut < 0:
        return GAP.join(texts).rstrip()
    if cut == len(texts) - 1:
        return (
            GAP.join(texts).rstrip()
            if len(texts) == 1
            else GAP.join(texts[:-1]) + GAP + texts[-1].rstrip()
        )
    return GAP.join(texts[: cut + 1]) + (GAP + GAP.join(texts[cut + 1 :])).rstrip()


def _plain(line: str) -> bool:
    """Printable ASCII (and the header's rule), one terminal cell per character."""
    return line.replace("─", "-").isascii() and line.isprintable()

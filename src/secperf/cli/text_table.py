"""A plain, fast column layout for long listings (thousands of findings).

Rich's ``Table`` measures and wraps every cell through its renderer: right
for a summary, but a scan of the standard library lists over 4,000 findings
and Rich took seconds to lay them out. ``TextTable`` lays out plain strings
with a plain greedy wrap and hands Rich finished lines, so a long listing costs a
few milliseconds per hundred rows.

Columns that do not wrap take their widest cell; the wrapping columns share
what is left of ``width`` by ratio (a column narrower than its share gives the
rest away), each keeping its least width. A column of paths (``path``) comes
first: it takes its widest path whole when the other wrapping columns keep
their ``min_width``; else at least its longest name, so that a path breaks
after a ``/`` or before its ``:line``, never inside a name, the others narrowing
down to their ``yield_width`` for it. Only a name wider than a path column can
ever get is folded at the column's edge. Words wrap at spaces (a word wider
than its column folds at the edge). Nothing is cut with an ellipsis, so a path
reads whole down its column; headers are never wrapped nor narrowed.
The full path is never lost: ``--format json`` and the ``-o`` reports hold it.
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
    """One column: its header, whether it wraps, its share of the room left, its least width.

    ``path``: its cells are paths (``dir/file.py:12``), wrapped after a ``/`` or
    before the ``:line`` (a path column wraps, ``wrap`` or not). ``yield_width``:
    how narrow a wrapping column may get, below ``min_width``, so that a path
    column keeps its names whole (0: no narrower than ``min_width``). No column
    is narrower than its header (were the headers alone wider than the table,
    the lines would be too).
    """

    header: str
    wrap: bool = False
    ratio: int = 1
    min_width: int = 0
    justify: str = "left"  # left | right
    path: bool = False
    yield_width: int = 0

    @property
    def wraps(self) -> bool:
        return self.wrap or self.path


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
        widths = [0 if col.wraps else natural[i] for i, col in enumerate(self.columns)]
        room = self.width - sum(widths) - len(GAP) * (len(self.columns) - 1)
        lows = self._least_widths(natural, room)
        ratios = {i: self.columns[i].ratio for i in lows}
        for i, width in _share(ratios, natural, lows, room).items():
            widths[i] = width
        return widths

    def _least_widths(self, natural: list[int], room: int) -> dict[int, int]:
        """The least width of each wrapping column: the first of ``_tiers`` that fits ``room``."""
        header = {i: len(col.header) for i, col in enumerate(self.columns) if col.wraps}
        for lows in self._tiers(natural, room, header):
            if sum(lows.values()) <= room:
                return lows
        return header

    def _tiers(
        self, natural: list[int], room: int, header: dict[int, int]
    ) -> Iterator[dict[int, int]]:
        """Least widths of the wrapping columns, most wanted first (computed as asked for).

        The paths whole, then broken after a ``/`` with each name and its
        ``:line`` on a line, then before the ``:line`` too, while the other
        columns keep their words whole (each at least its ``min_width``); the
        same with the others at ``min_width`` (a word wider folds), then at
        ``yield_width``. Only then do the path columns take what the others
        leave them at ``min_width`` (then at ``yield_width``), folding the names
        wider. Each column is as wide as its header at least.
        """
        paths = [i for i in header if self.columns[i].path]
        others = [i for i in header if not self.columns[i].path]

        def least(i: int, width: int) -> int:
            return max(header[i], min(width, natural[i]))

        keep = {i: least(i, self.columns[i].min_width) for i in others}
        squeezed = {
            i: min(keep[i], least(i, self.columns[i].yield_width or keep[i])) for i in others
        }
        whole = {i: max(keep[i], least(i, self._longest_word(i, keep[i]))) for i in others}
        path_levels: list[dict[int, int]] = [{i: natural[i] for i in paths}]
        if paths and sum(path_levels[0].values()) + sum(whole.values()) > room:
            names = {i: self._longest_names(i) for i in paths}
            path_levels += [{i: least(i, names[i][level]) for i in paths} for level in (0, 1)]
        for lows in (whole, keep):
            for path_lows in path_levels:
                yield {**path_lows, **lows}
        if not paths:
            yield squeezed
            return
        for path_lows in path_levels[1:]:
            yield {**path_lows, **squeezed}
        for lows in (keep, squeezed):
            left = room - sum(lows.values()) - sum(header[i] for i in paths)
            if left >= 0:
                yield {**{i: header[i] + left // len(paths) for i in paths}, **lows}

    def _longest_word(self, column: int, least: int) -> int:
        """The widest word of ``column``'s cells wider than ``least`` (else ``least``)."""
        longest = least
        # A listing repeats its rules' messages: each text is split once.
        for text in {row[column].text for row in self.rows}:
            if len(text) > longest:
                longest = max([longest, *map(len, text.split())])
        return longest

    def _longest_names(self, column: int) -> tuple[int, int]:
        """The widest piece a path of ``column`` breaks into: with the name's ``:line``, without.

        The pieces of ``_path_pieces``, found without building them: each
        directory (shared by the files in it) is split once.
        """
        with_line = without = 0
        directories: set[str] = set()
        for row in self.rows:
            text = row[column].text
            if len(text) <= without:
                continue
            path, colon, line = text.rpartition(":")
            suffix = 0
            if colon and path and line.isdigit():
                text, suffix = path, len(line) + 1
            directory, slash, name = text.rpartition("/")
            if slash and directory not in directories:
                directories.add(directory)
                widest = max(map(len, directory.split("/"))) + 1  # with its "/"
                without, with_line = max(without, widest), max(with_line, widest)
            without = max(without, len(name), suffix)
            with_line = max(with_line, len(name) + suffix)
        return with_line, without

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
            (_wrap_path if col.path else self._wrap)(cell.text, w) if col.wraps else [cell.text]
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
        width = max(width, 1)
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


def _share(
    ratios: dict[int, int], natural: list[int], lows: dict[int, int], room: int
) -> dict[int, int]:
    """``room`` shared by ratio: none below its least (``lows``), none above its widest cell.

    Water-filling: a column whose least is above its share takes its least, a
    column needing less than its share takes what it needs, and the others
    share the rest (what the rounding leaves goes one each, left to right).
    """
    widths: dict[int, int] = {}
    flexible = list(lows)
    while flexible:
        total = sum(ratios[i] for i in flexible) or 1
        share = {i: room * ratios[i] // total for i in flexible}
        settled = {i: lows[i] for i in flexible if lows[i] >= share[i]}
        if not settled:
            settled = {i: natural[i] for i in flexible if natural[i] <= share[i]}
        if not settled:
            spare = room - sum(share.values())
            for n, i in enumerate(flexible):
                widths[i] = share[i] + (n < spare)
            break
        for i, width in settled.items():
            widths[i] = width
            room -= width
            flexible.remove(i)
    return widths


def _path_pieces(text: str) -> tuple[list[str], str]:
    """A path cut after each ``/``, and its ``:line`` (or ""): where a path may break."""
    path, colon, line = text.rpartition(":")
    suffix = ""
    if colon and path and line.isdigit():
        text, suffix = path, colon + line
    pieces = [f"{part}/" for part in text.split("/")]
    pieces[-1] = pieces[-1][:-1]  # the name ("" after a "/" at the end)
    return pieces, suffix


def _wrap_path(text: str, width: int) -> list[str]:
    """A path in lines of ``width``: broken after a ``/`` or before its ``:line``.

    The name keeps its ``:line`` when both fit a line. A name wider than
    ``width`` alone is folded at the edge, starting a line of its own.
    """
    if len(text) <= width:
        return [text]
    width = max(width, 1)
    pieces, suffix = _path_pieces(text)
    if suffix:
        if len(pieces[-1]) + len(suffix) <= width:
            pieces[-1] += suffix
        else:
            pieces.append(suffix)
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if len(line) + len(piece) <= width:
            line += piece
            continue
        if line:
            lines.append(line)
        while len(piece) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        line = piece
    if line or not lines:
        lines.append(line)
    return lines


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

"""Keys of the live views (watch, demo, top, ifstat): what each does, and the keyboard.

The keyboard is the terminal's own, in cbreak mode (termios and select from
the standard library), read by the one refresh loop between samples; see
docs/watch.md for why not curses or Textual.  Without a terminal (a pipe,
``--json``, ``--once``) no key is read and the terminal is left alone.
"""

from __future__ import annotations

import os
import select
from collections import deque
from typing import Callable, Optional, Sequence

HELP = (
    ("q", "quit"),
    ("p", "pause / resume sampling"),
    ("< >", "sort by the column to the left / right"),
    ("/", "filter rows by text (address, port, state; Enter applies, Esc clears)"),
    ("Up Down j k", "choose a row (in a detail view: scroll its fields)"),
    ("Enter", "open the chosen row: every field and its history"),
    ("Esc", "back to the table; in the table, clear the filter"),
    ("?", "this list (any key goes back)"),
)
HISTORY_SAMPLES = 300  # kept per row for the detail view: 5 minutes at 1 s
_ESCAPES = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down"}
_SPARKS = "▁▂▃▄▅▆▇█"


class Controls:
    """What the keys have set, read by a view as it renders.

    ``sort``: one of sort_keys; ``filter``: the text rows must contain
    (case-insensitive; empty: all); ``typing``: the filter being typed, or
    None; ``selected``: the chosen row of the table; ``opened``: the key of
    the row shown in detail, or None; ``row_keys``: the keys of the rows
    the last table showed (set by the view).
    """

    def __init__(self, sort_keys: Sequence[str], sort: str) -> None:
        self.sort_keys = list(sort_keys)
        self.sort = sort
        self.filter = ""
        self.typing: Optional[str] = None
        self.paused = False
        self.help = False
        self.selected = 0
        self.opened: Optional[str] = None
        self.row_keys: list[str] = []
        self.quit = False
        self.replaying = False  # the samples come from a recording
        self.ended = False  # a replay showed its last sample
        self.scroll = 0  # first line of the detail view's fields

    def press(self, key: str) -> None:
        """Act on one key ("up", "down", "esc", "enter" or a character)."""
        if self.typing is not None:
            self._type(key)
        elif key == "q":
            self.quit = True
        elif self.help:
            self.help = False
        elif key == "p" and not self.ended:
            self.paused = not self.paused
        elif key == "?":
            self.help = True
        elif key == "esc" and self.opened is not None:
            self.opened, self.scroll = None, 0
        elif key == "esc":
            self.filter, self.selected = "", 0
        elif self.opened is None:
            self._table_key(key)
        elif key in ("down", "j"):
            self.scroll += 1
        elif key in ("up", "k"):
            self.scroll = max(self.scroll - 1, 0)

    def _table_key(self, key: str) -> None:
        if key in ("<", ">"):
            at = self.sort_keys.index(self.sort) if self.sort in self.sort_keys else 0
            self.sort = self.sort_keys[(at + (1 if key == ">" else -1)) % len(self.sort_keys)]
        elif key == "/":
            self.typing = ""  # a new filter, not the old one with more typed after it
        elif key in ("down", "j"):
            self.selected = min(self.selected + 1, max(len(self.row_keys) - 1, 0))
        elif key in ("up", "k"):
            self.selected = max(self.selected - 1, 0)
        elif key == "enter" and self.row_keys:
            self.opened = self.row_keys[min(self.selected, len(self.row_keys) - 1)]

    def _type(self, key: str) -> None:
        if key == "enter":
            self.filter, self.typing, self.selected = self.typing.strip(), None, 0
        elif key == "esc":
            self.filter, self.typing, self.selected = "", None, 0
        elif key in ("\x7f", "\b"):
            self.typing = self.typing[:-1]
        elif len(key) == 1 and key.isprintable():
            self.typing += key

    def matches(self, *texts: object) -> bool:
        """Whether a row showing texts passes the filter."""
        wanted = self.filter.lower()
        return not wanted or any(wanted in str(text).lower() for text in texts)

    def status_line(self) -> str:
        """The last line of a live screen: sort, filter, pause, the help key."""
        if self.typing is not None:
            return f"filter: {self.typing}_   (Enter applies, Esc clears)"
        parts = ["REPLAY"] if self.replaying else []
        parts.append(f"sort: {self.sort}" if self.opened is None else "Esc: back to the table")
        if self.filter:
            parts.append(f"filter: {self.filter}")
        if self.ended:
            parts.append("end of the recording")
        elif self.paused:
            parts.append("PAUSED (p resumes)")
        parts.append("?: keys  q: quit")
        return "   ".join(parts)

    def help_screen(self) -> str:
        return "Keys\n\n" + "\n".join(f"  {key:<12} {what}" for key, what in HELP)


class Keyboard:
    """The terminal on fd in cbreak mode (no echo, no line buffering) until close()."""

    def __init__(self, fd: int) -> None:
        import termios
        import tty

        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

    def keys(self, timeout: Optional[float]) -> list[str]:
        """The keys pressed within timeout seconds (None: until one is), at least one if any."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.fd, 64).decode("utf-8", "replace")
        found = []
        while data:
            escape = next((seq for seq in _ESCAPES if data.startswith(seq)), None)
            if escape:
                found.append(_ESCAPES[escape])
                data = data[len(escape):]
            elif data.startswith("\x1b["):
                data = data[3:]  # another terminal sequence: not a key of ours
            else:
                found.append({"\x1b": "esc", "\r": "enter", "\n": "enter"}.get(data[0], data[0]))
                data = data[1:]
        return found

    def close(self) -> None:
        import termios

        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        except termios.error:
            pass  # the terminal hung up: no settings to give back


class History:
    """The last HISTORY_SAMPLES values of a few series per row, for the detail view."""

    def __init__(self) -> None:
        self.rows: dict[str, deque] = {}

    def add(self, key: str, values: tuple) -> None:
        self.rows.setdefault(key, deque(maxlen=HISTORY_SAMPLES)).append(values)

    def series(self, key: str, index: int) -> list[Optional[float]]:
        return [values[index] for values in self.rows.get(key, ())]

    def forget_except(self, keys: set[str]) -> None:
        """Drop the history of rows gone (the opened one is kept by the caller's keys)."""
        for key in [key for key in self.rows if key not in keys]:
            del self.rows[key]


def sparkline(values: Sequence[Optional[float]], width: int) -> str:
    """The last width values as bars ▁..█ from the lowest to the highest; unknown as a space."""
    values = list(values)[-width:]
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = (high - low) or 1
    return "".join(" " if v is None else _SPARKS[round((v - low) / span * (len(_SPARKS) - 1))]
                   for v in values)


def detail_screen(title: str, series: Sequence[tuple[str, list, Callable[[Optional[float]], str]]],
                  fields: Sequence[tuple[str, str]], max_lines: int, max_width: int, scroll: int = 0) -> str:
    """One row in depth: a title, a sparkline per series (with its last, min and max),
    then "name value" pairs in as many columns as fit (column by column, as ls does),
    from line scroll on when they do not all fit."""
    lines = [title, ""]
    graph_width = max(max_width - 56, 4)  # label 15, summary 41
    for label, values, text in series:
        known = [v for v in values if v is not None]
        summary = (f"{text(known[-1]):>9}  min {text(min(known)):>9}  max {text(max(known)):>9}"
                   if known else f"{'-':>9}")
        lines.append(f"{label:<14} {sparkline(values, graph_width):<{graph_width}} {summary}")
    if series:
        lines.append(f"{'':<15}the last {len(series[0][1])} samples, oldest on the left")
        lines.append("")
    cells = [f"{name} {value}" for name, value in fields]
    for rows in range(1, len(cells) + 1):
        columns = [cells[at:at + rows] for at in range(0, len(cells), rows)]
        widths = [max(map(len, column)) + 2 for column in columns]
        if sum(widths) - 2 <= max_width:
            break
    else:
        columns, widths, rows = [], [], 0
    grid = ["".join(column[i].ljust(width) for column, width in zip(columns, widths) if i < len(column)).rstrip()
            for i in range(rows)]
    room = max(max_lines - len(lines), 1)
    if len(grid) > room:
        start = min(scroll, len(grid) - room + 1)
        grid = grid[start:start + room - 1] + [
            f"... fields {start + 1}-{start + room - 1} of {len(grid)} lines (Down/Up scroll)"]
    return "\n".join(lines + grid)

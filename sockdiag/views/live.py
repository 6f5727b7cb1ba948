"""The one refresh loop of the live views (watch, demo, top, ifstat) and the screen it draws on.

The loop sleeps the interval minus the time the update took, so samples stay
an interval apart; Ctrl-C, SIGTERM and SIGHUP (the terminal closed) end it
quietly, leaving the last screen.  In a terminal the loop also serves the keys (sockdiag.views.keys)
while it waits: a key redraws the last sample at once, ``q`` ends the loop,
``p`` holds the samples back until pressed again.  Each view shows its first sample honestly: rates need two samples,
so the first screen says "-" (or, for top, comes one interval after the
baseline), never a fake zero.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterable, Optional, Sequence, TextIO

from ..fields import Field
from ..interrupts import signals_as_interrupt

HIGHLIGHT = "\x1b[7m"  # starts the chosen row of a live table (reverse video)
_NORMAL = "\x1b[0m"

# render(max_lines, max_width) -> the screen's text; None: no limit (not a terminal).
Render = Callable[[Optional[int], Optional[int]], str]


# Returned by a view's take() for a sample that is not shown (ifstat --once's first).
NOT_SHOWN = object()


def run_view(screen: "Screen", interval: float, count: Optional[int], take: Callable[[], Any], *,
             json_line: Callable[[Any], str],
             table: Callable[[Any, Optional[int], Optional[int], Any], str],
             detail: Callable[[Any, str, list, int, int, int], str],
             history_fields: Sequence[Field] = (),
             history_rows: Callable[[Any], Iterable[tuple[str, Any, Any]]] = lambda sample: (),
             first_after_interval: bool = False, hold_last: bool = False) -> None:
    """The one loop of every live view: a sample from take() every interval
    seconds, count times (None: until q, Ctrl-C, SIGTERM or SIGHUP), shown
    on screen.

    take() returns the next sample, NOT_SHOWN, or None to end the view (with
    hold_last, in a terminal, the last screen stays until q: a replay's end).
    json_line(sample) is its JSON, table(sample, max_lines, max_width,
    controls) its screen.  In a terminal the histories of history_fields are
    kept per row (history_rows(sample): (row key, item, rates)) and Enter
    opens detail(sample, key, series, max_lines, max_width, scroll) on a row,
    series being (label, values, text of a value) per history field.
    """
    history = None

    def update() -> bool:
        nonlocal history
        controls = screen.controls  # None without a terminal to read keys from
        sample = take()
        if sample is None:
            if hold_last and controls is not None:
                controls.paused = controls.ended = True
                screen.redraw()
                return True
            return False
        if sample is NOT_SHOWN:
            return True
        if controls is not None and history_fields:
            if history is None:
                from .keys import History

                history = History()
            keys = {controls.opened}
            for key, item, rates in history_rows(sample):
                history.add(key, tuple(field.value(item, rates) for field in history_fields))
                keys.add(key)
            history.forget_except(keys)

        def text(max_lines: Optional[int], max_width: Optional[int]) -> str:
            if controls is not None and controls.opened is not None:
                series = [(field.history, history.series(controls.opened, i) if history else [],
                           field.format) for i, field in enumerate(history_fields)]
                return detail(sample, controls.opened, series, max_lines, max_width, controls.scroll)
            return table(sample, max_lines, max_width, controls)

        screen.show(lambda: json_line(sample), text)
        return True

    every(interval, count, update, first_after_interval=first_after_interval, screen=screen)


def every(interval: float, count: Optional[int], update: Callable[[], Optional[bool]], *,
          first_after_interval: bool = False, screen: Optional["Screen"] = None) -> None:
    """Call update every interval seconds, count times (None: until Ctrl-C, SIGTERM or SIGHUP).

    The first call comes at once, or one interval after the start with
    first_after_interval; update returning False ends the loop early.  An
    update that overran is not caught up with a shorter interval.  Ctrl-C
    (and SIGTERM, SIGHUP) end the loop normally, as ``q`` does, whatever
    the count (one sample too: what the view holds, a trace instance, is
    released on the way out).  With a live screen that reads keys, the keys
    pressed meanwhile are served; ``q`` ends the loop normally.
    """
    with signals_as_interrupt():
        try:
            started = time.monotonic()
            done = 0
            while count is None or done < count:
                if done or first_after_interval:
                    if not _wait(started + interval, screen):
                        return
                    started = time.monotonic()
                if update() is False:
                    return
                done += 1
        except KeyboardInterrupt:
            pass  # the last screen stays


def _wait(until: float, screen: Optional["Screen"]) -> bool:
    """Sleep until the monotonic time until (and while paused), serving keys; False: quit."""
    keyboard = screen.keyboard if screen is not None else None
    if keyboard is None:
        time.sleep(max(0.0, until - time.monotonic()))
        return True
    controls = screen.controls
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0 and not controls.paused:
            return True
        keys = keyboard.keys(None if controls.paused else remaining)
        for key in keys:
            controls.press(key)
        if controls.quit:
            return False
        if keys:
            screen.redraw()


class Notices:
    """The lines a view says on stderr beside its screens (a process that
    exited, a budget passed, a recording stopped): at once, or, while a live
    screen is drawn, kept and said on lines of their own after it (a line
    written into the screen would be glued to its last line and drawn over)."""

    def __init__(self) -> None:
        self._kept: Optional[list[str]] = None

    def __call__(self, line: str) -> None:
        if self._kept is not None:
            self._kept.append(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def keep(self) -> None:
        """Keep the lines from now until release()."""
        self._kept = []

    def release(self) -> None:
        """Say the lines kept, and the next ones at once."""
        kept, self._kept = self._kept or [], None
        for line in kept:
            self(line)


class Screen:
    """Where a view shows its samples: JSON lines, or screens for people.

    Live (a terminal, more than one screen, not JSON): each screen is drawn
    over the previous one, cut to the terminal's size read at that moment,
    so a resized terminal is filled at the next sample.  Otherwise screens
    follow one another with a blank line between them (and after the last
    with blank_after_last).  Use it as a context manager: on leaving, the
    cursor goes under the last screen, and the ``notices`` (a Notices) kept
    while it was live are said there.

    ``sort_keys``: what < and > move through, from ``sort``.  When live and
    the standard input is a terminal too, ``controls`` (a
    sockdiag.views.keys.Controls, else None) receive the keys the loop
    reads, the last line of the screen says what they set (REPLAY first,
    with ``replaying``), and ``?`` shows the list of keys.  The view's
    render reads them.
    """

    def __init__(self, out: TextIO, *, as_json: bool, one_screen: bool,
                 blank_after_last: bool = False, sort_keys: Sequence[str] = (), sort: str = "",
                 keys_in: Optional[TextIO] = None, replaying: bool = False,
                 notices: Optional[Notices] = None) -> None:
        self.out = out
        self.as_json = as_json
        self.live = not as_json and not one_screen and out.isatty()
        self.blank_after_last = blank_after_last
        self.drawn = 0
        self.controls = None
        self.keyboard = None
        self._last: Optional[Render] = None
        self.notices = notices if notices is not None else Notices()
        keys_in = keys_in if keys_in is not None else sys.stdin
        if self.live and sort_keys and keys_in is not None and keys_in.isatty():
            from .keys import Controls, Keyboard  # only a terminal pays for the keys

            self.controls = Controls(sort_keys, sort)
            self.controls.replaying = replaying
            self.keyboard = Keyboard(keys_in.fileno())

    def show(self, json_line: Callable[[], str], render: Render) -> None:
        """Show one sample: json_line() in JSON mode, else the screen render(max_lines, max_width)."""
        if self.as_json:
            self.out.write(json_line() + "\n")
        elif self.live:
            self._last = render
            self.redraw()
        else:
            self.out.write(("\n" if self.drawn else "") + render(None, None) + "\n")
        self.drawn += 1
        self.out.flush()

    def redraw(self) -> None:
        """Draw the last sample again (the keys changed what the view shows)."""
        if self._last is None:
            return
        import shutil

        size = shutil.get_terminal_size()
        if self.keyboard is None:
            screen = self._last(size.lines - 1, size.columns)
        elif self.controls.help:
            screen = self.controls.help_screen()
        else:
            screen = self._last(size.lines - 2, size.columns) + "\n" + self.controls.status_line()
        redraw(self.out, screen, size.columns)
        self.out.flush()

    def __enter__(self) -> "Screen":
        if self.live:
            self.notices.keep()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.keyboard is not None:
            self.keyboard.close()
        if self.live or (self.drawn and self.blank_after_last and not self.as_json):
            try:
                self.out.write("\n")
                self.out.flush()
            except OSError:
                pass  # EIO: the terminal hung up; nothing is left to tidy on it
        if self.live:
            self.notices.release()


def highlighted(table_text: str, controls, keys: list[str]) -> str:
    """The table with the chosen row highlighted; sets controls.row_keys to keys (rows in order)."""
    controls.row_keys = keys
    controls.selected = min(controls.selected, max(len(keys) - 1, 0))
    lines = table_text.split("\n")
    if keys:
        lines[2 + controls.selected] = HIGHLIGHT + lines[2 + controls.selected]  # under header and rule
    return "\n".join(lines)


def redraw(out: TextIO, screen: str, columns: int) -> None:
    """Draw screen over the previous one in a terminal, without flicker.

    Lines cut to the width (a wrapped line would scroll the screen), cursor
    home, each line erased to its end, then the rest of the screen.
    """
    cut = [HIGHLIGHT + line[len(HIGHLIGHT):][:columns] + _NORMAL if line.startswith(HIGHLIGHT)
           else line[:columns] for line in screen.split("\n")]
    out.write("\x1b[H" + "\x1b[K\n".join(cut) + "\x1b[K\x1b[J")

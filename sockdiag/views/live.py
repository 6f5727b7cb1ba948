"""The one refresh loop of the live views (watch, demo, top, ifstat) and the screen it draws on.

The loop sleeps the interval minus the time the update took, so samples stay
an interval apart; Ctrl-C and SIGTERM end it quietly, leaving the last
screen.  Each view shows its first sample honestly: rates need two samples,
so the first screen says "-" (or, for top, comes one interval after the
baseline), never a fake zero.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Optional, TextIO

# render(max_lines, max_width) -> the screen's text; None: no limit (not a terminal).
Render = Callable[[Optional[int], Optional[int]], str]


def every(interval: float, count: Optional[int], update: Callable[[], Optional[bool]], *,
          first_after_interval: bool = False, reraise_interrupt: bool = False) -> None:
    """Call update every interval seconds, count times (None: until Ctrl-C or SIGTERM).

    The first call comes at once, or one interval after the start with
    first_after_interval; update returning False ends the loop early.  An
    update that overran is not caught up with a shorter interval.  Ctrl-C
    (and SIGTERM) end the loop normally, or raise KeyboardInterrupt with
    reraise_interrupt (ifstat's documented exit status 130).
    """
    with _sigterm_as_interrupt(count != 1):
        try:
            started = time.monotonic()
            done = 0
            while count is None or done < count:
                if done or first_after_interval:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
                    started = time.monotonic()
                if update() is False:
                    return
                done += 1
        except KeyboardInterrupt:
            if reraise_interrupt:
                raise  # the last screen stays either way


@contextlib.contextmanager
def _sigterm_as_interrupt(wanted: bool) -> Iterator[None]:
    """SIGTERM ends the loop as Ctrl-C does, so that what the view holds (a
    workload child, a netlink socket, the terminal) is released on the way out."""
    if not wanted:
        yield
        return
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Screen:
    """Where a view shows its samples: JSON lines, or screens for people.

    Live (a terminal, more than one screen, not JSON): each screen is drawn
    over the previous one, cut to the terminal's size read at that moment,
    so a resized terminal is filled at the next sample.  Otherwise screens
    follow one another with a blank line between them (and after the last
    with blank_after_last).  Use it as a context manager: on leaving, the
    cursor goes under the last screen.
    """

    def __init__(self, out: TextIO, *, as_json: bool, one_screen: bool,
                 blank_after_last: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.live = not as_json and not one_screen and out.isatty()
        self.blank_after_last = blank_after_last
        self.drawn = 0

    def show(self, json_line: Callable[[], str], render: Render) -> None:
        """Show one sample: json_line() in JSON mode, else the screen render(max_lines, max_width)."""
        if self.as_json:
            self.out.write(json_line() + "\n")
        elif self.live:
            import shutil

            size = shutil.get_terminal_size()
            redraw(self.out, render(size.lines - 1, size.columns), size.columns)
        else:
            self.out.write(("\n" if self.drawn else "") + render(None, None) + "\n")
        self.drawn += 1
        self.out.flush()

    def __enter__(self) -> "Screen":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live or (self.drawn and self.blank_after_last and not self.as_json):
            self.out.write("\n")
            self.out.flush()


def redraw(out: TextIO, screen: str, columns: int) -> None:
    """Draw screen over the previous one in a terminal, without flicker.

    Lines cut to the width (a wrapped line would scroll the screen), cursor
    home, each line erased to its end, then the rest of the screen.
    """
    cut = [line[:columns] for line in screen.split("\n")]
    out.write("\x1b[H" + "\x1b[K\n".join(cut) + "\x1b[K\x1b[J")

"""The commands' standard output: a failed write is one line and a non-zero exit, never half a sample.

Every command writes through sys.stdout (click.echo, the live views'
Screen), so the console script wraps it once.  A write or flush that fails
(ENOSPC, EPIPE, EIO, EDQUOT, EFBIG) raises OutputError, which main() prints
as ``sockdiag: cannot write the output: No space left on device``.  When
the output is a regular file, the file is first cut back to the end of the
last flush that went through whole: the views flush once per sample and
``--once`` once, so a file holds whole samples, or nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import Optional, TextIO

from .._exceptions import SockdiagError


class OutputError(SockdiagError, OSError):
    """The standard output could not be written (an OSError too: what tidies
    a terminal that hung up on the way out still passes over it)."""


class CheckedOutput:
    """A text stream (sys.stdout) written with os.write, whose failed writes
    are OutputError; every other attribute is the stream's.

    Not through the stream's own buffer: a BufferedWriter whose write to a
    nearly full disk goes through in part loses the rest without an error.
    """

    def __init__(self, stream: Optional[TextIO]) -> None:
        self._closed = stream is None  # started with fd 1 closed: a write is an error
        self._stream = open(os.devnull, "w") if stream is None else stream
        self._pending: list[str] = []
        self._failed = False
        self._regular = False  # a regular file, which can be cut back
        self._fd = self._stream.fileno()  # OSError or ValueError: no file behind the stream
        self._line_buffering = self._stream.line_buffering
        if stat.S_ISREG(os.fstat(self._fd).st_mode):
            self._regular = True
            self._whole = self._end()

    def _end(self) -> int:
        """Where our output ends in the file (its size when opened for appending)."""
        if fcntl.fcntl(self._fd, fcntl.F_GETFL) & os.O_APPEND:
            return os.fstat(self._fd).st_size
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # as a text stream does (click tells text from binary streams so)
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._pending.append(text)
        if self._line_buffering and "\n" in text:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._failed or not self._pending:
            return
        data = memoryview("".join(self._pending).encode(self._stream.encoding, self._stream.errors))
        self._pending.clear()
        try:
            if self._closed:
                raise OSError(errno.EBADF, "the standard output is closed")
            self._stream.flush()  # what was written to the stream itself goes first
            while data:
                data = data[os.write(self._fd, data):]
            if self._regular:
                self._whole = self._end()
        except OSError as err:
            raise self._failure(err) from None

    def _failure(self, err: OSError) -> OutputError:
        self._failed = True  # nothing more is written, at exit either
        if self._regular:
            try:
                os.ftruncate(self._fd, self._whole)
            except OSError:
                pass
        return OutputError(f"cannot write the output: {err.strerror or err}")

"""A real terminal for the live views' tests: a tmux session, keys in, the screen out."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from .loopback import wait_until

requires_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]


class Terminal:
    """`sockdiag ARGS` in a detached tmux session of width x height; its exit status is
    printed as EXIT=N after it ends (the session stays until close()).

    Each terminal has a tmux server of its own (`tmux -L`): one test closing
    its session never races another starting one on a shared server.
    """

    def __init__(self, *args: str, width: int = 120, height: int = 30) -> None:
        self.session = f"sockdiag-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        command = shlex.join(SOCKDIAG + list(args)) + "; echo EXIT=$?; sleep 600"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                   command, env=env)

    def _tmux(self, *args: str, env=None, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.session, *args], capture_output=True, text=True,
                              check=check, env=env).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session, check=False)

    def press(self, *keys: str) -> None:
        """Keys as tmux names them ("Enter", "Escape", "Down") or literal characters."""
        for key in keys:
            literal = [] if key in ("Enter", "Escape", "Down", "Up", "C-c") else ["-l"]
            self._tmux("send-keys", "-t", self.session, *literal, key)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        """The screen once it shows text."""
        return self.wait_until(lambda screen: text in screen, timeout)

    def wait_until(self, predicate, timeout: float = 15) -> str:
        """The screen once predicate(screen) is true."""
        def check():
            screen = self.screen()
            return screen if predicate(screen) else None
        return wait_until(check, timeout=timeout, step=0.05)

    def exit_status(self, timeout: float = 15) -> int:
        screen = self.wait_for("EXIT=", timeout)
        return int(screen.split("EXIT=")[1].split()[0])

    def hang_up(self) -> None:
        """Close the terminal under the command, as closing its window does (SIGHUP)."""
        self._tmux("kill-server", check=False)

    def close(self) -> None:
        """End the command as Ctrl-C does (so it removes what it made), then the terminal."""
        if "EXIT=" not in self.screen():
            self._tmux("send-keys", "-t", self.session, "C-c", check=False)
            try:
                self.wait_for("EXIT=", timeout=10)
            except AssertionError:
                pass  # killed with the terminal below
        self.hang_up()

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

"""The keys of the live views, driven in a real terminal (tmux): q, p, < >, /, Enter, Esc, ?.

Without a terminal nothing changes: --once and --json print what they
always printed, and no terminal module is imported.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from sockdiag.views.keys import Controls, History, sparkline
from sockdiag.views.live import HIGHLIGHT, highlighted
from testsupport.children import python_child
from testsupport.terminal import SOCKDIAG, Terminal, requires_tmux

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


@pytest.fixture
def two_servers():
    """A child with two listeners and one connection to each; the first holds unsent bytes."""
    code = textwrap.dedent("""
        import socket, sys
        from testsupport.loopback import fill
        held, ports = [], []
        for _ in range(2):
            l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
            c = socket.create_connection(l.getsockname()); s, _ = l.accept()
            held += [l, c, s]; ports.append(l.getsockname()[1])
        fill(held[1])
        print(*ports, held[1].fileno(), flush=True)
        sys.stdin.read()
    """)
    child = python_child(code)
    busy_port, quiet_port, busy_fd = map(int, child.stdout.readline().split())
    yield child, busy_port, quiet_port, busy_fd
    child.stdin.close()
    child.wait(timeout=10)


@pytest.fixture
def loopback_traffic():
    """Bytes flowing over a loopback connection of this process, so that top has a row."""
    import socket
    import threading

    from conftest import connected_pair

    client, server = connected_pair(socket.AF_INET)
    stop = threading.Event()

    def pump(send: bool) -> None:
        while not stop.is_set():
            try:
                client.send(b"x" * 4096) if send else server.recv(65536)
            except OSError:
                return
            stop.wait(0.001)

    threads = [threading.Thread(target=pump, args=(send,), daemon=True) for send in (True, False)]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    client.close()
    server.close()
    for thread in threads:
        thread.join(timeout=5)


def table_rows(screen: str) -> list[list[str]]:
    """The rows of the watch table on a screen (under the FD header and its rule)."""
    lines = screen.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("FD "))
    rows = []
    for line in lines[header + 2:]:
        if not line.strip() or line.startswith(("sort:", "filter:", "...")):
            break
        rows.append(line.split())
    return rows


@requires_tmux
def test_q_ends_demo_with_status_0():
    with Terminal("demo", "--duration", "60", "-i", "0.3") as terminal:
        terminal.wait_for("sort: unsent")
        terminal.press("q")
        assert terminal.exit_status(timeout=10) == 0
        screen = terminal.screen()
    assert "Traceback" not in screen
    assert "demo: fd " in screen  # the last screen stays


@requires_tmux
def test_sort_filter_detail_help_and_pause_in_watch(two_servers):
    child, busy_port, quiet_port, busy_fd = two_servers
    with Terminal("watch", str(child.pid), "-i", "0.3", height=50) as terminal:
        screen = terminal.wait_for("sort: unsent")
        assert table_rows(screen)[0][0] == str(busy_fd)  # most unsent first
        assert len(table_rows(screen)) == 6

        terminal.press(">")  # unsent -> free
        screen = terminal.wait_for("sort: free")
        terminal.press("<", "<")  # -> unacked
        terminal.wait_for("sort: unacked")
        terminal.press("<", "<", "<", "<", "<")  # unacked -> state -> remote -> local -> kind -> fd
        screen = terminal.wait_for("sort: fd")
        fds = [int(row[0]) for row in table_rows(screen)]
        assert fds == sorted(fds)

        terminal.press("/")
        terminal.wait_for("filter: _")
        terminal.press(str(quiet_port))
        terminal.wait_for(f"filter: {quiet_port}_")
        terminal.press("Enter")
        screen = terminal.wait_for(f"filter: {quiet_port}   ")
        rows = table_rows(screen)
        assert len(rows) == 3  # the quiet server's listener and both ends of its connection
        assert all(str(quiet_port) in " ".join(row) for row in rows)
        terminal.press("/", "Escape")  # clears the filter
        screen = wait_rows(terminal, 6)

        terminal.press("/")
        terminal.press("LISTEN", "Enter")  # by state
        screen = wait_rows(terminal, 2)
        assert all(row[4] == "LISTEN" for row in table_rows(screen))
        terminal.press("Escape")  # Esc in the table clears the filter
        wait_rows(terminal, 6)

        # Enter opens the chosen row: fd order, Down twice = the third socket.
        terminal.press("Down", "Down")
        chosen = table_rows(terminal.screen())[2]
        terminal.press("Enter")
        screen = terminal.wait_for("Esc: back to the table")
        assert screen.splitlines()[0].startswith(f"fd {chosen[0]}  {chosen[1]}  {chosen[2]} -> {chosen[3]}")
        for label in ("UNSENT", "UNACKED", "RTT", "DELIVERY RATE"):
            assert re.search(rf"^{label} +[▁▂▃▄▅▆▇█ ]+ ", screen, re.M), label
        for field in ("rtt_us", "snd_cwnd_segs", "bytes_acked", "delivery_rate_bps", "rcv_wnd",
                      "UNSENT", "Q-DELAY", "congestion"):
            assert re.search(rf"(^|  ){field} \S", screen, re.M), field
        samples = int(re.search(r"the last (\d+) samples", screen).group(1))
        wait = terminal.wait_for(f"the last {samples + 2} samples")  # the history grows
        assert "rtt_us" in wait
        terminal.press("Escape")
        terminal.wait_for("sort: fd")

        terminal.press("?")
        screen = terminal.wait_for("Keys")
        for key in ("q ", "p ", "< >", "/ ", "Enter", "Esc", "?"):
            assert key in screen
        terminal.press("x")  # any key goes back
        terminal.wait_for("sort: fd")

        terminal.press("p")
        screen = terminal.wait_for("PAUSED")
        clock = lambda screen: screen.splitlines()[0].split()[3]  # noqa: E731 (pid N (name) HH:MM:SS)
        stamp = clock(screen)
        subprocess.run(["sleep", "1.2"])
        assert clock(terminal.screen()) == stamp  # no new sample
        terminal.press("p")
        terminal.wait_until(lambda screen: "PAUSED" not in screen and clock(screen) != stamp)

        terminal.press("q")
        assert terminal.exit_status() == 0


def wait_rows(terminal: Terminal, n: int) -> str:
    return terminal.wait_until(lambda screen: "FD " in screen and len(table_rows(screen)) == n)


@requires_tmux
@pytest.mark.parametrize("command, first_sort, second_sort", [
    (["top", "-i", "0.3"], "sort: total", "sort: pid"),
    (["ifstat", "-i", "0.3"], "sort: index", "sort: IFACE"),
], ids=["top", "ifstat"])
def test_keys_in_top_and_ifstat(command, first_sort, second_sort, loopback_traffic):
    with Terminal(*command) as terminal:
        terminal.wait_for(first_sort)
        terminal.press(">")
        terminal.wait_for(second_sort)
        terminal.press("Enter")
        screen = terminal.wait_for("Esc: back to the table")
        assert "samples, oldest on the left" in screen
        terminal.press("Escape")
        terminal.wait_for(second_sort)
        terminal.press("q")
        assert terminal.exit_status() == 0


@requires_tmux
def test_ifstat_filter_by_name():
    with Terminal("ifstat", "-i", "0.3") as terminal:
        terminal.wait_for("sort: index")
        terminal.press("/", "lo", "Enter")
        screen = terminal.wait_for("filter: lo ")
        names = [line.split()[0] for line in screen.splitlines()[3:] if line.strip() and
                 not line.startswith(("sort:", "filter:"))]
        assert names and all("lo" in name for name in names)
        terminal.press("q")
        assert terminal.exit_status() == 0


@requires_tmux
def test_once_and_json_in_a_terminal_read_no_keys(two_servers):
    """--once and --json in a terminal print what they print in a pipe: no status line, no escape."""
    child = two_servers[0]
    for args in (["--once"], ["--json", "-n", "2", "-i", "0.2"]):
        with Terminal("watch", str(child.pid), *args, height=60) as terminal:
            assert terminal.exit_status() == 0
            screen = terminal.screen()
        assert "sort:" not in screen and "?: keys" not in screen
        if "--json" in args:
            lines = [line for line in screen.splitlines() if line.startswith("{")]
            assert lines, screen


# --- without a terminal ------------------------------------------------------------

def test_pipes_print_as_before(two_servers):
    """Piped: every screen printed in full, no status line, no escape sequence; --json is JSON."""
    child = two_servers[0]
    done = subprocess.run(SOCKDIAG + ["watch", str(child.pid), "-n", "2", "-i", "0.1"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("sockets (6 TCP):") == 2 and "\x1b" not in done.stdout
    assert "sort:" not in done.stdout and "?: keys" not in done.stdout
    done = subprocess.run(SOCKDIAG + ["watch", str(child.pid), "--json", "--once"],
                          capture_output=True, text=True, timeout=30)
    assert json.loads(done.stdout)["pid"] == child.pid


def test_watch_once_json_imports_no_keys_recorder_or_plot_module(two_servers):
    child = two_servers[0]
    code = ("import sys; from sockdiag.cli import _run; _run(); "
            "print(sorted(m for m in ('termios', 'tty', 'zstandard', 'matplotlib', "
            "'sockdiag.recording_file', 'sockdiag.views.plot', 'sockdiag.views.keys') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "watch", str(child.pid), "--once", "--json"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stderr.strip() == "[]"


# --- the controls, offline ---------------------------------------------------------

def test_controls_follow_the_keys():
    controls = Controls(["fd", "local", "unsent"], "unsent")
    controls.press(">")
    assert controls.sort == "fd"  # wraps around
    controls.press("<")
    assert controls.sort == "unsent"
    for key in ["/", "4", "4", "3", "\x7f", "3", "enter"]:
        controls.press(key)
    assert controls.filter == "443" and controls.typing is None
    assert controls.matches("10.0.0.1:443") and not controls.matches("10.0.0.1:80", "ESTABLISHED")
    controls.row_keys = ["a", "b", "c"]
    for key in ["down", "down", "down", "up"]:
        controls.press(key)
    assert controls.selected == 1
    controls.press("enter")
    assert controls.opened == "b"
    controls.press(">")
    assert controls.sort == "unsent"  # sorting is the table's, not the detail's
    controls.press("esc")
    assert controls.opened is None and controls.filter == "443"  # the first Esc closes the detail
    controls.press("/")
    assert controls.typing == ""  # a new filter: the old one is not typed onto
    for key in ["8", "0", "enter"]:
        controls.press(key)
    assert controls.filter == "80"
    controls.press("esc")
    assert controls.filter == ""  # Esc in the table clears the filter
    controls.press("?")
    assert controls.help
    controls.press("z")
    assert not controls.help
    controls.press("p")
    assert controls.paused and "PAUSED" in controls.status_line()
    controls.press("q")
    assert controls.quit


def test_a_replay_says_so_on_every_screen():
    controls = Controls(["fd"], "fd")
    controls.replaying = True
    assert controls.status_line().startswith("REPLAY")


def test_filter_typing_ignores_command_keys():
    controls = Controls(["fd"], "fd")
    controls.press("/")
    for key in "q p<":
        controls.press(key)
    assert not controls.quit and not controls.paused and controls.typing == "q p<"
    controls.press("esc")
    assert controls.filter == "" and controls.typing is None


def test_highlight_marks_the_chosen_row_and_sets_row_keys():
    controls = Controls(["fd"], "fd")
    controls.selected = 5
    text = highlighted("H\n-\nr1\nr2", controls, ["k1", "k2"])
    assert controls.row_keys == ["k1", "k2"] and controls.selected == 1
    assert text.splitlines()[3] == HIGHLIGHT + "r2"


def test_detail_screen_scrolls_fields_that_do_not_fit():
    from sockdiag.views.keys import detail_screen

    fields = [(f"field{i}", str(i)) for i in range(40)]
    whole = detail_screen("title", [("RTT", [1, 2], str)], fields, max_lines=100, max_width=60)
    assert all(f"field{i} {i}" in whole for i in range(40))
    assert all(len(line) <= 60 for line in whole.splitlines())
    cut = detail_screen("title", [("RTT", [1, 2], str)], fields, max_lines=10, max_width=60)
    assert len(cut.splitlines()) == 10 and "(Down/Up scroll)" in cut
    scrolled = detail_screen("title", [("RTT", [1, 2], str)], fields, max_lines=10, max_width=60, scroll=3)
    assert scrolled != cut and "fields 4-" in scrolled


def test_sparkline_and_history():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([None, 5, 5], 10) == " ▁▁"
    assert sparkline([1, 2, 3], 2) == "▁█"  # the newest values
    history = History()
    history.add("a", (1, 2))
    history.add("a", (3, None))
    history.add("b", (0, 0))
    assert history.series("a", 0) == [1, 3] and history.series("a", 1) == [2, None]
    history.forget_except({"a"})
    assert history.series("b", 0) == []


@requires_tmux
def test_a_watched_process_that_exits_is_said_on_a_line_of_its_own(two_servers):
    child = two_servers[0]
    with Terminal("watch", str(child.pid), "-i", "0.3", height=40) as terminal:
        terminal.wait_for("sort: unsent")
        child.kill()
        child.wait()
        assert terminal.exit_status() == 0
        lines = terminal.screen().splitlines()
    said = [line for line in lines if "exited" in line]
    assert len(said) == 1 and said[0].startswith(f"sockdiag: process {child.pid} ("), said
    assert not any("?: keys" in line and "sockdiag:" in line for line in lines)

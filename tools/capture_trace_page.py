"""Capture real ftrace ring-buffer pages of sock:inet_sock_set_state as test data.

Run as root on the kernel to capture (or in a kernel-lane guest):

    python tools/capture_trace_page.py tests/data/trace

It makes a tracefs instance of its own (removed on exit, error, Ctrl-C and
SIGTERM), traces only the state changes of connections to one port it
listens on, opens a few IPv4 and IPv6 loopback connections from one CPU,
then saves, under DIR/<kernel release>/:

  format        the event's format file (the decoder's layout comes from it)
  id            the event's id
  page.bin      the raw pages read from that CPU's trace_pipe_raw, back to back
                (each buffer_subbuf_size_kb long)
  trace.txt     the kernel's own text of the same events (that CPU's `trace`
                file, read before the raw pages consumed them): the oracle
  capture.json  kernel release, page size, CPU, port, how it was made
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import signal
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from sockdiag import tracing  # noqa: E402

EVENT = "events/sock/inet_sock_set_state"
CONNECTIONS = 3  # per family


def _write(path: pathlib.Path, value: str) -> None:
    path.write_text(value)


def _connections(port: int) -> None:
    """CONNECTIONS loopback connections per family to port, each closed by the client."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as listener:
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(8)
            for _ in range(CONNECTIONS):
                with socket.create_connection((host, port), timeout=5) as client:
                    server, _ = listener.accept()
                    with server:
                        client.sendall(b"x")
                        server.recv(1)


def capture(out_dir: pathlib.Path) -> pathlib.Path:
    mount = tracing.tracefs_mount() or tracing._mount_tracefs()
    instance = pathlib.Path(mount, "instances", f"sdcapture-{os.getpid()}")
    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})  # every event on one CPU's buffer
    with socket.socket() as probe:  # a port free on both families, for the filter
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.mkdir(instance)
    try:
        _write(instance / "options/record-tgid", "1")
        _write(instance / EVENT / "filter", f"sport == {port} || dport == {port}")
        _write(instance / EVENT / "enable", "1")
        _connections(port)
        _write(instance / EVENT / "enable", "0")
        # Sub-buffers of another size than a page came in 6.8.
        subbuf = instance / "buffer_subbuf_size_kb"
        page_bytes = int(subbuf.read_text()) * 1024 if subbuf.exists() else os.sysconf("SC_PAGE_SIZE")
        text = (instance / "per_cpu" / f"cpu{cpu}" / "trace").read_text()
        pages = b""
        pipe = os.open(instance / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    page = os.read(pipe, page_bytes)
                except BlockingIOError:
                    break
                if not page:
                    break
                pages += page
        finally:
            os.close(pipe)
        release = platform.release()
        target = out_dir / release
        target.mkdir(parents=True, exist_ok=True)
        (target / "format").write_text((instance / EVENT / "format").read_text())
        (target / "id").write_text((instance / EVENT / "id").read_text())
        (target / "page.bin").write_bytes(pages)
        (target / "trace.txt").write_text(text)
        (target / "capture.json").write_text(json.dumps({
            "kernel_release": release, "page_bytes": page_bytes, "cpu": cpu, "port": port,
            "how": "python tools/capture_trace_page.py tests/data/trace (as root): "
                   f"{CONNECTIONS} IPv4 and {CONNECTIONS} IPv6 loopback connections to the port, "
                   "traced in a tracefs instance of its own filtered on the port, from one CPU",
        }, indent=2) + "\n")
        return target
    finally:
        tracing.remove_instance(str(instance))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: capture_trace_page.py DIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("capture_trace_page: needs root (tracefs)", file=sys.stderr)
        return 1
    # SIGTERM ends the capture as Ctrl-C does: the instance is removed on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        target = capture(pathlib.Path(sys.argv[1]))
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(f"capture_trace_page: {err}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

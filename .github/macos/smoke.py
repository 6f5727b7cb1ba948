"""macOS smoke run for the CI log: every macOS path once, on real sockets.

send_buffer and tcp_info on a loopback pair whose reader does not read,
interfaces(), process_sockets(own pid) and the user-space networking check.
Prints what it got; any exception fails the job.
"""

from __future__ import annotations

import os
import socket

import sockdiag
from sockdiag import _platform

with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()

client.setblocking(False)
written = 0
try:
    while written < 64 << 20:
        written += client.send(b"x" * 65536)
except BlockingIOError:
    pass
print(f"wrote {written} bytes to a peer that does not read")
print("send_buffer:", sockdiag.send_buffer(client))
info = sockdiag.tcp_info(client)
print("tcp_info:", {k: v for k, v in info.asdict().items() if v is not None})
for name, counters in _platform.interfaces().items():
    print("interface:", counters)
for sock in _platform.process_sockets(os.getpid()):
    print("own socket:", sock.local, "->", sock.remote, sock.state,
          f"send_queue={sock.send_queue} unacked={sock.unacked} unsent={sock.unsent} "
          f"free={sock.free} sndbuf={sock.sndbuf}")
print("user-space networking:", sockdiag.userspace_networking(os.getpid()))
print("fd headroom:", _platform.fd_headroom(os.getpid()))
client.close()
server.close()

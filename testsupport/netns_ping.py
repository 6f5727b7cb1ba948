"""ICMP echo round trips from inside a network namespace (root), without ping(8)."""

from __future__ import annotations

import subprocess
import sys

PING = """
import os, socket, struct, sys, time
def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.settimeout(2)
for seq in range(int(sys.argv[2])):
    body = struct.pack("!HH", os.getpid() & 0xFFFF, seq) + b"x" * 56
    packet = struct.pack("!BBH", 8, 0, checksum(b"\\x08\\x00\\x00\\x00" + body)) + body
    sent = time.monotonic_ns()
    sock.sendto(packet, (sys.argv[1], 0))
    while struct.unpack_from("!BBHHH", sock.recv(2048), 20)[::4] != (0, seq):
        pass
    print((time.monotonic_ns() - sent) / 1e6, flush=True)
    time.sleep(0.02)
"""


def ping_ms(namespace, address, count):
    """ICMP echo round trips from inside namespace, in ms."""
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", PING, address,
                           str(count)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [float(line) for line in done.stdout.split()]

"""An asyncio server streaming to a slow client, with and without TCP_NOTSENT_LOWAT.

The server writes timestamped 4 KiB messages as fast as ``drain()`` lets it;
the client reads --rate KiB/s through a small receive buffer and measures how
old each message is when it arrives.  Each round records the server's socket
with sockdiag.record_stream (callbacks on the event loop, no thread).

Without the option the kernel accepts megabytes, so messages are written
long before they can leave: they arrive stale.  With TCP_NOTSENT_LOWAT the
socket stops being writable once that little is unsent, drain() waits, and
each message is made when there is room for it.  asyncio's own write buffer
is kept small too (set_write_buffer_limits), or the backlog just moves there.

    $ python examples/asyncio_lowat.py
    client reads 1024 KiB/s for 1.5 s per round
    round           messages    latency_p50_ms    latency_max_ms    unsent_p50_kib    unsent_max_kib    queue_delay_p50_ms
    ------------  ----------  ----------------  ----------------  ----------------  ----------------  --------------------
    lowat off            384             752.7            1498.4            3408.0            3984.0                2736.0
    lowat 16 KiB         384             117.1             141.1              24.0              24.0                   0.0

Same throughput, messages 6x fresher.  What latency remains is the
client's receive buffer (the kernel doubles the 32 KiB asked) and the two
asyncio buffers; unsent overshoots the limit by up to one skb (24 KiB here).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import time
from typing import Optional

from tabulate import tabulate

import sockdiag

MESSAGE_BYTES = 4096
STAMP = struct.Struct("!d")  # time.monotonic() when the server made the message


async def serve(writer: asyncio.StreamWriter, lowat: Optional[int], seconds: float, results: dict) -> None:
    sock = writer.get_extra_info("socket")
    if lowat is not None:
        sockdiag.set_notsent_lowat(sock, lowat)
    writer.transport.set_write_buffer_limits(high=16 * 1024)
    padding = b"x" * (MESSAGE_BYTES - STAMP.size)
    deadline = time.monotonic() + seconds
    try:
        async with sockdiag.record_stream(writer, interval=0.005) as rec:
            while time.monotonic() < deadline:
                writer.write(STAMP.pack(time.monotonic()) + padding)
                await writer.drain()
    except ConnectionError:
        pass  # the client hung up first
    finally:
        writer.close()
    results["recording"] = rec


async def read_slowly(port: int, rate_kib_s: float, seconds: float) -> list[float]:
    """Message ages in seconds, reading at rate_kib_s for the given time."""
    sock = socket.socket()
    # A small receive buffer keeps the backlog on the sender, as over a long path.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    # asyncio's read buffer is kept small too, for the same reason.
    reader, writer = await asyncio.open_connection(sock=sock, limit=MESSAGE_BYTES)
    ages = []
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            message = await reader.readexactly(MESSAGE_BYTES)
            ages.append(time.monotonic() - STAMP.unpack_from(message)[0])
            pace = start + len(ages) * MESSAGE_BYTES / (rate_kib_s * 1024)
            await asyncio.sleep(max(0.0, pace - time.monotonic()))
    finally:
        writer.close()
    return ages


async def one_round(lowat: Optional[int], rate_kib_s: float, seconds: float) -> tuple:
    results: dict = {}
    tasks = []
    server = await asyncio.start_server(
        lambda _, writer: tasks.append(asyncio.create_task(serve(writer, lowat, seconds, results))),
        "127.0.0.1", 0)
    async with server:
        ages = await read_slowly(server.sockets[0].getsockname()[1], rate_kib_s, seconds)
        await asyncio.gather(*tasks)
    ages.sort()
    summary = results["recording"].summary()
    delay = summary.queue_delay_p50_s
    return (
        "lowat off" if lowat is None else f"lowat {lowat // 1024} KiB",
        len(ages),
        ages[len(ages) // 2] * 1000,
        ages[-1] * 1000,
        summary.unsent_p50_bytes / 1024,
        summary.unsent_max_bytes / 1024,
        None if delay is None else delay * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1024, help="client's KiB/s (default 1024)")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of each round (default 1.5)")
    parser.add_argument("--lowat", type=int, default=16 * 1024, help="TCP_NOTSENT_LOWAT bytes (default 16384)")
    args = parser.parse_args()
    print(f"client reads {args.rate:g} KiB/s for {args.seconds:g} s per round")
    rows = [asyncio.run(one_round(lowat, args.rate, args.seconds)) for lowat in (None, args.lowat)]
    print(tabulate(rows, floatfmt=".1f", headers=(
        "round", "messages", "latency_p50_ms", "latency_max_ms", "unsent_p50_kib", "unsent_max_kib",
        "queue_delay_p50_ms")))


if __name__ == "__main__":
    main()

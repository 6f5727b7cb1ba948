"""Soak `sockdiag export`: many scrapes, the exporter's memory must stay flat.

Runs the real command (`sockdiag export --per-socket`) in a subprocess
watching a process that holds loopback connections, scrapes /metrics over
HTTP as fast as it answers, and samples the exporter's resident memory
(VmRSS) every --every scrapes.  Growth is the peak of the second half of
the samples minus the peak of the first; exit status 1 when it exceeds
--max-growth-kib.  With --tls every scrape is a new TLS connection (a
self-signed certificate in --web-config): the memory per connection is the
growth over the scrapes.

Run: python bench/soak_export.py [--scrapes 3000] [--connections 1000] [--tls]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import select
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_export_idle import self_signed  # noqa: E402
from bench_process_sockets import holder  # noqa: E402


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250, help="scrapes between memory samples")
    parser.add_argument("--max-growth-kib", type=int, default=1024)
    parser.add_argument("--tls", action="store_true", help="scrape over TLS (--web-config)")
    args = parser.parse_args()

    exporter = None
    folder = tempfile.TemporaryDirectory()
    config, cert = self_signed(folder.name) if args.tls else (None, None)
    context = ssl.create_default_context(cafile=cert) if args.tls else None
    with folder, holder(args.connections) as (watched_pid, _):
        try:
            exporter = subprocess.Popen(
                [sys.executable, "-c", "from sockdiag.cli import main; main()", "export",
                 "--listen", "127.0.0.1:0", "--pid", str(watched_pid), "--per-socket"]
                + (["--web-config", config] if args.tls else []),
                stderr=subprocess.PIPE, text=True,
            )
            ready, _, _ = select.select([exporter.stderr], [], [], 30)
            line = exporter.stderr.readline() if ready else ""
            url = re.search(r"serving (https?://\S+/metrics)", line)
            assert url, f"exporter did not start: {line!r}"

            samples = []
            started = time.monotonic()
            for n in range(1, args.scrapes + 1):
                with urllib.request.urlopen(url.group(1), timeout=30, context=context) as response:
                    body = response.read()
                if n % args.every == 0:
                    samples.append((n, rss_kib(exporter.pid), len(body)))
            elapsed = time.monotonic() - started
        finally:
            if exporter is not None:
                exporter.kill()
                exporter.wait()
                exporter.stderr.close()

    print(f"{2 * args.connections} sockets watched, --per-socket{', over TLS' if args.tls else ''}, "
          f"{args.scrapes} scrapes in {elapsed:.1f} s ({elapsed / args.scrapes * 1e3:.1f} ms each)")
    print(f"{'scrapes':>8} {'RSS KiB':>9} {'body bytes':>11}")
    for n, rss, size in samples:
        print(f"{n:>8} {rss:>9} {size:>11}")
    # The allocator moves RSS up and down by a MiB or so between samples; a
    # leak raises the peak, so compare the peaks of the two halves.
    half = len(samples) // 2
    first, second = max(r for _, r, _ in samples[:half]), max(r for _, r, _ in samples[half:])
    growth = second - first
    print(f"RSS range {min(r for _, r, _ in samples)}-{max(r for _, r, _ in samples)} KiB; "
          f"peak of the second half minus peak of the first: {growth} KiB "
          f"({growth / max(args.scrapes // 2, 1):.2f} KiB per connection)")
    return 0 if growth <= args.max_growth_kib else 1


if __name__ == "__main__":
    sys.exit(main())

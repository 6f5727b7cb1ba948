"""Size of a `--record` file per sample on the 19,001-socket fixture: all sockets, and changes only.

    pytest bench/bench_recording_size.py -s

A child holds 9,500 loopback connections (bench_process_sockets.holder);
`sockdiag watch PID --record FILE` takes 6 samples one second apart, as
JSON lines and zstd-compressed.  The first sample holds every socket; each
later one only what changed.  Beside it, `watch --json`'s line, which holds
every socket at every sample.  Another workload shows the other end: the
demo's, where four connections change at every sample.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench_process_sockets import CONNECTIONS, holder
from sockdiag._demo import workload

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]
SAMPLES = 6


def line_sizes(path) -> list[int]:
    """Bytes of each line of a recording (uncompressed), header first."""
    raw = open(path, "rb").read()
    if str(path).endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
    return [len(line) + 1 for line in raw.split(b"\n")[:-1]]


def measure(pid: int, tmp_path, label: str) -> list[str]:
    rows = []
    json_line = subprocess.run(SOCKDIAG + ["watch", str(pid), "--json", "--once"], capture_output=True,
                               check=True).stdout
    for suffix in (".jsonl", ".jsonl.zst"):
        path = tmp_path / f"{label}{suffix}"
        subprocess.run(SOCKDIAG + ["watch", str(pid), "-n", str(SAMPLES), "-i", "1", "--record", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
        sizes = line_sizes(path)
        total = path.stat().st_size
        later = sum(sizes[2:]) / (len(sizes) - 2)
        if suffix == ".jsonl":
            rows.append(f"{label}: watch --json line (every socket, every sample): {len(json_line):,} B")
            rows.append(f"{label}: first sample (every socket): {sizes[1]:,} B; each later sample "
                        f"(changes only): {later:,.0f} B on average")
        else:
            rows.append(f"{label}: .zst file of header + {SAMPLES} samples: {total:,} B "
                        f"({total / sum(sizes):.1%} of the JSON lines)")
    return rows


def test_recording_size_per_sample(tmp_path):
    rows = []
    with holder(CONNECTIONS) as (pid, sockets):
        rows += measure(pid, tmp_path, f"{sockets:,} idle sockets")
    with workload(30) as (pid, _roles):
        rows += measure(pid, tmp_path, "demo (12 sockets, 4 busy)")
    print("\n" + "\n".join(rows))

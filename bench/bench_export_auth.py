"""A valid scrape's time while eight threads send wrong passwords (bcrypt cost 10).

The door remembers verified credentials (a hash, checked on its event loop)
and runs bcrypt on two threads of its own, so a scraper whose credentials
were verified once is answered without waiting for the flood's checks; the
same scrape without the flood is the baseline.

Run: pytest bench/bench_export_auth.py -s
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

bcrypt = pytest.importorskip("bcrypt")

from sockdiag import web  # noqa: E402
from testsupport.exposition import get_metrics  # noqa: E402

FLOOD_THREADS = 8
SCRAPES = 40
BODY = b"# HELP door_test a constant\n# TYPE door_test gauge\ndoor_test 1.0\n"
RESULTS: dict[str, float] = {}


def valid_scrape_ms(flood: bool) -> list[float]:
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=10))
    server = web.MetricsServer(lambda: BODY, "127.0.0.1", 0, web.WebConfig(users={"prom": hashed}))
    port = server.server_port
    stop = threading.Event()

    def status(password: str) -> int:
        return get_metrics(port, "prom", password, timeout=30)[0]

    def wrong_passwords():
        while not stop.is_set():
            status("wrong")

    flooders = [threading.Thread(target=wrong_passwords) for _ in range(FLOOD_THREADS if flood else 0)]
    try:
        assert status("right") == 200  # verified once, as a scraper's first scrape is
        for thread in flooders:
            thread.start()
        time.sleep(0.5)
        seconds = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            assert status("right") == 200
            seconds.append(time.perf_counter() - started)
    finally:
        stop.set()
        for thread in flooders:
            thread.join()
        server.shutdown()
        server.server_close()
    return [s * 1e3 for s in seconds]


@pytest.mark.parametrize("flood", [False, True], ids=["quiet", f"{FLOOD_THREADS}-thread flood"])
def test_valid_scrape_under_a_wrong_password_flood(benchmark, flood):
    ms = benchmark.pedantic(valid_scrape_ms, (flood,), rounds=1, iterations=1)
    name = f"with {FLOOD_THREADS} threads of wrong passwords" if flood else "quiet"
    RESULTS[f"{name}: median ms"] = statistics.median(ms)
    RESULTS[f"{name}: max ms"] = max(ms)


def teardown_module():
    print(f"\na valid scrape (bcrypt cost 10), {SCRAPES} of them:")
    for key, value in RESULTS.items():
        print(f"  {key:<48} {value:8.1f}")

"""The REST client of bench/cluster_scale.py: its own process, so its CPU is not the daemon's.

Two threads, each with one kept-alive connection, as a dashboard and a script would poll: a page
of trials (``GET .../trials?limit=50``) and the metrics since the last id seen (``GET
.../metrics?since=N``, following ``next``), each every ``interval`` seconds (the next request
goes at once when an answer took longer). Runs until a line arrives on stdin, then prints one
JSON object: the latencies in seconds per route, the failures, and how many metrics it read.

Usage: ``python bench/_rest_poller.py URL TOKEN EXPERIMENT_ID INTERVAL``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import httpx


def poll(
    url: str, token: str, path: str, interval: float, stop: threading.Event, out: dict[str, Any], route: str
) -> None:
    """GET ``path`` every ``interval`` seconds until ``stop``; the metrics route follows ``next``."""
    headers = {"Authorization": f"Bearer {token}"}
    since = 0
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        while not stop.is_set():
            params = {"since": since} if route == "metrics" else {"limit": 50}
            begin = time.perf_counter()
            try:
                answer = client.get(path, params=params)
                took = time.perf_counter() - begin
                if answer.status_code != 200:
                    out["failures"].append(f"{route}: HTTP {answer.status_code}")
                else:
                    out[route].append(took)
                    if route == "metrics":
                        body = answer.json()
                        out["metrics_read"] += len(body["items"])
                        since = body["next"]
            except httpx.HTTPError as exc:
                took = time.perf_counter() - begin
                out["failures"].append(f"{route}: {type(exc).__name__}: {exc}")
            stop.wait(max(0.0, interval - took))


def main() -> None:
    url, token, experiment_id, interval = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    out: dict[str, Any] = {"page": [], "metrics": [], "failures": [], "metrics_read": 0}
    stop = threading.Event()
    base = f"/api/v1/experiments/{experiment_id}"
    threads = [
        threading.Thread(target=poll, args=(url, token, f"{base}/{route}", interval, stop, out, name))
        for name, route in (("page", "trials"), ("metrics", "metrics"))
    ]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.readline()
    stop.set()
    for thread in threads:
        thread.join()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

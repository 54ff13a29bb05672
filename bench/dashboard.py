"""The dashboard at 10,000 trials with 100 intermediate results each, in headless Chromium.

A generated database (``tests/dashboard_data.py``: a DONE experiment written straight into the
store's tables) is served by a real daemon process; the browser logs in through the token link,
then, for each repetition, opens the experiment's overview in a fresh tab. Measured:

* first paint: from navigation start to the frame that shows the header, the final-metric chart
  of every trial and the first rows of the trial table (the page marks it; the curves of the five
  best trials arrive after), and the browser's own first-contentful-paint;
* sort: clicking "final metric" until the best trial is the first row;
* jump: scrolling to the middle of the table until those rows are filled;
* scroll: frame times while the table scrolls 300 px a frame for 120 frames.

The baseline, measured in the same run, is the same page for an experiment of 100 trials: the
ratios say what 100 times more trials cost. Target (issue 7): first paint under one second.

Usage: ``python bench/dashboard.py [--trials 10000] [--intermediates 100] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from chromium import browser_problem, launch  # noqa: E402
from dashboard_data import make_experiment  # noqa: E402

SCROLL_FRAMES = """async (el) => {
  const times = [];
  let last = performance.now();
  for (let i = 0; i < 120; i++) {
    el.scrollTop += 300;
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  return times;
}"""


class Served:
    """A daemon process serving a home (``python -m manager serve``)."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "manager", "serve", "--home", str(home)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (home / "manager.json").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the daemon did not start")
            time.sleep(0.05)
        info = json.loads((home / "manager.json").read_text())
        self.root = f"http://127.0.0.1:{info['port']}"
        self.token = info["token"]

    def best(self, experiment_id: str) -> str:
        import httpx

        response = httpx.get(
            f"{self.root}/api/v1/experiments/{experiment_id}/best",
            headers={"Authorization": f"Bearer {self.token}"},
            trust_env=False,
        )
        return response.json()[0]["id"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def measure(browser: Any, served: Served, experiment_id: str, repeat: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    login = context.new_page()
    login.goto(f"{served.root}/?token={served.token}")
    login.wait_for_selector("#experiments", state="attached")
    url = f"{served.root}/#/experiments/{experiment_id}"
    painted, contentful = [], []
    for _ in range(repeat):
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-painted]", state="attached", timeout=60_000)
        painted.append(float(page.evaluate("() => Number(document.body.dataset.painted)")))
        contentful.append(
            float(
                page.evaluate(
                    "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime || 0"
                )
            )
        )
        page.close()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(".ttable .trow[data-trial-id]", timeout=60_000)
    best = served.best(experiment_id)
    started = time.perf_counter()
    page.locator('.ttable .thead [data-col="finalMetric"]').click()
    page.wait_for_selector(f'.ttable .trow[data-trial-id="{best}"]', timeout=60_000)
    first = page.locator(".ttable .trow").first.get_attribute("data-trial-id")
    sort_ms = (time.perf_counter() - started) * 1000
    if first != best:
        raise SystemExit(f"after sorting, the first row is {first}, not the best trial {best}")
    page.locator('.ttable .thead [data-col="sequenceId"]').click()  # back to #N-1 .. #0
    total = int(page.locator(".ttable").get_attribute("data-total") or "0")
    middle = total // 2
    scroller = page.locator(".ttable .scroller")
    started = time.perf_counter()
    scroller.evaluate(f"el => {{ el.scrollTop = {middle} * 30; }}")
    page.wait_for_selector(f'.ttable .trow[data-seq="{total - 1 - middle}"]', timeout=60_000)
    jump_ms = (time.perf_counter() - started) * 1000
    scroller.evaluate("el => { el.scrollTop = 0; }")
    frames = sorted(scroller.evaluate(SCROLL_FRAMES))
    context.close()
    return {
        "painted": statistics.median(painted),
        "fcp": statistics.median(contentful),
        "sort": sort_ms,
        "jump": jump_ms,
        "frame_p50": frames[len(frames) // 2],
        "frame_p95": frames[int(len(frames) * 0.95)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--intermediates", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    problem = browser_problem()
    if problem is not None:
        print(f"skipped: {problem}")
        return 0
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="nasctl-bench-dashboard-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        big_id = make_experiment(folder / "big", args.trials, args.intermediates)
        generated = time.perf_counter() - started
        small_id = make_experiment(folder / "small", 100, args.intermediates, name="small-random")
        results = {}
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for name, home, experiment_id in (
                ("small", folder / "small", small_id),
                ("big", folder / "big", big_id),
            ):
                served = Served(home)
                try:
                    results[name] = measure(browser, served, experiment_id, args.repeat)
                finally:
                    served.stop()
            browser.close()
    small, big = results["small"], results["big"]
    print(
        f"database: {args.trials} trials x {args.intermediates} intermediate results "
        f"({args.trials * (args.intermediates + 1):,} metric rows), generated in {generated:.1f} s"
    )
    print(f"{'':38} {'100 trials':>11} {f'{args.trials} trials':>13} {'ratio':>7}")
    rows = [
        ("first paint, data shown (median)", "painted"),
        ("first contentful paint (median)", "fcp"),
        ("sort by final metric", "sort"),
        ("jump to the middle of the table", "jump"),
        ("scroll frame time p50", "frame_p50"),
        ("scroll frame time p95", "frame_p95"),
    ]
    for label, key in rows:
        ratio = big[key] / small[key] if small[key] else float("nan")
        print(f"{label:38} {small[key]:8.0f} ms {big[key]:10.0f} ms {ratio:6.2f}x")
    verdict = "meets" if big["painted"] < 1000 else "misses"
    print(f"verdict: {verdict} the target (first paint under 1000 ms at {args.trials} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

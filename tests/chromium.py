"""The real browser of the dashboard tests and bench: Debian's Chromium, driven by Playwright.

Nothing is downloaded (``playwright install`` is never run): Playwright starts the system's
``/usr/bin/chromium``, which ``make test`` installs with apt-get when it is missing. Where it is
missing anyway the browser tests skip with the reason, unless ``NASCTL_REQUIRE_BROWSER=1`` (set
by ``.ci/run``) turns the skip into a failure, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = Path(os.environ.get("NASCTL_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRED = os.environ.get("NASCTL_REQUIRE_BROWSER") == "1"


def browser_problem() -> str | None:
    """Why no browser test can run here, or None when they can."""
    if not (CHROMIUM.exists() or shutil.which(str(CHROMIUM))):
        return f"no Chromium at {CHROMIUM} ('make test' installs Debian's chromium with apt-get)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (it is in the dev extras)"
    return None


def launch(playwright: object) -> object:
    """A headless Chromium from ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)  # type: ignore[attr-defined]

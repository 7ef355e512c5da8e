#!/usr/bin/env python3
"""Page weight and first-load time of the web admin page (/ui/), in Debian's headless Chromium.

    .venv/bin/python scripts/bench_ui.py [--runs 10]

Starts a daemon (scripts/daemon_process.py), signs in once, then loads /ui/ with the
browser cache disabled (every asset fetched again, as on a first visit) and reads the Navigation
Timing of each load: until the load event, and until the overview shows the daemon's status (the page
has asked /ui/session, /health, the doctor and the groups). Asset weight: every file under
daemon/web, as served (no compression). Prints a markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.daemon_process import start_daemon  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    web = REPO / "daemon" / "web"
    files = sorted(p for p in web.rglob("*") if p.is_file())
    weight = sum(p.stat().st_size for p in files)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir(mode=0o700)
        daemon = start_daemon(state)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={tmp}/chromium",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(f"{daemon.url}/ui/login")
            field = driver.find_element(By.ID, "token")
            field.send_keys(daemon.token)
            field.submit()
            WebDriverWait(driver, 30).until(ec.text_to_be_present_in_element((By.ID, "status"), "ok"))
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
            loads, ready = [], []
            for _ in range(args.runs):
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(f"{daemon.url}/ui/#/overview")
                shown = ec.text_to_be_present_in_element((By.ID, "status"), "ok")
                WebDriverWait(driver, 30, poll_frequency=0.01).until(shown)
                ready.append((time.perf_counter() - started) * 1000)
                nav = driver.execute_script("return performance.getEntriesByType('navigation')[0].toJSON()")
                loads.append(nav["loadEventEnd"] - nav["startTime"])
                transferred = driver.execute_script(
                    "const size = (s, r) => s + r.encodedBodySize;"
                    "return performance.getEntriesByType('resource').reduce(size, 0)"
                    " + performance.getEntriesByType('navigation')[0].encodedBodySize"
                )
        finally:
            driver.quit()
            daemon.stop()
    print(f"assets under daemon/web: {len(files)} files, {weight / 1024:.1f} KiB")
    print(f"bytes fetched by one overview load (HTML, CSS, modules, JSON): {transferred / 1024:.1f} KiB")
    print("| measure | median | max |")
    print("|---|---|---|")
    print(f"| load event (ms) | {statistics.median(loads):.0f} | {max(loads):.0f} |")
    print(f"| overview shows the status (ms) | {statistics.median(ready):.0f} | {max(ready):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

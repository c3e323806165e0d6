"""Size and time-to-interactive of the explorer page over an analysed run (or a study) in headless Chromium.

    python bench/bench_explore.py RUN_OR_ANALYSIS_OR_STUDY [--loads 3]

Writes the explorer into a temporary folder, then prints the machine, the files' sizes (the page and what its first
view loads), the seconds `write_explorer` took, and the seconds from navigation to the page being ready to click
(``document.body.dataset.ready``) for each load from file://, with a fresh browser profile each time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name


def load_seconds(index: Path, profile: Path) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        start = time.perf_counter()
        driver.get(index.as_uri())
        while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
            if time.perf_counter() - start > 120:
                raise SystemExit("the page never became ready")
            time.sleep(0.01)
        return time.perf_counter() - start
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="run folder with analysis/, analysis folder or study folder")
    ap.add_argument("--loads", type=int, default=3, help="page loads to time (default: 3)")
    args = ap.parse_args()
    from nerve.explore import write_explorer

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index = write_explorer(args.source, Path(tmp) / "explore")
        written = time.perf_counter() - t
        data = sorted((index.parent / "data").glob("*.js"))
        first = index.stat().st_size + sum(p.stat().st_size for p in data if p.name in ("index.js", "r0.js"))
        total = index.stat().st_size + sum(p.stat().st_size for p in data)
        times = [load_seconds(index, Path(tmp) / f"profile{i}") for i in range(args.loads)]
    print(f"machine: {cpu_name()}")
    print(f"source: {args.source}")
    print(f"page + first run's data: {first / 1e6:.2f} MB; all files: {total / 1e6:.2f} MB ({len(data) - 1} run(s))")
    print(f"write_explorer: {written:.1f} s")
    print(f"time to interactive (file://, headless Chromium): median {statistics.median(times):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in times)})")


if __name__ == "__main__":
    main()

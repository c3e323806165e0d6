"""Fixtures of the explorer tests: an analysed tiny run, a two-run study over tiny runs, headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, TINY_CFG, run_cli

ANALYZE = ("--max-k", "4", "--random-draws", "3", "--no-figures")


def _analyse(run: Path, out: Path, *extra: str) -> Path:
    run_cli("analyze", run, "--out", out, *ANALYZE, *extra, check=True)
    return out


@pytest.fixture(scope="session")
def tiny_analysis(tiny_run, tmp_path_factory) -> Path:
    """The tiny run analysed on dev, with the methods' scores, outside the run folder."""
    return _analyse(tiny_run, tmp_path_factory.mktemp("explore") / "analysis", "--methods", "sensitivity,probeless")


@pytest.fixture(scope="session")
def tiny_study(tiny_run, tmp_path_factory) -> Path:
    """A study folder as `nerve study` leaves it, over two tiny runs (seeds 1 and 2) analysed in RUN/analysis."""
    root = tmp_path_factory.mktemp("study")
    runs = []
    for seed in (1, 2):
        run = root / "runs" / "base" / f"seed{seed}"
        run_cli("train", TINY_CFG, "--data", TINY, "--out", run, "--set", f"train.seed={seed}", "--no-progress",
                "--device", "cpu", check=True)
        _analyse(run, run / "analysis")
        runs.append({"variant": "base", "seed": seed, "run_dir": str(run)})
    (root / "study.json").write_text(json.dumps({"variants": {"base": {"runs": runs}}}), encoding="utf-8")
    return root


def chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def launch(user_dir: Path, window: str = "1500,1000"):
    """Selenium driving Debian's headless chromium with chromedriver, its console logged (the test skips where
    either is missing)."""
    found = chromium()
    if found is None:
        pytest.skip("chromium or chromedriver is not installed (.ci/run installs both)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--window-size={window}", f"--user-data-dir={user_dir}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(found[1]))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """``launch``ed for a module."""
    driver = launch(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def open_page(driver, url: str, timeout: float = 30.0) -> float:
    """Load ``url`` and wait until the explorer says it is ready; returns the seconds it took."""
    start = time.perf_counter()
    driver.get(url)
    while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
        assert time.perf_counter() - start < timeout, "the explorer never became ready"
        time.sleep(0.02)
    return time.perf_counter() - start


def console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def screenshot(driver, name: str) -> None:
    """Save a screenshot into $NERVE_SCREENSHOTS (docs/figures/explorer when the docs are refreshed)."""
    folder = os.environ.get("NERVE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))

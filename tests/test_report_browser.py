"""The study report as a reader meets it: a table of contents whose links reach their sections, each figure once
with a caption that says what it shows, within its size budget; in headless Chromium where it is installed."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import TINY, TINY_CFG, run_cli


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A two-seed study of the tiny corpus with two ranking methods: every kind of figure the report shows."""
    out = tmp_path_factory.mktemp("report") / "study"
    run_cli("study", TINY_CFG, "--data", TINY, "--out", out, "--seeds", "2", "--set", "train.epochs=1",
            "--methods", "sensitivity,probeless", "--ablate", "zero", "--max-k", "6", "--judged-draws", "100",
            "--matched-draws", "10", "--no-progress", check=True)
    return out


class _Page(HTMLParser):
    """The report's anchors (ids), table-of-contents links, and figures: (img src, link, caption text)."""

    def __init__(self):
        super().__init__()
        self.ids, self.toc, self.figures = set(), [], []
        self._in_toc = self._in_caption = False
        self._figure = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "nav":
            self._in_toc = True
        elif tag == "a" and self._in_toc:
            self.toc.append(a["href"])
        elif tag == "figure":
            self._figure = {"src": None, "href": None, "caption": ""}
        elif tag == "img" and self._figure is not None:
            self._figure["src"] = a["src"]
        elif tag == "a" and self._figure is not None and self._figure["href"] is None:
            self._figure["href"] = a["href"]
        elif tag == "figcaption":
            self._in_caption = True

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_toc = False
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "figure":
            self.figures.append(self._figure)
            self._figure = None

    def handle_data(self, data):
        if self._in_caption:
            self._figure["caption"] += data


def _page(study: Path) -> _Page:
    page = _Page()
    page.feed((study / "report.html").read_text(encoding="utf-8"))
    return page


def test_every_table_of_contents_link_names_an_anchor_of_the_page(study):
    page = _page(study)
    assert len(page.toc) >= 6 and all(h.startswith("#") for h in page.toc)
    assert {h[1:] for h in page.toc} <= page.ids


def test_the_report_shows_every_figure_the_study_drew_exactly_once(study):
    page = _page(study)
    links = [f["href"] for f in page.figures]
    assert len(links) == len(set(links)) and len({f["src"] for f in page.figures}) == len(links)
    drawn = {p.relative_to(study).as_posix() for p in study.glob("**/*.png")}
    assert set(links) == drawn


def test_every_figure_has_a_caption_that_is_a_sentence_not_a_file_name(study):
    for f in _page(study).figures:
        text = re.sub(r"^Figure \d+\.\s*", "", f["caption"].strip())
        stem = Path(f["href"]).stem
        assert len(text) > 60 and "." in text, f
        assert stem not in text and stem.replace("_", " ") not in text, f


def test_the_report_stays_within_its_size_budget(study):
    """The default study report must stay within SIZE_BUDGET: it shows the same figures as this one (the first
    seed's, the comparison's and the methods'), so the bytes per figure here bound it."""
    from nerve.report.html import SIZE_BUDGET

    size = (study / "report.html").stat().st_size
    n = len(_page(study).figures)
    assert n >= 15 and size <= SIZE_BUDGET
    assert size / n <= SIZE_BUDGET / 40  # 40 figures: more than the default study's report shows


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from tests.explore.conftest import launch

    driver = launch(tmp_path_factory.mktemp("chromium"), "1400,900")
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    driver.get(path.as_uri())
    start = time.perf_counter()
    while driver.execute_script("return document.body.getAttribute('data-images-ok')") is None:
        assert time.perf_counter() - start < 30, "the report's images never finished loading"
        time.sleep(0.05)


def test_clicking_each_table_of_contents_link_scrolls_its_section_into_view(study, browser):
    from selenium.webdriver.common.by import By

    _open(browser, study / "report.html")
    links = browser.find_elements(By.CSS_SELECTOR, "nav.toc a")
    assert len(links) >= 6
    for i in range(len(links)):
        browser.execute_script("window.scrollTo(0, 0)")
        link = browser.find_elements(By.CSS_SELECTOR, "nav.toc a")[i]
        target = link.get_attribute("href").split("#", 1)[1]
        link.click()
        box = browser.execute_script(
            "var e = document.getElementById(arguments[0]); if (!e) return null;"
            "var r = e.getBoundingClientRect(); return [r.top, r.bottom, window.innerHeight, window.scrollY]",
            target)
        assert box is not None, f"#{target}: no such element"
        top, bottom, height, scrolled = box
        assert 0 <= top < height and bottom <= height, (target, box)
        assert browser.current_url.endswith(f"#{target}")
        if i:
            assert scrolled > 0, target


def test_in_chromium_every_figure_loads_once_with_a_caption(study, browser):
    from selenium.webdriver.common.by import By

    _open(browser, study / "report.html")
    assert browser.execute_script("return document.body.getAttribute('data-images-failed')") == "0"
    figures = browser.find_elements(By.CSS_SELECTOR, "figure")
    sources = browser.execute_script("return Array.from(document.querySelectorAll('figure img, figure svg'))"
                                     ".map(function (e) { return e.getAttribute('src') || e.outerHTML; })")
    assert len(figures) >= 15 and len(sources) == len(figures) == len(set(sources))
    captions = browser.execute_script("return Array.from(document.querySelectorAll('figure')).map(function (f) {"
                                      "var c = f.querySelector('figcaption'); return c ? c.textContent : ''; })")
    for caption in captions:
        assert len(caption) > 60 and not re.search(r"\b\w+_\w+\.(png|svg|pdf)\b", caption.split(" PNG")[0]), caption


def test_plot_analysis_draws_a_pdf_of_every_figure_the_study_drew(study, tmp_path):
    analysis = study / "runs" / "base" / "seed1" / "analysis"
    proc = run_cli("plot", "analysis", analysis, "--out", tmp_path, "--formats", "pdf")
    assert proc.returncode == 0, proc.stderr
    stems = {p.stem for p in analysis.glob("*.png")}
    assert stems and {p.stem for p in tmp_path.glob("*.pdf")} == stems and not list(tmp_path.glob("*.png"))
    assert all(p.read_bytes().startswith(b"%PDF") for p in tmp_path.glob("*.pdf"))

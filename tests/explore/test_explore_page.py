"""The explorer page in real headless Chromium (Debian's chromium and chromedriver through selenium): it opens
from file:// without console errors, a clicked unit shows what activations.npz says, the sentence view colours
tokens by the chosen unit, and a study shows each unit's match in the other runs."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from nerve.analysis.matching import assign_units
from nerve.analysis.pipeline import load_activations
from nerve.explore import write_explorer
from tests.explore.conftest import console_errors, open_page, screenshot


@pytest.fixture(scope="module")
def page(tiny_analysis, tmp_path_factory):
    return write_explorer(tiny_analysis, tmp_path_factory.mktemp("page") / "explore")


def _css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_page_loads_from_file_url_without_console_errors(browser, page):
    seconds = open_page(browser, page.as_uri())
    assert console_errors(browser) == []
    assert seconds < 10
    assert _css(browser, "#error")[0].get_attribute("hidden") is not None
    assert len(_css(browser, "#heatmap tr[data-unit]")) == 16


def test_clicking_a_unit_shows_its_profile_and_tokens_from_the_archive(browser, page, tiny_analysis):
    a = load_activations(tiny_analysis / "activations.npz")
    s = np.load(tiny_analysis / "sensitivity.npy")
    open_page(browser, page.as_uri())
    words = browser.execute_script("return window.nerveExplorer.data().words")
    for u in (3, 11):
        _css(browser, f'#heatmap tr[data-unit="{u}"]')[0].click()
        assert _css(browser, "#unit-title")[0].get_attribute("data-unit") == str(u)
        bars = _css(browser, "#unit-profile rect[data-tag]")
        got = np.array([float(b.get_attribute("data-value") or "nan") for b in bars])
        assert np.allclose(got, s[u], atol=1e-4, equal_nan=True)
        for table, order in (("unit-top", -a["h"][:, u]), ("unit-bottom", a["h"][:, u])):
            rows = _css(browser, f"#{table} tr[data-token]")
            want = np.argsort(order, kind="stable")[: len(rows)]
            tokens = [int(r.get_attribute("data-token")) for r in rows]
            assert np.allclose([float(r.get_attribute("data-value")) for r in rows], a["h"][want, u], atol=1e-4)
            assert np.allclose(a["h"][tokens, u], a["h"][want, u], atol=1e-4)
            first = rows[0].find_elements("css selector", "td")
            assert first[1].find_element("css selector", "b").text == words[tokens[0]]
            tags = [str(t) for t in a["tags"]]
            assert first[2].text == tags[a["gold"][tokens[0]]] and first[3].text == tags[a["pred"][tokens[0]]]
    assert console_errors(browser) == []


def test_sentence_view_colours_tokens_by_the_chosen_unit(browser, page, tiny_analysis):
    from selenium.webdriver.support.ui import Select

    a = load_activations(tiny_analysis / "activations.npz")
    open_page(browser, page.as_uri())
    _css(browser, '#tabs button[data-view="sentence"]')[0].click()
    Select(_css(browser, "#sentence-unit")[0]).select_by_value("5")
    search = _css(browser, "#sentence-search")[0]
    search.send_keys("Germany\n")
    hits = _css(browser, "#search-hits tr[data-token]")
    assert hits
    hits[0].click()
    toks = _css(browser, "#sentence-tokens .w[data-token]")
    assert _css(browser, "#sentence-tokens")[0].get_attribute("data-unit") == "5"
    assert "Germany" in [t.text for t in toks]
    scale = np.abs(a["h"][:, 5]).max()
    for t in toks:
        i = int(t.get_attribute("data-token"))
        v = float(t.get_attribute("data-value"))
        assert abs(v - a["h"][i, 5]) <= scale / 254 + 1e-4
        colour = t.value_of_css_property("background-color")
        r, g, b = (int(x) for x in colour[colour.index("(") + 1:].split(")")[0].split(",")[:3])
        strength = round(255 * (1 - min(1.0, abs(v) / scale)))
        want = (255, strength, strength) if v >= 0 else (strength, strength, 255)
        assert max(abs(x - y) for x, y in zip((r, g, b), want)) <= 1, (colour, v)
    assert console_errors(browser) == []


def test_tag_view_shows_ranking_curve_and_overlap(browser, page):
    open_page(browser, page.as_uri())
    _css(browser, '#heatmap th[data-tag="0"]')[0].click()
    assert _css(browser, "#tag-title")[0].get_attribute("data-tag") == "0"
    assert len(_css(browser, "#tag-ranking tr[data-unit]")) == 16
    assert _css(browser, "#tag-curve polyline") and _css(browser, "#tag-overlap rect")
    assert console_errors(browser) == []


def test_study_shows_the_matched_unit_of_every_other_seed(browser, tiny_study, tmp_path):
    index = write_explorer(tiny_study, tmp_path / "explore")
    open_page(browser, index.as_uri())
    s = [np.load(tiny_study / "runs" / "base" / f"seed{i}" / "analysis" / "sensitivity.npy") for i in (1, 2)]
    rows, cols, _ = assign_units(s[0], s[1])
    _css(browser, '#heatmap tr[data-unit="2"]')[0].click()
    _css(browser, '#tabs button[data-view="seeds"]')[0].click()
    figs = _css(browser, "#seeds figure[data-run]")
    assert [f.get_attribute("data-run") for f in figs] == ["r0", "r1"]
    assert int(figs[1].get_attribute("data-unit")) == dict(zip(rows, cols))[2]
    figs[1].click()  # the other run loads by a script tag
    deadline = time.time() + 10
    while browser.execute_script("return document.body.dataset.run") != "r1":
        assert time.time() < deadline, "the matched run never loaded"
        time.sleep(0.05)
    assert browser.execute_script("return window.nerveExplorer.state.unit") == dict(zip(rows, cols))[2]
    assert console_errors(browser) == []


@pytest.mark.skipif(not os.environ.get("NERVE_SCREENSHOTS"), reason="NERVE_SCREENSHOTS names no folder for them")
def test_screenshots_of_each_view(browser, tiny_study, tmp_path):
    """docs/figures/explorer: NERVE_SCREENSHOTS=docs/figures/explorer NERVE_SCREENSHOTS_STUDY=STUDY pytest -k
    screenshots (the study defaults to the tiny one)."""
    from selenium.webdriver.support.ui import Select

    index = write_explorer(os.environ.get("NERVE_SCREENSHOTS_STUDY") or tiny_study, tmp_path / "explore")
    open_page(browser, index.as_uri())
    tags = browser.execute_script("return window.nerveExplorer.data().tags")
    per = tags.index("B-PER") if "B-PER" in tags else 0
    Select(_css(browser, "#sort-select")[0]).select_by_value(f"tag:{per}")
    first = browser.execute_script("return window.nerveExplorer.data().rankings[arguments[0]][0]", per)
    _css(browser, f'#heatmap tr[data-unit="{first}"]')[0].click()
    screenshot(browser, "unit")
    browser.execute_script("document.querySelector('#unit-top').scrollIntoView()")
    screenshot(browser, "unit_tokens")
    browser.execute_script("window.nerveExplorer.selectTag(arguments[0])", per)
    screenshot(browser, "tag")
    _css(browser, '#tabs button[data-view="sentence"]')[0].click()
    _css(browser, "#sentence-search")[0].send_keys("Germany\n")
    hits = _css(browser, "#search-hits tr[data-token]")
    if hits:
        hits[min(3, len(hits) - 1)].click()
    screenshot(browser, "sentence")
    _css(browser, '#tabs button[data-view="seeds"]')[0].click()
    screenshot(browser, "seeds")
    assert console_errors(browser) == []


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(x)) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def _diverging(x: float) -> tuple[int, int, int]:
    """The page's colour of ``x`` in [-1, 1] (blue .. white .. red)."""
    k = round(255 * (1 - min(1.0, abs(x))))
    return (255, k, k) if x >= 0 else (k, k, 255)


def test_heatmap_has_a_colour_scale_with_its_min_and_max(browser, page, tiny_analysis):
    s = np.load(tiny_analysis / "sensitivity.npy")
    lo, hi = np.nanmin(s), np.nanmax(s)
    scale = max(abs(lo), abs(hi))
    open_page(browser, page.as_uri())
    bar = _css(browser, "#heatmap-scale #heatmap-colourbar")
    assert bar, "the heatmap has no colour scale"
    bar = bar[0]
    assert bar.is_displayed()
    assert float(bar.get_attribute("data-min")) == pytest.approx(lo, abs=1e-4)
    assert float(bar.get_attribute("data-max")) == pytest.approx(hi, abs=1e-4)
    assert float(bar.get_attribute("data-scale")) == pytest.approx(scale, abs=1e-4)
    text = bar.text
    assert f"min {lo:.2f}" in text and f"max {hi:.2f}" in text
    assert f"+{scale:.2f}" in text and f"-{scale:.2f}" in text and "no value" in text
    stops = [_rgb(x.get_attribute("stop-color")) for x in bar.find_elements("css selector", "linearGradient stop")]
    assert stops[0] == (255, 0, 0) and stops[-1] == (0, 0, 255) and (255, 255, 255) in stops
    # every cell is coloured by the scale the bar shows
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#heatmap tr[data-unit]')].map((tr) => [+tr.dataset.unit, "
        "[...tr.querySelectorAll('td:not(.name)')].map((td) => getComputedStyle(td).backgroundColor)])")
    assert len(cells) == s.shape[0]
    for u, colours in cells:
        for v, colour in zip(s[u], colours):
            want = (204, 204, 204) if not np.isfinite(v) else _diverging(v / scale)
            assert max(abs(a - b) for a, b in zip(_rgb(colour), want)) <= 1, (u, v, colour)
    assert console_errors(browser) == []


def test_seed_small_multiples_share_one_y_scale(browser, tiny_study, tmp_path):
    index = write_explorer(tiny_study, tmp_path / "explore")
    open_page(browser, index.as_uri())
    s = [np.load(tiny_study / "runs" / "base" / f"seed{i}" / "analysis" / "sensitivity.npy") for i in (1, 2)]
    match = dict(zip(*assign_units(s[0], s[1])[:2]))
    assert browser.execute_script("return window.nerveExplorer.data().tags") == \
        browser.execute_script("return window.NERVE_MANIFEST.study.tags")
    differ = 0
    for u in range(s[0].shape[0]):
        browser.execute_script("window.nerveExplorer.selectUnit(arguments[0], 'seeds')", u)
        svgs = _css(browser, "#seeds figure[data-run] svg")
        assert len(svgs) == 2
        profiles = [s[0][u], s[1][match[u]]]
        both = np.concatenate(profiles)
        want = (min(0.0, np.nanmin(both)), max(0.0, np.nanmax(both)))
        own = [(min(0.0, np.nanmin(p)), max(0.0, np.nanmax(p))) for p in profiles]
        differ += not np.allclose(own[0], own[1], atol=1e-3)
        for svg in svgs:
            got = (float(svg.get_attribute("data-ymin") or "nan"), float(svg.get_attribute("data-ymax") or "nan"))
            assert np.allclose(got, want, atol=1e-4), (u, got, want)
        # what is drawn: the same tick labels and the same pixels per unit of sensitivity
        ticks = [[t.text for t in svg.find_elements("css selector", "text.ytick")] for svg in svgs]
        assert ticks[0] == ticks[1] and f"{want[1]:.2f}" in ticks[0]
        per_unit = []
        for svg in svgs:
            for r in svg.find_elements("css selector", "rect[data-tag]"):
                v = float(r.get_attribute("data-value") or "nan")
                if np.isfinite(v) and abs(v) > 0.05 * (want[1] - want[0]):
                    per_unit.append(float(r.get_attribute("height")) / abs(v))
        assert per_unit and max(per_unit) == pytest.approx(min(per_unit), rel=1e-3), u
    assert differ, "the fixture's runs never differ in their own y ranges, so this test could not fail"
    assert console_errors(browser) == []

"""`nerve serve`: the page tags a typed sentence through the server, units ablated in the page give exactly the
tags of nerve's own ablation hook, and bad requests get a clear error while the server keeps serving."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nerve.explore.server import MAX_TOKENS, RequestError, parse_request
from tests.explore.conftest import console_errors, open_page, screenshot


def _head(src: Path, dst: Path, sentences: int) -> None:
    """The first ``sentences`` sentences of a CoNLL file (blank-line ended)."""
    out, n = [], 0
    for line in src.open(encoding="utf-8"):
        out.append(line)
        n += not line.strip()
        if n >= sentences:
            break
    dst.write_text("".join(out), encoding="utf-8")


@pytest.fixture(scope="module")
def conll_run(tmp_path_factory):
    """(run, analysis) of xin2019 trained 5 epochs on the first 6,000 CoNLL-2003 training sentences (~20 s), so
    that "Angela Merkel visited Paris ." gets PER and LOC tags in CI too."""
    from tests.conftest import SHARED, run_cli

    if not (SHARED / "conll2003" / "train.txt").is_file():
        pytest.skip("../shared/data is not present")
    shared_data = SHARED
    root = tmp_path_factory.mktemp("conll")
    corpus = root / "slice"
    corpus.mkdir()
    for name, n in (("train.txt", 6000), ("valid.txt", 600), ("test.txt", 600)):
        _head(shared_data / "conll2003" / name, corpus / name, n)
    run, analysis = root / "run", root / "analysis"
    run_cli("train", "xin2019", "--data", corpus, "--out", run, "--set", "train.epochs=5", "--no-progress",
            check=True)
    run_cli("analyze", run, "--split", "dev", "--max-k", "10", "--random-draws", "2", "--no-figures", "--out",
            analysis, check=True)
    return run, analysis


def hook_tags(run_dir, words: list[str], units: list[int], values=None) -> list[str]:
    """The tags nerve's own ablation gives: the model run under ``nerve.model.hooks.ablate``."""
    from nerve.data.conll import Sentence
    from nerve.model.hooks import ablate
    from nerve.run import load_run, predict

    run = load_run(run_dir)
    enc = run.indexer()
    item = enc.encode(Sentence(words, columns=[[w] for w in words]), labelled=False, allow_extra=True,
                      path="<test>", tag_column=False)
    with ablate(run.model, units, values=values):
        pred = predict(run.model, [item], enc.extra_vectors())[0]
    return [run.vocabs.tags.itos[t] for t in pred]


def start_server(run: Path, analysis: Path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nerve.cli", "serve", str(run), "--analysis", str(analysis),
                             "--port", "0", "--device", "cpu"], stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    line = proc.stderr.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"nerve serve did not start: {line}{proc.stderr.read()}")
    return proc, f"http://127.0.0.1:{m.group(1)}/"


@pytest.fixture(scope="module")
def server(tiny_run, tiny_analysis):
    proc, url = start_server(tiny_run, tiny_analysis)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "api/tag", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def live_answer(driver, action) -> None:
    """Do ``action`` in the page and wait until the page has shown the server's answer to it."""
    before = driver.execute_script("return document.body.dataset.liveAnswers || '0'")
    action()
    deadline = time.time() + 30
    while driver.execute_script("return document.body.dataset.liveAnswers || '0'") == before:
        assert time.time() < deadline, "the page never showed the server's answer"
        time.sleep(0.02)


def page_tags(driver) -> tuple[list[str], list[str]]:
    before = [e.text for e in driver.find_elements("css selector", "#live-tags td.tag-before")]
    after = [e.text for e in driver.find_elements("css selector", "#live-tags td.tag-after")]
    return before, after


def type_sentence(driver, text: str) -> None:
    box = driver.find_element("id", "live-input")
    box.clear()
    if len(text) < 200:
        box.send_keys(text)
    else:  # typing 50,000 characters key by key takes minutes; paste them
        driver.execute_script("arguments[0].value = arguments[1]", box, text)
    live_answer(driver, lambda: driver.find_element("id", "live-run").click())


def click_units(driver, names: list[str]) -> None:
    for n in names:
        button = driver.find_element("css selector", f'#live-units button[data-unit="{n}"]')
        live_answer(driver, button.click)


def test_parse_request_refuses_what_it_cannot_tag():
    units = ["0", "1", "2"]
    assert parse_request(b'{"sentence": " a  b ", "ablate": ["2", "0"], "value": "mean"}', units) == (
        ["a", "b"], [0, 2], "mean")
    bad = {b'{"sentence": "   "}': "empty", b'{"sentence": "a", "ablate": ["9"]}': "unknown unit '9'",
           json.dumps({"sentence": "a " * 10_000}).encode(): f"at most {MAX_TOKENS}", b"[1]": "JSON object",
           b"\xff": "not JSON", b'{"sentence": "a", "value": "max"}': "zero or mean",
           b'{"sentence": "a", "units": []}': "unknown field", b'{"sentence": 3}': "expected text"}
    for body, message in bad.items():
        with pytest.raises(RequestError, match=re.escape(message)):
            parse_request(body, units)


def test_page_tags_and_ablates_exactly_as_the_hook(browser, server, tiny_run, tiny_analysis):
    from selenium.webdriver.support.ui import Select

    open_page(browser, server)
    assert console_errors(browser) == []
    words = "John Smith visited Germany .".split()
    type_sentence(browser, " ".join(words))
    base, after = page_tags(browser)
    assert base == after == hook_tags(tiny_run, words, [])
    click_units(browser, ["3", "7", "12"])
    assert page_tags(browser)[1] == hook_tags(tiny_run, words, [3, 7, 12])
    means = np.load(tiny_analysis / "activations.npz")["h"].mean(axis=0)
    live_answer(browser, lambda: Select(browser.find_element("id", "live-value")).select_by_value("mean"))
    assert page_tags(browser)[1] == hook_tags(tiny_run, words, [3, 7, 12], values=means)
    live_answer(browser, lambda: browser.find_element("id", "live-clear").click())
    assert page_tags(browser)[1] == hook_tags(tiny_run, words, [])


def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(browser, server):
    assert post(server, b'{"sentence": ""}') == (400, {"error": "the sentence is empty; type a few words separated "
                                                                 "by spaces"})
    code, body = post(server, json.dumps({"sentence": "a", "ablate": ["nope"]}).encode())
    assert code == 400 and "unknown unit 'nope'" in body["error"]
    code, body = post(server, json.dumps({"sentence": " ".join(["word"] * 10_000)}).encode())
    assert code == 400 and "10000 tokens" in body["error"]
    code, body = post(server, b"{not json")
    assert code == 400 and "not JSON" in body["error"]
    code, body = post(server, json.dumps({"sentence": "John Smith"}).encode())
    assert code == 200 and len(body["tags"]) == 2
    open_page(browser, server)
    type_sentence(browser, "   ")
    err = browser.find_element("id", "live-error")
    assert err.is_displayed() and "empty" in err.text
    type_sentence(browser, " ".join(["word"] * 10_000))
    assert "10000 tokens" in browser.find_element("id", "live-error").text
    type_sentence(browser, "John Smith")
    assert not browser.find_element("id", "live-error").is_displayed() and len(page_tags(browser)[1]) == 2


def test_a_conll_model_finds_per_and_loc_and_the_page_ablates_as_the_hook(browser, conll_run):
    run, analysis = conll_run
    proc, url = start_server(run, analysis)
    try:
        open_page(browser, url)
        words = "Angela Merkel visited Paris .".split()
        type_sentence(browser, " ".join(words))
        base, _ = page_tags(browser)
        assert base[:2] == ["B-PER", "I-PER"] and base[3] == "B-LOC"
        screenshot(browser, "live")
        tags = browser.execute_script("return window.nerveExplorer.data().tags")
        browser.execute_script("window.nerveExplorer.selectTag(arguments[0])", tags.index("B-PER"))
        browser.execute_script("window.nerveExplorer.setView('live')")
        live_answer(browser, lambda: browser.find_element("id", "live-top").click())
        ablated = browser.execute_script("return window.nerveExplorer.data().rankings[arguments[0]].slice(0, 10)",
                                         tags.index("B-PER"))
        assert page_tags(browser)[1] == hook_tags(run, words, ablated)
        screenshot(browser, "live_ablated")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

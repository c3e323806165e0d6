"""`nerve serve` on a fine-tuned Hugging Face run: the page's units are the tag layer's input, and a live ablation
equals a plain transformers forward pass with the same units zeroed by a plain hook on the classifier's input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from nerve.explore.server import make_server
from tests.conftest import run_cli
from tests.hf.conftest import plain_model

WORDS = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "in", "Peter", "Blackburn", "'s",
         "Brussels"]

def _live(server):
    for cell in server.RequestHandlerClass.do_POST.__closure__ or ():
        if type(cell.cell_contents).__name__ == "LiveModel":
            return cell.cell_contents
    raise AssertionError("no LiveModel in the handler")


def test_a_live_ablation_equals_a_plain_transformers_run_with_a_plain_hook(tuned, tmp_path):
    run_cli("analyze", tuned, "--out", tmp_path / "an", "--max-k", "2", "--random-draws", "0", "--no-figures",
            check=True)
    server = make_server(tuned, port=0, analysis=str(tmp_path / "an"))
    try:
        live = _live(server)
        units = list(range(0, len(live.units), 2))
        got = live.tag(WORDS, units, "zero")
    finally:
        server.server_close()
    plain, tok = plain_model(tuned)
    enc = tok(WORDS, is_split_into_words=True, return_tensors="pt")
    first = [enc.word_ids(0).index(w) for w in range(len(WORDS))]

    def zero(module, args):
        h = args[0].clone()
        h[..., torch.as_tensor(units)] = 0.0
        return (h,)

    with torch.no_grad():
        base = plain(**enc).logits[0, first].argmax(-1).numpy()
        handle = plain.classifier.register_forward_pre_hook(zero)
        try:
            edited = plain(**enc).logits[0, first].argmax(-1).numpy()
        finally:
            handle.remove()
    tags = live.itos
    assert not np.array_equal(base, edited)  # the edit changes a tag, so that the comparison can fail
    assert got["base_tags"] == [tags[t] for t in base]
    assert got["tags"] == [tags[t] for t in edited]
    assert len(got["activations"]) == len(WORDS) and len(got["activations"][0]) == len(live.units)

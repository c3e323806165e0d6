"""`nerve serve`'s mean ablation means what the analysis' sweeps mean: the ranking split's mean."""

from __future__ import annotations

import numpy as np

from nerve.analysis.capture import capture_activations
from nerve.explore.server import make_server
from nerve.run import load_run, read_split
from tests.conftest import run_cli


def _dev_mean(run_dir) -> np.ndarray:
    run = load_run(run_dir)
    path, sents = read_split(run, "dev")
    return capture_activations(run, sents, path)[0]["h"].astype(np.float64).mean(axis=0)


def test_serve_mean_is_the_rank_split_mean_of_a_methods_analysis(tiny_run, tmp_path):
    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity",
            "--ablate", "mean", "--max-k", "1", "--random-draws", "0", "--no-figures", "--out", out, check=True)
    server = make_server(tiny_run, port=0, analysis=str(out))
    try:
        values = _live(server).values
        np.testing.assert_array_equal(values["mean"], _dev_mean(tiny_run))
        assert values["zero"] is None
    finally:
        server.server_close()


def _live(server):
    """The LiveModel the server's handler closes over."""
    for cell in server.RequestHandlerClass.do_POST.__closure__ or ():
        if type(cell.cell_contents).__name__ == "LiveModel":
            return cell.cell_contents
    raise AssertionError("no LiveModel in the handler")


def test_serve_resample_takes_each_positions_units_from_one_reference_token_the_same_for_each_request(tiny_run,
                                                                                                     tmp_path):
    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--max-k", "1", "--random-draws", "0", "--no-figures", "--out",
            out, check=True)
    server = make_server(tiny_run, port=0, analysis=str(out))
    try:
        live = _live(server)
        first = live.tag(["EU", "rejects", "German", "call"], [0, 1], "resample")
        assert first["value"] == "resample" and len(first["tags"]) == 4
        assert live.tag(["EU", "rejects", "German", "call"], [0, 1], "resample") == first
    finally:
        server.server_close()


def test_serve_in_a_basis_shows_its_units_and_ablates_along_their_directions(tiny_run, tmp_path):
    import torch

    from nerve.analysis.bases import load_basis
    from nerve.data.batching import make_batch
    from nerve.data.conll import Sentence
    from nerve.model.hooks import capture, hooks

    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity",
            "--basis", "pca", "--max-k", "1", "--random-draws", "0", "--no-figures", "--out", out, check=True)
    basis = load_basis(out / "basis.npz")
    server = make_server(tiny_run, port=0, analysis=str(out))
    tokens = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb"]
    try:
        live = _live(server)
        mean = basis.encode(_dev_mean_h(tiny_run)).mean(axis=0)
        np.testing.assert_allclose(live.values["mean"], mean, atol=1e-9)
        got = live.tag(tokens, [0, 2], "mean")
        assert got["units"][:2] == ["pca0", "pca1"] and len(got["activations"][0]) == basis.n_units
    finally:
        server.server_close()
    run = load_run(tiny_run)  # the same edit by hand: h + (mean_S − a_S)·D_S in a plain hook
    enc = run.indexer()
    item = enc.encode(Sentence(tokens, columns=[[w] for w in tokens]), labelled=False, allow_extra=True,
                      path="<typed>", tag_column=False)
    batch = make_batch([item], run.model.char is not None)

    def edit(module, inputs, output):
        h = output.detach().numpy().astype(np.float64)
        a = basis.encode(h.reshape(-1, h.shape[-1]))[:, [0, 2]]
        moved = h.reshape(-1, h.shape[-1]) + (mean[[0, 2]] - a) @ basis.D[[0, 2]]
        return torch.as_tensor(moved.reshape(h.shape), dtype=output.dtype)

    with torch.no_grad(), hooks(run.model, [("encoder_out", edit)]):
        want = run.model.decode(batch, None)[0].numpy()
    with torch.no_grad(), capture(run.model) as store:
        run.model.decode(batch, None)
    itos = run.vocabs.tags.itos
    assert got["tags"] == [itos[t] for t in want[:len(tokens)]]
    np.testing.assert_allclose(got["activations"], np.round(basis.encode(store[0][0].numpy()), 3)[:len(tokens)])


def _dev_mean_h(run_dir) -> np.ndarray:
    run = load_run(run_dir)
    path, sents = read_split(run, "dev")
    return capture_activations(run, sents, path)[0]["h"].astype(np.float64)


def test_serve_of_a_neurons_analysis_ignores_a_basis_file_it_did_not_record(tiny_run, tmp_path):
    import shutil

    for name, basis in (("pca", "pca"), ("a", "neurons")):
        run_cli("analyze", tiny_run, "--split", "test", "--basis", basis, "--max-k", "1", "--random-draws", "0",
                "--no-figures", "--out", tmp_path / name, check=True)
    out = tmp_path / "a"
    shutil.copy(tmp_path / "pca" / "basis.npz", out / "basis.npz")  # copied in: not the analysis' own
    server = make_server(tiny_run, port=0, analysis=str(out))
    try:
        live = _live(server)
        assert live.basis is None and live.units == [str(u) for u in load_run(tiny_run).model.unit_names()]
    finally:
        server.server_close()

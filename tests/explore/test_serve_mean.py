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

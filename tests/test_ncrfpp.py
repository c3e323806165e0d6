"""NCRF++ `.config` files as NCRF++ users have them: the demo train and decode configs run unchanged, and every
row of the README's key table holds (mapped, used by decode, read with a warning, or refused)."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest

from nerve.config import load_config
from nerve.config.ncrfpp import BY_NAME, KEYS, key_table, read_ncrfpp_decode
from nerve.errors import NerveError, NerveWarning
from tests.conftest import FIXTURES, TINY
from tests.helpers import cli

DEMO = FIXTURES / "ncrfpp"
README = Path(__file__).resolve().parents[1] / "README.md"
BASE = (f"train_dir={TINY / 'train.txt'}\ndev_dir={TINY / 'valid.txt'}\ntest_dir={TINY / 'test.txt'}\n"
        f"word_emb_dir={FIXTURES / 'tiny_emb.txt'}\n")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """NCRF++'s demo folder (configs unchanged but for the corpus file names), trained with its train config."""
    work = tmp_path_factory.mktemp("ncrfpp") / "demo"
    shutil.copytree(DEMO, work)
    res = cli("train", "demo.train.config", "--no-progress", cwd=work)
    assert res.returncode == 0, res.stderr
    return work


def test_demo_train_config_trains_into_its_model_dir(demo):
    assert (demo / "sample_data" / "lstmcrf" / "complete.json").is_file()


def test_demo_train_config_keeps_the_bioes_tags_of_its_data(demo):
    tags = json.loads((demo / "sample_data" / "lstmcrf" / "vocab.json").read_text())["tags"]
    assert {"S-LOC", "E-PER"} <= set(tags)


def test_demo_decode_config_writes_ncrfpp_nbest_output_to_its_decode_dir(demo):
    res = cli("decode", "demo.decode.config", cwd=demo)
    assert res.returncode == 0, res.stderr
    blocks = (demo / "sample_data" / "raw.out").read_text().strip("\n").split("\n\n")
    raw = (demo / "sample_data" / "raw.bioes").read_text().strip("\n").split("\n\n")
    assert len(blocks) == len(raw) == 12
    for block, sent in zip(blocks, raw):
        head, *rows = block.split("\n")
        probs = [float(p) for p in head.removeprefix("# ").split()]
        assert head.startswith("# ") and len(probs) == 10 and abs(sum(probs) - 1) < 2e-3
        assert probs == sorted(probs, reverse=True)
        assert [r.split()[0] for r in rows] == [line.split()[0] for line in sent.split("\n")]
        assert all(len(r.split()) == 11 for r in rows)


def test_decode_config_first_best_equals_decoding_the_run_folder(demo, tmp_path):
    assert cli("decode", "demo.decode.config", cwd=demo).returncode == 0
    out = tmp_path / "one.conll"
    res = cli("decode", demo / "sample_data" / "lstmcrf", demo / "sample_data" / "raw.bioes", "--out", out)
    assert res.returncode == 0, res.stderr
    first = [r.split()[1] for b in (demo / "sample_data" / "raw.out").read_text().split("\n\n") if b.strip()
             for r in b.split("\n")[1:] if r]
    assert first == [line.split()[-1] for line in out.read_text().splitlines() if line]


def test_decode_config_without_nbest_writes_word_tag_lines(demo):
    (demo / "plain.decode.config").write_text("\n".join(line for line in (demo / "demo.decode.config").read_text()
                                                        .splitlines() if not line.startswith("nbest")) + "\n")
    assert cli("decode", "plain.decode.config", cwd=demo).returncode == 0
    lines = [line for line in (demo / "sample_data" / "raw.out").read_text().splitlines() if line]
    assert all(len(line.split()) == 2 and not line.startswith("#") for line in lines)


def test_decode_config_with_input_or_out_arguments_is_refused(demo):
    res = cli("decode", "demo.decode.config", "x.txt", cwd=demo)
    assert res.returncode == 2 and "give neither INPUT nor --out" in res.stderr


def test_training_config_given_to_decode_says_to_train(demo):
    res = cli("decode", "demo.train.config", cwd=demo)
    assert res.returncode == 2 and "a training config; run `nerve train" in res.stderr


def test_decode_config_given_to_train_says_to_decode(demo):
    res = cli("train", "demo.decode.config", cwd=demo)
    assert res.returncode == 2 and "an NCRF++ decode config (status=decode); run `nerve decode" in res.stderr


def test_decode_config_whose_model_was_never_trained_names_the_paths_tried(tmp_path):
    (tmp_path / "d.config").write_text("status=decode\nraw_dir=r.txt\ndecode_dir=o.txt\nload_model_dir=m/x.0.model\n")
    with pytest.raises(NerveError, match=r"no nerve run found at m/x\.0\.model or m/x"):
        read_ncrfpp_decode(tmp_path / "d.config")


def test_the_readme_holds_the_key_table_of_every_ncrfpp_key():
    assert key_table() in README.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- one test per row of the table
def _load(tmp_path, line: str):
    path = tmp_path / "x.config"
    path.write_text(BASE + line + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NerveWarning)
        cfg = load_config(path)
    return cfg, [str(w.message) for w in caught if issubclass(w.category, NerveWarning)]


def _decode_job(tmp_path, run: Path, line: str):
    path = tmp_path / "d.config"
    path.write_text(f"status=decode\nraw_dir={tmp_path / 'raw.txt'}\ndecode_dir={tmp_path / 'out.txt'}\n"
                    f"load_model_dir={run}.0.model\n{line}\n")
    return read_ncrfpp_decode(path)


def _sets(line: str, attr: str, value):
    def check(tmp_path, run):
        cfg, _ = _load(tmp_path, line)
        section, key = attr.split(".")
        assert getattr(getattr(cfg, section), key) == value
    return check


def _refused(line: str, pattern: str):
    def check(tmp_path, run):
        with pytest.raises(NerveError, match=pattern):
            _load(tmp_path, line)
    return check


def _warns(line: str, pattern: str):
    def check(tmp_path, run):
        _, said = _load(tmp_path, line)
        assert any(re.search(pattern, w) for w in said), said
    return check


def _no_effect(line: str):
    def check(tmp_path, run):
        cfg, said = _load(tmp_path, line)
        base, _ = _load(tmp_path, "")
        assert cfg == base and not said
    return check


def _decode(line: str, attr: str, expected):
    def check(tmp_path, run):
        value = getattr(_decode_job(tmp_path, run, line), attr)
        assert value == (expected(tmp_path, run) if callable(expected) else expected)
    return check


def _model_dir(tmp_path, run):
    from nerve.config.ncrfpp import ncrfpp_run_dir

    path = tmp_path / "t.config"
    path.write_text(BASE + "model_dir=sample_data/lstmcrf\n")
    assert ncrfpp_run_dir(path) == "sample_data/lstmcrf"


def _dset_dir(tmp_path, run):
    path = tmp_path / "d.config"
    path.write_text(f"status=decode\nraw_dir=r\ndecode_dir=o\ndset_dir={run}.dset\n")
    assert read_ncrfpp_decode(path).run_dir == run


def _emb_dim(tmp_path, run):
    cfg, said = _load(tmp_path, "word_emb_dim=50")
    assert cfg.embeddings.dim == 8 and any("word_emb_dim=50 but" in w and "using 8" in w for w in said)
    path = tmp_path / "r.config"
    path.write_text(BASE.replace(f"word_emb_dir={FIXTURES / 'tiny_emb.txt'}", "word_emb_dir=None") +
                    "word_emb_dim=12\n")
    assert load_config(path).embeddings.dim == 12


def _use_crf(tmp_path, run):
    cfg, _ = _load(tmp_path, "use_crf=True")
    assert cfg.model.decoder == "crf" and cfg.model.crf_constraints is False
    assert _load(tmp_path, "use_crf=False")[0].model.decoder == "softmax"


def _use_char(tmp_path, run):
    assert _load(tmp_path, "use_char=True\nchar_seq_feature=GRU")[0].model.char == "gru"
    assert _load(tmp_path, "use_char=False\nchar_seq_feature=GRU")[0].model.char == "none"


def _feature(tmp_path, run):
    cfg, _ = _load(tmp_path, "feature=[POS] emb_size=6\nfeature=[Cap] emb_size=6")
    assert cfg.data.features == ["[POS]", "[Cap]"] and cfg.model.feature_emb_dim == 6


def _optimizer(tmp_path, run):
    assert _load(tmp_path, "optimizer=Adam")[0].train.optimizer == "adam"
    with pytest.raises(NerveError, match="optimizer 'Adagrad' is not supported"):
        _load(tmp_path, "optimizer=Adagrad")


def _status(tmp_path, run):
    with pytest.raises(NerveError, match="status=test: expected train or decode"):
        _load(tmp_path, "status=test")
    assert _load(tmp_path, "status=train")[0] == _load(tmp_path, "")[0]


def _layers(kind: str, key: str):
    def check(tmp_path, run):
        assert _load(tmp_path, f"word_seq_feature={kind}\n{key}=3")[0].model.layers == 3
    return check


def _nbest(tmp_path, run):
    assert _load(tmp_path, "nbest=7")[0].train.nbest == 7
    assert _decode_job(tmp_path, run, "nbest=7").nbest == 7
    assert _decode_job(tmp_path, run, "").nbest is None


def _clip(tmp_path, run):
    assert _load(tmp_path, "clip=5.0")[0].train.clip == 5.0
    assert _load(tmp_path, "clip=None")[0].train.clip == 0.0


def _word_emb_dir(tmp_path, run):
    assert _load(tmp_path, "")[0].embeddings.source == str(FIXTURES / "tiny_emb.txt")
    path = tmp_path / "r.config"
    path.write_text(BASE.replace(f"word_emb_dir={FIXTURES / 'tiny_emb.txt'}", "word_emb_dir=None"))
    assert load_config(path).embeddings.source == "random"


def _sentence_classification(tmp_path, run):
    _no_effect("sentence_classification=False")(tmp_path, run)
    _refused("sentence_classification=True", "sentence_classification=True is not supported")(tmp_path, run)


def _seg(tmp_path, run):
    _no_effect("seg=True")(tmp_path, run)
    _refused("seg=False", "seg=False is not supported")(tmp_path, run)


ROWS = {
    "train_dir": _sets(f"train_dir={TINY / 'valid.txt'}", "data.train", str(TINY / "valid.txt")),
    "dev_dir": _sets(f"dev_dir={TINY / 'test.txt'}", "data.dev", str(TINY / "test.txt")),
    "test_dir": _sets(f"test_dir={TINY / 'valid.txt'}", "data.test", str(TINY / "valid.txt")),
    "raw_dir": _decode("", "raw", lambda tmp, run: tmp / "raw.txt"),
    "decode_dir": _decode("", "out", lambda tmp, run: tmp / "out.txt"),
    "dset_dir": _dset_dir,
    "model_dir": _model_dir,
    "load_model_dir": _decode("", "run_dir", lambda tmp, run: run),
    "word_emb_dir": _word_emb_dir,
    "char_emb_dir": _refused("char_emb_dir=chars.emb", "pretrained character embeddings are not supported"),
    "MAX_SENTENCE_LENGTH": _warns("MAX_SENTENCE_LENGTH=250", "nerve keeps every sentence"),
    "MAX_WORD_LENGTH": _no_effect("MAX_WORD_LENGTH=-1"),
    "norm_word_emb": _sets("norm_word_emb=True", "embeddings.normalize", True),
    "norm_char_emb": _no_effect("norm_char_emb=True"),
    "number_normalized": _sets("number_normalized=False", "data.number_normalized", False),
    "sentence_classification": _sentence_classification,
    "seg": _seg,
    "word_emb_dim": _emb_dim,
    "char_emb_dim": _sets("char_emb_dim=17", "model.char_emb_dim", 17),
    "use_crf": _use_crf,
    "use_char": _use_char,
    "word_seq_feature": _sets("word_seq_feature=GRU", "model.encoder", "gru"),
    "char_seq_feature": _sets("use_char=True\nchar_seq_feature=LSTM", "model.char", "lstm"),
    "nbest": _nbest,
    "feature": _feature,
    "optimizer": _optimizer,
    "ave_batch_loss": _sets("ave_batch_loss=True", "train.ave_batch_loss", True),
    "status": _status,
    "cnn_layer": _layers("CNN", "cnn_layer"),
    "iteration": _sets("iteration=7", "train.epochs", 7),
    "batch_size": _sets("batch_size=3", "train.batch_size", 3),
    "char_hidden_dim": _sets("char_hidden_dim=21", "model.char_hidden", 21),
    "hidden_dim": _sets("hidden_dim=22", "model.hidden", 22),
    "dropout": _sets("dropout=0.25", "model.dropout", 0.25),
    "lstm_layer": _layers("LSTM", "lstm_layer"),
    "bilstm": _sets("bilstm=True", "model.bidirectional", True),
    "gpu": _no_effect("gpu=True"),
    "learning_rate": _sets("learning_rate=0.2", "train.lr", 0.2),
    "lr_decay": _sets("lr_decay=0.5", "train.lr_decay", 0.5),
    "clip": _clip,
    "momentum": _sets("momentum=0.9", "train.momentum", 0.9),
    "l2": _sets("l2=0.001", "train.l2", 0.001),
}


def test_every_row_of_the_key_table_has_a_test():
    assert list(ROWS) == [k.name for k in KEYS] and set(ROWS) == set(BY_NAME)


@pytest.mark.parametrize("key", list(ROWS))
def test_key_table_row(key, tiny_run, tmp_path):
    ROWS[key](tmp_path, tiny_run)


@pytest.mark.parametrize(("extractor", "batchnorm"), [("CNN", True), ("LSTM", False)])
def test_ncrfpp_word_cnn_gets_its_batchnorm(extractor, batchnorm, tmp_path):
    cfg, _ = _load(tmp_path, f"word_seq_feature={extractor}")
    assert cfg.model.cnn_batchnorm is batchnorm

"""Config: TOML sections, typed overrides with suggestions, range checks, NCRF++ .config import."""

from __future__ import annotations

import pytest

from nerve.config import Config, apply_overrides, from_dict, load_config
from nerve.config.presets import resolve_config
from nerve.errors import NerveError
from tests.conftest import FIXTURES, TINY_CFG


def test_preset_xin2019_matches_the_study_model():
    cfg = load_config(resolve_config("xin2019"))
    m, t = cfg.model, cfg.train
    assert (m.encoder, m.bidirectional, m.hidden, m.layers, m.char, m.decoder) == ("lstm", False, 50, 1, "none",
                                                                                    "softmax")
    assert (t.optimizer, t.lr, t.lr_decay, t.momentum, t.l2, m.dropout, t.batch_size, t.epochs) == (
        "sgd", 0.015, 0.05, 0.0, 1e-8, 0.5, 10, 10)
    assert cfg.data.number_normalized and cfg.embeddings.source == "glove-6b-50d"


def test_preset_ncrfpp_best_is_char_cnn_bilstm_crf():
    m = load_config(resolve_config("ncrfpp_best")).model
    assert (m.char, m.encoder, m.bidirectional, m.hidden, m.decoder) == ("cnn", "lstm", True, 200, "crf")


def test_override_sets_typed_value():
    cfg = apply_overrides(Config(), ["train.epochs=3", "model.dropout=0.25", "model.bidirectional=true"])
    assert cfg.train.epochs == 3 and cfg.model.dropout == 0.25 and cfg.model.bidirectional is True


def test_override_accepts_bare_strings():
    assert apply_overrides(Config(), ["model.decoder=crf"]).model.decoder == "crf"


def test_misspelled_key_gets_a_suggestion():
    with pytest.raises(NerveError, match="did you mean 'epochs'"):
        apply_overrides(Config(), ["train.epoch=3"])


def test_misspelled_section_gets_a_suggestion():
    with pytest.raises(NerveError, match="did you mean 'train'"):
        apply_overrides(Config(), ["trian.epochs=3"])


def test_wrong_type_is_rejected():
    with pytest.raises(NerveError, match="train.epochs: expected an integer"):
        apply_overrides(Config(), ["train.epochs=many"])


@pytest.mark.parametrize("item,msg", [("model.dropout=-0.1", "dropout"), ("model.hidden=0", "hidden"),
                                      ("model.encoder=transformer", "expected one of"),
                                      ("train.word_dropout=1.0", "word_dropout")])
def test_out_of_range_values_are_rejected(item, msg):
    with pytest.raises(NerveError, match=msg):
        apply_overrides(Config(), [item])


def test_unknown_toml_section_is_rejected():
    with pytest.raises(NerveError, match="unknown section"):
        from_dict({"modle": {"hidden": 3}})


def test_saved_config_loads_back_equal(tmp_path):
    cfg = load_config(TINY_CFG)
    cfg.save(tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == cfg


NCRFPP = """### I/O ###
train_dir={d}/train.txt
dev_dir={d}/valid.txt
test_dir={d}/test.txt
model_dir={out}
word_emb_dir={emb}
norm_word_emb=False
number_normalized=True
seg=True
word_emb_dim=8
char_emb_dim=10
###NetworkConfiguration###
use_crf=True
use_char=True
word_seq_feature=LSTM
char_seq_feature=CNN
feature=[POS] emb_size=6
###TrainingSetting###
status=train
optimizer=SGD
iteration=2
batch_size=4
ave_batch_loss=False
###Hyperparameters###
cnn_layer=4
char_hidden_dim=12
hidden_dim=16
dropout=0.3
lstm_layer=1
bilstm=True
learning_rate=0.05
lr_decay=0.05
momentum=0
l2=1e-8
nbest=3
gpu=False
clip=5.0
"""


def write_ncrfpp(tmp_path, d) -> str:
    path = tmp_path / "demo.train.config"
    path.write_text(NCRFPP.format(d=d, out=tmp_path / "run", emb=FIXTURES / "tiny_emb.txt"))
    return str(path)


def test_ncrfpp_config_maps_its_keys(tmp_path):
    cfg = load_config(write_ncrfpp(tmp_path, FIXTURES / "tiny"))
    m, t = cfg.model, cfg.train
    assert (m.char, m.encoder, m.bidirectional, m.hidden, m.char_hidden, m.decoder) == ("cnn", "lstm", True, 16, 12,
                                                                                         "crf")
    assert (t.epochs, t.batch_size, t.lr, t.clip, t.nbest, m.dropout) == (2, 4, 0.05, 5.0, 3, 0.3)
    assert cfg.data.features == ["[POS]"] and m.feature_emb_dim == 6 and cfg.embeddings.dim == 8


def test_ncrfpp_norm_word_emb_sets_embeddings_normalize(tmp_path):
    path = tmp_path / "norm.config"
    path.write_text("norm_word_emb=True\n")
    assert load_config(path).embeddings.normalize is True
    path.write_text("norm_word_emb=False\n")
    assert load_config(path).embeddings.normalize is False


def test_ncrfpp_unknown_key_names_file_and_line(tmp_path):
    path = tmp_path / "bad.config"
    path.write_text("iteration=2\nlearning_rat=0.1\n")
    with pytest.raises(NerveError, match=r"bad.config:2: unknown NCRF\+\+ key 'learning_rat' \(did you mean"):
        load_config(path)


def test_cnn_layers_sets_the_word_cnn_depth_apart_from_layers(tmp_path):
    from nerve.data.prepare import prepare
    from nerve.model.tagger import Tagger

    cfg = apply_overrides(load_config(TINY_CFG), ["model.encoder=cnn", "model.layers=1", "model.cnn_layers=3",
                                                  f"data.train={FIXTURES}/tiny/train.txt",
                                                  f"data.dev={FIXTURES}/tiny/valid.txt",
                                                  f"data.test={FIXTURES}/tiny/test.txt"])
    model = Tagger(cfg, prepare(cfg, tmp_path / "vocab.json", lambda m: None).vocabs, 8)
    assert len(model.encoder.convs) == 3


def test_cnn_layers_at_its_default_leaves_a_runs_fingerprint_as_before_the_key_existed():
    from nerve.run import run_identity

    cfg = load_config(TINY_CFG)
    cfg = apply_overrides(cfg, [f"data.{s}={FIXTURES}/tiny/{f}.txt" for s, f in (("train", "train"),
                                                                                 ("dev", "valid"), ("test", "test"))])
    assert "cnn_layers" not in run_identity(cfg)["config"]["model"]
    assert run_identity(apply_overrides(cfg, ["model.cnn_layers=4"]))["config"]["model"]["cnn_layers"] == 4


def test_cnn_batchnorm_leaves_the_fingerprint_of_a_run_without_a_word_cnn_unchanged():
    from nerve.folder import fingerprint
    from nerve.run import run_identity

    def identity(*sets):
        splits = (("train", "train"), ("dev", "valid"), ("test", "test"))
        data = [f"data.{s}={FIXTURES}/tiny/{f}.txt" for s, f in splits]
        return fingerprint(run_identity(apply_overrides(load_config(TINY_CFG), data + list(sets))))

    for encoder, same in (("lstm", True), ("gru", True), ("cnn", False)):
        plain = identity(f"model.encoder={encoder}")
        assert (plain == identity(f"model.encoder={encoder}", "model.cnn_batchnorm=true")) is same, encoder

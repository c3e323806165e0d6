"""Bad input never prints a traceback: each case of docs/RELIABILITY.md through the CLI; atomic writes; fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerve.config import from_dict
from nerve.data.conll import read_conll
from nerve.errors import NerveError
from nerve.io import atomic_write_text
from tests.conftest import TINY, TINY_CFG, run_cli
from tests.reliability_cases import CASES, can_mount, run_case

MOUNT = None


def _can_mount() -> bool:
    global MOUNT
    if MOUNT is None:
        MOUNT = can_mount()
    return MOUNT


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, tmp_path):
    if case.root and not _can_mount():
        pytest.skip("needs root and a mountable tmpfs (CI runs as root)")
    proc = run_case(case, tmp_path)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-1500:]
    assert proc.returncode == case.code, proc.stderr[-1500:]
    if case.expect:
        assert case.expect in proc.stderr, proc.stderr
    if case.expect and case.code != 0:
        errors = [line for line in proc.stderr.strip().splitlines() if line.startswith("nerve: error")]
        assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr


def test_same_seed_gives_identical_sensitivity(tiny_run, tmp_path):
    out = tmp_path / "again"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", out, "--no-progress", check=True)
    a = run_cli("analyze", tiny_run, "--out", tmp_path / "a1", "--random-draws", "2", "--no-figures", check=True)
    b = run_cli("analyze", out, "--out", tmp_path / "a2", "--random-draws", "2", "--no-figures", check=True)
    assert a.returncode == b.returncode == 0
    assert (tmp_path / "a1" / "sensitivity.csv").read_text() == (tmp_path / "a2" / "sensitivity.csv").read_text()
    assert (tmp_path / "a1" / "ablation.csv").read_text() == (tmp_path / "a2" / "ablation.csv").read_text()


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    from nerve.io import atomic_save

    def boom(buf):
        buf.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_save(tmp_path / "metrics.json", boom)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_an_old_file_whole(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new" and len(list(tmp_path.iterdir())) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_reader_fuzz_bytes_give_sentences_or_a_clear_error(tmp_path, data):
    p = tmp_path / "f.txt"
    p.write_bytes(data)
    try:
        sents = read_conll(p)
    except NerveError as err:
        assert str(p) in str(err)
    else:
        assert all(len(s.words) == len(s.tags) for s in sents)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", " ", "\t", "\n", "B-PER", "I-PER", "O", "-DOCSTART-", "\r\n"]),
                max_size=60).map("".join))
def test_reader_fuzz_text_gives_the_sentences_of_the_text_or_a_clear_error(tmp_path, text):
    """Read back equals an independent split: blocks of non-blank lines, DOCSTART lines dropped, word first and
    tag last; or a one-line error naming the file and a line."""
    p = tmp_path / "f.txt"
    p.write_bytes(text.encode("utf-8"))
    try:
        sents = read_conll(p)
    except NerveError as err:
        assert str(err).startswith(f"{p}:") and "\n" not in str(err)
        return
    blocks, cur = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(fields)
    if cur:
        blocks.append(cur)
    assert [(s.words, s.tags) for s in sents] == [([f[0] for f in b], [f[-1] for f in b]) for b in blocks]


values = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False), st.booleans(), st.text(max_size=5),
                   st.lists(st.integers(), max_size=2))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["data", "model", "train", "embeddings", "modle"]),
                       st.dictionaries(st.sampled_from(["hidden", "dropout", "epochs", "scheme", "decoder", "lr",
                                                        "features", "source", "bidirectional", "typo"]), values,
                                       max_size=3), max_size=3))
def test_config_fuzz_gives_the_values_given_or_a_clear_error(data):
    """A config built from valid sections holds exactly the given values (as their declared types); anything
    else is a one-line error that names the offending section or key."""
    try:
        cfg = from_dict(data)
    except NerveError as err:
        message = str(err)
        assert "\n" not in message
        assert any(name in message for section, values in data.items() for name in [section, *values]), message
        return
    for section, values in data.items():
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            if isinstance(value, bool) or isinstance(got, bool):
                assert got == value or str(value).lower() in ("true", "false", "1", "0", "yes", "no")
            elif isinstance(got, (int, float)) and not isinstance(value, str):
                assert got == value
            elif isinstance(got, list):
                assert got == [str(v) for v in value] or isinstance(value, str)
            elif key not in ("scheme", "decoder", "source"):
                assert got == str(value)

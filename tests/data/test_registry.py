"""Corpus registry: checksums as data, and where a corpus name is looked for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nerve.data import registry
from nerve.data.registry import CORPORA, SPLITS, cache_root, file_url, get_corpus, resolve_corpus, verify
from nerve.errors import NerveError


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in SPLITS:
        (folder / f).write_text("EU B-ORG\n")
    return folder


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    """A clean environment: no NERVE_DATA, no XDG_CACHE_HOME, HOME in tmp_path."""
    monkeypatch.delenv("NERVE_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("NERVE_MIRROR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def read_sums(path: Path) -> dict[str, str]:
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def test_registry_checksums_equal_sha256sums(shared_data):
    ours = {f"{name}/{file}": digest for name, info in CORPORA.items() for file, digest in info.sha256.items()}
    assert ours == read_sums(shared_data / "SHA256SUMS")


def test_shared_corpora_verify_against_the_registry(shared_data):
    assert {name: verify(name, shared_data / name) for name in CORPORA} == {name: [] for name in CORPORA}


def test_verify_names_a_changed_file(tmp_path):
    make_corpus(tmp_path / "wnut17")
    problems = verify("wnut17", tmp_path / "wnut17")
    assert len(problems) == 3 and "train.txt: SHA-256 differs" in problems[0]


def test_registry_describes_layout_and_types():
    assert CORPORA["conll2003"].columns == 4 and CORPORA["wnut17"].columns == 2
    assert set(CORPORA["conll2003"].types) == {"PER", "LOC", "ORG", "MISC"}
    assert len(CORPORA["mit_movie"].types) == 12 and all(c.scheme == "BIO" for c in CORPORA.values())
    assert all(c.files == SPLITS for c in CORPORA.values())


def test_unknown_name_lists_the_registered_corpora():
    with pytest.raises(NerveError, match="conll2003, mit_movie, nlpba2004, wnut17"):
        get_corpus("conll2004")


def test_file_url_uses_url_then_nerve_mirror_then_the_source_repository(env, monkeypatch):
    assert file_url("wnut17", "test.txt") == (
        "https://raw.githubusercontent.com/qiuweipku/CSE-517-project/17ae195459b5cd7c09876e2cd31a29f794a39c70/"
        "data/WNUT/test.txt")
    monkeypatch.setenv("NERVE_MIRROR", "http://mirror/corpora/")
    assert file_url("wnut17", "test.txt") == "http://mirror/corpora/wnut17/test.txt"
    assert file_url("wnut17", "test.txt", "http://other") == "http://other/wnut17/test.txt"


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_registered_file_has_a_source_url_at_the_pinned_commit_and_a_checksum(name):
    info = CORPORA[name]
    assert set(info.urls) == set(info.sha256) == set(SPLITS)
    for file, url in info.urls.items():
        assert url.startswith(f"https://raw.githubusercontent.com/{registry.SOURCE_REPO}/{registry.SOURCE_COMMIT}/")
        assert url.endswith(f"/{file}") and info.source_dir in url
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256[file])


def test_the_source_repository_is_pinned_to_a_full_commit():
    assert registry.SOURCE_REPO == "qiuweipku/CSE-517-project"
    assert re.fullmatch(r"[0-9a-f]{40}", registry.SOURCE_COMMIT)


def test_directory_path_is_used_as_is(env):
    corpus = make_corpus(env / "anywhere" / "mine")
    assert resolve_corpus(str(corpus), data_dir=env / "elsewhere") == corpus


def test_missing_directory_path_is_an_error(env):
    with pytest.raises(NerveError, match="no such corpus folder"):
        resolve_corpus(str(env / "nope" / "conll2003"))


def test_data_dir_holding_the_split_files_is_used_itself(env):
    corpus = make_corpus(env / "mycopy")
    assert resolve_corpus("conll2003", data_dir=corpus) == corpus


def test_data_dir_beats_nerve_data_and_cache(env, monkeypatch):
    data = make_corpus(env / "data" / "conll2003")
    make_corpus(env / "nd" / "conll2003")
    make_corpus(env / "home" / ".cache" / "nerve" / "conll2003")
    monkeypatch.setenv("NERVE_DATA", str(env / "nd"))
    assert resolve_corpus("conll2003", data_dir=env / "data") == data


def test_nerve_data_beats_cache(env, monkeypatch):
    nd = make_corpus(env / "nd" / "conll2003")
    make_corpus(env / "home" / ".cache" / "nerve" / "conll2003")
    monkeypatch.setenv("NERVE_DATA", str(env / "nd"))
    assert resolve_corpus("conll2003") == nd


def test_nerve_data_is_used_when_data_dir_lacks_the_corpus(env, monkeypatch):
    nd = make_corpus(env / "nd" / "conll2003")
    monkeypatch.setenv("NERVE_DATA", str(env / "nd"))
    assert resolve_corpus("conll2003", data_dir=env / "empty") == nd


def test_cache_defaults_to_home_dot_cache(env):
    cached = make_corpus(env / "home" / ".cache" / "nerve" / "wnut17")
    assert cache_root() == env / "home" / ".cache" / "nerve"
    assert resolve_corpus("wnut17") == cached


def test_cache_honours_xdg_cache_home(env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(env / "xdg"))
    cached = make_corpus(env / "xdg" / "nerve" / "wnut17")
    make_corpus(env / "home" / ".cache" / "nerve" / "wnut17")
    assert resolve_corpus("wnut17") == cached


def test_not_found_lists_every_place_and_suggests_fetch(env, monkeypatch):
    monkeypatch.setenv("NERVE_DATA", str(env / "nd"))
    with pytest.raises(NerveError) as err:
        resolve_corpus("mit_movie", data_dir=env / "data")
    msg = str(err.value)
    for place in (env / "data" / "mit_movie", env / "nd" / "mit_movie", env / "home" / ".cache/nerve/mit_movie"):
        assert str(place) in msg
    assert "nerve data fetch mit_movie" in msg


def test_unregistered_name_not_found_lists_registered_names(env):
    with pytest.raises(NerveError, match="registered corpora: conll2003"):
        resolve_corpus("ontonotes")


def test_incomplete_folder_is_not_a_corpus(env, monkeypatch):
    partial = env / "nd" / "wnut17"
    partial.mkdir(parents=True)
    (partial / "train.txt").write_text("a O\n")
    monkeypatch.setenv("NERVE_DATA", str(env / "nd"))
    with pytest.raises(NerveError, match="not found"):
        resolve_corpus("wnut17")

"""Verified download: all files checked before the folder appears; any failure leaves the cache untouched."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nerve.data import registry
from nerve.data.registry import CorpusInfo, fetch
from nerve.errors import NerveError
from tests.helpers import cli

FILES = {"train.txt": b"EU B-ORG\nrejects O\n\n", "valid.txt": b"Peter B-PER\n\n", "test.txt": b"Bonn B-LOC\n"}


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (body, Content-Length to announce); anything else is a 404."""

    def do_GET(self):
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, length = route
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server on an ephemeral port serving the tiny corpus under /tiny/; yields (base URL, routes)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.routes = {f"/tiny/{name}": (body, len(body)) for name, body in FILES.items()}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.routes
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def tiny_entry(monkeypatch):
    """Register a tiny corpus whose checksums match FILES."""
    sums = {name: hashlib.sha256(body).hexdigest() for name, body in FILES.items()}
    info = CorpusInfo(name="tiny", title="tiny", columns=2, scheme="BIO", types=("ORG", "PER", "LOC"), sha256=sums)
    monkeypatch.setitem(registry.CORPORA, "tiny", info)


def fail(base: str, cache: Path, match: str) -> None:
    """Fetch must raise ``match`` and leave the cache folder empty (no corpus folder, no temp files)."""
    with pytest.raises(NerveError, match=match):
        fetch("tiny", url=base, cache_dir=cache, progress=False)
    assert list(cache.iterdir()) == []


def test_good_download_installs_every_verified_file(server, tmp_path):
    base, _ = server
    out = fetch("tiny", url=base, cache_dir=tmp_path / "cache", progress=False)
    assert out == tmp_path / "cache" / "tiny"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny"]


def test_present_verified_corpus_is_not_downloaded_again(server, tmp_path):
    base, routes = server
    fetch("tiny", url=base, cache_dir=tmp_path, progress=False)
    routes.clear()
    assert fetch("tiny", url=base, cache_dir=tmp_path, progress=False) == tmp_path / "tiny"


def test_corrupt_corpus_in_cache_is_replaced(server, tmp_path):
    base, _ = server
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "train.txt").write_text("changed\n")
    out = fetch("tiny", url=base, cache_dir=tmp_path, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_nerve_mirror_is_the_default_url(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NERVE_MIRROR", server[0])
    assert fetch("tiny", cache_dir=tmp_path, progress=False).is_dir()


def test_truncated_body_leaves_nothing_and_names_the_file(server, tmp_path):
    base, routes = server
    routes["/tiny/valid.txt"] = (FILES["valid.txt"], len(FILES["valid.txt"]) + 100)
    fail(base, tmp_path, r"tiny/valid.txt: truncated download .* got 13 of 113 bytes")


def test_wrong_checksum_leaves_nothing_and_names_the_file(server, tmp_path):
    base, routes = server
    routes["/tiny/valid.txt"] = (b"Peter B-ORG\n\n", 13)
    fail(base, tmp_path, r"tiny/valid.txt: SHA-256 \w+\.\.\. does not match")


def test_http_404_leaves_nothing_and_names_the_file(server, tmp_path):
    base, routes = server
    del routes["/tiny/test.txt"]
    fail(base, tmp_path, r"tiny/test.txt: HTTP 404")


def test_unreachable_mirror_leaves_nothing_and_names_the_file(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    fail(f"http://127.0.0.1:{port}", tmp_path, r"tiny/train.txt: cannot reach")


def test_failure_keeps_an_existing_folder(server, tmp_path):
    base, routes = server
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "train.txt").write_text("old\n")
    del routes["/tiny/train.txt"]
    with pytest.raises(NerveError, match="HTTP 404"):
        fetch("tiny", url=base, cache_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]
    assert (tmp_path / "tiny" / "train.txt").read_text() == "old\n"


def test_unknown_corpus_is_refused_before_any_download(tmp_path):
    with pytest.raises(NerveError, match="not a registered corpus"):
        fetch("nope", url="http://127.0.0.1:9", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_file_url_mirror_fetches_a_real_corpus(shared_data, tmp_path):
    out = fetch("wnut17", url=shared_data.as_uri(), cache_dir=tmp_path, progress=False)
    assert registry.verify("wnut17", out) == []


@pytest.fixture
def shared_server(shared_data, monkeypatch):
    """A local HTTP server serving the shared corpora folder (NAME/FILE); yields its base URL."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    monkeypatch.setenv("no_proxy", "*")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(shared_data)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_cli_fetch_conll2003_from_a_local_server_installs_it_verified_in_the_cache(shared_server, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    res = cli("data", "fetch", "conll2003", "--url", shared_server)
    assert res.returncode == 0, res.stderr
    assert registry.verify("conll2003", tmp_path / "nerve" / "conll2003") == []
    assert res.stderr.strip() == f"conll2003: verified -> {tmp_path / 'nerve' / 'conll2003'}"

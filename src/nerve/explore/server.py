"""``nerve serve``: the explorer page backed by a local HTTP server that holds the model, tags typed sentences and
ablates units in the model (``nerve.model.hooks.ablate``) on request. Every request is checked: its Host and Origin
(``nerve.explore.guard``; 421 and 403), its Content-Type (415), Content-Length (411, 400, 413) and body (400); a
bad one gets a JSON error the page shows, and the server keeps serving."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from nerve.analysis.bases import recorded_basis
from nerve.analysis.core import INTERVENTIONS
from nerve.analysis.interventions import pool_sampler
from nerve.errors import NerveError
from nerve.explore.guard import HostCheck, bind_server, host_name, is_loopback

MAX_TOKENS = 1000  # longest typed sentence, in whitespace tokens
MAX_BODY = 1_000_000  # bytes of one request
MAX_TOKEN_CHARS = 200
CLIENT_TIMEOUT = 60  # seconds a client may take to send its request
FIELDS = {"sentence", "ablate", "value"}
VALUES = INTERVENTIONS.names()  # what an ablated unit becomes: ``nerve.analysis.core.INTERVENTIONS``
RESAMPLE_SEED = 0  # each request resamples with this seed: the same sentence and units give the same tags


class RequestError(ValueError):
    """A request the server refuses, with the message the page shows."""


def parse_request(body: bytes, units: list[str]) -> tuple[list[str], list[int], str]:
    """(tokens, unit indices to ablate, "zero" | "mean") of a /api/tag request body, or RequestError saying why not.

    The body is a JSON object: sentence (one line of text, split into tokens at spaces and tabs as `nerve decode`
    splits a line, non-breaking spaces kept inside a token; 1..MAX_TOKENS tokens), ablate (optional list of unit
    names), value (optional, zero or mean)."""
    from nerve.text import columns, line_problem

    try:
        req = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise RequestError("the request nests JSON too deeply; expected {\"sentence\": \"...\", \"ablate\": "
                           "[...], \"value\": \"zero\"}") from None
    except (UnicodeDecodeError, ValueError):
        raise RequestError("the request is not JSON; expected {\"sentence\": \"...\", \"ablate\": [...], "
                           "\"value\": \"zero\"}") from None
    if not isinstance(req, dict):
        raise RequestError("expected a JSON object with sentence, ablate and value")
    extra = sorted(set(req) - FIELDS)
    if extra:
        raise RequestError(f"unknown field {extra[0]!r}; expected sentence, ablate and value")
    sentence = req.get("sentence")
    if not isinstance(sentence, str):
        raise RequestError("sentence: expected text")
    if "\n" in sentence:
        raise RequestError("the sentence holds a line break; type one sentence on one line")
    problem = line_problem(sentence)
    if problem is not None:
        raise RequestError(f"the sentence holds a {problem.split(';')[0].removeprefix('a ')}; expected words "
                           "separated by spaces")
    tokens = columns(sentence)
    if not tokens:
        raise RequestError("the sentence is empty; type a few words separated by spaces")
    if len(tokens) > MAX_TOKENS:
        raise RequestError(f"the sentence has {len(tokens)} tokens; at most {MAX_TOKENS} are tagged at once")
    long = next((t for t in tokens if len(t) > MAX_TOKEN_CHARS), None)
    if long is not None:
        raise RequestError(f"a token of {len(long)} characters; at most {MAX_TOKEN_CHARS} per token")
    ablate = req.get("ablate", [])
    if not isinstance(ablate, list) or not all(isinstance(u, str) for u in ablate):
        raise RequestError("ablate: expected a list of unit names")
    index = {u: i for i, u in enumerate(units)}
    unknown = [u for u in ablate if u not in index]
    if unknown:
        shown = ", ".join(units[:3]) + (f" … {units[-1]}" if len(units) > 3 else "")
        raise RequestError(f"unknown unit {unknown[0]!r}; this model's units are {shown}")
    value = req.get("value", "zero")
    if value not in VALUES:
        raise RequestError(f"value: expected {' or '.join(VALUES)}, got {value!r}")
    return tokens, sorted({index[u] for u in ablate}), value


class LiveModel:
    """A run's model ready to tag whitespace-tokenised sentences with units intervened on; one request at a
    time. ``reference``: (n_tokens, n) activations of the split the analysis ranked units on, from which each
    intervention takes its values (``nerve.analysis.core.Intervention.values``: "mean" is their mean)."""

    def __init__(self, run, reference: np.ndarray, basis=None):
        """``basis``: the analysis' fitted basis (``bases.FittedBasis``; None: the neurons) — its units are what
        the page shows and ablates, each edit made along the unit's direction in the model's own forward pass."""
        self.run = run  # a ``nerve.run.LoadedRun``, or a fine-tuned Hugging Face run (``nerve.hf.run.LoadedHFRun``)
        self.hf = hasattr(run, "capture")  # its units: the tag layer's input, classifier_in
        self.site = "classifier_in" if self.hf else "encoder_out"
        self.enc = None if self.hf else self.run.indexer()
        self.basis = basis
        self.units = ([str(u) for u in self.run.model.unit_names()] if basis is None else basis.unit_names())
        self.itos = list(self.run.tags) if self.hf else self.run.vocabs.tags.itos
        if reference.shape[1] != len(self.units):
            raise NerveError(f"{run.path}: the analysis has {reference.shape[1]} units, the model {len(self.units)}")
        self.reference = reference
        self.values = {name: INTERVENTIONS.get(name).values(reference) for name in VALUES
                       if not INTERVENTIONS.get(name).per_token}
        self.lock = threading.Lock()

    def _decoder(self, tokens: list[str]):
        """A function that tags ``tokens`` (one sentence) with the run's model: predicted tag ids (len(tokens),)."""
        from nerve.data.conll import Sentence

        model, sent = self.run.model, Sentence(list(tokens), columns=[[w] for w in tokens])
        if self.hf:
            from nerve.hf.words import word_batch

            pieces = self.run.pieces([sent], "<typed>")
            batch = word_batch(pieces, self.run.tokenizer.pad_token_id).to(self.run.device)
            return lambda: model.decode(batch)[0].cpu().numpy()
        import torch

        from nerve.data.batching import make_batch

        item = self.enc.encode(sent, labelled=False, allow_extra=True, path="<typed>", tag_column=False)
        extra = self.enc.extra_vectors()
        ext = None if extra is None else torch.from_numpy(extra).to(self.run.device)
        batch = make_batch([item], model.char is not None).to(self.run.device)
        return lambda: model.decode(batch, ext)[0].cpu().numpy()

    def tag(self, tokens: list[str], ablate: list[int], value: str = "zero") -> dict:
        """The tags of ``tokens`` with every unit, with the ``ablate`` units set to 0 or their mean, and the
        (unablated) unit activations per token."""
        import torch

        from nerve.model.hooks import ablate as ablated
        from nerve.model.hooks import capture

        model = self.run.model
        with self.lock, torch.no_grad():
            decode = self._decoder(tokens)
            with capture(model, self.site) as store:
                base = decode()
            h = store[0][0].cpu().numpy()
            values = self.values[value] if value in self.values else pool_sampler(self.reference, RESAMPLE_SEED)
            if self.basis is None:
                with ablated(model, ablate, self.site, values=values):
                    pred = decode()
            else:
                from nerve.analysis.bases import basis_edit
                from nerve.model.hooks import hooks

                h = self.basis.encode(h)
                with hooks(model, [(self.site, basis_edit(self.basis, ablate, values))]):
                    pred = decode()
        n = len(tokens)
        return {"tokens": tokens, "tags": [self.itos[t] for t in pred[:n]],
                "base_tags": [self.itos[t] for t in base[:n]], "units": self.units,
                "activations": np.round(h[:n], 3).tolist(), "ablated": [self.units[i] for i in ablate],
                "value": value}


def make_handler(files: dict[str, bytes], live: LiveModel, check: HostCheck):
    """The request handler: GET serves the page and its data, POST /api/tag tags a sentence; only requests whose
    Host (and Origin, when sent) name this server (``check``) are answered."""
    types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

    class Handler(BaseHTTPRequestHandler):
        server_version = "nerve-serve"
        timeout = CLIENT_TIMEOUT  # a client that stops sending is dropped

        def log_message(self, format, *args):
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: dict) -> None:
            self._send(code, json.dumps(obj, allow_nan=False).encode("utf-8"), "application/json")

        def _refused(self) -> bool:
            """Answer 421 to another Host, 403 to another Origin; True when refused."""
            hosts = self.headers.get_all("Host") or []
            problem = check.host_problem(hosts[0] if hosts else None) if len(hosts) < 2 else \
                f"{len(hosts)} Host headers; expected one"
            code = 421
            if problem is None:
                problem, code = check.origin_problem(self.headers.get("Origin")), 403
            if problem is None:
                return False
            self._json(code, {"error": problem})
            self.close_connection = True
            return True

        def do_GET(self):
            if self._refused():
                return
            path = self.path.split("?", 1)[0].lstrip("/") or "index.html"
            if path in files:
                self._send(200, files[path], types.get(Path(path).suffix, "application/octet-stream"))
            elif path == "api/health":
                self._json(200, {"ok": True, "units": len(live.units)})
            else:
                self._json(404, {"error": f"no such page: /{path}"})

        def _body(self) -> bytes | None:
            """The request body, or None after answering why it is refused."""
            ctype = self.headers.get("Content-Type") or ""
            if ctype.split(";", 1)[0].strip().lower() != "application/json":
                self._json(415, {"error": f"Content-Type {ctype!r}: expected application/json"})
                self.close_connection = True
                return None
            raw = self.headers.get("Content-Length")
            if raw is None:
                self._json(411, {"error": "the request has no Content-Length; expected the body's size in bytes"})
                self.close_connection = True
                return None
            digits = raw.strip().removeprefix("-")
            if not (digits.isascii() and digits.isdigit()) or raw.strip().startswith("-"):
                what = "is negative" if digits.isascii() and digits.isdigit() else "is not an integer"
                self._json(400, {"error": f"Content-Length {raw!r} {what}; expected the body's size in bytes"})
                self.close_connection = True
                return None
            length = int(raw)
            if length > MAX_BODY:
                self._json(413, {"error": f"the request has {length} bytes; at most {MAX_BODY}"})
                self.close_connection = True
                return None
            body = self.rfile.read(length)
            if len(body) < length:  # the client went away mid-body: nobody to answer
                raise ConnectionAbortedError(f"{len(body)} of {length} body bytes received")
            return body

        def do_POST(self):
            if self._refused():
                return
            if self.path.split("?", 1)[0] != "/api/tag":
                self._json(404, {"error": f"no such endpoint: {self.path}; expected POST /api/tag"})
                return
            body = self._body()
            if body is None:
                return
            try:
                tokens, ablate, value = parse_request(body, live.units)
                self._json(200, live.tag(tokens, ablate, value))
            except (RequestError, NerveError) as err:
                self._json(400, {"error": str(err)})
            except (ConnectionError, TimeoutError):
                raise  # the client went away: the server logs it in one line
            except Exception as err:  # a fault in tagging must not stop the server
                self._json(500, {"error": f"tagging failed: {type(err).__name__}: {err}"})

    return Handler


def analysis_for(run_dir: Path, analysis: str | None) -> Path:
    """The analysis folder of the served run: ``analysis`` or ``RUN/analysis``, made from the run's model."""
    from nerve.analysis.capture import run_hashes
    from nerve.analysis.compare import check_analysis
    from nerve.folder import read_marker
    from nerve.run import MODEL

    d = Path(analysis) if analysis else run_dir / "analysis"
    if not (d / "sensitivity.csv").is_file():
        raise NerveError(f"{d}: no analysis of {run_dir}; run `nerve analyze {run_dir} --out {d}` first")
    check_analysis(d)
    made_from = (read_marker(d, "complete.json") or {}).get("components", {}).get("model")
    if made_from is not None and made_from != run_hashes(run_dir)[MODEL]:
        raise NerveError(f"{d}: analyses another model than {run_dir / MODEL}; re-run `nerve analyze`")
    return d


def reference_activations(loaded, d: Path, basis=None) -> np.ndarray:
    """(n_tokens, n) activations of the split the analysis in ``d`` ranked units on: its ``--rank-split`` when it
    judged methods on another split (captured from the loaded run's model), else the analysed split
    (activations.npz), the units in the model's order."""
    from nerve.analysis.capture import capture_activations
    from nerve.run import read_split

    about = json.loads((d / "analysis.json").read_text(encoding="utf-8"))
    rank_path = about.get("rank_split") if about.get("methods") else None
    if rank_path and rank_path != about.get("split"):
        path, sents = read_split(loaded, rank_path, "the analysis' rank split")
        h = capture_activations(loaded, sents, path)[0]["h"]
        return h if basis is None else basis.encode(h)
    with np.load(d / "activations.npz", allow_pickle=False) as z:
        names, h = [str(u) for u in z["neurons"]], z["h"]
    if basis is not None:  # already the basis' units, in its order
        return h
    model_units = [str(u) for u in loaded.model.unit_names()]
    if sorted(names) != sorted(model_units):
        raise NerveError(f"{d}: its units are not those of the model in {loaded.path}")
    return h[:, [names.index(u) for u in model_units]]


def make_server(run_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, analysis: str | None = None,
                device: str = "cpu") -> ThreadingHTTPServer:
    """The server, bound and ready for ``serve_forever`` (port 0: a free port, ``server.server_address[1]``)."""
    from nerve.explore.page import explorer_files
    from nerve.runs import load_any_run

    run = Path(run_dir)
    d = analysis_for(run, analysis)
    files = {k: v.encode("utf-8") for k, v in explorer_files(d, live=True).items()}
    loaded = load_any_run(run, device)
    basis = recorded_basis(d)  # None: the neurons
    live = LiveModel(loaded, reference_activations(loaded, d, basis), basis)
    check = HostCheck(host, host, port)
    server = bind_server(host, port, make_handler(files, live, check))
    check.bound(*server.server_address[:2])  # port 0: the free port it got
    return server


def serve(run_dir: str, host: str = "127.0.0.1", port: int = 8000, analysis: str | None = None,
          device: str = "cpu") -> None:
    """Serve until interrupted, printing the page's address to standard error."""
    server = make_server(run_dir, host, port, analysis, device)
    h, p = server.server_address[:2]
    print(f"serving the explorer of {run_dir} at http://{host_name(h)}:{p}/ (Ctrl-C stops)", file=sys.stderr,
          flush=True)
    if not is_loopback(h):
        print(f"nerve: warning: --host {host}: the explorer is reachable from other machines, and anyone who "
              "reaches it can run the model", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()

"""The HTTP cases of docs/RELIABILITY.md's `nerve serve` table: each a raw request to a real `nerve serve` on
127.0.0.1, the status it must get and the message of its JSON answer. tests/explore/test_serve_guard.py runs them
as tests; tests/reliability_cases.py writes the table from them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class HttpCase:
    id: str
    what: str
    request: Callable[[int], bytes]  # the port -> the raw request
    status: int
    expect: str  # substring of the JSON answer's "error" ("" for a 200)
    check: Callable[[dict], None] | None = None  # further assertions on a 200's JSON answer


def get(path: str, host: str = "127.0.0.1:{port}", extra: str = "") -> Callable[[int], bytes]:
    head = f"Host: {host}\r\n" if host else ""
    return lambda port: f"GET {path} HTTP/1.1\r\n{head.format(port=port)}{extra}Connection: close\r\n\r\n".encode()


def post(body: bytes | str, ctype: str | None = "application/json", length: str | None = None,
         origin: str | None = None, host: str = "127.0.0.1:{port}") -> Callable[[int], bytes]:
    data = body.encode() if isinstance(body, str) else body

    def request(port: int) -> bytes:
        head = ["POST /api/tag HTTP/1.1", f"Host: {host.format(port=port)}", "Connection: close"]
        if ctype is not None:
            head.append(f"Content-Type: {ctype}")
        if origin is not None:
            head.append(f"Origin: {origin.format(port=port)}")
        n = str(len(data)) if length is None else length
        if n != "-":
            head.append(f"Content-Length: {n}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data
    return request


def ask(port: int, raw: bytes, host: str = "127.0.0.1", timeout: float = 60) -> tuple[int, dict]:
    """Send ``raw`` to the server and read the whole answer: (status, JSON body or {"bytes": n})."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(raw)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"bytes": len(body)}


def _nbsp_kept(answer: dict) -> None:
    assert answer["tokens"] == ["New\u00a0York", "is", "big"], answer["tokens"]


SENTENCE = json.dumps({"sentence": "John Smith visited Germany ."})
CASES = [
    HttpCase("serve-host-foreign", "GET /data/r0.js with `Host: rebind.example:PORT` (DNS rebinding)",
             get("/data/r0.js", "rebind.example:{port}"), 421, "this server answers only requests for"),
    HttpCase("serve-host-port", "GET / with the right name but another port in Host", get("/", "127.0.0.1:1"), 421,
             "this server answers only requests for"),
    HttpCase("serve-host-missing", "GET / without a Host header", get("/", ""), 421, "no Host header"),
    HttpCase("serve-host-twice", "GET / with two Host headers, this server's and another",
             get("/", "127.0.0.1:{port}", "Host: rebind.example\r\n"), 421, "2 Host headers; expected one"),
    HttpCase("serve-host-localhost", "GET /api/health with `Host: localhost:PORT` (a loopback name)",
             get("/api/health", "localhost:{port}"), 200, ""),
    HttpCase("serve-post-text-plain", "POST /api/tag as `text/plain` (a cross-site form or fetch)",
             post(SENTENCE, ctype="text/plain"), 415, "Content-Type 'text/plain': expected application/json"),
    HttpCase("serve-post-foreign-origin", "POST /api/tag with `Origin: http://evil.example`",
             post(SENTENCE, origin="http://evil.example"), 403, "requests from another site are refused"),
    HttpCase("serve-post-own-origin", "POST /api/tag with the page's own Origin",
             post(SENTENCE, origin="http://127.0.0.1:{port}"), 200, ""),
    HttpCase("serve-deep-json", "POST /api/tag with 100,000 nested `[`", post("[" * 100_000), 400,
             "the request nests JSON too deeply"),
    HttpCase("serve-length-float", "POST /api/tag with `Content-Length: 1e3`", post(SENTENCE, length="1e3"), 400,
             "Content-Length '1e3' is not an integer"),
    HttpCase("serve-length-negative", "POST /api/tag with `Content-Length: -5`", post(SENTENCE, length="-5"), 400,
             "Content-Length '-5' is negative"),
    HttpCase("serve-length-missing", "POST /api/tag without a Content-Length", post(SENTENCE, length="-"), 411,
             "the request has no Content-Length"),
    HttpCase("serve-length-huge", "POST /api/tag with `Content-Length: 2000000`", post(SENTENCE, length="2000000"),
             413, "at most 1000000"),
    HttpCase("serve-nbsp", "a sentence with a non-breaking space inside a word (kept, as `nerve decode` keeps it)",
             post(json.dumps({"sentence": "New\u00a0York is big"})), 200, "", _nbsp_kept),
    HttpCase("serve-u2028", "a sentence holding U+2028", post(json.dumps({"sentence": "a\u2028b"})), 400,
             "the sentence holds a control character U+2028"),
]


@contextlib.contextmanager
def serving(run: Path, analysis: Path, host: str = "127.0.0.1") -> Iterator[tuple[subprocess.Popen, int]]:
    """A real `nerve serve` of ``run`` on a free port of ``host``: (process, port); stopped on exit (its stderr
    stays readable from ``proc.stderr``)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nerve.cli", "serve", str(run), "--analysis", str(analysis),
                             "--port", "0", "--host", host, "--device", "cpu"], stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"http://\S+:(\d+)/", line)
        if m is None:
            proc.kill()
            raise RuntimeError(f"nerve serve did not start: {line}{proc.stderr.read()}")
        yield proc, int(m.group(1))
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def run_case(case: HttpCase, port: int) -> tuple[int, dict]:
    status, answer = ask(port, case.request(port))
    if case.check is not None and status == case.status == 200:
        case.check(answer)
    return status, answer

"""`nerve serve` against other web pages and bad clients, over HTTP to a real server on 127.0.0.1: only its own
Host and Origin are answered, POST needs application/json, bad bodies are 4xx, a vanished client is one line of
log at most, and --host ::1 listens on IPv6 (or is refused as such)."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tests.helpers import cli
from tests.serve_cases import CASES, SENTENCE, ask, post, run_case, serving


@pytest.fixture(scope="module")
def server(tiny_run, tiny_analysis):
    with serving(tiny_run, tiny_analysis) as (proc, port):
        yield proc, port


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_http_case(case, server):
    status, answer = run_case(case, server[1])
    assert status == case.status, answer
    if case.expect:
        assert case.expect in answer["error"], answer
    else:
        assert "error" not in answer, answer


def test_the_page_is_served_to_its_own_host_only(server):
    port = server[1]
    assert ask(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())[0] == 200
    assert ask(port, f"GET / HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n".encode())[0] == 200
    status, answer = ask(port, f"GET /data/index.js HTTP/1.1\r\nHost: attacker.example:{port}\r\n\r\n".encode())
    assert status == 421 and "bytes" not in answer and f"127.0.0.1:{port}" in answer["error"]


def test_clients_that_vanish_mid_request_are_one_line_each_and_the_server_keeps_serving(tiny_run, tiny_analysis):
    with serving(tiny_run, tiny_analysis) as (proc, port):
        for i in range(50):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                raw = post(SENTENCE)(port)
                s.sendall(raw[: len(raw) - 10] if i % 2 else raw)  # half of them never send the whole body
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        time.sleep(1.0)
        status, answer = ask(port, post(SENTENCE)(port))
        assert status == 200 and len(answer["tags"]) == 5
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) <= 50, err[-3000:]
    other = [line for line in lines if not line.startswith("nerve serve: client 127.0.0.1:")]
    assert not other, other[:5]


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_host_ipv6_listens_on_ipv6_or_is_refused_as_such(tiny_run, tiny_analysis):
    if not _ipv6_loopback():
        res = cli("serve", tiny_run, "--analysis", tiny_analysis, "--host", "::1", "--port", "0")
        assert res.returncode == 2 and "--host ::1" in res.stderr and "--port" not in res.stderr, res.stderr
        return
    with serving(tiny_run, tiny_analysis, host="::1") as (_, port):
        raw = f"GET /api/health HTTP/1.1\r\nHost: [::1]:{port}\r\nConnection: close\r\n\r\n".encode()
        assert ask(port, raw, host="::1")[0] == 200
        raw = f"GET /api/health HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n".encode()
        assert ask(port, raw, host="::1")[0] == 421


def test_an_unknown_host_is_refused_as_a_host_not_a_port(tiny_run, tiny_analysis):
    res = cli("serve", tiny_run, "--analysis", tiny_analysis, "--host", "no-such-host.invalid", "--port", "0")
    assert res.returncode == 2 and "--host no-such-host.invalid: not an address or name of this machine" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr

"""What ``nerve serve`` answers at all: requests whose Host header names the address it listens on (and, on a
loopback or wildcard address, the loopback names), without a foreign Origin — so that no other web page, through
DNS rebinding or a cross-site request, reads the analysed words or runs the model; and the server itself, on the
address family its host needs, logging a vanished client in one line."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from nerve.errors import NerveError

_LOG = threading.Lock()  # one whole line at a time: print() writes text and newline apart, and threads interleave

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a bound address) is reachable from this machine only."""
    ip = _ip(address)
    return ip is not None and ip.is_loopback


def host_name(host: str) -> str:
    """``host`` as it appears in a Host header or URL: an IPv6 address in brackets, names in lower case."""
    ip = _ip(host)
    if ip is not None:
        return f"[{ip}]" if ip.version == 6 else str(ip)
    return host.lower().rstrip(".")


def split_host(value: str) -> tuple[str, int | None]:
    """(name, port) of a Host header value or URL netloc; port None when absent, -1 when not a number."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, sep, port = value.rpartition(":")
        if not sep:
            name, port = value, ""
    if not port:
        return host_name(name), None
    return host_name(name), int(port) if port.isascii() and port.isdigit() else -1


class HostCheck:
    """Which Host header values (and Origins) name this server: bound to ``host`` (as given) on ``port``."""

    def __init__(self, host: str, bound: str, port: int):
        self.host = host
        self.bound(bound, port)

    def bound(self, bound: str, port: int) -> None:
        """Set the address the server is bound to (a port 0 becomes the free port it got)."""
        host, self.port = self.host, port
        self.names = {host_name(host), host_name(bound)}
        self.wildcard = host in WILDCARDS or bound in WILDCARDS
        if self.wildcard or host.lower() == "localhost" or is_loopback(bound):
            self.names.update(LOOPBACK_NAMES)
        if self.wildcard:
            self.names.update(host_name(n) for n in (socket.gethostname(), socket.getfqdn()))
        self.names.discard("")

    def expected(self) -> str:
        return " or ".join(f"{n}:{self.port}" for n in sorted(self.names)[:3])

    def host_ok(self, value: str | None) -> bool:
        if not value:
            return False
        name, port = split_host(value)
        if (80 if port is None else port) != self.port:
            return False
        return name in self.names or (self.wildcard and _ip(name) is not None)

    def host_problem(self, value: str | None) -> str | None:
        """Why a request with this Host header is refused (None: it is this server)."""
        if self.host_ok(value):
            return None
        got = f"Host {value!r}" if value else "no Host header"
        return (f"{got}: this server answers only requests for {self.expected()} (a page of another site must not "
                "reach it); open the address that nerve serve printed")

    def origin_problem(self, value: str | None) -> str | None:
        """Why a request with this Origin header is refused (None: no Origin, or this server's own)."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme == "http" and parts.netloc and self.host_ok(parts.netloc):
            return None
        return (f"Origin {value!r}: requests from another site are refused; use the page at "
                f"http://{self.expected().split(' or ')[0]}/")


def _family(host: str) -> int:
    """The address family ``host`` listens on: IPv4 where the name has an IPv4 address, else IPv6."""
    if host in WILDCARDS:
        return socket.AF_INET6 if host == "::" else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        raise NerveError(f"--host {host}: not an address or name of this machine ({why}); expected e.g. "
                         "127.0.0.1, ::1 or localhost") from None
    families = {i[0] for i in infos}
    return socket.AF_INET if socket.AF_INET in families else socket.AF_INET6


def bind_server(host: str, port: int, handler) -> ThreadingHTTPServer:
    """A threading HTTP server on (host, port) for ``handler``, IPv4 or IPv6 as ``host`` needs.

    Raises:
        NerveError: the host is not this machine's, IPv6 is not available, or the port is taken or not allowed.
    """
    family = _family(host)

    class Server(ThreadingHTTPServer):
        address_family = family

        def handle_error(self, request, client_address):
            """One line per failed request, never a traceback: a client gone mid-request, or why it failed."""
            err = sys.exc_info()[1]
            who = f"{client_address[0]}:{client_address[1]}" if client_address else "a client"
            if isinstance(err, (ConnectionError, TimeoutError)):
                line = f"client {who} went away before the answer was sent ({type(err).__name__})"
            else:
                line = f"a request of {who} failed: {type(err).__name__}: {err}"
            with _LOG:
                sys.stderr.write(f"nerve serve: {line}\n")
                sys.stderr.flush()

    try:
        return Server((host, port), handler)
    except OSError as err:
        why = err.strerror or str(err)
        if err.errno == errno.EAFNOSUPPORT:
            raise NerveError(f"--host {host}: this machine does not support IPv6 ({why}); use --host 127.0.0.1 "
                             "or localhost") from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise NerveError(f"--host {host}: not an address of this machine ({why}); expected e.g. 127.0.0.1, "
                             "::1 or localhost") from None
        if err.errno == errno.EADDRINUSE:
            raise NerveError(f"--port {port}: in use on {host} ({why}); try another --port, or 0 for a free one") \
                from None
        if err.errno == errno.EACCES:
            raise NerveError(f"--port {port}: not allowed ({why}); ports below 1024 need root, try 8000") from None
        raise NerveError(f"{host}:{port}: cannot listen there ({why}); try another --host or --port") from None

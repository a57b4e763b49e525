"""A threaded HTTP/1.1 reverse proxy in front of a RegistryServer that injects faults on a schedule.

    with FaultProxy(registry) as proxy:
        proxy.inject(["503", "503"], method="GET", path=r"/blobs/")   # the next two matching requests fail
        ...  # point the code under test at proxy.host / proxy.url
        assert [r.fault for r in proxy.requests].count("503") == 2

Faults: "pass", "503" (Retry-After: 0), "429" (Retry-After: 1), "502", "drop" (close the connection without
answering; the registry never sees the request), "drop_after" (forward, then close without answering),
"truncate" (forward, send the headers and half the body, then close).
Bodies stream both ways; Location headers pointing at the registry are rewritten to the proxy;
WWW-Authenticate passes untouched. The proxy itself always listens on plain http://127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from .registry import RegistryServer

FAULTS = ("pass", "503", "429", "502", "drop", "drop_after", "truncate")
ERROR_FAULTS = {"503": ("Service Unavailable", "0"), "429": ("Too Many Requests", "1"), "502": ("Bad Gateway", None)}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
HOP_BY_HOP |= {"transfer-encoding", "upgrade", "host", "content-length"}
CHUNK = 64 * 1024


@dataclass
class ProxiedRequest:
    """One request the proxy received."""

    method: str
    path: str
    query: str
    headers: CaseInsensitiveDict[str]
    fault: str = "pass"
    status: int | None = None  # what the client got (None: connection dropped)
    upstream_status: int | None = None  # what the registry answered (None: not forwarded)


@dataclass
class FaultRule:
    """Apply FAULTS, one per matching request, in order; the rule is spent when they run out."""

    faults: list[str]
    method: str | None = None
    path: re.Pattern[str] | None = None
    applied: list[ProxiedRequest] = field(default_factory=list)

    def matches(self, request: ProxiedRequest) -> bool:
        return (
            bool(self.faults)
            and (self.method is None or self.method == request.method)
            and (self.path is None or self.path.search(request.path) is not None)
        )


Schedule = Callable[[ProxiedRequest], "str | None"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FaultProxy:
    def __init__(self, upstream: RegistryServer, *, schedule: Schedule | Sequence[str] | None = None) -> None:
        self.upstream = upstream
        self.requests: list[ProxiedRequest] = []
        self.rules: list[FaultRule] = []
        self.schedule: Schedule | None = None
        self._lock = threading.Lock()
        self.set_schedule(schedule)
        self._server: _Server | None = None

    # -- schedule --------------------------------------------------------------------------------------------

    def set_schedule(self, schedule: Schedule | Sequence[str] | None) -> None:
        """A callable (request -> fault or None) consulted after the rules, or a list applied to every request."""
        if schedule is None or callable(schedule):
            self.schedule = schedule
        else:
            self.schedule = None
            self.inject(list(schedule))

    def inject(self, faults: str | Sequence[str], *, method: str | None = None, path: str | None = None) -> FaultRule:
        """Queue FAULTS for the next requests matching METHOD and the PATH regex."""
        fault_list = [faults] if isinstance(faults, str) else list(faults)
        unknown = set(fault_list) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}, expected {FAULTS}")
        rule = FaultRule(fault_list, method, re.compile(path) if path else None)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
        self.schedule = None

    def decide(self, request: ProxiedRequest) -> str:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request):
                    rule.applied.append(request)
                    return rule.faults.pop(0)
        return (self.schedule(request) if self.schedule else None) or "pass"

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.requests)

    def requests_since(self, mark: int) -> list[ProxiedRequest]:
        return self.requests[mark:]

    def faults_applied(self) -> list[str]:
        return [r.fault for r in self.requests if r.fault != "pass"]

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._server = _Server(_handler_for(self))
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def server(self) -> RegistryServer:
        """The registry as seen through this proxy (plain http), for Skopeo, RawClient and seed_many."""
        return self.upstream.seen_at(self.host, "http")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fault proxy is not running")
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def open_upstream(self) -> http.client.HTTPConnection:
        host, port = self.upstream.host.rsplit(":", 1)
        if self.upstream.scheme == "http":
            return http.client.HTTPConnection(host, int(port), timeout=60)
        context = ssl.create_default_context(cafile=str(self.upstream.ca_cert) if self.upstream.ca_cert else None)
        if self.upstream.client_cert and self.upstream.client_key:
            context.load_cert_chain(str(self.upstream.client_cert), str(self.upstream.client_key))
        return http.client.HTTPSConnection(host, int(port), timeout=60, context=context)

    def rewrite_location(self, value: str) -> str:
        return self.url + value[len(self.upstream.url) :] if value.startswith(self.upstream.url) else value


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _request_body(self) -> Iterator[bytes] | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            return self._read_length(length) if length else None

        def _read_length(self, remaining: int) -> Iterator[bytes]:
            while remaining > 0:
                chunk = self.rfile.read(min(CHUNK, remaining))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-body")
                remaining -= len(chunk)
                yield chunk

        def _read_chunked(self) -> Iterator[bytes]:
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield self.rfile.read(size)
                self.rfile.readline()

        def _send_error(self, record: ProxiedRequest, status: str) -> None:
            reason, retry_after = ERROR_FAULTS[status]
            body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": f"fault proxy: {record.fault}"}]}).encode()
            self.send_response(int(status), reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            record.status = int(status)

        def _forward(self, record: ProxiedRequest, body: Iterator[bytes] | None) -> None:
            # Header lines are kept as a list: Go clients (skopeo) send one Accept line per media type.
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            chunked = body is not None and "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            elif body is not None or self.command in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Length", self.headers.get("Content-Length") or "0"))
            upstream = proxy.open_upstream()
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                upstream.putheader("Host", proxy.upstream.host)
                for name, value in headers:
                    upstream.putheader(name, value)
                upstream.endheaders()
                for chunk in body or ():
                    upstream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    upstream.send(b"0\r\n\r\n")
                response = upstream.getresponse()
                record.upstream_status = response.status
                if record.fault == "drop_after":
                    response.read()
                    self.close_connection = True
                    return
                self._relay(record, response)
            finally:
                upstream.close()

        def _relay(self, record: ProxiedRequest, response: http.client.HTTPResponse) -> None:
            length_header = response.getheader("Content-Length")
            has_body = self.command != "HEAD" and response.status not in (204, 304) and response.status >= 200
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() == "location":
                    value = proxy.rewrite_location(value)
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            if length_header is not None:
                self.send_header("Content-Length", length_header)
            chunked = has_body and length_header is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            record.status = response.status
            limit = int(length_header) // 2 if record.fault == "truncate" and length_header else None
            sent = 0
            while has_body:
                chunk = response.read(CHUNK if limit is None else min(CHUNK, limit - sent))
                if not chunk:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
            if record.fault == "truncate":
                self.close_connection = True
            elif chunked:
                self.wfile.write(b"0\r\n\r\n")

        def _handle(self) -> None:
            url = urlsplit(self.path)
            record = ProxiedRequest(self.command, url.path, url.query, CaseInsensitiveDict(self.headers.items()))
            proxy.requests.append(record)
            record.fault = proxy.decide(record)
            body = self._request_body()
            if record.fault in ("pass", "drop_after", "truncate"):
                try:
                    self._forward(record, body)
                except (OSError, http.client.HTTPException) as error:
                    record.fault = f"upstream error: {error}"
                    self.close_connection = True
                    if record.upstream_status is None:
                        with contextlib.suppress(OSError):  # the client may be the one that went away
                            self._send_error(record, "502")  # the registry is gone: say so, as a gateway would
                return
            for _ in body or ():
                pass  # read the whole request so the connection stays in a sane state
            if record.fault == "drop":
                self.close_connection = True
            else:
                self._send_error(record, record.fault)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return ProxyHandler

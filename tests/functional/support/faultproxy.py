"""A threaded HTTP/1.1 reverse proxy in front of a RegistryServer that injects faults on a schedule.

    with FaultProxy(registry) as proxy:
        proxy.inject(["503", "503"], method="GET", path=r"/blobs/")   # the next two matching requests fail
        ...  # point the code under test at proxy.host / proxy.url
        assert [r.fault for r in proxy.requests].count("503") == 2

Faults: "pass", "503" (Retry-After: 0), "429" (Retry-After: 1), "502", "drop" (close the connection without
answering; the registry never sees the request), "drop_after" (forward, then close without answering),
"truncate" (forward, send the headers and half the body, then close), "corrupt" (forward, then relay the answer
with its headers and length unchanged but one byte in the middle of the body XORed with 0x01; an answer without
a body, such as a HEAD, goes through unchanged: see ProxiedRequest.corrupted_at).
Bodies stream both ways; Location headers pointing at the registry are rewritten to the proxy;
WWW-Authenticate passes untouched. The proxy itself always listens on plain http://127.0.0.1.

RandomFaults(rate=0.3, seed=...) is a schedule that faults about RATE of the requests, bounded so that a client
retrying as the collection does always gets through (give both ends of a copy the same one). It never draws
"corrupt" unless its weights name it: a corrupted blob streamed on to another registry fails the copy by design.
Redirect mode (`proxy.redirect_blobs_to(BlobStore(...))`) answers blob GETs the registry would serve with a 307
to a BlobStore, another loopback origin that serves the registry's storage and records the headers it gets.
`proxy.upload_delay` slows request bodies down (per 64 KiB).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import random
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from .registry import RegistryServer

FAULTS = ("pass", "503", "429", "502", "drop", "drop_after", "truncate", "corrupt")
FORWARDED_FAULTS = ("pass", "drop_after", "truncate", "corrupt")
ERROR_FAULTS = {"503": ("Service Unavailable", "0"), "429": ("Too Many Requests", "1"), "502": ("Bad Gateway", None)}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
HOP_BY_HOP |= {"transfer-encoding", "upgrade", "host", "content-length"}
CHUNK = 64 * 1024
BLOB_PATH = re.compile(r"^/v2/.+/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/]+$")
UPLOAD_PATH = re.compile(r"^(?P<repo>/v2/.+/blobs/uploads/)[^/]+$")


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
    corrupted_at: int | None = None  # "corrupt": the body offset whose byte was flipped (None: no body to corrupt)


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

# 503 (Retry-After: 0) costs a client nothing; the others cost it a backoff, so they come less often.
# "corrupt" is left out: a corrupt blob that is streamed on to another registry is not read again, so a schedule
# drawing it would break the promise that a retrying client always gets through. Name it in `weights` to draw it.
DEFAULT_WEIGHTS = {"503": 4, "502": 2, "drop": 2, "drop_after": 1, "truncate": 6, "429": 1}


class RandomFaults:
    """A schedule that faults about RATE of the requests, drawn from WEIGHTS with a seeded random generator.

    Bounded so that a client retrying the way the collection does (`retries`, default 5) always gets through: at
    most PER_FAMILY faults in all on one request family, "truncate" only on blob GETs, and at most BUDGET[fault]
    faults of a kind (a 429 makes every request to the host wait a second: budget 1). A family is everything about
    one blob digest (HEAD, GET, and the PUT ?digest= that closes its upload), so that a blob copy, which starts
    again from its GET when any of them fails, fails at most PER_FAMILY times; else the method and the path
    (upload session ids left out). Give the proxies of both ends of a copy the same RandomFaults: a blob's family
    then spans its download and its upload.

    "corrupt" is drawn only when WEIGHTS name it, and only for GETs of blobs and manifests. Such a schedule no
    longer promises a way through: a corrupt blob streamed on to another registry fails the copy.
    """

    def __init__(
        self,
        rate: float = 0.3,
        *,
        seed: int | str = 0,
        weights: Mapping[str, int] | None = None,
        per_family: int = 3,
        budget: Mapping[str, int] | None = None,
    ) -> None:
        self.rate = rate
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        unknown = set(self.weights) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}, expected {FAULTS}")
        self.per_family = per_family
        self.budget = dict({"429": 1} if budget is None else budget)
        self.random = random.Random(seed)
        self.family_faults: dict[tuple[str, str], int] = {}
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def family(request: ProxiedRequest) -> tuple[str, str]:
        blob = BLOB_PATH.match(request.path)
        if blob:
            return "blob", blob["digest"]
        digest = (parse_qs(request.query).get("digest") or [None])[0]
        if digest:
            return "blob", digest
        upload = UPLOAD_PATH.match(request.path)
        return request.method, upload["repo"] + "*" if upload else request.path

    def __call__(self, request: ProxiedRequest) -> str | None:
        key = self.family(request)
        with self._lock:
            if self.family_faults.get(key, 0) >= self.per_family or self.random.random() >= self.rate:
                return None
            allowed = {
                name: weight
                for name, weight in self.weights.items()
                if (name not in self.budget or self.counts.get(name, 0) < self.budget[name])
                and (name != "truncate" or (request.method == "GET" and key[0] == "blob"))
                and (
                    name != "corrupt"
                    or (request.method == "GET" and (key[0] == "blob" or MANIFEST_PATH.match(request.path) is not None))
                )
            }
            if not allowed:
                return None
            fault = self.random.choices(list(allowed), weights=list(allowed.values()))[0]
            self.family_faults[key] = self.family_faults.get(key, 0) + 1
            self.counts[fault] = self.counts.get(fault, 0) + 1
            return fault


class BlobStore:
    """A second loopback origin, where redirected blob GETs land: serves `/blobs/DIGEST` from a registry's storage
    directory (the filesystem driver's layout) and records the method, path and headers of every request."""

    def __init__(self, storage: str | Path) -> None:
        self.storage = Path(storage)
        self.requests: list[tuple[str, str, CaseInsensitiveDict[str]]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                store.requests.append((self.command, self.path, CaseInsensitiveDict(self.headers.items())))
                match = re.match(r"^/blobs/sha256:([0-9a-f]{64})(\?|$)", self.path)
                data_path = store.data_path(f"sha256:{match[1]}") if match else None
                if data_path is None or not data_path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(data_path.stat().st_size))
                self.end_headers()
                if self.command == "GET":
                    with open(data_path, "rb") as handle:
                        while chunk := handle.read(CHUNK):
                            self.wfile.write(chunk)

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="blob-store", daemon=True).start()

    def data_path(self, digest: str) -> Path:
        encoded = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def location(self, digest: str) -> str:
        return f"{self.url}/blobs/{digest}?expires={int(time.time()) + 600}&signature={secrets.token_hex(8)}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
        self.blob_redirect: BlobStore | None = None
        self.upload_delay = 0.0  # seconds to wait before forwarding each 64 KiB of a request body
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

    def redirect_blobs_to(self, store: BlobStore | None) -> None:
        """Redirect mode: a blob GET the registry answers 200 gets a 307 to STORE instead (None: off)."""
        self.blob_redirect = store

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
            record.status = int(status)
            self.send_response(int(status), reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

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
                    if proxy.upload_delay:
                        time.sleep(proxy.upload_delay)
                    upstream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    upstream.send(b"0\r\n\r\n")
                response = upstream.getresponse()
                record.upstream_status = response.status
                if record.fault == "drop_after":
                    response.read()
                    self.close_connection = True
                    return
                blob = BLOB_PATH.match(urlsplit(self.path).path)
                if proxy.blob_redirect is not None and self.command == "GET" and response.status == 200 and blob:
                    self._redirect(record, proxy.blob_redirect.location(blob["digest"]))
                    return
                self._relay(record, response)
            finally:
                upstream.close()

        def _redirect(self, record: ProxiedRequest, location: str) -> None:
            # Like distribution's `redirect` storage middleware: the registry authorized the request, the bytes
            # come from another origin. The upstream body is left unread; closing the connection discards it.
            # Recorded before answering: the client may read the record as soon as it has the answer.
            record.status = 307
            self.send_response(307, "Temporary Redirect")
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _relay(self, record: ProxiedRequest, response: http.client.HTTPResponse) -> None:
            length_header = response.getheader("Content-Length")
            has_body = self.command != "HEAD" and response.status not in (204, 304) and response.status >= 200
            record.status = response.status
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
            limit = int(length_header) // 2 if record.fault == "truncate" and length_header else None
            read: Callable[[int], bytes] = response.read
            flip_at = None
            if record.fault == "corrupt" and has_body:
                if length_header is None:  # chunked: read it whole to find its middle
                    buffered = io.BytesIO(response.read())
                    read, length = buffered.read, len(buffered.getbuffer())
                else:
                    length = int(length_header)
                flip_at = length // 2 if length else None
            sent = 0
            while has_body:
                chunk = read(CHUNK if limit is None else min(CHUNK, limit - sent))
                if not chunk:
                    break
                if flip_at is not None and sent <= flip_at < sent + len(chunk):
                    chunk = _flip(chunk, flip_at - sent)
                    record.corrupted_at = flip_at
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
            if record.fault in FORWARDED_FAULTS:
                try:
                    self._forward(record, body)
                except (OSError, http.client.HTTPException) as error:
                    record.fault = f"upstream error: {error}"
                    self.close_connection = True
                    if record.upstream_status is None:
                        with contextlib.suppress(OSError):  # the client may be the one that went away
                            self._send_error(record, "502")  # the registry is gone: say so, as a gateway would
                return
            for _attempt in body or ():
                pass  # read the whole request so the connection stays in a sane state
            if record.fault == "drop":
                self.close_connection = True
            else:
                self._send_error(record, record.fault)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return ProxyHandler


def _flip(chunk: bytes, offset: int) -> bytes:
    """CHUNK with the byte at OFFSET XORed with 0x01: same length, other bytes, so another digest."""
    changed = bytearray(chunk)
    changed[offset] ^= 0x01
    return bytes(changed)

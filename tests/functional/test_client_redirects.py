"""Blob downloads that the real registry redirects to another host: credentials must not follow.

distribution's `redirect` storage middleware answers blob GET/HEAD with a 307 to `baseurl` + the storage path;
a small "blob store" on another port serves the registry's storage directory and records the headers it got.
A pass-through FaultProxy in front of the registry records what the registry itself received.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.client import ClientFactory
from support.faultproxy import FaultProxy
from support.images import Image, read_blob
from support.registry import RegistryServer
from support.skopeo import Skopeo


class BlobStore:
    """Serves files under `root` over plain HTTP on 127.0.0.1 and records every request's headers."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                store.requests.append((self.command, self.path, dict(self.headers.items())))
                target = (store.root or Path("/nonexistent")) / self.path.split("?", 1)[0].lstrip("/")
                if not target.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(data)

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def blob_store() -> Iterator[BlobStore]:
    store = BlobStore()
    yield store
    store.stop()


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_credentials_stay_with_the_registry_when_a_blob_is_redirected(
    kind: str,
    registry_factory: Callable[..., RegistryServer],
    blob_store: BlobStore,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
) -> None:
    redirect = {"middleware": {"storage": [{"name": "redirect", "options": {"baseurl": blob_store.url}}]}}
    server = registry_factory(kind, config_overrides=redirect)
    blob_store.root = server.storage
    image = image_factory(layers=1, layer_size=50_000)
    skopeo(server).copy(image.oci, "t/redirected:v1")
    layer = image.platforms["linux/amd64"].layers[0]
    proxy = fault_proxy(server)
    client = connect(proxy.server, "t/redirected")

    assert client.head_blob("t/redirected", layer.digest) == layer.size
    with client.open_blob("t/redirected", layer.digest) as reader:
        assert b"".join(reader.chunks()) == read_blob(image, layer.digest)

    # The registry got the credentials and redirected...
    scheme = "Basic" if kind == "htpasswd" else "Bearer"
    blob_requests = [r for r in proxy.requests if r.path == f"/v2/t/redirected/blobs/{layer.digest}"]
    assert [(r.method, r.status, r.headers.get("Authorization", "").split(" ")[0]) for r in blob_requests] == [
        ("HEAD", 401, ""),  # the handshake
        ("HEAD", 307, scheme),
        ("GET", 307, scheme),
    ]
    # ...and the blob store, another origin, served the bytes without ever seeing them.
    data_path = f"/docker/registry/v2/blobs/sha256/{layer.digest[7:9]}/{layer.digest[7:]}/data"
    assert [(method, path.split("?", 1)[0]) for method, path, _extra in blob_store.requests] == [
        ("HEAD", data_path),
        ("GET", data_path),
    ]
    assert all("Authorization" not in headers for _first, _second, headers in blob_store.requests)

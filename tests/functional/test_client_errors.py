"""What the registry says about a failure reaches the user: its error ``detail`` (distribution 2.8.2, for real), and
a plain-text body; never a secret it echoes.

Each case first makes the real registry answer an error that carries a ``detail`` (a manifest naming a blob the
repository lacks, an index naming a manifest it lacks, bytes that are not JSON, an upload whose digest is wrong, a
missing tag, a missing repository) or a plain-text body (a path its router does not know), then checks the
message of the collection's client, and once of a module run by ansible-playbook. The secrets case needs a
registry that echoes what it was sent, which distribution never does: a small HTTP server of the test's own
plays it, behind Basic auth, a token service (with a password or an identity token) and a registry token.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from support.client import ClientFactory
from support.images import Image, add_ref
from support.playbook import PlaybookRun
from support.registry import RegistryServer

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'

Playbook = Callable[..., PlaybookRun]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def image_manifest(layers: list[bytes]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, CONFIG),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
    }
    return json.dumps(manifest).encode()


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


def failure(call: Callable[[], Any], expected: type[RegistryError] = RegistryError) -> RegistryError:
    with pytest.raises(expected) as caught:
        call()
    return caught.value


# -- the real registry's details -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["open", "htpasswd", "token"])
def test_a_manifest_naming_a_blob_the_repository_lacks_names_that_blob(
    request: pytest.FixtureRequest, kind: str, connect: ClientFactory, unique_repo: str
) -> None:
    """distribution: 400 MANIFEST_BLOB_UNKNOWN, detail "sha256:..." (the blob it lacks)."""
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    client = connect(server, unique_repo)
    client.upload_blob(unique_repo, sha256(CONFIG), CONFIG)
    missing = b"a layer never uploaded"
    err = failure(lambda: client.put_manifest(unique_repo, "v1", image_manifest([missing]), OCI_MANIFEST))
    assert err.__class__ is RegistryResponseError and err.status == 400
    assert err.codes == ["MANIFEST_BLOB_UNKNOWN"] and err.details == [sha256(missing)]
    assert str(err) == (
        "Failed to put manifest %s:v1 on registry %s, repository %s: HTTP 400 MANIFEST_BLOB_UNKNOWN"
        " (blob unknown to registry: %s)" % (unique_repo, server.host, unique_repo, sha256(missing))
    )


def test_an_index_naming_a_manifest_the_repository_lacks_names_that_manifest(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    child = image_manifest([])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child)]}
    client = connect(registry_open, unique_repo)
    err = failure(lambda: client.put_manifest(unique_repo, "v1", json.dumps(index).encode(), OCI_INDEX))
    assert err.codes == ["MANIFEST_BLOB_UNKNOWN"] and err.details == [sha256(child)]
    assert str(err).endswith("HTTP 400 MANIFEST_BLOB_UNKNOWN (blob unknown to registry: %s)" % sha256(child))


def test_bytes_that_are_not_json_say_where_the_registry_stopped_reading(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    """distribution: 400 MANIFEST_INVALID, detail {"Offset": N} (Go's json.SyntaxError)."""
    client = connect(registry_open, unique_repo)
    err = failure(lambda: client.put_manifest(unique_repo, "v1", b"{not json", OCI_MANIFEST))
    assert err.codes == ["MANIFEST_INVALID"] and err.details == ['{"Offset":2}']
    assert str(err).endswith('HTTP 400 MANIFEST_INVALID (manifest invalid: {"Offset":2})')


def test_an_upload_under_a_wrong_digest_names_the_digest(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    """distribution: 400 DIGEST_INVALID, detail {"Digest": the digest claimed, "Reason": {}}."""
    client = connect(registry_open, unique_repo)
    claimed = sha256(b"other bytes")
    err = failure(lambda: client.upload_blob(unique_repo, claimed, b"the bytes sent"), DigestMismatchError)
    detail = '{"Digest":"%s","Reason":{}}' % claimed
    assert err.codes == ["DIGEST_INVALID"] and err.details == [detail]
    assert str(err).endswith("HTTP 400 DIGEST_INVALID (provided digest did not match uploaded content: %s)" % detail)


def test_a_missing_tag_and_a_missing_repository_are_named(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    """distribution: 404 MANIFEST_UNKNOWN with {"Tag": ...}; 404 NAME_UNKNOWN with {"name": ...}."""
    client = connect(registry_open, unique_repo)
    client.upload_blob(unique_repo, sha256(CONFIG), CONFIG)
    client.put_manifest(unique_repo, "v1", image_manifest([]), OCI_MANIFEST)
    err = failure(lambda: client.get_manifest(unique_repo, "no-such-tag"), NotFoundError)
    assert err.details == ['{"Tag":"no-such-tag"}']
    assert str(err).endswith('HTTP 404 MANIFEST_UNKNOWN (manifest unknown: {"Tag":"no-such-tag"})')
    nowhere = unique_repo + "-never-pushed"
    err = failure(lambda: client.list_tags(nowhere), NotFoundError)
    assert err.details == ['{"name":"%s"}' % nowhere]
    assert str(err).endswith('HTTP 404 NAME_UNKNOWN (repository name not known to registry: {"name":"%s"})' % nowhere)


def test_a_path_the_registry_does_not_route_quotes_its_plain_text_answer(
    registry_open: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    """distribution's router answers a tag longer than 128 characters with text/plain "404 page not found"."""
    client = connect(registry_open, unique_repo)
    tag = "t" * 200
    err = failure(lambda: client.put_manifest(unique_repo, tag, image_manifest([]), OCI_MANIFEST), NotFoundError)
    assert err.codes == [] and err.details == []
    assert str(err) == (
        "Failed to put manifest %s:%s on registry %s, repository %s: HTTP 404 (the registry answered: 404 page not"
        " found)" % (unique_repo, tag, registry_open.host, unique_repo)
    )


def test_a_module_failing_on_the_registry_names_what_the_registry_lacks(
    registry_htpasswd: RegistryServer, playbook: Playbook, image_factory: Callable[..., Image], unique_repo: str
) -> None:
    """registry_image pushes an image with a non-distributable layer, which it never uploads (nobody may): the
    registry refuses the manifest, and the task's message names the layer's digest as the registry did."""
    image = image_factory(layers=1)
    manifest = json.loads(image.manifest)
    foreign = b"a non-distributable layer: never in the layout, never uploaded"
    manifest["layers"].append(descriptor(OCI_NONDISTRIBUTABLE, foreign))
    raw = json.dumps(manifest).encode()
    (Path(image.path) / "blobs" / "sha256" / sha256(raw).split(":", 1)[1]).write_bytes(raw)
    with_foreign = add_ref(Image(image.path, image.ref, sha256(raw), len(raw), OCI_MANIFEST, raw), "with-foreign-layer")
    server = registry_htpasswd
    run = playbook(
        [
            {
                "name": "push",
                "ocireg.registry.registry_image": {
                    "src": with_foreign.oci,
                    "dest": "%s/%s:v1" % (server.host, unique_repo),
                    "username": server.username,
                    "password": server.password,
                },
                "ignore_errors": True,
            }
        ]
    )
    entries = [entry for entry in run.results if entry["task"] == "push"]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    message = entries[-1]["result"]["msg"]
    assert "MANIFEST_BLOB_UNKNOWN (blob unknown to registry: %s)" % sha256(foreign) in message, message


# -- a registry that echoes secrets ----------------------------------------------------------------------------

USER = "alice"
PASSWORD = "pw-3cho3d-by-the-registry"  # noqa: S105 - test values
IDENTITY_TOKEN = "identity-refresh-token-3cho3d"  # noqa: S105
REGISTRY_TOKEN = "registry-token-3cho3d"  # noqa: S105
ISSUED_TOKEN = "bearer-token-issued-3cho3d-%d"  # noqa: S105 - one per token request


class EchoingRegistry:
    """Answers every /v2/ request that carries credentials with an error that echoes them all.

    auth: "basic" (401 Basic challenge), "bearer" (401 Bearer challenge, a token service at /token that takes a
    password or a refresh token and issues a new token each time) or "none" (no challenge: for a registry token).
    answer: "json" (the error format, the secrets in message and detail) or "text" (text/plain, the same words).
    """

    def __init__(self, auth: str, answer: str):
        self.auth, self.answer = auth, answer
        self.seen: list[str] = []  # every secret the server received or issued
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = "127.0.0.1:%d" % self.httpd.server_address[1]
        self.url = "http://" + self.host
        self.username = self.password = self.ca_cert = self.client_cert = self.client_key = None
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> EchoingRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                registry.handle(self)

            def do_POST(self) -> None:  # noqa: N802
                registry.handle(self)

            def do_PUT(self) -> None:  # noqa: N802
                registry.handle(self)

        return Handler

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        authorization = http.headers.get("Authorization") or ""
        if http.path.startswith("/token"):
            form = parse_qs(body.decode())
            token = ISSUED_TOKEN % len(self.seen)
            self.seen += [authorization, *form.get("refresh_token", []), token]
            self.reply(http, 200, "application/json", json.dumps({"token": token}).encode())
            return
        if not authorization:
            challenge = {
                "basic": 'Basic realm="echo"',
                "bearer": 'Bearer realm="%s/token",service="echo"' % self.url,
            }.get(self.auth)
            if challenge:
                self.reply(http, 401, "application/json", b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge)
                return
        self.seen.append(authorization)
        credential = authorization.partition(" ")[2]
        if authorization.startswith("Basic "):
            self.seen.append(base64.b64decode(credential).decode())
        echoed = {"authorization": authorization, "credential": credential, "seen": self.seen}
        if self.answer == "json":
            error = {"code": "DENIED", "message": "refused %s" % authorization, "detail": echoed}
            self.reply(http, 403, "application/json", json.dumps({"errors": [error]}).encode())
        else:
            self.reply(http, 403, "text/plain; charset=utf-8", ("refused: %s" % json.dumps(echoed)).encode())

    @staticmethod
    def reply(
        http: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes, challenge: str | None = None
    ) -> None:
        http.send_response(status)
        http.send_header("Content-Type", content_type)
        http.send_header("Content-Length", str(len(body)))
        if challenge:
            http.send_header("WWW-Authenticate", challenge)
        http.end_headers()
        http.wfile.write(body)


CREDENTIAL_ROADS = {
    "basic auth with a password": ("basic", {"username": USER, "password": PASSWORD}),
    "a token bought with a password": ("bearer", {"username": USER, "password": PASSWORD}),
    "a token bought with an identity token": ("bearer", {"identity_token": IDENTITY_TOKEN}),
    "a registry token": ("none", {"registry_token": REGISTRY_TOKEN}),
}


@pytest.mark.parametrize("answer", ["json", "text"])
@pytest.mark.parametrize("road", sorted(CREDENTIAL_ROADS))
def test_a_secret_the_registry_echoes_is_masked(road: str, answer: str, connect: ClientFactory, tmp_path: Path) -> None:
    """Two repositories, so two scopes: with a token service, the second answer also echoes the first token, which
    the client holds in its cache but did not send this time."""
    auth, given = CREDENTIAL_ROADS[road]
    with EchoingRegistry(auth, answer) as server:
        options: dict[str, Any] = {"username": None, "password": None}
        if "password" in given:
            options = {"username": given["username"], "password": given["password"]}
        elif "identity_token" in given:
            auth_file = tmp_path / "auth.json"
            auth_file.write_text(json.dumps({"auths": {server.host: {"identitytoken": IDENTITY_TOKEN}}}))
            options["auth_file"] = str(auth_file)
        else:
            options["credentials"] = {server.host: {"token": REGISTRY_TOKEN}}
        client = connect(server, "t/echo", retries=0, **options)
        for repository in ("t/echo", "t/other"):
            err = failure(functools.partial(client.list_tags, repository))
            message = str(err)
            secrets = [secret for secret in server.seen if secret]
            secrets += [secret.partition(" ")[2] for secret in secrets if " " in secret]
            assert secrets and len(message) > 120, (secrets, message)
            for secret in secrets:
                if secret.startswith(USER + ":"):
                    secret = secret[len(USER) + 1 :]  # the user name may show, the password after it not
                assert secret not in message, "%r leaked: %s" % (secret, message)
                assert not any(secret in detail for detail in err.details)
            assert "********" in message
            if answer == "text":
                assert "(the registry answered: refused: " in message
            else:
                assert err.codes == ["DENIED"] and "DENIED (refused " in message
        if auth == "bearer":
            assert sum(1 for secret in server.seen if secret.startswith(ISSUED_TOKEN[:-2])) == 2

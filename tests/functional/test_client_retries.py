"""Retries of the shared client, through a FaultProxy in front of the real registry.

The proxy's request log is the witness: which requests failed how, which reached the registry, how often.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import pytest
from support.client import ClientFactory
from support.faultproxy import FaultProxy
from support.images import Image, read_blob
from support.registry import RegistryServer
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    RegistryError,
    RegistryResponseError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

BLOB = b"a blob for retry tests\n" * 1000


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.fixture
def seeded(
    registry_open: RegistryServer, image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo], unique_repo: str
) -> Image:
    """An image skopeo pushed to unique_repo:v1 on registry_open (directly, not through a proxy)."""
    image = image_factory(layers=1, layer_size=100_000)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    return image


def record_delays(client: RegistryClient) -> list[float]:
    """The waits the client's host backoff decides on from now on (so no test depends on wall-clock speed)."""
    backoff = client.transport.retry
    decided: list[float] = []
    original = backoff.delay

    def delay(attempt: int, retry_after: str | None) -> float:
        decided.append(original(attempt, retry_after))
        return decided[-1]

    backoff.delay = delay  # type: ignore[method-assign]
    return decided


def matching(proxy: FaultProxy, mark: int, method: str, path_part: str) -> list[tuple[str, int | None]]:
    """(fault, upstream status) of the requests since MARK with METHOD whose path contains PATH_PART."""
    return [
        (r.fault, r.upstream_status) for r in proxy.requests_since(mark) if r.method == method and path_part in r.path
    ]


# -- reads are retried ----------------------------------------------------------------------------------------


def _get_manifest(client: RegistryClient, repo: str, image: Image) -> tuple[object, object]:
    return client.get_manifest(repo, "v1").digest, image.digest


def _head_manifest(client: RegistryClient, repo: str, image: Image) -> tuple[object, object]:
    return client.head_manifest(repo, "v1"), Descriptor(
        media_type=image.media_type, digest=image.digest, size=image.size
    )


def _get_blob(client: RegistryClient, repo: str, image: Image) -> tuple[object, object]:
    config = image.platforms["linux/amd64"].config
    return client.read_blob(repo, config.digest), image.platforms["linux/amd64"].config_bytes


def _head_blob(client: RegistryClient, repo: str, image: Image) -> tuple[object, object]:
    layer = image.platforms["linux/amd64"].layers[0]
    return client.head_blob(repo, layer.digest), layer.size


def _list_tags(client: RegistryClient, repo: str, image: Image) -> tuple[object, object]:
    return client.list_tags(repo), ["v1"]


# read -> (method, path part, call returning (what the client got, what the registry holds))
READS = {
    "get-manifest": ("GET", "/manifests/", _get_manifest),
    "head-manifest": ("HEAD", "/manifests/", _head_manifest),
    "get-blob": ("GET", "/blobs/", _get_blob),
    "head-blob": ("HEAD", "/blobs/", _head_blob),
    "list-tags": ("GET", "/tags/list", _list_tags),
}

CASES = [
    ("503", "get-manifest"),
    ("503", "head-manifest"),
    ("429", "get-blob"),
    ("429", "head-manifest"),
    ("502", "list-tags"),
    ("502", "head-blob"),
    ("drop", "get-blob"),
    ("drop", "head-manifest"),
    ("drop", "list-tags"),
]


@pytest.mark.parametrize(("fault", "read"), CASES, ids=[f"{fault}-{read}" for fault, read in CASES])
def test_transient_failures_on_reads_are_retried(
    fault: str,
    read: str,
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    seeded: Image,
    unique_repo: str,
) -> None:
    method, path_part, call = READS[read]
    proxy = fault_proxy(registry_open)
    client = connect(proxy.server, unique_repo, retries=3)
    client.ping()  # warm the connection pool: a dropped connection must not be mistaken for a stale one
    delays = record_delays(client)
    proxy.inject(fault, method=method, path=path_part)
    mark = proxy.mark()
    started = time.monotonic()

    got, expected = call(client, unique_repo, seeded)

    elapsed = time.monotonic() - started
    assert got == expected
    seen = matching(proxy, mark, method, path_part)
    assert seen[0] == (fault, None)  # the registry never saw the failed attempt
    if method == "HEAD" and len(seen) == 3:
        # The FaultProxy writes its JSON error body even after a HEAD; a client that reuses the connection at
        # once reads those bytes as the next status line, and has to retry once more (with backoff).
        assert fault in ("503", "429", "502") and seen[1:] == [("pass", 200), ("pass", 200)]
        delays = delays[:1]
    else:
        assert seen[1:] == [("pass", 200)]
    if fault == "503":
        assert delays == [0.0]  # Retry-After: 0 means now, not the exponential backoff
    elif fault == "429":
        assert delays == [1.0] and elapsed >= 1.0  # Retry-After: 1, and it really waited
    else:
        assert len(delays) == 1 and 0.25 <= delays[0] <= 0.5  # no hint: the first backoff step, jittered
        assert elapsed >= delays[0]


def test_retries_survive_token_auth(
    registry_token: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1)
    skopeo(registry_token).copy(image.oci, f"{unique_repo}:v1")
    proxy = fault_proxy(registry_token)
    proxy.inject(["503", "drop"], method="GET", path="/manifests/")
    client = connect(proxy.server, unique_repo, retries=3)

    assert client.get_manifest(unique_repo, "v1").digest == image.digest

    seen = [
        (r.fault, r.status, bool(r.headers.get("Authorization"))) for r in proxy.requests if "/manifests/" in r.path
    ]
    # anonymous first: 503, dropped, then the 401 handshake, then the token
    assert seen == [("503", 503, False), ("drop", None, False), ("pass", 401, False), ("pass", 200, True)]


# -- what is not retried, and when retries run out ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    # The proxy's 429 body carries distribution's UNAVAILABLE code, which wins over the status today (see
    # test_errors.py::test_an_unknown_code_falls_back_to_the_status_class), hence RegistryError for the 429.
    [
        ("503", RegistryResponseError),
        ("429", RegistryError),
        ("502", RegistryResponseError),
        ("drop", TransportError),
    ],
)
def test_retries_0_surfaces_the_first_failure(
    fault: str,
    error: type[RegistryError],
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    seeded: Image,
    unique_repo: str,
) -> None:
    proxy = fault_proxy(registry_open)
    proxy.inject(fault, method="GET", path="/manifests/")
    client = connect(proxy.server, unique_repo, retries=0)

    with pytest.raises(error) as caught:
        client.get_manifest(unique_repo, "v1")

    assert registry_open.host not in str(caught.value)  # the proxy is the registry the client knows
    assert proxy.host in str(caught.value) and (fault == "drop" or f"HTTP {fault}" in str(caught.value))
    assert [r.fault for r in proxy.requests] == [fault]
    assert caught.value.status == (None if fault == "drop" else int(fault))


def test_retries_give_up_after_the_configured_number(
    registry_open: RegistryServer, fault_proxy: Callable[..., FaultProxy], connect: ClientFactory, unique_repo: str
) -> None:
    proxy = fault_proxy(registry_open)
    proxy.inject(["503"] * 4, method="GET", path="/tags/list")
    client = connect(proxy.server, unique_repo, retries=2)

    with pytest.raises(RegistryResponseError, match="HTTP 503"):
        client.list_tags(unique_repo)

    assert [r.fault for r in proxy.requests] == ["503", "503", "503"]  # the first try and 2 retries


def test_a_streamed_patch_is_not_replayed(
    registry_open: RegistryServer, fault_proxy: Callable[..., FaultProxy], connect: ClientFactory, unique_repo: str
) -> None:
    proxy = fault_proxy(registry_open)
    client = connect(proxy.server, unique_repo, retries=3)

    proxy.inject("503", method="PATCH")
    with pytest.raises(RegistryResponseError, match="HTTP 503"):
        client.upload_blob(unique_repo, sha256(BLOB), iter([BLOB[:5000], BLOB[5000:]]))
    proxy.inject("drop", method="PATCH")
    with pytest.raises(TransportError):
        client.upload_blob(unique_repo, sha256(BLOB), iter([BLOB]))

    assert [r.fault for r in proxy.requests if r.method == "PATCH"] == ["503", "drop"]  # once each, no replay
    assert client.head_blob(unique_repo, sha256(BLOB)) is None

    # The caller restarts the upload from a fresh POST, which works once the network behaves.
    client.upload_blob(unique_repo, sha256(BLOB), iter([BLOB[:5000], BLOB[5000:]]))
    assert client.head_blob(unique_repo, sha256(BLOB)) == len(BLOB)
    assert [r.method for r in proxy.requests].count("POST") == 3


def test_replayable_writes_are_retried(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1)
    platform = image.platforms["linux/amd64"]
    proxy = fault_proxy(registry_open)
    proxy.inject("502", method="POST", path="/blobs/uploads/")
    proxy.inject("503", method="PUT", path="/blobs/uploads/")
    proxy.inject("drop_after", method="PUT", path="/manifests/")  # the registry stored it; the answer was lost
    client = connect(proxy.server, unique_repo, retries=3)

    for blob in (platform.config, *platform.layers):
        client.upload_blob(unique_repo, blob.digest, read_blob(image, blob.digest))
    client.put_manifest(unique_repo, "v1", platform.manifest, platform.media_type)

    assert skopeo(registry_open).digest(f"{unique_repo}:v1") == image.digest
    assert proxy.faults_applied() == ["502", "503", "drop_after"]
    manifest_puts = [
        (r.fault, r.upstream_status) for r in proxy.requests if r.method == "PUT" and "/manifests/" in r.path
    ]
    assert manifest_puts == [("drop_after", 201), ("pass", 201)]


# -- truncated downloads --------------------------------------------------------------------------------------


def test_a_truncated_blob_download_raises_instead_of_returning_bad_bytes(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    seeded: Image,
    unique_repo: str,
) -> None:
    layer = seeded.platforms["linux/amd64"].layers[0]
    proxy = fault_proxy(registry_open)
    client = connect(proxy.server, unique_repo, retries=3)
    proxy.inject("truncate", method="GET", path="/blobs/")

    received = bytearray()
    with pytest.raises((TransportError, DigestMismatchError)) as caught:
        with client.open_blob(unique_repo, layer.digest, layer.size) as reader:
            for chunk in reader.chunks(8192):
                received.extend(chunk)
    assert unique_repo in str(caught.value) and layer.digest in str(caught.value)
    assert 0 < len(received) < layer.size

    assert proxy.faults_applied() == ["truncate"]

    # and once the network behaves, the same reader gets the whole blob
    with client.open_blob(unique_repo, layer.digest, layer.size) as reader:
        assert b"".join(reader.chunks()) == read_blob(seeded, layer.digest)


def test_a_small_blob_read_into_memory_is_fetched_again_when_cut_within_retries(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    seeded: Image,
    unique_repo: str,
) -> None:
    config = seeded.platforms["linux/amd64"].config
    proxy = fault_proxy(registry_open)
    proxy.inject(["truncate", "truncate"], method="GET", path="/blobs/")
    patient = connect(proxy.server, unique_repo, retries=2)

    assert patient.read_blob(unique_repo, config.digest) == read_blob(seeded, config.digest)
    assert proxy.faults_applied() == ["truncate", "truncate"]

    proxy.inject(["truncate", "truncate"], method="GET", path="/blobs/")
    impatient = connect(proxy.server, unique_repo, retries=1)
    with pytest.raises((TransportError, DigestMismatchError)) as caught:
        impatient.read_blob(unique_repo, config.digest)
    assert unique_repo in str(caught.value) and config.digest in str(caught.value)


def test_a_truncated_manifest_download_is_a_transport_error(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    seeded: Image,
    unique_repo: str,
) -> None:
    proxy = fault_proxy(registry_open)
    proxy.inject("truncate", method="GET", path="/manifests/")
    patient = connect(proxy.server, unique_repo, retries=1)

    # A manifest is read whole before anything uses it, so a cut answer is simply asked for again...
    assert patient.get_manifest(unique_repo, "v1").digest == seeded.digest
    assert proxy.faults_applied() == ["truncate"]

    # ...and with no retries left, it is a transport error naming the registry and the repository.
    proxy.inject("truncate", method="GET", path="/manifests/")
    client = connect(proxy.server, unique_repo, retries=0)
    with pytest.raises(TransportError) as caught:
        client.get_manifest(unique_repo, "v1")

    assert proxy.host in str(caught.value) and unique_repo in str(caught.value)

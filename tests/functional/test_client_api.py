"""The shared registry client (plugins/module_utils/_registry/api.py) against the real registry in all five set-ups.

skopeo and the registry's access log are the witnesses: what we wrote, skopeo reads; what we read, skopeo wrote.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.client import ClientFactory, ours
from support.images import OCI_INDEX, OCI_MANIFEST, Image, iter_blob, read_blob
from support.rawhttp import RawClient
from support.registry import RegistryServer
from support.seed import seed_many
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError, UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor

PLATFORMS = ["linux/amd64", "linux/arm64"]
MISSING_DIGEST = "sha256:" + "0" * 64


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


# -- registry: ping, catalog, tags ------------------------------------------------------------------------------


def test_ping_reports_the_api_version(any_registry: RegistryServer, connect: ClientFactory) -> None:
    mark = any_registry.mark()
    assert connect(any_registry).ping() == {"url": any_registry.url, "api_version": "registry/2.0"}
    pings = [(e["method"], e["path"], e["status"]) for e in ours(any_registry.requests_since(mark))]
    if any_registry.kind in ("htpasswd", "token"):
        assert pings == [("GET", "/v2/", 401), ("GET", "/v2/", 200)]  # the one handshake, then authenticated
    else:
        assert pings == [("GET", "/v2/", 200)]


def test_tags_come_back_whole_past_one_page(any_registry: RegistryServer, connect: ClientFactory) -> None:
    seeded = seed_many(any_registry, 1, 120)
    repo = seeded.repos[0]
    mark = any_registry.mark()

    listed = connect(any_registry, repo).list_tags(repo)

    assert sorted(listed) == seeded.tags  # distribution 2.8 does not page tags: all 120 in one answer
    sent = [(e["method"], e["path"], e["params"].get("n")) for e in ours(any_registry.requests_since(mark))]
    assert ("GET", f"/v2/{repo}/tags/list", ["1000"]) in sent


def add_repositories(server: RegistryServer, count: int) -> list[str]:
    """COUNT new repositories, cheaply: one image pushed, then one blob mounted into each of the others.

    distribution lists a repository in its catalog as soon as it holds a layer link, and a mount is one request
    and a few files in storage (a whole image per repository makes the session's storage slow to remove).
    """
    prefix = f"catalog-{secrets.token_hex(3)}"
    first = seed_many(server, [f"{prefix}/000"], ["latest"])
    digest = first.image.platforms["linux/amd64"].config.digest
    names = [f"{prefix}/{number:03d}" for number in range(1, count)]
    with RawClient(server) as raw:
        for name in names:
            assert raw.mount_blob(name, digest, first.repos[0])
    return [first.repos[0], *names]


def test_catalog_comes_back_whole_past_one_page(any_registry: RegistryServer, connect: ClientFactory) -> None:
    created = add_repositories(any_registry, 101)  # distribution's default page is 100
    mark = any_registry.mark()

    catalog = connect(any_registry).catalog()

    assert set(created) <= set(catalog)
    assert len(catalog) == len(set(catalog)), "a repository came back twice"
    sent = [(e["path"], e["params"].get("n"), e["status"]) for e in ours(any_registry.requests_since(mark))]
    assert ("/v2/_catalog", ["1000"], 200) in sent  # one big page: distribution allows n <= 1000


@pytest.mark.parametrize("kind", ["open", "token"])
def test_catalog_follows_every_link_page(
    kind: str, registry_factory: Callable[..., RegistryServer], connect: ClientFactory
) -> None:
    server = registry_factory(kind, catalog_maxentries=7)
    created = add_repositories(server, 30)
    mark = server.mark()

    catalog = connect(server).catalog()

    assert sorted(catalog) == sorted(created)  # every name exactly once
    sent = [e for e in ours(server.requests_since(mark)) if e["path"] == "/v2/_catalog" and e["status"] != 401]
    # n=1000 is above catalog.maxentries: distribution refuses it, so the client asks again without n.
    assert [(e["params"].get("n"), e["status"]) for e in sent[:2]] == [(["1000"], 400), (None, 200)]
    pages = sent[1:]
    assert len(pages) == 5 and all(e["status"] == 200 for e in pages)  # 30 names, 7 to a page
    assert all("last" in page["params"] for page in pages[1:])  # each page found through the previous Link


def test_list_tags_of_a_missing_repository_names_registry_and_repository(
    any_registry: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    with pytest.raises(NotFoundError) as caught:
        connect(any_registry).list_tags(unique_repo)
    assert any_registry.host in str(caught.value) and unique_repo in str(caught.value)
    assert caught.value.status == 404 and caught.value.codes == ["NAME_UNKNOWN"]


# -- manifests ----------------------------------------------------------------------------------------------------


def test_manifests_by_tag_and_by_digest(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(platforms=PLATFORMS)
    sk = skopeo(any_registry)
    sk.copy(image.oci, f"{unique_repo}:v1")
    client = connect(any_registry, unique_repo)

    head = client.head_manifest(unique_repo, "v1")
    fetched = client.get_manifest(unique_repo, "v1")

    assert head is not None
    assert head.digest == sk.digest(f"{unique_repo}:v1") == image.digest
    assert (head.media_type, head.size) == (OCI_INDEX, len(image.manifest))
    assert fetched.raw == sk.manifest(f"{unique_repo}:v1")
    assert fetched.digest == sha256(fetched.raw) == head.digest
    assert fetched.media_type == OCI_INDEX
    arm = image.manifests["linux/arm64"]
    child = client.get_manifest(unique_repo, arm)
    assert (child.digest, child.media_type) == (arm, OCI_MANIFEST)
    assert child.raw == sk.manifest(f"{unique_repo}@{arm}")
    assert client.head_manifest(unique_repo, arm) == Descriptor(
        media_type=OCI_MANIFEST, digest=arm, size=len(child.raw)
    )
    assert client.head_manifest(unique_repo, "missing") is None
    assert client.head_manifest(unique_repo, MISSING_DIGEST) is None
    with pytest.raises(NotFoundError, match=f"{unique_repo}@{MISSING_DIGEST}"):
        client.get_manifest(unique_repo, MISSING_DIGEST)


def test_put_manifest_keeps_the_exact_bytes(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory()
    platform = image.platforms["linux/amd64"]
    client = connect(any_registry, unique_repo)
    for blob in [platform.config, *platform.layers]:
        client.upload_blob(unique_repo, blob.digest, read_blob(image, blob.digest))
    # Pretty-printed on purpose: re-serialising would change the bytes, so the digest would differ.
    raw = json.dumps(json.loads(platform.manifest), indent=3).encode() + b"\n"
    assert sha256(raw) != platform.digest

    digest = client.put_manifest(unique_repo, "pretty", raw, OCI_MANIFEST)

    assert digest == sha256(raw) == skopeo(any_registry).digest(f"{unique_repo}:pretty")
    assert skopeo(any_registry).manifest(f"{unique_repo}@{digest}") == raw


# -- blobs: uploads three ways, downloads, mounts ----------------------------------------------------------------


def test_uploads_monolithic_chunked_and_streamed(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(layers=3, layer_size=300_000)
    platform = image.platforms["linux/amd64"]
    monolithic, chunked, streamed = platform.layers
    client = connect(any_registry, unique_repo)
    mark = any_registry.mark()

    client.upload_blob(unique_repo, platform.config.digest, platform.config_bytes)
    client.upload_blob(unique_repo, monolithic.digest, read_blob(image, monolithic.digest))
    client.upload_blob(unique_repo, chunked.digest, read_blob(image, chunked.digest), chunk_size=128 * 1024)
    client.upload_blob(unique_repo, streamed.digest, iter_blob(image, streamed.digest, 64 * 1024), size=streamed.size)
    client.put_manifest(unique_repo, "v1", platform.manifest, OCI_MANIFEST)

    sent = [e for e in ours(any_registry.requests_since(mark)) if e["status"] != 401]
    patches = [e for e in sent if e["method"] == "PATCH"]
    assert len(patches) == -(-chunked.size // (128 * 1024)) + 1  # the sized chunks, then the one streamed PATCH
    assert [e["method"] for e in sent if "/blobs/uploads/" in e["path"]].count("POST") == 4
    # The witness: skopeo reads every blob back and verifies each digest while copying out.
    skopeo(any_registry).copy(f"{unique_repo}:v1", f"oci:{tmp_path / 'out'}:v1")
    for blob in [platform.config, *platform.layers]:
        assert (tmp_path / "out" / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == read_blob(
            image, blob.digest
        )
        assert client.head_blob(unique_repo, blob.digest) == blob.size
        with client.open_blob(unique_repo, blob.digest, blob.size) as reader:
            assert b"".join(reader.chunks(50_000)) == read_blob(image, blob.digest)


def test_reads_blobs_that_skopeo_pushed(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1, layer_size=200_000)
    skopeo(any_registry).copy(image.oci, f"{unique_repo}:v1")
    platform = image.platforms["linux/amd64"]
    client = connect(any_registry, unique_repo)

    assert client.read_blob(unique_repo, platform.config.digest) == platform.config_bytes
    with client.open_blob(unique_repo, platform.layers[0].digest) as reader:
        assert reader.size == platform.layers[0].size
        assert b"".join(reader.chunks()) == read_blob(image, platform.layers[0].digest)
    assert client.head_blob(unique_repo, MISSING_DIGEST) is None


def test_mounts_across_repositories(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo_factory: Callable[[], str],
) -> None:
    source, dest, empty = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    image = image_factory(layers=1)
    skopeo(any_registry).copy(image.oci, f"{source}:v1")
    layer = image.platforms["linux/amd64"].layers[0]
    client = connect(any_registry, dest)
    assert client.head_blob(dest, layer.digest) is None
    mark = any_registry.mark()

    mounted = client.mount_blob(dest, layer.digest, source)

    assert mounted.mounted and mounted.upload_location is None
    assert client.head_blob(dest, layer.digest) == layer.size
    mount = [e for e in ours(any_registry.requests_since(mark)) if e["method"] == "POST"][-1]
    assert (mount["params"], mount["status"]) == ({"mount": [layer.digest], "from": [source]}, 201)

    # From a repository that lacks the blob: the registry starts a plain upload instead, and it is usable.
    refused = client.mount_blob(dest, image.platforms["linux/amd64"].config.digest, empty)
    assert not refused.mounted and refused.upload_location
    config = image.platforms["linux/amd64"].config
    client.upload_blob(dest, config.digest, read_blob(image, config.digest), location=refused.upload_location)
    assert client.head_blob(dest, config.digest) == config.size


# -- deletes ------------------------------------------------------------------------------------------------------


def test_delete_manifest_and_tag(
    any_registry: RegistryServer,
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory()
    sk = skopeo(any_registry)
    sk.copy(image.oci, f"{unique_repo}:keep")
    sk.copy(image.oci, f"{unique_repo}:gone")
    client = connect(any_registry, unique_repo)
    mark = any_registry.mark()

    assert client.delete_tag(unique_repo, "gone") is False  # distribution 2.8 cannot delete a tag by name
    assert sk.exists(f"{unique_repo}:gone")
    deletes = [e for e in ours(any_registry.requests_since(mark)) if e["method"] == "DELETE"]
    assert [(e["path"], e["status"]) for e in deletes][-1] == (f"/v2/{unique_repo}/manifests/gone", 400)

    client.delete_manifest(unique_repo, image.digest)

    assert not sk.exists(f"{unique_repo}@{image.digest}")
    assert not sk.exists(f"{unique_repo}:keep") and not sk.exists(f"{unique_repo}:gone")
    assert client.head_manifest(unique_repo, image.digest) is None
    with pytest.raises(NotFoundError, match=unique_repo):
        client.delete_manifest(unique_repo, image.digest)


def test_deletes_on_a_registry_that_disables_them(
    registry_factory: Callable[..., RegistryServer],
    connect: ClientFactory,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
) -> None:
    server = registry_factory("open", config_overrides={"storage": {"delete": {"enabled": False}}})
    image = image_factory()
    skopeo(server).copy(image.oci, "t/nodelete:v1")
    client = connect(server, "t/nodelete")

    with pytest.raises(UnsupportedError) as caught:
        client.delete_manifest("t/nodelete", image.digest)

    message = str(caught.value)
    assert server.host in message and "t/nodelete" in message and "storage.delete.enabled" in message
    assert client.delete_tag("t/nodelete", "v1") is False
    assert skopeo(server).digest("t/nodelete:v1") == image.digest

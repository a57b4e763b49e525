"""Corrupt answers: every read whose digest is known is checked, read again when that is safe, and never written.

A FaultProxy in front of the real registry relays chosen answers with one byte in the middle of the body flipped
(fault "corrupt": same status, headers and length, another digest). What the client does with them:

- a manifest fetched by digest (an index, a child manifest) and a config read into memory are verified before
  anything sees them, so a corrupt answer is read again within `retries`, and fails with a DigestMismatchError
  naming the registry and the digest when the retries run out;
- a manifest fetched by tag is cross-checked against the registry's Docker-Content-Digest header, and read again
  when they differ;
- a streamed blob hands its bytes on before it can be verified, so it raises a DigestMismatchError at its end and
  is not read again by the client; whoever consumed the bytes throws them away.

Through ansible-playbook, registry_image either copies exactly the source's digests or fails saying which digest
arrived corrupt from which registry, leaving the destination as it was; skopeo, reading the registry directly, is
the witness. registry_info fails naming the digest, or reads again and describes the right image.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.client import ClientFactory
from support.faultproxy import FaultProxy, FaultRule, ProxiedRequest
from support.images import Image, read_blob
from support.playbook import PlaybookRun
from support.rawhttp import MANIFEST_ACCEPT, RawClient
from support.registry import RegistryServer
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._errors import DigestMismatchError

IMAGE = "ocireg.registry.registry_image"
INFO = "ocireg.registry.registry_info"
PLATFORMS = ["linux/amd64", "linux/arm64"]

Playbook = Callable[..., PlaybookRun]


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def flipped(data: bytes) -> bytes:
    """DATA as the proxy's "corrupt" fault relays it: the middle byte XORed with 0x01."""
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x01
    return bytes(changed)


def gets(proxy: FaultProxy, mark: int, path_end: str) -> list[tuple[str, int | None]]:
    """(fault, status) of the GETs since MARK whose path ends with PATH_END."""
    return [(r.fault, r.status) for r in proxy.requests_since(mark) if r.method == "GET" and r.path.endswith(path_end)]


def corrupted(rule: FaultRule) -> list[ProxiedRequest]:
    """The requests RULE really corrupted (a 200 with a body whose byte was flipped)."""
    return [r for r in rule.applied if r.fault == "corrupt" and r.status == 200 and r.corrupted_at is not None]


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.fixture
def pushed(
    registry_open: RegistryServer, image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo], unique_repo: str
) -> Image:
    """A two-platform image skopeo pushed to unique_repo:v1 on registry_open (directly, not through a proxy).
    Layers of 200 kB: a flipped middle byte lands in a later chunk than the first, both on the wire and in reads."""
    image = image_factory(platforms=PLATFORMS, layers=2, layer_size=200_000)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    return image


# -- the fault itself -------------------------------------------------------------------------------------------


def test_corrupt_flips_one_byte_in_the_middle_and_keeps_status_headers_and_length(
    registry_open: RegistryServer, fault_proxy: Callable[..., FaultProxy], pushed: Image, unique_repo: str
) -> None:
    proxy = fault_proxy(registry_open)
    layer = pushed.platforms["linux/arm64"].layers[0]
    accept = {"Accept": MANIFEST_ACCEPT}
    paths = {
        "index": f"/v2/{unique_repo}/manifests/{pushed.digest}",
        "tag": f"/v2/{unique_repo}/manifests/v1",
        "layer": f"/v2/{unique_repo}/blobs/{layer.digest}",
    }
    for name, path in paths.items():
        direct = requests.get(registry_open.url + path, headers=accept, timeout=30)
        rule = proxy.inject("corrupt", method="GET", path=path + "$")
        relayed = requests.get(proxy.url + path, headers=accept, timeout=30)

        assert direct.status_code == relayed.status_code == 200, name
        assert relayed.content != direct.content and relayed.content == flipped(direct.content), name
        for header in ("Content-Length", "Content-Type", "Docker-Content-Digest"):
            assert relayed.headers.get(header) == direct.headers.get(header), (name, header)
        assert [r.corrupted_at for r in rule.applied] == [len(direct.content) // 2], name

    # A HEAD has no body to corrupt: it goes through unchanged, and the record says nothing was flipped.
    rule = proxy.inject("corrupt", method="HEAD")
    head = requests.head(proxy.url + paths["tag"], headers=accept, timeout=30)
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == pushed.digest
    assert [(r.fault, r.corrupted_at) for r in rule.applied] == [("corrupt", None)]


def test_corrupt_finds_the_middle_of_a_chunked_answer_too(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    raw_client: Callable[..., RawClient],
    pushed: Image,
    unique_repo: str,
) -> None:
    # distribution sends a body of more than 2 kB without Content-Length (Go's net/http chunks it): a long tag list.
    raw = raw_client(registry_open)
    for number in range(40):
        raw.put_manifest(unique_repo, f"{number:03d}-" + "t" * 60, pushed.manifest, pushed.media_type)
    path = f"/v2/{unique_repo}/tags/list"
    direct = requests.get(registry_open.url + path, timeout=30)
    proxy = fault_proxy(registry_open)
    rule = proxy.inject("corrupt", method="GET", path=path)

    relayed = requests.get(proxy.url + path, timeout=30)

    assert "Content-Length" not in direct.headers and direct.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in relayed.headers and relayed.headers.get("Transfer-Encoding") == "chunked"
    assert len(direct.content) > 2048
    assert relayed.content == flipped(direct.content) != direct.content
    assert [r.corrupted_at for r in rule.applied] == [len(direct.content) // 2]


# -- the client -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["index", "child manifest"])
def test_a_corrupt_manifest_fetched_by_digest_fails_naming_it_or_is_read_again_within_retries(
    which: str,
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    pushed: Image,
    unique_repo: str,
) -> None:
    child = pushed.platforms["linux/arm64"]
    digest, raw = (pushed.digest, pushed.manifest) if which == "index" else (child.digest, child.manifest)
    proxy = fault_proxy(registry_open)
    path = f"/manifests/{digest}"

    # retries=0: the corrupt bytes are refused, and the message names the registry (as the client knows it)
    # and the digest, with what the bytes hashed to.
    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    with pytest.raises(DigestMismatchError) as caught:
        connect(proxy.server, unique_repo, retries=0).get_manifest(unique_repo, digest)
    message = str(caught.value)
    assert proxy.host in message and digest in message and sha256(flipped(raw)) in message, message
    assert caught.value.registry == proxy.host and caught.value.repository == unique_repo
    assert gets(proxy, mark, path) == [("corrupt", 200)]

    # retries=1: read again, and the right bytes come back.
    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    fetched = connect(proxy.server, unique_repo, retries=1).get_manifest(unique_repo, digest)
    assert fetched.raw == raw and fetched.digest == digest
    assert gets(proxy, mark, path) == [("corrupt", 200), ("pass", 200)]

    # corrupt more often than retries allow: the digest error again, after 1 + retries reads.
    proxy.inject(["corrupt", "corrupt"], method="GET", path=path + "$")
    mark = proxy.mark()
    with pytest.raises(DigestMismatchError, match=digest):
        connect(proxy.server, unique_repo, retries=1).get_manifest(unique_repo, digest)
    assert gets(proxy, mark, path) == [("corrupt", 200), ("corrupt", 200)]


def test_a_corrupt_config_read_into_memory_fails_naming_it_or_is_read_again_within_retries(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    pushed: Image,
    unique_repo: str,
) -> None:
    config = pushed.platforms["linux/amd64"].config
    proxy = fault_proxy(registry_open)
    path = f"/blobs/{config.digest}"

    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    with pytest.raises(DigestMismatchError) as caught:
        connect(proxy.server, unique_repo, retries=0).read_blob(unique_repo, config.digest)
    message = str(caught.value)
    assert proxy.host in message and config.digest in message and unique_repo in message, message
    assert gets(proxy, mark, path) == [("corrupt", 200)]

    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    assert connect(proxy.server, unique_repo, retries=1).read_blob(unique_repo, config.digest) == read_blob(
        pushed, config.digest
    )
    assert gets(proxy, mark, path) == [("corrupt", 200), ("pass", 200)]


def test_a_corrupt_layer_stream_hands_its_bytes_on_then_raises_a_digest_error_at_its_end(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    pushed: Image,
    unique_repo: str,
) -> None:
    layer = pushed.platforms["linux/arm64"].layers[1]
    proxy = fault_proxy(registry_open)
    proxy.inject("corrupt", method="GET", path=f"/blobs/{layer.digest}$")
    client = connect(proxy.server, unique_repo, retries=5)
    mark = proxy.mark()

    received = bytearray()
    with pytest.raises(DigestMismatchError) as caught:
        with client.open_blob(unique_repo, layer.digest, layer.size) as reader:
            for chunk in reader.chunks(16 * 1024):
                received.extend(chunk)

    message = str(caught.value)
    assert proxy.host in message and layer.digest in message and unique_repo in message, message
    # Every byte was handed on before the end showed them wrong: a stream cannot be read again by the client,
    # whatever `retries` says; its consumer starts over.
    assert bytes(received) == flipped(read_blob(pushed, layer.digest))
    assert gets(proxy, mark, f"/blobs/{layer.digest}") == [("corrupt", 200)]


def test_a_corrupt_manifest_fetched_by_tag_is_caught_by_the_digest_header_and_read_again(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    connect: ClientFactory,
    pushed: Image,
    unique_repo: str,
) -> None:
    proxy = fault_proxy(registry_open)
    path = "/manifests/v1"

    # Nothing wrong: one GET, as before.
    mark = proxy.mark()
    assert connect(proxy.server, unique_repo, retries=1).get_manifest(unique_repo, "v1").raw == pushed.manifest
    assert gets(proxy, mark, path) == [("pass", 200)]

    # The bytes disagree with Docker-Content-Digest: read again; the second read agrees, so it is the one.
    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    fetched = connect(proxy.server, unique_repo, retries=1).get_manifest(unique_repo, "v1")
    assert fetched.raw == pushed.manifest and fetched.digest == pushed.digest
    assert gets(proxy, mark, path) == [("corrupt", 200), ("pass", 200)]

    # No retries left: a digest error naming the registry, the repository, the tag and both digests.
    proxy.inject("corrupt", method="GET", path=path + "$")
    mark = proxy.mark()
    with pytest.raises(DigestMismatchError) as caught:
        connect(proxy.server, unique_repo, retries=0).get_manifest(unique_repo, "v1")
    message = str(caught.value)
    for part in (proxy.host, f"{unique_repo}:v1", pushed.digest, sha256(flipped(pushed.manifest))):
        assert part in message, (part, message)
    assert gets(proxy, mark, path) == [("corrupt", 200)]


# -- the modules ------------------------------------------------------------------------------------------------


def task(name: str, module: str, **options: Any) -> dict[str, Any]:
    return {"name": name, module: options, "ignore_errors": True}


def outcome(run: PlaybookRun, name: str) -> tuple[str, dict[str, Any]]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries, run.output
    return entries[-1]["status"], entries[-1]["result"]


def archive_blobs(path: Path) -> dict[str, bytes]:
    """digest -> bytes of every blob in the OCI archive at PATH."""
    with tarfile.open(path) as archive:
        return {
            "sha256:" + member.name.rsplit("/", 1)[1]: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and member.name.startswith("blobs/sha256/")
        }


CORRUPTED = {
    "child manifest": ["child"],
    "config": ["config"],
    "layer": ["layer"],
    "all three": ["child", "config", "layer"],
}


@pytest.mark.parametrize("dest_kind", ["registry", "oci-archive"])
@pytest.mark.parametrize("what", list(CORRUPTED))
def test_registry_image_with_corrupt_reads_copies_the_source_digests_exactly_or_fails_and_writes_nothing(
    what: str,
    dest_kind: str,
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    pushed: Image,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    witness = skopeo(registry_open)
    # The destination already holds another image under the name: a failed copy must leave exactly that.
    old = image_factory(layers=1)
    dest_repo = f"{unique_repo}-dest"
    archive = tmp_path / "copy.tar"
    if dest_kind == "registry":
        witness.copy(old.oci, f"{dest_repo}:v1")
        dest = f"{registry_open.host}/{dest_repo}:v1"
    else:
        witness.copy(old.oci, f"oci-archive:{archive}:v1")
        dest = f"oci-archive:{archive}:v1"
    archive_before = archive.read_bytes() if dest_kind == "oci-archive" else b""
    arm, amd = pushed.platforms["linux/arm64"], pushed.platforms["linux/amd64"]
    targets = {"child": arm.digest, "config": amd.config.digest, "layer": arm.layers[1].digest}
    kinds = {"child": "manifests", "config": "blobs", "layer": "blobs"}
    proxy = fault_proxy(registry_open)
    rules = {
        key: proxy.inject("corrupt", method="GET", path=f"/{kinds[key]}/{targets[key]}$") for key in CORRUPTED[what]
    }

    run = playbook([task("copy", IMAGE, src=f"{proxy.host}/{unique_repo}:v1", dest=dest)])

    status, result = outcome(run, "copy")
    hit = {key for key, rule in rules.items() if corrupted(rule)}
    assert hit, "no corrupt answer reached the client: %s" % {k: r.applied for k, r in rules.items()}
    if what == "child manifest":
        # A manifest is verified before anything uses it, so the copy reads it again and goes on.
        assert status == "ok", result.get("msg", result)
    if status == "ok":
        assert hit == set(rules), "a corruption was not applied, so this run proves nothing about it"
        assert result["changed"] and result["digest"] == pushed.digest
        if dest_kind == "registry":
            assert witness.digest(f"{dest_repo}:v1") == pushed.digest
            for platform in pushed.platforms.values():
                assert witness.manifest(f"{dest_repo}@{platform.digest}") == platform.manifest
            # skopeo pulls every blob, verifying each against its digest.
            witness.copy(f"{dest_repo}:v1", f"oci:{tmp_path / 'pulled'}:v1")
        else:
            assert witness.manifest(f"oci-archive:{archive}:v1") == pushed.manifest
            blobs = archive_blobs(archive)
            assert {digest: sha256(data) for digest, data in blobs.items()} == {d: d for d in blobs}
            expected = {pushed.digest, *pushed.manifests.values(), *pushed.blob_digests()}
            assert set(blobs) == expected
    else:
        assert status == "failed" and not result["changed"], result
        message = result["msg"]
        assert proxy.host in message and any(targets[key] in message for key in hit), message
        if dest_kind == "registry":
            assert witness.digest(f"{dest_repo}:v1") == old.digest
            for platform in pushed.platforms.values():
                assert not witness.exists(f"{dest_repo}@{platform.digest}")
        else:
            assert archive.read_bytes() == archive_before
            assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_registry_info_fails_naming_a_corrupt_manifest_digest_or_reads_it_again(
    registry_open: RegistryServer,
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    pushed: Image,
    unique_repo: str,
) -> None:
    amd, arm = pushed.platforms["linux/amd64"], pushed.platforms["linux/arm64"]
    proxy = fault_proxy(registry_open)
    by_digest = f"{proxy.host}/{unique_repo}@{pushed.digest}"
    by_tag = f"{proxy.host}/{unique_repo}:v1"
    # Each rule is spent in task order: the index twice (tasks 1 and 2), the tag twice (tasks 3 and 4), and the
    # child manifest and config of the platform tasks 2 and 3 describe once each. Task 3's second read of the tag
    # must pass: the proxy corrupts the same byte every time, and two reads that agree are accepted.
    rules = [
        proxy.inject(["corrupt", "corrupt"], method="GET", path=f"/manifests/{pushed.digest}$"),
        proxy.inject("corrupt", method="GET", path=f"/manifests/{amd.digest}$"),
        proxy.inject("corrupt", method="GET", path=f"/blobs/{amd.config.digest}$"),
        proxy.inject(["corrupt", "pass", "corrupt"], method="GET", path="/manifests/v1$"),
        proxy.inject("corrupt", method="GET", path=f"/manifests/{arm.digest}$"),
        proxy.inject("corrupt", method="GET", path=f"/blobs/{arm.config.digest}$"),
    ]

    run = playbook(
        [
            task("digest, no retries", INFO, image=by_digest, retries=0),
            task("digest, a retry", INFO, image=by_digest, retries=1, platform="linux/amd64"),
            task("tag, a retry", INFO, image=by_tag, retries=1, platform="linux/arm64"),
            task("tag, no retries", INFO, image=by_tag, retries=0),
        ]
    )

    status, result = outcome(run, "digest, no retries")
    assert status == "failed", result
    assert pushed.digest in result["msg"] and proxy.host in result["msg"], result["msg"]
    for name, platform in (("digest, a retry", amd), ("tag, a retry", arm)):
        status, result = outcome(run, name)
        assert status == "ok", (name, result.get("msg", result))
        image = result["image"]
        assert image["digest"] == pushed.digest and image["platform"]["digest"] == platform.digest, name
        assert image["architecture"] == platform.platform.split("/")[1], name
        assert [layer["digest"] for layer in image["layers"]] == [layer.digest for layer in platform.layers], name
    status, result = outcome(run, "tag, no retries")
    assert status == "failed", result
    for part in (f"{unique_repo}:v1", pushed.digest, sha256(flipped(pushed.manifest)), proxy.host):
        assert part in result["msg"], (part, result["msg"])
    applied = [[(r.fault, r.status, r.corrupted_at is not None) for r in rule.applied] for rule in rules]
    once, twice = [("corrupt", 200, True)], [("corrupt", 200, True)] * 2
    assert applied == [twice, once, once, [once[0], ("pass", 200, False), once[0]], once, once], applied

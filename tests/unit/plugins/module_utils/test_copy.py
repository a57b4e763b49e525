# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy engine (plugins/module_utils/_image/copy.py) against in-memory sources and destinations."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import types

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    PermanentTransportError,
    PermissionDeniedError,
    RegistryResponseError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image import registry_store
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.docker_archive import DockerArchiveDestination
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BLOB_WRITES,
    MANIFEST_WRITES,
    BlobStream,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.layout import (
    LayoutArchiveDestination,
    LayoutDirDestination,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    FALLBACK_CHUNK_BYTES,
    RegistryDestination,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import DigestVerifier
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_FOREIGN_LAYER,
    DOCKER_SCHEMA1_SIGNED_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
    is_foreign_layer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import RetryPolicy, is_transient


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(document: dict) -> bytes:
    # Odd spacing on purpose: re-serialising would change the digest.
    return json.dumps(document, indent=1).encode()


class Store:
    """Manifests and blobs by digest, and images built into it."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}

    def blob(self, data: bytes, media_type: str = OCI_LAYER_TAR_GZIP) -> dict:
        self.blobs[digest(data)] = data
        return {"mediaType": media_type, "digest": digest(data), "size": len(data)}

    def image(self, platform: str, layers: list[bytes], extra_layers: list[dict] = ()) -> dict:
        os_name, architecture = platform.split("/")[:2]
        config = self.blob(json.dumps({"os": os_name, "architecture": architecture}).encode(), OCI_CONFIG)
        raw = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": [self.blob(layer) for layer in layers] + list(extra_layers),
            }
        )
        self.manifests[digest(raw)] = raw
        return {"mediaType": OCI_MANIFEST, "digest": digest(raw), "size": len(raw)}

    def index(self, children: list[tuple[str, dict]], annotations: list[dict | None] = ()) -> dict:
        entries = []
        for position, (platform, descriptor) in enumerate(children):
            os_name, architecture = platform.split("/")[:2]
            entry = dict(descriptor, platform={"os": os_name, "architecture": architecture})
            if annotations and annotations[position]:
                entry["annotations"] = annotations[position]
            entries.append(entry)
        raw = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        self.manifests[digest(raw)] = raw
        return {"mediaType": OCI_INDEX, "digest": digest(raw), "size": len(raw)}


class _Stream(BlobStream):
    def __init__(self, data: bytes, descriptor: Descriptor, corrupt: bool):
        self.data, self.descriptor, self.corrupt = data, descriptor, corrupt

    def chunks(self):
        verifier = DigestVerifier(self.descriptor.digest, expected_size=self.descriptor.size)
        data = self.data[:-1] + b"!" if self.corrupt else self.data
        for start in range(0, len(data), 4):
            verifier.update(data[start : start + 4])
            yield data[start : start + 4]
        verifier.verify()


class MemorySource(ImageSource):
    def __init__(self, store: Store, top: dict, origin: tuple[str, str] | None = None, corrupt: set = frozenset()):
        self.store, self.top, self.origin, self.corrupt = store, top, origin, set(corrupt)
        self.name = "memory"
        self.opened: list[str] = []
        self.read_manifests: list[str] = []
        self.lock = threading.Lock()

    def peek(self):
        return self.top["digest"], self.top["mediaType"]

    def top_manifest(self):
        self.read_manifests.append(self.top["digest"])
        return parse_manifest(self.store.manifests[self.top["digest"]], self.top["mediaType"])

    def child_manifest(self, descriptor):
        with self.lock:
            self.read_manifests.append(descriptor.digest)
        return parse_manifest(self.store.manifests[descriptor.digest], descriptor.media_type)

    def open_blob(self, descriptor):
        with self.lock:
            self.opened.append(descriptor.digest)
        if descriptor.digest not in self.store.blobs:
            raise NotFoundError("no blob %s" % descriptor.digest)
        return _Stream(self.store.blobs[descriptor.digest], descriptor, descriptor.digest in self.corrupt)

    def mount_origin(self):
        return self.origin


class MemoryDestination(ImageDestination):
    """Records every operation in order; ``name`` is the tag the top manifest is written under."""

    def __init__(self, origin: tuple[str, str] | None = None):
        self.name = "memory-dest"
        self.tag = "v1"
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.log: list[tuple] = []
        self.origin = origin
        self.mountable: set[str] = set()
        self.aborted = False
        self.lock = threading.Lock()

    def record(self, *entry):
        with self.lock:
            self.log.append(entry)

    def current(self):
        self.record("current")
        return self.tags.get(self.tag)

    def has_manifest(self, digest):
        self.record("has_manifest", digest)
        return digest in self.manifests

    def has_blob(self, descriptor):
        self.record("has_blob", descriptor.digest)
        return descriptor.digest in self.blobs

    def can_mount(self, origin):
        return self.origin is not None and origin == self.origin

    def mount_blob(self, descriptor, origin):
        self.record("mount", descriptor.digest)
        if descriptor.digest in self.mountable:
            self.blobs[descriptor.digest] = b"mounted"
            return True, None
        return False, None

    def write_blob(self, descriptor, source, location=None):
        with source.open_blob(descriptor) as stream:
            data = b"".join(stream.chunks())
        self.record("write_blob", descriptor.digest)
        self.blobs[descriptor.digest] = data

    def write_manifest(self, manifest, top):
        missing = [
            b.digest for b in manifest.blobs if b.digest not in self.blobs and not is_foreign_layer(b.media_type)
        ]
        missing += [child.digest for child in manifest.manifests if child.digest not in self.manifests]
        assert not missing, "wrote %s before %s" % (manifest.digest, missing)
        self.record("write_manifest", manifest.digest, top)
        self.manifests[manifest.digest] = manifest.raw
        if top:
            self.tags[self.tag] = manifest.digest

    def abort(self):
        self.aborted = True


PLATFORMS = ["linux/amd64", "linux/arm64", "linux/s390x"]


def multi_platform(store: Store, shared: bytes = b"shared base layer") -> dict:
    children = [(p, store.image(p, [shared, ("own layer of %s" % p).encode() * 50])) for p in PLATFORMS]
    return store.index(children)


def test_copies_every_blob_once_children_first_and_the_index_last():
    store = Store()
    top = multi_platform(store)
    source, dest = MemorySource(store, top), MemoryDestination()

    result = transfer(source, dest, jobs=4)

    assert result.changed and result.digest == top["digest"] and result.media_type == OCI_INDEX
    assert result.previous_digest is None
    # 3 configs + 3 own layers + the shared layer: the shared one travels once.
    assert result.stats.to_dict() == {
        "copied": 7,
        "mounted": 0,
        "skipped": 0,
        "bytes": sum(len(data) for data in store.blobs.values()),
    }
    assert sorted(source.opened) == sorted(store.blobs)
    writes = [entry for entry in dest.log if entry[0] == "write_manifest"]
    assert [entry[2] for entry in writes] == [False, False, False, True]
    assert writes[-1][1] == top["digest"]
    assert dest.manifests == store.manifests  # byte for byte


def test_small_requests_go_before_any_transfer_and_large_blobs_first():
    store = Store()
    big, small = b"B" * 5000, b"s" * 10
    top = store.image("linux/amd64", [small, big])
    dest = MemoryDestination()

    transfer(MemorySource(store, top), dest, jobs=1)

    kinds = [entry[0] for entry in dest.log]
    first_write = kinds.index("write_blob")
    assert "has_blob" not in kinds[first_write:]
    written = [entry[1] for entry in dest.log if entry[0] == "write_blob"]
    assert written[0] == digest(big)


def test_up_to_date_destination_costs_one_look_each_side_and_reads_nothing():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    transfer(MemorySource(store, top), dest)
    dest.log.clear()
    source = MemorySource(store, top)

    result = transfer(source, dest)

    assert not result.changed and result.digest == top["digest"] and result.previous_digest == top["digest"]
    assert dest.log == [("current",)]
    assert source.opened == [] and source.read_manifests == []


def test_present_blobs_and_child_manifests_are_skipped():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    first_child = json.loads(store.manifests[top["digest"]])["manifests"][0]["digest"]
    shared = digest(b"shared base layer")
    dest.manifests[first_child] = store.manifests[first_child]
    dest.blobs[shared] = b"shared base layer"
    for blob in parse_manifest(store.manifests[first_child]).blobs:
        dest.blobs[blob.digest] = store.blobs[blob.digest]
    source = MemorySource(store, top)

    result = transfer(source, dest)

    assert first_child not in source.read_manifests  # a child the destination has is complete
    assert result.stats.copied == 4 and result.stats.skipped == 1  # the shared layer, in the other two images
    assert shared not in source.opened


def test_force_writes_manifests_again_but_moves_no_blob_the_destination_has():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    transfer(MemorySource(store, top), dest)
    dest.log.clear()
    source = MemorySource(store, top)

    result = transfer(source, dest, force=True)

    assert result.changed and result.stats.copied == 0 and result.stats.skipped == 7
    assert source.opened == []
    assert [entry[2] for entry in dest.log if entry[0] == "write_manifest"] == [False, False, False, True]


def test_dry_run_reports_what_would_be_copied_and_writes_nothing():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    dest.blobs[digest(b"shared base layer")] = b"x"
    source = MemorySource(store, top)

    result = transfer(source, dest, dry_run=True)

    assert result.changed and result.digest == top["digest"]
    assert result.stats.copied == 6 and result.stats.skipped == 1
    assert result.stats.bytes == sum(len(d) for k, d in store.blobs.items() if k != digest(b"shared base layer"))
    assert not [entry for entry in dest.log if entry[0] in ("write_blob", "write_manifest", "mount")]
    assert source.opened == []


def test_same_registry_mounts_instead_of_copying_and_falls_back_to_a_copy():
    store = Store()
    top = store.image("linux/amd64", [b"one" * 10, b"two" * 10])
    origin = ("http://registry", "team/source")
    dest = MemoryDestination(origin=origin)
    blobs = parse_manifest(store.manifests[top["digest"]]).blobs
    dest.mountable = {blob.digest for blob in blobs[1:]}
    source = MemorySource(store, top, origin=origin)

    result = transfer(source, dest)

    assert result.stats.mounted == 2 and result.stats.copied == 1 and result.stats.bytes == blobs[0].size
    assert source.opened == [blobs[0].digest]


def test_dry_run_counts_mounts_for_the_same_registry():
    store = Store()
    top = store.image("linux/amd64", [b"one" * 10])
    origin = ("http://registry", "a")
    result = transfer(MemorySource(store, top, origin=origin), MemoryDestination(origin=origin), dry_run=True)
    assert result.stats.to_dict() == {"copied": 0, "mounted": 2, "skipped": 0, "bytes": 0}


def test_platform_subset_writes_a_new_index_with_attestations_of_kept_images():
    store = Store()
    children = [(p, store.image(p, [p.encode() * 20])) for p in PLATFORMS]
    attestation = store.image("unknown/unknown", [b"attestation"])
    children.append(("unknown/unknown", attestation))
    annotations = [None, None, None, {"vnd.docker.reference.digest": children[1][1]["digest"]}]
    top = store.index(children, annotations)
    dest = MemoryDestination()

    result = transfer(MemorySource(store, top), dest, platforms=["linux/arm64"])

    new_index = json.loads(dest.manifests[result.digest])
    assert result.digest != top["digest"]
    assert [entry["digest"] for entry in new_index["manifests"]] == [children[1][1]["digest"], attestation["digest"]]
    assert set(dest.manifests) == {result.digest, children[1][1]["digest"], attestation["digest"]}
    # everything but the list of children is kept
    assert {k: v for k, v in new_index.items() if k != "manifests"} == {"schemaVersion": 2, "mediaType": OCI_INDEX}


def test_platforms_naming_every_child_keep_the_index_bytes():
    store = Store()
    top = multi_platform(store)
    result = transfer(MemorySource(store, top), MemoryDestination(), platforms=list(reversed(PLATFORMS)))
    assert result.digest == top["digest"]


def test_platform_variants_and_aliases_match():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    result = transfer(MemorySource(store, top), dest, platforms=["linux/aarch64", "linux/arm64/v8"])
    assert len(json.loads(dest.manifests[result.digest])["manifests"]) == 1


def test_a_missing_platform_fails_naming_what_there_is_before_writing():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    with pytest.raises(NotFoundError, match="no platform linux/riscv64; it has linux/amd64, linux/arm64, linux/s390x"):
        transfer(MemorySource(store, top), dest, platforms=["linux/amd64", "linux/riscv64"])
    assert dest.manifests == {} and dest.blobs == {}


def test_a_single_platform_source_is_checked_against_platforms():
    store = Store()
    top = store.image("linux/arm64", [b"layer"])
    assert transfer(MemorySource(store, top), MemoryDestination(), platforms=["linux/arm64"]).digest == top["digest"]
    with pytest.raises(NotFoundError, match="single-platform image for linux/arm64"):
        transfer(MemorySource(store, top), MemoryDestination(), platforms=["linux/amd64"])


def test_invalid_platform_names_and_jobs_are_refused():
    store = Store()
    top = store.image("linux/arm64", [b"layer"])
    with pytest.raises(InvalidInputError, match="linux"):
        transfer(MemorySource(store, top), MemoryDestination(), platforms=["linux"])
    with pytest.raises(InvalidInputError, match="jobs"):
        transfer(MemorySource(store, top), MemoryDestination(), jobs=0)


def test_foreign_layers_are_left_out_without_failing():
    store = Store()
    foreign = {
        "mediaType": DOCKER_FOREIGN_LAYER,
        "digest": "sha256:f0" + "0" * 62,
        "size": 1000,
        "urls": ["https://example.invalid/layer"],
    }
    top = store.image("windows/amd64", [b"layer"], extra_layers=[foreign])
    source, dest = MemorySource(store, top), MemoryDestination()

    result = transfer(source, dest)

    assert result.changed and result.stats.copied == 2
    assert foreign["digest"] not in source.opened and foreign["digest"] not in [e[-1] for e in dest.log]


def test_schema1_sources_fail_as_unsupported():
    store = Store()
    raw = dumps({"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [], "signatures": []})
    store.manifests[digest(raw)] = raw
    top = {"mediaType": DOCKER_SCHEMA1_SIGNED_MANIFEST, "digest": digest(raw), "size": len(raw)}
    dest = MemoryDestination()
    with pytest.raises(UnsupportedError, match="schema 1"):
        transfer(MemorySource(store, top), dest)
    assert dest.manifests == {}


def test_a_corrupt_blob_fails_with_a_digest_error_and_writes_no_manifest():
    store = Store()
    top = multi_platform(store)
    corrupt = digest(b"own layer of linux/arm64" * 50)
    dest = MemoryDestination()

    with pytest.raises(DigestMismatchError):
        transfer(MemorySource(store, top, corrupt={corrupt}), dest, jobs=3)

    assert dest.manifests == {} and dest.tags == {} and dest.aborted
    assert corrupt not in dest.blobs


def test_the_first_failure_stops_transfers_that_have_not_started():
    store = Store()
    top = store.image("linux/amd64", [bytes([n]) * (100 + n) for n in range(20)])
    corrupt = digest(bytes([19]) * 119)  # the largest: transferred first
    source, dest = MemorySource(store, top, corrupt={corrupt}), MemoryDestination()
    with pytest.raises(DigestMismatchError):
        transfer(source, dest, jobs=1)
    assert source.opened == [corrupt]


def test_docker_archive_like_destinations_get_the_one_selected_image():
    store = Store()
    top = multi_platform(store)
    dest = MemoryDestination()
    dest.single_image = True

    result = transfer(MemorySource(store, top), dest, platforms=["linux/s390x"])

    assert parse_manifest(dest.manifests[result.digest]).config is not None
    unselected = MemoryDestination()
    unselected.single_image = True
    with pytest.raises(UnsupportedError, match="single image.*linux/amd64, linux/arm64, linux/s390x: choose one"):
        transfer(MemorySource(store, top), unselected)


# ----------------------------------------------------------------------------------------------------
# Writes: one at a time unless the destination opts in (parallel_writes)


class WriteWatchingDestination(MemoryDestination):
    """Notes, for every write, the thread it came from and how many writes of each kind were running with it."""

    def __init__(self, parallel_writes: frozenset = frozenset()):
        super().__init__(origin=("http://registry", "team/source"))  # every blob is offered as a mount first
        self.parallel_writes = parallel_writes
        self.running: dict[str, int] = {}
        self.most_at_once: dict[str, int] = {}
        self.threads: dict[str, set] = {}
        self.writes = 0

    @contextlib.contextmanager
    def writing(self, kind: str):
        with self.lock:
            self.writes += 1
            self.running[kind] = self.running.get(kind, 0) + 1
            at_once = sum(self.running.values())  # writes of every kind running now, this one included
            self.most_at_once[kind] = max(self.most_at_once.get(kind, 0), at_once)
            self.threads.setdefault(kind, set()).add(threading.get_ident())
        try:
            time.sleep(0.002)  # long enough for any other writer the engine let loose to start meanwhile
            yield
        finally:
            with self.lock:
                self.running[kind] -= 1

    def mount_blob(self, descriptor, origin):
        with self.writing("blob"):
            return super().mount_blob(descriptor, origin)

    def write_blob(self, descriptor, source, location=None):
        with self.writing("blob"):
            super().write_blob(descriptor, source, location)

    def write_manifest(self, manifest, top):
        with self.writing("top" if top else "manifest"):
            super().write_manifest(manifest, top)

    def commit(self):
        with self.writing("commit"):
            super().commit()


def many_children(store: Store, count: int = 24) -> dict:
    return store.index(
        [("linux/arch%d" % n, store.image("linux/arch%d" % n, [b"layer %d" % n * 20])) for n in range(count)]
    )


def test_a_destination_that_does_not_opt_in_gets_every_write_alone_from_one_thread():
    store = Store()
    top = many_children(store)
    origin = ("http://registry", "team/source")
    dest = WriteWatchingDestination()

    transfer(MemorySource(store, top, origin=origin), dest, jobs=16)

    # 24 configs and 24 layers, each offered as a mount then written; 24 child manifests; the index; the commit.
    assert dest.writes == 48 + 48 + 24 + 1 + 1
    assert dest.most_at_once == {"blob": 1, "manifest": 1, "top": 1, "commit": 1}
    assert set().union(*dest.threads.values()) == {threading.get_ident()}
    assert dest.manifests == store.manifests


def test_a_destination_that_opts_in_gets_those_writes_in_parallel_and_the_top_manifest_alone():
    store = Store()
    top = many_children(store)
    origin = ("http://registry", "team/source")
    registry_like = WriteWatchingDestination(frozenset({BLOB_WRITES, MANIFEST_WRITES}))

    transfer(MemorySource(store, top, origin=origin), registry_like, jobs=16)

    assert registry_like.most_at_once["blob"] > 1 and len(registry_like.threads["blob"]) > 1
    assert registry_like.most_at_once["manifest"] > 1 and len(registry_like.threads["manifest"]) > 1
    assert registry_like.most_at_once["top"] == registry_like.most_at_once["commit"] == 1
    assert registry_like.manifests == store.manifests

    blobs_only = WriteWatchingDestination(frozenset({BLOB_WRITES}))  # an OCI layout directory
    transfer(MemorySource(store, top, origin=origin), blobs_only, jobs=16)
    assert blobs_only.most_at_once["blob"] > 1
    assert blobs_only.most_at_once["manifest"] == 1 and blobs_only.threads["manifest"] == {threading.get_ident()}


def test_only_the_registry_and_a_layout_directory_take_writes_in_parallel():
    assert ImageDestination.parallel_writes == frozenset()  # the safe default: one writer at a time
    assert RegistryDestination.parallel_writes == {BLOB_WRITES, MANIFEST_WRITES}
    assert LayoutDirDestination.parallel_writes == {BLOB_WRITES}  # index.json is written by one thread
    assert LayoutArchiveDestination.parallel_writes == frozenset()
    assert DockerArchiveDestination.parallel_writes == frozenset()


# ----------------------------------------------------------------------------------------------------
# RegistryDestination: uploads, restarts, fallbacks (a fake RegistryClient)


class FakeClient:
    def __init__(self, failures: list[Exception] | None = None, mount: object = None):
        self.failures = list(failures or [])
        self.mount = mount
        self.calls: list[tuple] = []
        self.uploaded: dict[str, bytes] = {}
        self.transport = types.SimpleNamespace(
            base_url="http://registry",
            retry=RetryPolicy(3, sleep=lambda seconds: None),
        )

    def upload_blob(self, repository, digest, data, *, size=None, chunk_size=None, location=None):
        self.calls.append(("patch", location, chunk_size))
        self._receive(digest, b"".join(data))

    def put_blob(self, repository, digest, chunks, size, *, location=None):
        self.calls.append(("put", location, None))
        self._receive(digest, b"".join(chunks))

    def _receive(self, digest, body):
        if self.failures:
            raise self.failures.pop(0)
        self.uploaded[digest] = body

    def mount_blob(self, repository, digest, from_repository):
        self.calls.append(("mount", from_repository))
        if isinstance(self.mount, Exception):
            raise self.mount
        return self.mount


def registry_dest(client: FakeClient) -> RegistryDestination:
    from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference

    return RegistryDestination(client, parse_reference("127.0.0.1:5000/team/dest:v1"))


def blob_source(size: int) -> tuple[MemorySource, Descriptor]:
    store = Store()
    data = bytes(range(256)) * (size // 256 + 1)
    descriptor = store.blob(data[:size])
    top = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1}
    return MemorySource(store, top), Descriptor(OCI_LAYER_TAR_GZIP, descriptor["digest"], size)


def test_small_blobs_go_as_one_put_and_large_ones_as_a_patch(monkeypatch):
    monkeypatch.setattr(registry_store, "MONOLITHIC_BLOB_BYTES", 100)
    client = FakeClient()
    for size in (100, 101):
        source, descriptor = blob_source(size)
        registry_dest(client).write_blob(descriptor, source)
        assert client.uploaded[descriptor.digest] == source.store.blobs[descriptor.digest]
    assert [call[0] for call in client.calls] == ["put", "patch"]


def test_an_interrupted_upload_starts_again_from_a_fresh_session(monkeypatch):
    monkeypatch.setattr(registry_store, "MONOLITHIC_BLOB_BYTES", 10)
    client = FakeClient(failures=[TransportError("connection reset"), RegistryResponseError("x", status=503)])
    source, descriptor = blob_source(1000)

    registry_dest(client).write_blob(descriptor, source, location="http://registry/upload/from-a-mount")

    assert [call[1] for call in client.calls] == ["http://registry/upload/from-a-mount", None, None]
    assert source.opened == [descriptor.digest] * 3
    assert client.uploaded[descriptor.digest] == source.store.blobs[descriptor.digest]


def test_transient_errors():
    assert is_transient(TransportError("reset"))
    assert is_transient(RegistryResponseError("gone", status=404, codes=["BLOB_UPLOAD_UNKNOWN"]))
    assert not is_transient(PermanentTransportError("certificate verify failed"))
    assert not is_transient(PermissionDeniedError("denied", status=403))


def test_restarts_stop_after_the_retries_option():
    client = FakeClient(failures=[TransportError("down")] * 10)
    source, descriptor = blob_source(100)
    with pytest.raises(TransportError):
        registry_dest(client).write_blob(descriptor, source)
    assert len(client.calls) == 4  # the first try and three restarts (retries=3)


def test_a_corrupt_source_is_not_retried_but_a_mangled_upload_is(monkeypatch):
    monkeypatch.setattr(registry_store, "MONOLITHIC_BLOB_BYTES", 10)
    source, descriptor = blob_source(1000)
    source.corrupt = {descriptor.digest}
    client = FakeClient()
    with pytest.raises(DigestMismatchError):
        registry_dest(client).write_blob(descriptor, source)
    assert len(client.calls) == 1

    source.corrupt = set()
    client = FakeClient(failures=[DigestMismatchError("DIGEST_INVALID", status=400)])
    registry_dest(client).write_blob(descriptor, source)
    assert len(client.calls) == 2


def test_registries_that_refuse_a_streamed_patch_get_sized_chunks(monkeypatch):
    monkeypatch.setattr(registry_store, "MONOLITHIC_BLOB_BYTES", 10)
    client = FakeClient(failures=[RegistryResponseError("range", status=416, codes=["RANGE_INVALID"])])
    source, descriptor = blob_source(1000)
    dest = registry_dest(client)

    dest.write_blob(descriptor, source)
    dest.write_blob(descriptor, source)

    assert [call[2] for call in client.calls] == [None, FALLBACK_CHUNK_BYTES, FALLBACK_CHUNK_BYTES]


def test_registries_that_refuse_a_monolithic_put_get_sized_chunks():
    client = FakeClient(failures=[RegistryResponseError("too large", status=413)])
    source, descriptor = blob_source(1000)
    registry_dest(client).write_blob(descriptor, source)
    assert [(call[0], call[2]) for call in client.calls] == [("put", None), ("patch", FALLBACK_CHUNK_BYTES)]


@pytest.mark.parametrize(
    "mount, expected",
    [
        (types.SimpleNamespace(mounted=True, upload_location=None), (True, None)),
        (types.SimpleNamespace(mounted=False, upload_location="http://registry/u/1"), (False, "http://registry/u/1")),
        (PermissionDeniedError("denied", status=403), (False, None)),
    ],
)
def test_mount_outcomes(mount, expected):
    client = FakeClient(mount=mount)
    dest = registry_dest(client)
    assert dest.can_mount(("http://registry", "team/source"))
    assert not dest.can_mount(("http://other", "team/source"))
    assert not dest.can_mount(("http://registry", "team/dest"))
    assert dest.mount_blob(Descriptor(OCI_CONFIG, "sha256:" + "1" * 64, 3), ("http://registry", "team/s")) == expected


def test_a_dest_digest_must_be_the_copied_digest():
    from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference

    store = Store()
    top = store.image("linux/amd64", [b"layer"])
    dest = RegistryDestination(FakeClient(), parse_reference("127.0.0.1:5000/t/d@sha256:" + "a" * 64))
    with pytest.raises(InvalidInputError, match="names digest sha256:a+, but the image to copy has digest"):
        dest.target(parse_manifest(store.manifests[top["digest"]]))

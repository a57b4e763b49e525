# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image details and the concurrency helpers (plugins/module_utils/_ops/details.py, _concurrency.py)."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import OnceCache, map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError, RegistryResponseError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.details import ImageInspector, image_details
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import FetchedManifest


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class Store:
    """Content-addressed manifests and blobs, served like a registry's API, counting every request."""

    registry = "registry.test"

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add_image(self, platform: str, labels: dict | None = None, layers: int = 2, tags=()) -> tuple[str, bytes]:
        os_name, architecture, *variant = platform.split("/")
        config = {
            "created": "2024-02-03T04:05:06Z",
            "os": os_name,
            "architecture": architecture,
            "config": {"Labels": labels or {}},
            "history": [{"created_by": "step %d" % i} for i in range(layers)],
        }
        if variant:
            config["variant"] = variant[0]
        config_bytes = dumps(config)
        self.blobs[sha(config_bytes)] = config_bytes
        layer_blobs = [("layer %s %d" % (platform, i)).encode() * 10 for i in range(layers)]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER_TAR_GZIP, "digest": sha(b), "size": len(b)} for b in layer_blobs],
        }
        raw = dumps(manifest)
        self.manifests[sha(raw)] = (raw, OCI_MANIFEST)
        for tag in tags:
            self.manifests[tag] = (raw, OCI_MANIFEST)
        return sha(raw), raw

    def add_index(self, children: dict[str, tuple[str, bytes]], tags=()) -> tuple[str, bytes]:
        entries = []
        for platform, (digest, raw) in children.items():
            os_name, architecture, *variant = platform.split("/")
            entry_platform = {"os": os_name, "architecture": architecture}
            if variant:
                entry_platform["variant"] = variant[0]
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw), "platform": entry_platform})
        raw = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        self.manifests[sha(raw)] = (raw, OCI_INDEX)
        for tag in tags:
            self.manifests[tag] = (raw, OCI_INDEX)
        return sha(raw), raw

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        with self.lock:
            self.requests.append(("manifest", reference))
        time.sleep(0.001)
        if reference not in self.manifests:
            raise NotFoundError("manifest unknown: %s" % reference)
        raw, media_type = self.manifests[reference]
        return FetchedManifest(raw=raw, media_type=media_type, digest=sha(raw))

    def read_blob(self, repository: str, digest: str, limit: int = 0) -> bytes:
        with self.lock:
            self.requests.append(("blob", digest))
        time.sleep(0.001)
        if digest not in self.blobs:
            raise NotFoundError("blob unknown: %s" % digest)
        return self.blobs[digest]


def test_single_image_details() -> None:
    store = Store()
    digest, raw = store.add_image("linux/arm64/v8", labels={"a": "b"}, layers=3, tags=["v1"])
    inspector = ImageInspector(store, "linux/amd64")

    result = image_details("registry.test/app", "v1", inspector.resolve("app", "v1"))

    manifest = json.loads(raw)
    assert result == {
        "name": "registry.test/app",
        "tag": "v1",
        "digest": digest,
        "media_type": OCI_MANIFEST,
        "size": len(raw) + manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"]),
        "created": "2024-02-03T04:05:06Z",
        "labels": {"a": "b"},
        "architecture": "arm64",  # a single image is described as it is, whatever platform was asked for
        "os": "linux",
        "variant": "v8",
        "layers": [
            {"digest": layer["digest"], "size": layer["size"], "media_type": OCI_LAYER_TAR_GZIP}
            for layer in manifest["layers"]
        ],
        "history": [{"created_by": "step %d" % i} for i in range(3)],
        "platforms": [],
        "platform": None,
    }
    assert store.requests == [("manifest", "v1"), ("blob", manifest["config"]["digest"])]


def test_index_details_describe_the_index_and_the_selected_platform() -> None:
    store = Store()
    amd64 = store.add_image("linux/amd64", labels={"arch": "amd64"})
    arm64 = store.add_image("linux/arm64/v8", labels={"arch": "arm64"}, layers=1)
    index_digest, index_raw = store.add_index({"linux/amd64": amd64, "linux/arm64/v8": arm64}, tags=["multi"])

    resolved = ImageInspector(store, "linux/arm64").resolve("app", "multi")
    result = image_details("registry.test/app", "multi", resolved)

    arm_manifest = json.loads(arm64[1])
    assert result["digest"] == index_digest
    assert result["media_type"] == OCI_INDEX
    assert result["labels"] == {"arch": "arm64"}
    assert (result["architecture"], result["variant"]) == ("arm64", "v8")
    assert result["size"] == len(index_raw) + len(arm64[1]) + arm_manifest["config"]["size"] + sum(
        layer["size"] for layer in arm_manifest["layers"]
    )
    assert [p["digest"] for p in result["platforms"]] == [amd64[0], arm64[0]]
    assert result["platform"] == {
        "os": "linux",
        "architecture": "arm64",
        "variant": "v8",
        "digest": arm64[0],
        "size": len(arm64[1]),
    }


def test_index_without_the_platform_still_describes_the_index() -> None:
    store = Store()
    arm64 = store.add_image("linux/arm64")
    index_digest, index_raw = store.add_index({"linux/arm64": arm64}, tags=["arm-only"])
    inspector = ImageInspector(store, "linux/amd64")

    resolved = inspector.resolve("app", "arm-only")
    result = image_details("registry.test/app", "arm-only", resolved)

    assert (result["digest"], result["size"], result["platform"]) == (index_digest, len(index_raw), None)
    assert (result["layers"], result["history"], result["labels"], result["architecture"]) == ([], [], {}, None)
    assert len(result["platforms"]) == 1
    assert store.requests == [("manifest", "arm-only")]
    with pytest.raises(NotFoundError, match="no manifest for platform linux/amd64.*available platforms: linux/arm64"):
        inspector.layer_sources("app", resolved)


@pytest.mark.parametrize(
    "asked, matched",
    [
        (None, None),  # no platform asked for: a single image is whatever it is
        ("linux/arm64", True),  # arm64 means arm64/v8
        ("linux/arm64/v8", True),
        ("linux/arm64/v7", False),
        ("linux/amd64", False),
        ("windows/arm64", False),
    ],
)
def test_a_single_image_is_checked_against_the_platform_asked_for(asked: str | None, matched: bool | None) -> None:
    store = Store()
    store.add_image("linux/arm64/v8", layers=1, tags=["v1"])
    inspector = ImageInspector(store, asked)

    resolved = inspector.resolve("app", "v1")

    assert (resolved.platform_matched, resolved.own_platform) == (matched, "linux/arm64/v8")
    if matched is False:
        with pytest.raises(NotFoundError, match="single linux/arm64/v8 image, not %s; its files were not read" % asked):
            inspector.layer_sources("app", resolved)
    else:
        assert len(inspector.layer_sources("app", resolved)) == 1


def test_an_index_says_whether_it_holds_the_platform_the_default_one_too() -> None:
    store = Store()
    arm64 = store.add_image("linux/arm64")
    store.add_index({"linux/arm64": arm64}, tags=["arm-only"])

    assert ImageInspector(store, None).resolve("app", "arm-only").platform_matched is False  # linux/amd64
    assert ImageInspector(store, "linux/arm64").resolve("app", "arm-only").platform_matched is True
    assert ImageInspector(store, None).resolve("app", "arm-only").own_platform is None


def test_an_index_whose_platform_manifest_is_missing_is_broken_not_absent() -> None:
    store = Store()
    amd64 = store.add_image("linux/amd64")
    store.add_index({"linux/amd64": amd64}, tags=["broken"])
    del store.manifests[amd64[0]]

    with pytest.raises(RegistryResponseError, match="is incomplete: manifest unknown"):
        ImageInspector(store, "linux/amd64").resolve("app", "broken")
    with pytest.raises(NotFoundError):
        ImageInspector(store, "linux/amd64").resolve("app", "no-such-tag")


def test_configs_and_platform_manifests_are_fetched_once_across_tags_and_threads() -> None:
    store = Store()
    amd64 = store.add_image("linux/amd64", tags=["a", "b", "c"])
    store.add_index({"linux/amd64": amd64}, tags=["i1", "i2"])
    inspector = ImageInspector(store, "linux/amd64")
    tags = ["a", "b", "c", "i1", "i2"] * 4

    results = map_concurrently(lambda tag: inspector.resolve("app", tag), tags, workers=8)

    assert [r.image.digest for r in results] == [amd64[0]] * len(tags)
    config_reads = [r for r in store.requests if r[0] == "blob"]
    child_reads = [r for r in store.requests if r == ("manifest", amd64[0])]
    tag_reads = [r for r in store.requests if r[0] == "manifest" and r[1] != amd64[0]]
    assert len(config_reads) == 1
    assert len(child_reads) == 1
    assert len(tag_reads) == len(tags)  # one GET per tag, nothing more


def test_artifacts_with_another_config_type_are_not_read_as_image_configs() -> None:
    store = Store()
    config = b'{"chart": "x"}'
    store.blobs[sha(config)] = config
    raw = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": sha(config), "size": 14},
            "layers": [],
        }
    )
    store.manifests["chart"] = (raw, OCI_MANIFEST)

    result = image_details("r/app", "chart", ImageInspector(store, "linux/amd64").resolve("a", "chart"))

    assert (result["created"], result["os"], result["labels"]) == (None, None, {})
    assert result["size"] == len(raw) + 14
    assert store.requests == [("manifest", "chart")]


def test_a_config_that_is_not_json_is_reported() -> None:
    store = Store()
    digest, raw = store.add_image("linux/amd64", tags=["bad"])
    config_digest = json.loads(raw)["config"]["digest"]
    store.blobs[config_digest] = b"not json"
    with pytest.raises(RegistryResponseError, match="image config %s in app on registry registry.test" % config_digest):
        ImageInspector(store, "linux/amd64").resolve("app", "bad")


def test_once_cache_runs_each_key_once_and_forgets_failures() -> None:
    cache = OnceCache()
    calls: list[str] = []
    gate = threading.Event()

    def slow() -> str:
        calls.append("slow")
        gate.wait(5)
        return "value"

    threads = [threading.Thread(target=lambda: cache.get("k", slow)) for _thread in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    gate.set()
    for thread in threads:
        thread.join()
    assert calls == ["slow"]
    assert cache.get("k", lambda: "other") == "value"

    def boom() -> str:
        raise RegistryResponseError("boom")

    with pytest.raises(RegistryResponseError):
        cache.get("f", boom)
    assert cache.get("f", lambda: "recovered") == "recovered"


def test_map_concurrently_keeps_order_bounds_threads_and_stops_on_failure() -> None:
    active, peak = [0], [0]
    lock = threading.Lock()
    started: list[int] = []

    def work(item: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            started.append(item)
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        if item == 3:
            raise RegistryResponseError("item 3 failed")
        return item * 2

    assert map_concurrently(work, [5, 1, 2], workers=3) == [10, 2, 4]
    assert peak[0] <= 3

    started.clear()
    with pytest.raises(RegistryResponseError, match="item 3 failed"):
        map_concurrently(work, list(range(200)), workers=4)
    assert len(started) < 200  # the rest was cancelled, not run in the background
    assert map_concurrently(work, [], workers=4) == []
    assert map_concurrently(work, [7], workers=1) == [14]

"""The destination registry dies in the middle of a registry_image copy: no tag ever names an incomplete image.

The destination is a real registry process with its own storage, behind a FaultProxy that slows uploads down
(so a kill lands while blob bodies are in flight) and whose schedule hook kills the registry at a chosen request.
The registry then comes back on the same port and storage, either while the task is still retrying or after
it gave up. Whatever the first run did, skopeo must be able to copy out every image the registry names, and a
re-run must complete the copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy, ProxiedRequest
from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

IMAGE = "ocireg.registry.registry_image"
PLATFORMS = ["linux/amd64", "linux/arm64"]
SOURCE_REPO = "t/reliability-interruption-src"  # in the session's registry_open; each test pushes its own image

Playbook = Callable[..., PlaybookRun]


class Killer:
    """A FaultProxy schedule that passes every request, and kills SERVER (after DELAY seconds) at the first request
    WHEN picks; with BACK_AFTER it starts it again, on the same port and storage, that many seconds later."""

    def __init__(
        self,
        server: RegistryServer,
        when: Callable[[ProxiedRequest], bool],
        *,
        delay: float = 0.0,
        back_after: float | None = None,
    ) -> None:
        self.server = server
        self.when = when
        self.delay = delay
        self.back_after = back_after
        self.fired: ProxiedRequest | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: ProxiedRequest) -> None:
        with self._lock:
            if self.fired is not None or not self.when(request):
                return None
            self.fired = request
        if self.delay or self.back_after is not None:
            threading.Thread(target=self._kill, daemon=True).start()
        else:
            self._kill()  # before this very request is forwarded
        return None

    def _kill(self) -> None:
        time.sleep(self.delay)
        self.server.stop()  # SIGTERM: distribution without http.draintimeout exits at once
        if self.back_after is not None:
            time.sleep(self.back_after)
            self.server.start()
        self.done.set()


def blob_upload_put(request: ProxiedRequest) -> bool:
    return request.method == "PUT" and "/blobs/uploads/" in request.path


def copy_task(name: str, src: str, dest: str, **options: Any) -> dict[str, Any]:
    return {"name": name, IMAGE: {"src": src, "dest": dest, **options}, "ignore_errors": True}


def status(run: PlaybookRun, name: str) -> tuple[str, dict[str, Any]]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries, run.output
    return entries[-1]["status"], entries[-1]["result"]


def assert_nothing_incomplete(witness: Skopeo, repo: str, image: Image, tmp_path: Path) -> list[str]:
    """Every name the registry has for IMAGE (the tag, each manifest by digest) can be copied out whole, blobs
    verified. Returns the names that exist."""
    existing = []
    for index, name in enumerate([f"{repo}:v1", *(f"{repo}@{digest}" for digest in image.manifests.values())]):
        if witness.exists(name):
            existing.append(name)
            witness.copy(name, f"oci:{tmp_path / f'check-{time.monotonic_ns()}-{index}'}:x")
    return existing


@pytest.fixture
def multi_layer_image(
    registry_open: RegistryServer, image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo]
) -> Image:
    """Two platforms with three 700 kB layers each, pushed to registry_open as SOURCE_REPO:v1."""
    image = image_factory(platforms=PLATFORMS, layers=3, layer_size=700_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{SOURCE_REPO}:v1")
    return image


@pytest.mark.parametrize("comes_back", [False, True], ids=["stays-down", "comes-back"])
def test_killed_while_blobs_are_uploading(
    comes_back: bool,
    multi_layer_image: Image,
    registry_open: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    image = multi_layer_image
    dest = registry_factory("open")
    uploads = []

    def third_blob_upload(request: ProxiedRequest) -> bool:
        if blob_upload_put(request):
            uploads.append(request)
        return len(uploads) == 3

    # the third upload starts as the first two end, and is half sent 0.1 s later
    killer = Killer(dest, third_blob_upload, delay=0.1, back_after=1.0 if comes_back else None)
    proxy = fault_proxy(dest, schedule=killer)
    proxy.upload_delay = 0.02  # 64 KiB every 20 ms: a 700 kB layer takes about 0.2 s through the proxy
    retries = {} if comes_back else {"retries": 1}  # the default rides out a 1 s outage; 1 retry does not
    src, target = f"{registry_open.host}/{SOURCE_REPO}:v1", f"{proxy.host}/t/app:v1"

    first = playbook([copy_task("copy", src, target, jobs=2, **retries)])
    assert killer.fired is not None and killer.done.wait(30)
    if not comes_back:
        dest.start()
    witness = skopeo(dest)
    first_status, first_result = status(first, "copy")
    existing = assert_nothing_incomplete(witness, "t/app", image, tmp_path)
    # the kill cut blob uploads ("Broken pipe" mid-body between proxy and registry, or refused)
    assert [r for r in proxy.requests if blob_upload_put(r) and r.fault.startswith("upstream error")], proxy.requests
    if comes_back:
        # the retries outlived the outage: the copy went through, exactly
        assert first_status == "ok" and first_result["digest"] == image.digest, first_result
    else:
        assert first_status == "failed" and "t/app:v1" not in existing, (first_result, existing)
        assert "t/app" in first_result["msg"] and "Traceback" not in first_result["msg"], first_result["msg"]

    proxy.upload_delay = 0
    rerun_status, rerun = status(playbook([copy_task("copy", src, target)]), "copy")
    assert rerun_status == "ok" and rerun["digest"] == image.digest, rerun
    assert rerun["changed"] is (not comes_back)
    assert witness.digest("t/app:v1") == image.digest
    assert len(assert_nothing_incomplete(witness, "t/app", image, tmp_path)) == 1 + len(image.manifests)


def test_killed_when_the_tag_is_written(
    multi_layer_image: Image,
    registry_open: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    image = multi_layer_image
    dest = registry_factory("open")

    def tag_write(request: ProxiedRequest) -> bool:
        return request.method == "PUT" and request.path.endswith("/manifests/v1")

    killer = Killer(dest, tag_write)  # at once: the PUT of the index under the tag never reaches the registry
    proxy = fault_proxy(dest, schedule=killer)
    src, target = f"{registry_open.host}/{SOURCE_REPO}:v1", f"{proxy.host}/t/app:v1"

    first_status, first_result = status(playbook([copy_task("copy", src, target, retries=1)]), "copy")
    assert killer.fired is not None and first_status == "failed", first_result
    assert "t/app" in first_result["msg"] and "Traceback" not in first_result["msg"]
    # Everything but the tag was written before it: blobs first, then the platform manifests by digest.
    before_kill = proxy.requests[: proxy.requests.index(killer.fired)]
    written = [r.path.rsplit("/", 1)[1] for r in before_kill if r.method == "PUT" and "/manifests/" in r.path]
    assert sorted(written) == sorted(image.manifests.values())
    assert [r.upstream_status for r in before_kill if r.method == "PUT"] == [201] * len(
        [r for r in before_kill if r.method == "PUT"]
    )
    assert killer.fired.upstream_status is None  # the tag write never reached the registry

    dest.start()
    witness = skopeo(dest)
    existing = assert_nothing_incomplete(witness, "t/app", image, tmp_path)
    assert "t/app:v1" not in existing and len(existing) == len(image.manifests)

    mark = proxy.mark()
    rerun_status, rerun = status(playbook([copy_task("copy", src, target)]), "copy")
    assert rerun_status == "ok" and rerun["changed"] and rerun["digest"] == image.digest, rerun
    # the re-run found the platform manifests in place (so their blobs too): only the tag was written
    assert rerun["blobs"]["copied"] == rerun["blobs"]["bytes"] == 0
    assert [r.path for r in proxy.requests_since(mark) if r.method in ("PUT", "POST", "PATCH")] == [
        "/v2/t/app/manifests/v1"
    ]
    assert witness.digest("t/app:v1") == image.digest
    assert len(assert_nothing_incomplete(witness, "t/app", image, tmp_path)) == 1 + len(image.manifests)

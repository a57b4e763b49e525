# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy engine: move one image (its manifests and blobs) from a source to a destination.

The engine sees only :class:`ImageSource` and :class:`ImageDestination`. Registries are implemented
in ``registry_store.py``; local stores in ``layout.py`` (OCI layouts and archives) and ``docker_archive.py``,
opened by ``stores.py``. :func:`copy_image` is the registry-to-registry entry point other modules use.

Order of work, so that a failed or interrupted copy never leaves a name pointing at an incomplete
image, and small requests go before large transfers:

1. ``HEAD`` the source and the destination name; equal digests mean nothing to do.
2. Read the top manifest (bytes kept exactly as read); select platforms.
3. ``HEAD`` child manifests at the destination; read the missing ones from the source.
4. ``HEAD`` every blob of the missing images at the destination; the present ones are skipped.
5. Mount (same registry) or stream (anything else) the missing blobs, one transfer per digest however
   many images share it; digests are verified while streaming.
6. Write child manifests by digest, then the top manifest under its name, last; then commit.

Reads (steps 1 to 4) run ``jobs`` at a time. Writes (steps 5 and 6) run one at a time, on the calling
thread, unless the destination's ``parallel_writes`` names that kind of write: a local store written
from several threads corrupts itself (two members of one tar interleaved, two updates of one
``index.json``), and the engine is where that promise is kept, so no store has to lock against it.
A registry takes blobs and child manifests ``jobs`` at a time; an OCI layout directory takes blobs so.
The top manifest and the commit are always written alone, after every other write has finished.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import run_all
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BLOB_WRITES,
    MANIFEST_WRITES,
    CopyResult,
    CopyStats,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    RegistryDestination,
    RegistrySource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    ManifestInfo,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_foreign_layer
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    is_attestation,
    parse_platforms,
    platform_matches,
    platform_names,
    select_children,
    subset_index,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients


def image_platform(manifest: ManifestInfo, source: ImageSource) -> dict[str, Any]:
    """os/architecture/variant of a single image, from its config."""
    if manifest.config is None or manifest.config.size > MAX_CONFIG_BYTES:
        return {}
    try:
        config = json.loads(source.read_blob(manifest.config))
    except ValueError:
        return {}
    if not isinstance(config, dict):
        return {}
    return {key: config.get(key) for key in ("os", "architecture", "variant")}


class _Copier:
    def __init__(
        self,
        source: ImageSource,
        dest: ImageDestination,
        platforms: list[str] | None,
        jobs: int,
        force: bool,
        dry_run: bool,
        pool: ThreadPoolExecutor | None,
    ):
        self.source = source
        self.dest = dest
        self.platforms = platforms
        self.jobs = jobs
        self.force = force
        self.dry_run = dry_run
        self.pool = pool
        self.stats = CopyStats()
        self._lock = threading.Lock()

    def run(self) -> CopyResult:
        source, dest = self.source, self.dest
        if self.platforms is None and not dest.single_image:
            both = run_all(lambda call: call(), [dest.current, source.peek], self.pool)
            current, peeked = both[0], both[1]
            if peeked is not None and not self.force and dest.up_to_date(peeked[0], current):
                return CopyResult(peeked[0], peeked[1], False, self.stats, peeked[0])
        else:
            current = dest.current()
        top = self._select(source.top_manifest())
        digest, media_type = dest.target(top)
        if not self.force and dest.up_to_date(digest, current):
            return CopyResult(digest, media_type, False, self.stats, digest)
        children, images = self._manifests_to_write(top)
        dest.prepare(images, source, self.dry_run)
        missing = self._missing_blobs(images)
        if self.dry_run:
            self._count_dry_run(missing)
            return CopyResult(digest, media_type, True, self.stats, current)
        try:
            self._transfer(missing)
            self._write_all(MANIFEST_WRITES, lambda manifest: dest.write_manifest(manifest, False), children)
            # Alone and last whatever parallel_writes says: they name the image, once all it needs is written.
            dest.write_manifest(top, True)
            dest.commit()
        except BaseException:
            dest.abort()
            raise
        return CopyResult(digest, media_type, True, self.stats, current)

    # -- what to copy -------------------------------------------------------------------------------

    def _select(self, top: ManifestInfo) -> ManifestInfo:
        if not top.is_index:
            if self.platforms:
                self._check_single_platform(top)
            return top
        positions = list(range(len(top.manifests)))
        if self.platforms:
            positions = select_children(top, self.platforms)
        if self.dest.single_image:
            images = [position for position in positions if not is_attestation(top.manifests[position])]
            if len(images) != 1:
                raise UnsupportedError(
                    "%s holds a single image, and the source is an index of %s: choose one with platforms"
                    % (self.dest.name, platform_names(top) if not self.platforms else ", ".join(self.platforms))
                )
            child = self.source.child_manifest(top.manifests[images[0]])
            if child.is_index:
                raise UnsupportedError("%s holds a single image, and the source is a nested index" % self.dest.name)
            return child
        if len(positions) < len(top.manifests):
            return subset_index(top, positions)
        return top

    def _check_single_platform(self, top: ManifestInfo) -> None:
        platform = image_platform(top, self.source)
        if not platform.get("os") or not platform.get("architecture"):
            return  # nothing to compare with (an artifact): the one manifest is what there is
        if not any(platform_matches(wanted, platform) for wanted in self.platforms or []):
            raise NotFoundError(
                "The source image has no platform %s; it is a single-platform image for %s"
                % (", ".join(self.platforms or []), format_platform(platform))
            )

    def _manifests_to_write(self, top: ManifestInfo) -> tuple[list[ManifestInfo], list[ManifestInfo]]:
        """Child manifests the destination lacks (children before their index) and every image among them."""
        children: list[ManifestInfo] = []
        images: list[ManifestInfo] = [] if top.is_index else [top]
        if top.is_index:
            self._collect(top, children, images, set())
        return children, images

    def _collect(self, index: ManifestInfo, children: list, images: list, seen: set) -> None:
        wanted = []
        for descriptor in index.manifests:
            if descriptor.digest not in seen:
                seen.add(descriptor.digest)
                wanted.append(descriptor)
        if not self.force:
            present = run_all(lambda descriptor: self.dest.has_manifest(descriptor.digest), wanted, self.pool)
            wanted = [descriptor for descriptor, have in zip(wanted, present) if not have]
        for manifest in run_all(self.source.child_manifest, wanted, self.pool):
            if manifest.is_index:
                self._collect(manifest, children, images, seen)
            else:
                images.append(manifest)
            children.append(manifest)

    def _missing_blobs(self, images: list[ManifestInfo]) -> list[Descriptor]:
        unique: dict[str, Descriptor] = {}
        for image in images:
            for blob in image.blobs:
                if not is_foreign_layer(blob.media_type):
                    unique.setdefault(blob.digest, blob)
        blobs = list(unique.values())
        present = run_all(self.dest.has_blob, blobs, self.pool)
        self.stats.skipped = sum(1 for have in present if have)
        return [blob for blob, have in zip(blobs, present) if not have]

    # -- writing ------------------------------------------------------------------------------------

    def _write_all(self, kind: str, write: Callable[[Any], None], items: list[Any]) -> None:
        """``write(item)`` for every item: on the pool when the destination takes ``kind`` of write from several
        threads at once (``parallel_writes``), else one at a time on this thread. Every write but the top
        manifest and the commit (written alone, after these) goes through here."""
        run_all(write, items, self.pool if kind in self.dest.parallel_writes else None)

    # -- moving blobs -------------------------------------------------------------------------------

    def _count_dry_run(self, missing: list[Descriptor]) -> None:
        origin = self.source.mount_origin()
        if origin is not None and self.dest.can_mount(origin):
            self.stats.mounted = len(missing)
            return
        self.stats.copied = len(missing)
        self.stats.bytes = sum(blob.size for blob in missing)

    def _transfer(self, missing: list[Descriptor]) -> None:
        # Largest first: with a bounded pool, the long transfers start early and finish together.
        ordered = sorted(missing, key=lambda blob: blob.size, reverse=True)
        self._write_all(BLOB_WRITES, self._move, ordered)

    def _move(self, blob: Descriptor) -> None:
        origin = self.source.mount_origin()
        location = None
        if origin is not None and self.dest.can_mount(origin):
            mounted, location = self.dest.mount_blob(blob, origin)
            if mounted:
                with self._lock:
                    self.stats.mounted += 1
                return
        self.dest.write_blob(blob, self.source, location)
        with self._lock:
            self.stats.copied += 1
            self.stats.bytes += blob.size


def transfer(
    source: ImageSource,
    dest: ImageDestination,
    *,
    platforms: list[str] | None = None,
    jobs: int = 8,
    force: bool = False,
    dry_run: bool = False,
) -> CopyResult:
    """Copy the image ``source`` names to ``dest``; see the module docstring for the order of work."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidInputError("jobs must be a whole number of 1 or more, got %r" % (jobs,))
    platforms = parse_platforms(platforms)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ocireg-copy") if jobs > 1 else None
    try:
        return _Copier(source, dest, platforms, jobs, force, dry_run, pool).run()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def copy_image(clients: RegistryClients, source: Reference, dest: Reference, **options: Any) -> CopyResult:
    """Copy an image between registries or repositories.

    ``source`` names a tag or digest. ``dest`` without a tag (or digest) pushes by digest only. ``options`` are
    those of :func:`transfer`: a ``platforms`` subset of an index writes a new index, with a new digest; ``dry_run``
    only makes the ``HEAD`` checks (and reads the source's manifests) and reports what a real run would copy.
    """
    if not isinstance(source, Reference) or not isinstance(dest, Reference):
        raise InvalidInputError("copy_image needs registry references for source and dest")
    source_side = RegistrySource(clients.for_reference(source), source)
    return transfer(source_side, RegistryDestination(clients.for_reference(dest), dest), **options)

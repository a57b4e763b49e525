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
7. With ``referrers``: find the attachments of every manifest copied byte for byte (found up to date too, so that a
   signature added at the source later arrives), and carry each, subject first, through a copier of its own
   (``attachment_copy.py``). A platform subset is a new digest: only its children's attachments travel.

Reads (steps 1 to 4) run ``jobs`` at a time. Writes (steps 5 and 6) run one at a time, on the calling
thread, unless the destination's ``parallel_writes`` names that kind of write: a local store written
from several threads corrupts itself (two members of one tar interleaved, two updates of one
``index.json``), and the engine is where that promise is kept, so no store has to lock against it.
A registry takes blobs and child manifests ``jobs`` at a time; an OCI layout directory takes blobs so.
The top manifest and the commit are always written alone, after every other write has finished.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import run_all
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachment_copy import (
    AttachmentCarrier,
    descendants,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BLOB_WRITES,
    MANIFEST_WRITES,
    CopyProgress,
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
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_foreign_layer, is_index
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
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import wanted_types
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
        progress: CopyProgress | None = None,
    ):
        self.source = source
        self.dest = dest
        self.platforms = platforms
        self.jobs = jobs
        self.force = force
        self.dry_run = dry_run
        self.pool = pool
        self.progress = progress if progress is not None else CopyProgress()
        self.stats = CopyStats()
        self._lock = threading.Lock()
        # What run() learnt, for the attachments: the source's top manifest as read (None when the HEADs alone showed
        # the destination up to date: then ``peeked``), and the one written (a platform subset differs from it).
        self.peeked: tuple[str, str] | None = None
        self.source_top: ManifestInfo | None = None
        self.top: ManifestInfo | None = None

    def run(self) -> CopyResult:
        source, dest = self.source, self.dest
        if self.platforms is None and not dest.single_image:
            both = run_all(lambda call: call(), [dest.current, source.peek], self.pool)
            current, peeked = both[0], both[1]
            if peeked is not None and not self.force and dest.up_to_date(peeked[0], current):
                self.peeked = peeked
                return CopyResult(peeked[0], peeked[1], False, self.stats, peeked[0])
        else:
            current = dest.current()
        self.source_top = source.top_manifest()
        top = self.top = self._select(self.source_top)
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
            self.progress.changed = True
            dest.commit()
        except BaseException:
            dest.abort()
            raise
        return CopyResult(digest, media_type, True, self.stats, current)

    def copied_subjects(self) -> tuple[list[str], str | None]:
        """The digests this copy wrote (or found) byte for byte, whose attachments travel with them: the top manifest
        and every manifest under it, or, for a platform subset (a new digest, which nothing signed), only those
        under it; and the source's top digest when the subset left its attachments behind, else None."""
        if self.source_top is None and self.peeked is not None:
            digest, media_type = self.peeked
            if not is_index(media_type):
                return [digest], None
            # Up to date from the HEADs alone, and an index: its children's attachments are checked too (one GET).
            self.source_top = self.top = self.source.child_manifest(Descriptor(media_type, digest, 0))
        if self.source_top is None or self.top is None:
            return [], None
        under = descendants(self.source, self.top) if self.top.is_index else []
        if self.top.digest != self.source_top.digest:
            return under, self.source_top.digest
        return [self.top.digest] + under, None

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
    referrers: bool = False,
    referrer_types: Any = None,
    progress: CopyProgress | None = None,
) -> CopyResult:
    """Copy the image ``source`` names to ``dest``; see the module docstring for the order of work.

    With ``referrers``, then carry the attachments of every manifest copied byte for byte (``referrer_types``: which,
    as ``_oci/referrers.wanted_types`` reads it; None: all): see ``attachment_copy.py``. ``progress`` (optional) says,
    after a failure, whether the destination already changed."""
    _check_jobs(jobs)
    platforms = parse_platforms(platforms)
    wanted = wanted_types(referrer_types)
    if referrers:
        _check_registries(source, dest)
    progress = progress if progress is not None else CopyProgress()
    with _pool(jobs) as pool:
        copier = _Copier(source, dest, platforms, jobs, force, dry_run, pool, progress)
        result = copier.run()
        if referrers:
            subjects, left_behind = copier.copied_subjects()
            _carry(result, source, dest, subjects, left_behind, wanted, copier)  # type: ignore[arg-type]
        return result


def copy_image(clients: RegistryClients, source: Reference, dest: Reference, **options: Any) -> CopyResult:
    """Copy an image between registries or repositories.

    ``source`` names a tag or digest. ``dest`` without a tag (or digest) pushes by digest only. ``options`` are
    those of :func:`transfer`: a ``platforms`` subset of an index writes a new index, with a new digest; ``dry_run``
    only makes the ``HEAD`` checks (and reads the source's manifests) and reports what a real run would copy;
    ``referrers`` carries the attachments too.
    """
    if not isinstance(source, Reference) or not isinstance(dest, Reference):
        raise InvalidInputError("copy_image needs registry references for source and dest")
    source_side = RegistrySource(clients.for_reference(source), source)
    return transfer(source_side, RegistryDestination(clients.for_reference(dest), dest), **options)


def carry_attachments(
    clients: RegistryClients,
    source: Reference,
    dest: Reference,
    *,
    media_type: str | None = None,
    referrer_types: Any = None,
    jobs: int = 8,
    dry_run: bool = False,
    progress: CopyProgress | None = None,
) -> CopyResult:
    """Carry the attachments of the image ``source`` names (by digest) to the repository ``dest`` names, which holds
    that image already (``registry_tag`` when its tags are up to date, or in check mode): as :func:`copy_image` with
    ``referrers`` does after the copy, without looking at the image again. ``media_type`` is the image's, when a
    ``HEAD`` told it already; an index has its children's attachments carried too."""
    _check_jobs(jobs)
    wanted = wanted_types(referrer_types)
    if not isinstance(source, Reference) or not isinstance(dest, Reference) or not source.digest:
        raise InvalidInputError("carry_attachments needs a source reference by digest and a destination reference")
    source_side = RegistrySource(clients.for_reference(source), source)
    dest_side = RegistryDestination(clients.for_reference(dest), dest)
    if media_type is None:
        media_type = source_side.peek()[1]  # type: ignore[index]
    result = CopyResult(source.digest, media_type, False, CopyStats(), source.digest)
    with _pool(jobs) as pool:
        copier = _Copier(source_side, dest_side, None, jobs, False, dry_run, pool, progress)
        copier.peeked = (source.digest, media_type)
        subjects, _left_behind = copier.copied_subjects()
        _carry(result, source_side, dest_side, subjects, None, wanted, copier)
    return result


def _carry(
    result: CopyResult,
    source: RegistrySource,
    dest: RegistryDestination,
    subjects: list[str],
    left_behind: str | None,
    wanted: tuple[str, ...] | None,
    copier: _Copier,
) -> None:
    """Carry the attachments of ``subjects`` into ``result`` (``referrers``, ``warnings``, ``changed``); each goes
    through a copier of its own with the same pool and options, so blobs are skipped, mounted or streamed alike."""

    def copy_one(attachment_source: ImageSource, attachment_dest: ImageDestination) -> CopyResult:
        options = (copier.jobs, copier.force, copier.dry_run, copier.pool)
        return _Copier(attachment_source, attachment_dest, None, *options).run()

    carrier = AttachmentCarrier(
        source.client,
        source.reference,
        dest.client,
        dest.reference,
        wanted,
        copy_one,
        dry_run=copier.dry_run,
        force=copier.force,
        progress=copier.progress,
    )
    try:
        if left_behind is not None:
            lost = carrier.finder.of(left_behind)
            if lost:
                result.warnings.append(
                    "The platform subset written to %s is a new index (%s), which the %d attachment%s of the source"
                    " index %s (%s) do not name: %s not copied. The attachments of the platforms' own manifests were."
                    % (
                        dest.name,
                        result.digest,
                        len(lost),
                        "s" if len(lost) > 1 else "",
                        left_behind,
                        ", ".join(sorted({item.artifact_type or item.via for item in lost})),
                        "they were" if len(lost) > 1 else "it was",
                    )
                )
        carried = carrier.carry_all(subjects)
    except RegistryError as err:
        if result.changed:
            what = "%s was copied to %s, but carrying its attachments (signatures, attestations, SBOMs) from %s" % (
                result.digest,
                dest.name,
                source.name,
            )
        else:
            what = "Carrying the attachments (signatures, attestations, SBOMs) of %s from %s to %s" % (
                result.digest,
                source.name,
                dest.name,
            )
        raise err.reworded(
            "%s failed: %s. Nothing names what was not written; a new run carries the rest"
            % (what, str(err).rstrip("."))
        ) from None
    result.referrers = [item.to_dict() for item in carried]
    result.warnings.extend(carrier.warnings)
    result.changed = result.changed or any(item.changed for item in carried)


def _check_jobs(jobs: Any) -> None:
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidInputError("jobs must be a whole number of 1 or more, got %r" % (jobs,))


def _check_registries(source: ImageSource, dest: ImageDestination) -> None:
    """Attachments are found and written through the registry API: both sides must be registries."""
    local = [side.name for side in (source, dest) if not isinstance(side, (RegistrySource, RegistryDestination))]
    if local:
        raise UnsupportedError(
            "referrers: true is not supported with %s: attachments (signatures, attestations, SBOMs) are carried only"
            " between registries, as local image stores (oci:, oci-archive:, docker-archive:) do not hold them yet."
            " Copy without referrers, or between registries" % " and ".join(local)
        )


@contextlib.contextmanager
def _pool(jobs: int) -> Iterator[ThreadPoolExecutor | None]:
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ocireg-copy") if jobs > 1 else None
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy engine: move one image (its manifests and blobs) from a source to a destination.

The engine sees only :class:`ImageSource` and :class:`ImageDestination`. Registries are implemented
here (:class:`RegistrySource`, :class:`RegistryDestination`); local stores (OCI layouts and archives)
in ``_stores.py``. :func:`copy_image` is the registry-to-registry entry point other modules use.

Order of work, so that a failed or interrupted copy never leaves a name pointing at an incomplete
image, and small requests go before large transfers:

1. ``HEAD`` the source and the destination name; equal digests mean nothing to do.
2. Read the top manifest (bytes kept exactly as read); select platforms.
3. ``HEAD`` child manifests at the destination; read the missing ones from the source.
4. ``HEAD`` every blob of the missing images at the destination; the present ones are skipped.
5. Mount (same registry) or stream (anything else) the missing blobs, ``jobs`` at a time, one
   transfer per digest however many images share it; digests are verified while streaming.
6. Write child manifests by digest, then the top manifest under its name, last.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from ansible_collections.ocireg.registry.plugins.module_utils._clients import RegistryClients
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    TooManyRequestsError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._manifest import (
    Descriptor,
    ManifestInfo,
    format_platform,
    is_foreign_layer,
    parse_manifest,
    parse_platform,
    platform_matches,
)
from ansible_collections.ocireg.registry.plugins.module_utils._reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._retry import PermanentTransportError

# Blobs up to this size go as one streamed monolithic PUT (POST + PUT, with Content-Length); larger ones
# as one streamed PATCH (POST + PATCH + PUT). Neither holds a blob in memory. Fewer requests matter: a
# registry commits (and distribution fsyncs) something for each.
MONOLITHIC_BLOB_BYTES = 16 * 1024 * 1024
# Sized chunks for registries that refuse a streamed body (411, 413, 416, RANGE_INVALID); 5 MiB is the
# smallest part ECR accepts.
FALLBACK_CHUNK_BYTES = 5 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
# buildx attestation manifests name the image manifest they describe with this annotation.
REFERENCE_DIGEST_ANNOTATION = "vnd.docker.reference.digest"
TRANSIENT_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
SIZED_CHUNK_STATUSES = frozenset((411, 413, 416))
SIZED_CHUNK_CODES = frozenset(("RANGE_INVALID", "SIZE_INVALID"))


@dataclasses.dataclass
class CopyStats:
    """What happened to the blobs of a copy (or would happen, in a dry run)."""

    copied: int = 0
    mounted: int = 0
    skipped: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CopyResult:
    """``digest``/``media_type`` of what the destination holds (or would hold) after the copy."""

    digest: str
    media_type: str
    changed: bool
    stats: CopyStats
    previous_digest: str | None = None


# ----------------------------------------------------------------------------------------------------
# The two sides


class BlobStream:
    """An open blob: iterate :meth:`chunks` once (verified against the digest at the end), then close."""

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class ImageSource:
    """Where an image is read from. Every read is verified against the digest it was asked for."""

    name = ""
    # How often a failed blob read may be started again (registries: the ``retries`` option).
    retries = 0

    def peek(self) -> tuple[str, str] | None:
        """``(digest, media_type)`` of the top manifest when it is cheap to learn (a HEAD), else None."""
        return None

    def top_manifest(self) -> ManifestInfo:
        raise NotImplementedError

    def child_manifest(self, descriptor: Descriptor) -> ManifestInfo:
        raise NotImplementedError

    def open_blob(self, descriptor: Descriptor) -> BlobStream:
        raise NotImplementedError

    def read_blob(self, descriptor: Descriptor) -> bytes:
        with self.open_blob(descriptor) as stream:
            return b"".join(stream.chunks())

    def mount_origin(self) -> tuple[str, str] | None:
        """``(registry base URL, repository)`` when blobs could be mounted from here."""
        return None

    def close(self) -> None:
        pass


class ImageDestination:
    """Where an image is written. Nothing may be named before everything it needs is written."""

    name = ""
    # Blobs are written one at a time (an archive is written front to back).
    serial = False
    # Holds one image manifest, not an index (docker-archive).
    single_image = False

    def current(self) -> str | None:
        """The digest the destination's name resolves to now, or None."""
        return None

    def target(self, top: ManifestInfo) -> tuple[str, str]:
        """``(digest, media_type)`` the destination will report once it holds ``top``."""
        return top.digest, top.media_type

    def up_to_date(self, digest: str, current: str | None) -> bool:
        """True when the destination already holds ``digest`` under its name."""
        return current == digest

    def prepare(self, images: list[ManifestInfo], source: ImageSource, dry_run: bool) -> None:
        """Check that the destination can hold these images; fail before anything is written."""

    def has_manifest(self, digest: str) -> bool:
        return False

    def has_blob(self, descriptor: Descriptor) -> bool:
        return False

    def can_mount(self, origin: tuple[str, str]) -> bool:
        return False

    def mount_blob(self, descriptor: Descriptor, origin: tuple[str, str]) -> tuple[bool, str | None]:
        """``(mounted, upload location)``; not mounted and no location means: upload it normally."""
        return False, None

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        raise NotImplementedError

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Make the written image visible (archives: move the finished file into place)."""

    def abort(self) -> None:
        """Throw away what a failed copy wrote that nothing names (temporary files)."""

    def delete(self, dry_run: bool) -> tuple[str | None, str | None]:
        """Remove what the name resolves to; ``(digest, media_type)`` removed, or ``(None, None)``."""
        raise UnsupportedError("Deleting is not supported for %s" % self.name)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------------------
# Registries


class _RegistryBlobStream(BlobStream):
    def __init__(self, reader: Any):
        self.reader = reader

    def chunks(self) -> Iterator[bytes]:
        return self.reader.chunks()

    def close(self) -> None:
        self.reader.close()


class RegistrySource(ImageSource):
    def __init__(self, client: Any, reference: Reference):
        if not reference.manifest_reference:
            raise InvalidReferenceError(
                "The source %s names no tag or digest: say which image to copy, e.g. '%s:latest'"
                % (reference.canonical, reference.canonical)
            )
        self.client = client
        self.reference = reference
        self.repository = reference.repository
        self.name = reference.canonical
        self.retries = client.transport.options.retries

    def peek(self) -> tuple[str, str] | None:
        descriptor = self.client.head_manifest(self.repository, self.reference.manifest_reference)
        if descriptor is None:
            raise self._missing()
        return descriptor.digest, descriptor.media_type

    def top_manifest(self) -> ManifestInfo:
        try:
            fetched = self.client.get_manifest(self.repository, self.reference.manifest_reference)
        except NotFoundError:
            raise self._missing() from None
        return parse_manifest(fetched.raw, fetched.media_type)

    def child_manifest(self, descriptor: Descriptor) -> ManifestInfo:
        fetched = self.client.get_manifest(self.repository, descriptor.digest)
        return parse_manifest(fetched.raw, fetched.media_type or descriptor.media_type)

    def open_blob(self, descriptor: Descriptor) -> BlobStream:
        return _RegistryBlobStream(self.client.open_blob(self.repository, descriptor.digest, descriptor.size))

    def mount_origin(self) -> tuple[str, str]:
        return self.client.transport.base_url, self.repository

    def _missing(self) -> NotFoundError:
        return NotFoundError(
            "The source image %s does not exist (registry %s has no manifest %s in repository %s)"
            % (self.name, self.reference.registry, self.reference.manifest_reference, self.repository),
            registry=self.reference.registry,
            repository=self.repository,
        )


class _Watched:
    """Passes chunks through and notes whether the source reached its end (and so verified them)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks
        self.finished = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        self.finished = True


def is_transient(err: RegistryError, source_verified: bool = False) -> bool:
    """Worth starting a blob transfer again from scratch (a fresh download and a fresh upload session)."""
    if isinstance(err, DigestMismatchError):
        # The source bytes verified, yet the registry saw others: they were mangled on the way.
        return source_verified
    if isinstance(err, PermanentTransportError):
        return False
    if isinstance(err, (TransportError, TooManyRequestsError)):
        return True
    return err.status in TRANSIENT_STATUSES or "BLOB_UPLOAD_UNKNOWN" in err.codes


def _wants_sized_chunks(err: RegistryError) -> bool:
    return err.status in SIZED_CHUNK_STATUSES or bool(SIZED_CHUNK_CODES.intersection(err.codes))


class RegistryDestination(ImageDestination):
    """A repository; the name is the reference's tag, or none (push by digest only)."""

    def __init__(self, client: Any, reference: Reference):
        self.client = client
        self.reference = reference
        self.repository = reference.repository
        self.name = reference.canonical
        self.retries = client.transport.options.retries
        self.chunk_size: int | None = None
        self._manifests: dict[str, bool] = {}
        self._lock = threading.Lock()

    def current(self) -> str | None:
        if self.reference.tag is None:
            return None
        descriptor = self.client.head_manifest(self.repository, self.reference.tag)
        return descriptor.digest if descriptor is not None else None

    def target(self, top: ManifestInfo) -> tuple[str, str]:
        if self.reference.digest and self.reference.digest != top.digest:
            raise InvalidInputError(
                "dest %s names digest %s, but the image to copy has digest %s; give dest without a digest"
                % (self.name, self.reference.digest, top.digest)
            )
        return top.digest, top.media_type

    def up_to_date(self, digest: str, current: str | None) -> bool:
        if self.reference.digest and digest != self.reference.digest:
            return False
        if self.reference.tag is not None:
            return current == digest
        return self.has_manifest(digest)

    def has_manifest(self, digest: str) -> bool:
        with self._lock:
            known = self._manifests.get(digest)
        if known is None:
            known = self.client.head_manifest(self.repository, digest) is not None
            with self._lock:
                self._manifests[digest] = known
        return known

    def has_blob(self, descriptor: Descriptor) -> bool:
        return self.client.head_blob(self.repository, descriptor.digest) is not None

    def can_mount(self, origin: tuple[str, str]) -> bool:
        return origin[0] == self.client.transport.base_url and origin[1] != self.repository

    def mount_blob(self, descriptor: Descriptor, origin: tuple[str, str]) -> tuple[bool, str | None]:
        try:
            result = self.client.mount_blob(self.repository, descriptor.digest, origin[1])
        except RegistryError:
            # A registry that errors on a mount may still take a plain upload: try that once.
            return False, None
        return result.mounted, result.upload_location

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        attempt = 0
        while True:
            watched: _Watched | None = None
            try:
                with source.open_blob(descriptor) as stream:
                    watched = _Watched(stream.chunks())
                    if descriptor.size <= MONOLITHIC_BLOB_BYTES and self.chunk_size is None:
                        self.client.put_blob(
                            self.repository, descriptor.digest, watched, descriptor.size, location=location
                        )
                    else:
                        self.client.upload_blob(
                            self.repository,
                            descriptor.digest,
                            watched,
                            size=descriptor.size,
                            chunk_size=self.chunk_size,
                            location=location,
                        )
                return
            except RegistryError as err:
                location = None  # whatever happened to that upload session, the next attempt starts a fresh one
                if watched is not None and self.chunk_size is None and _wants_sized_chunks(err):
                    self.chunk_size = FALLBACK_CHUNK_BYTES
                    continue
                attempt += 1
                verified = watched is not None and watched.finished
                if attempt > max(self.retries, source.retries) or not is_transient(err, verified):
                    raise
                self.client.transport.backoff.wait(attempt, None)

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        reference = self.reference.tag if top and self.reference.tag else manifest.digest
        self.client.put_manifest(self.repository, reference, manifest.raw, manifest.media_type)

    def delete(self, dry_run: bool) -> tuple[str | None, str | None]:
        reference = self.reference.manifest_reference
        if reference is None:
            raise InvalidReferenceError(
                "dest %s names no tag or digest: say which image to delete, e.g. '%s:TAG'" % (self.name, self.name)
            )
        descriptor = self.client.head_manifest(self.repository, reference)
        if descriptor is None:
            return None, None
        if not dry_run:
            self.client.delete_manifest(self.repository, descriptor.digest)
        return descriptor.digest, descriptor.media_type


# ----------------------------------------------------------------------------------------------------
# Platforms


def _is_attestation(descriptor: Descriptor) -> bool:
    platform = descriptor.platform or {}
    return "unknown" in (platform.get("os"), platform.get("architecture")) or bool(
        (descriptor.annotations or {}).get(REFERENCE_DIGEST_ANNOTATION)
    )


def _available(index: ManifestInfo) -> str:
    names = [
        format_platform(child.platform)
        for child in index.manifests
        if child.platform and child.platform.get("os") and not _is_attestation(child)
    ]
    return ", ".join(names) if names else "none"


def select_children(index: ManifestInfo, platforms: list[str]) -> list[int]:
    """Positions of the children of ``index`` to keep for ``platforms``, with their attestations."""
    chosen: list[int] = []
    for wanted in platforms:
        found = [
            position
            for position, child in enumerate(index.manifests)
            if child.platform is not None and not _is_attestation(child) and platform_matches(wanted, child.platform)
        ]
        if not found:
            raise NotFoundError(
                "The source image has no platform %s; it has %s" % (wanted, _available(index)),
            )
        chosen.extend(position for position in found[:1] if position not in chosen)
    kept_digests = {index.manifests[position].digest for position in chosen}
    for position, child in enumerate(index.manifests):
        described = (child.annotations or {}).get(REFERENCE_DIGEST_ANNOTATION)
        if described in kept_digests and position not in chosen:
            chosen.append(position)
    return sorted(chosen)


def subset_index(index: ManifestInfo, positions: list[int]) -> ManifestInfo:
    """A new index holding only the children at ``positions`` (everything else in the document kept)."""
    document = json.loads(index.raw)
    document["manifests"] = [document["manifests"][position] for position in positions]
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return parse_manifest(raw, index.media_type)


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


# ----------------------------------------------------------------------------------------------------
# The engine


def _run_all(pool: ThreadPoolExecutor | None, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[function(item) ...]`` on the pool; on the first failure, cancel what has not started and raise it."""
    if pool is None or len(items) < 2:
        return [function(item) for item in items]
    futures: list[Future] = [pool.submit(function, item) for item in items]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [future for future in futures if future.done() and not future.cancelled() and future.exception()]
    if failed:
        for future in pending:
            future.cancel()
        wait(pending)  # let running transfers stop before the caller cleans up after them
        raise failed[0].exception()  # type: ignore[misc]
    return [future.result() for future in futures]


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
            both = _run_all(self.pool, lambda call: call(), [dest.current, source.peek])
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
            _run_all(self.pool, lambda manifest: dest.write_manifest(manifest, False), children)
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
            images = [position for position in positions if not _is_attestation(top.manifests[position])]
            if len(images) != 1:
                raise UnsupportedError(
                    "%s holds a single image, and the source is an index of %s: choose one with platforms"
                    % (self.dest.name, _available(top) if not self.platforms else ", ".join(self.platforms))
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
            present = _run_all(self.pool, lambda descriptor: self.dest.has_manifest(descriptor.digest), wanted)
            wanted = [descriptor for descriptor, have in zip(wanted, present) if not have]
        for manifest in _run_all(self.pool, self.source.child_manifest, wanted):
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
        present = _run_all(self.pool, self.dest.has_blob, blobs)
        self.stats.skipped = sum(1 for have in present if have)
        return [blob for blob, have in zip(blobs, present) if not have]

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
        _run_all(None if self.dest.serial else self.pool, self._move, ordered)

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


def parse_platforms(platforms: Iterable[Any] | None) -> list[str] | None:
    """Validate platform names (``os/arch[/variant]``); None or empty means every platform."""
    if platforms is None:
        return None
    names: list[str] = []
    for text in platforms:
        parse_platform(text)  # raises InvalidInputError naming the value
        if text not in names:
            names.append(text)
    return names or None


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


def copy_image(
    clients: RegistryClients,
    source: Reference,
    dest: Reference,
    *,
    platforms: list[str] | None = None,
    jobs: int = 8,
    force: bool = False,
    dry_run: bool = False,
) -> CopyResult:
    """Copy an image between registries or repositories.

    ``source`` names a tag or digest. ``dest`` without a tag (or digest) pushes by digest only. A
    ``platforms`` subset of an index writes a new index, with a new digest. ``dry_run`` only makes the
    ``HEAD`` checks (and reads the source's manifests) and reports what a real run would copy.
    """
    if not isinstance(source, Reference) or not isinstance(dest, Reference):
        raise InvalidInputError("copy_image needs registry references for source and dest")
    return transfer(
        RegistrySource(clients.for_reference(source), source),
        RegistryDestination(clients.for_reference(dest), dest),
        platforms=platforms,
        jobs=jobs,
        force=force,
        dry_run=dry_run,
    )

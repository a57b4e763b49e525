# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A registry repository as an image source and destination: HEADs, mounts, streamed uploads."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BLOB_WRITES,
    MANIFEST_WRITES,
    BlobStream,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import is_transient

# Blobs up to this size go as one streamed monolithic PUT (POST + PUT, with Content-Length); larger ones
# as one streamed PATCH (POST + PATCH + PUT). Neither holds a blob in memory. Fewer requests matter: a
# registry commits (and distribution fsyncs) something for each.
MONOLITHIC_BLOB_BYTES = 16 * 1024 * 1024

# Sized chunks for registries that refuse a streamed body (411, 413, 416, RANGE_INVALID); 5 MiB is the
# smallest part ECR accepts.
FALLBACK_CHUNK_BYTES = 5 * 1024 * 1024
SIZED_CHUNK_STATUSES = frozenset((411, 413, 416))
SIZED_CHUNK_CODES = frozenset(("RANGE_INVALID", "SIZE_INVALID"))


@contextlib.contextmanager
def noting_docker_hub(reference: Reference, tag_of: str | None = None) -> Iterator[None]:
    """Add :meth:`Reference.docker_hub_note` to a :class:`RegistryError` raised inside, about ``reference``, when its
    text named no registry: a failure on Docker Hub (unreachable, not found, unauthorized) then says why Docker Hub was
    asked. Only once, whichever of the nested places that know the reference sees the error first."""
    try:
        yield
    except RegistryError as err:
        reading = reference.docker_hub_reading()
        if not reading or reading in err.message:
            raise
        raise err.reworded("%s. %s" % (err.message.rstrip("."), reference.docker_hub_note(tag_of))) from None


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
        self.retry = client.transport.retry

    def peek(self) -> tuple[str, str] | None:
        with noting_docker_hub(self.reference):
            descriptor = self.client.head_manifest(self.repository, self.reference.manifest_reference)
            if descriptor is None:
                raise self._missing()
        return descriptor.digest, descriptor.media_type

    def top_manifest(self) -> ManifestInfo:
        with noting_docker_hub(self.reference):
            try:
                fetched = self.client.get_manifest(self.repository, self.reference.manifest_reference)
            except NotFoundError:
                raise self._missing() from None
        return parse_manifest(fetched.raw, fetched.media_type)

    def child_manifest(self, descriptor: Descriptor) -> ManifestInfo:
        with noting_docker_hub(self.reference):
            fetched = self.client.get_manifest(self.repository, descriptor.digest)
        return parse_manifest(fetched.raw, fetched.media_type or descriptor.media_type)

    def open_blob(self, descriptor: Descriptor) -> BlobStream:
        with noting_docker_hub(self.reference):
            reader = self.client.open_blob(self.repository, descriptor.digest, descriptor.size)
        return _RegistryBlobStream(reader)

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


def _wants_sized_chunks(err: RegistryError) -> bool:
    return err.status in SIZED_CHUNK_STATUSES or bool(SIZED_CHUNK_CODES.intersection(err.codes))


class _BlobUpload:
    """One attempt at a blob upload, as a callable the retry policy can run again."""

    def __init__(self, dest: RegistryDestination, descriptor: Descriptor, source: ImageSource, location: str | None):
        self.dest = dest
        self.descriptor = descriptor
        self.source = source
        self.location = location  # a session the registry opened already (a mount it declined); used once
        self.opened = False
        self.source_verified = False

    def __call__(self) -> None:
        location, self.location = self.location, None
        try:
            self._send(location)
        except RegistryError as err:
            if self.dest.chunk_size is not None or not self.opened or not _wants_sized_chunks(err):
                raise
            # The registry refuses a streamed body (411, 413, 416): at once, again, in the sized chunks it wants.
            self.dest.chunk_size = FALLBACK_CHUNK_BYTES
            self._send(None)

    def _send(self, location: str | None) -> None:
        self.opened = self.source_verified = False
        with self.source.open_blob(self.descriptor) as stream:
            self.opened = True
            watched = _Watched(stream.chunks())
            try:
                self.dest.send_blob(self.descriptor, watched, location)
            finally:
                self.source_verified = watched.finished


class RegistryDestination(ImageDestination):
    """A repository; the name is the reference's tag, or none (push by digest only)."""

    # Every blob upload, mount and child manifest PUT is a request of its own, and the registry keeps them apart.
    parallel_writes = frozenset({BLOB_WRITES, MANIFEST_WRITES})

    def __init__(self, client: Any, reference: Reference):
        self.client = client
        self.reference = reference
        self.repository = reference.repository
        self.name = reference.canonical
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
        """Stream the blob from ``source``; a transient failure starts it again, from a fresh download and upload
        session, under the client's retry policy."""
        attempt = _BlobUpload(self, descriptor, source, location)
        self.client.transport.retry.run(attempt, retry_if=lambda err: is_transient(err, attempt.source_verified))

    def send_blob(self, descriptor: Descriptor, chunks: Iterable[bytes], location: str | None) -> None:
        """One upload of ``chunks``: a streamed monolithic PUT for small blobs, else one streamed PATCH (or sized
        chunks, once the registry has asked for them)."""
        if descriptor.size <= MONOLITHIC_BLOB_BYTES and self.chunk_size is None:
            self.client.put_blob(self.repository, descriptor.digest, chunks, descriptor.size, location=location)
        else:
            self.client.upload_blob(
                self.repository,
                descriptor.digest,
                chunks,
                size=descriptor.size,
                chunk_size=self.chunk_size,
                location=location,
            )

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

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interfaces the copy engine sees: an image source, an image destination, an open blob, and results."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, ManifestInfo
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import RetryPolicy

# The kinds of write a destination may take from several threads at once (ImageDestination.parallel_writes).
BLOB_WRITES = "blobs"  # write_blob and mount_blob: one call per missing blob
MANIFEST_WRITES = "manifests"  # write_manifest of the child manifests of an index (never the top one)


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
    """``digest``/``media_type`` of what the destination holds (or would hold) after the copy.

    With ``referrers``, ``referrers`` lists what happened to each attachment (``attachment_copy.CarriedAttachment``
    as a dict), and ``warnings`` what the user should know (attachments left behind)."""

    digest: str
    media_type: str
    changed: bool
    stats: CopyStats
    previous_digest: str | None = None
    referrers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CopyProgress:
    """Whether a copy has changed what the destination shows yet (its name, an attachment, a fallback index): for a
    failure halfway, so that the task reports ``changed`` truthfully. Blobs and unnamed child manifests do not
    count."""

    changed: bool = False


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
    # When a blob read that failed half-way is started again: never for local files, whose failures do not pass;
    # a registry source has its client's policy (the ``retries`` option).
    retry = RetryPolicy(0)

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
    """Where an image is written. Nothing may be named before everything it needs is written.

    The engine makes every write (blobs, child manifests, the top manifest, :meth:`commit`) one at a time, from
    one thread, unless ``parallel_writes`` says the destination is safe to write from several at once. Reads
    (``current``, ``has_manifest``, ``has_blob``) may come from several threads at any time before the writes.
    """

    name = ""
    # The kinds of write (BLOB_WRITES, MANIFEST_WRITES) this destination takes from several threads at once.
    # None by default, the safe answer: a store written front to back (an archive) or through one shared file
    # (a layout's index.json) is corrupted by two writers that interleave. Opt in only for writes that share
    # nothing: each its own request (a registry) or its own temporary file renamed into place. The top manifest
    # and commit() come last and alone whatever this says.
    parallel_writes: frozenset[str] = frozenset()
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

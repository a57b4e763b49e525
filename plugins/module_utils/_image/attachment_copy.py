# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carrying an image's attachments (signatures, attestations, SBOMs, other referrers) from one registry repository to
another, once the image itself is there.

Each attachment is a manifest with blobs, and goes through the copy engine like any image (``copy_one``, which the
engine hands in): its blobs are skipped, mounted or streamed the same way, then its manifest is written, exact bytes:

- a cosign attachment (``sha256-<hex>.sig``, ``.att``, ``.sbom``) under the same tag at the destination: the subject
  has the same digest there, so the tag name is the same too;
- a referrer (found through the referrers API or a fallback index) by digest, with ``put_referrer``. A registry that
  answers ``OCI-Subject``, or serves the referrers API, indexes it itself. Elsewhere the destination's fallback index
  (tag ``sha256-<hex>`` of the subject) is maintained as the distribution-spec says: read (404: there is none), the
  referrer's descriptor added unless it is listed already, written back once per subject, after every manifest it
  lists is there, never empty.

What it costs when everything is there already: the referrers API probe (once per registry, remembered by the
client), and for each attachment one ``HEAD`` at the destination (by digest for a referrer, by tag for a cosign
tag, whose digest changes when cosign adds a signature); for each subject with referrers, one ``GET`` of its
fallback index at the destination, or one referrers API call where the destination serves it (which lists what is
there, so no ``HEAD`` is needed). The ``HEAD`` by digest is kept although the fallback index lists the referrer: on
distribution, ``garbage-collect --delete-untagged`` removes referrers that only a fallback index names, and a
re-run puts them back. The source's side is :class:`AttachmentFinder`'s.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError, UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachments import (
    VIA_COSIGN_TAG,
    Attachment,
    AttachmentFinder,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    CopyProgress,
    CopyResult,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    RegistryDestination,
    RegistrySource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_INDEX, is_index
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    artifact_type_of,
    fallback_tag,
    referrer_descriptor,
    with_referrer,
)

# What happened to each attachment (the ``action`` of a result entry).
COPIED = "copied"  # written to the destination: its blobs, its manifest, its tag or fallback index entry
PRESENT = "present"  # the destination had it, where it belongs: nothing written
INDEXED = "indexed"  # the destination had the manifest, but its fallback index did not list it: added there
REPLACED = "replaced"  # a cosign tag the destination had on another manifest, moved to the source's
MISSING = "missing"  # the source lists it, but has no such manifest (deleted, or garbage collected): not copied
KEPT = "kept"  # a cosign tag the destination has on a manifest holding layers the source's lacks: left alone
WOULD_COPY = "would copy"  # check mode: what a real run does
WOULD_INDEX = "would index"
WOULD_REPLACE = "would replace"
CHANGING_ACTIONS = frozenset((COPIED, INDEXED, REPLACED, WOULD_COPY, WOULD_INDEX, WOULD_REPLACE))
_IN_CHECK_MODE = {COPIED: WOULD_COPY, INDEXED: WOULD_INDEX, REPLACED: WOULD_REPLACE}

CopyOne = Callable[[ImageSource, ImageDestination], CopyResult]


@dataclasses.dataclass(frozen=True)
class CarriedAttachment:
    """One attachment and what happened to it; ``tag`` is its cosign tag, or the fallback tag that listed it."""

    subject: str
    digest: str
    artifact_type: str | None
    via: str
    action: str
    tag: str | None = None

    @property
    def changed(self) -> bool:
        return self.action in CHANGING_ACTIONS

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FallbackIndex:
    """The referrers fallback index of ``subject`` in one repository, maintained by the client as the
    distribution-spec 1.1 says for a registry without the referrers API: read it (a 404 means there is none yet), add
    descriptors that it does not list (never replacing it, never listing a digest twice), write it back once. An index
    that would list nothing is never written. Every manifest added must exist in the repository before :meth:`write`.
    """

    def __init__(self, client: Any, repository: str, subject: str):
        self.client = client
        self.repository = repository
        self.subject = subject
        self.tag = fallback_tag(subject)
        self._index: ManifestInfo | None = None
        self._raw: bytes | None = None  # what write() PUTs: the index with every descriptor added, or None
        self._read = False

    def read(self) -> None:
        if self._read:
            return
        try:
            fetched = self.client.get_manifest(self.repository, self.tag)
        except NotFoundError:
            fetched = None
        if fetched is not None:
            index = parse_manifest(fetched.raw, fetched.media_type)
            if not index.is_index:
                raise UnsupportedError(
                    "Tag %s of %s/%s, where the referrers of %s are listed on a registry without the referrers API,"
                    " holds a %s, not an index: not overwriting it; move or delete that tag"
                    % (self.tag, self.client.registry, self.repository, self.subject, index.media_type),
                    registry=self.client.registry,
                    repository=self.repository,
                )
            self._index = index
        self._read = True

    def lists(self, digest: str) -> bool:
        self.read()
        return self._index is not None and any(child.digest == digest for child in self._index.manifests)

    def add(self, descriptor: Mapping[str, Any]) -> bool:
        """Add ``descriptor`` (from :func:`referrer_descriptor`); False when the index lists that digest already."""
        self.read()
        grown = with_referrer(self._index, descriptor)
        if grown is None:
            return False
        self._raw = grown
        self._index = parse_manifest(grown, self._index.media_type if self._index is not None else OCI_INDEX)
        return True

    @property
    def pending(self) -> bool:
        return self._raw is not None

    def write(self) -> bool:
        """PUT the index when something was added (never an empty one); True when it was written."""
        if self._raw is None or self._index is None or not self._index.manifests:
            return False
        self.client.put_manifest(self.repository, self.tag, self._raw, self._index.media_type)
        self._raw = None
        return True


class _KnownSource(RegistrySource):
    """An attachment at the source, by digest, whose descriptor the finder has already: no ``HEAD`` asks for it again.
    Notes when its manifest turns out to be gone, so that the carrier tells that apart from other failures."""

    def __init__(self, client: Any, reference: Reference, descriptor: Descriptor):
        super().__init__(client, reference)
        self.descriptor = descriptor
        self.missing = False

    def peek(self) -> tuple[str, str] | None:
        return self.descriptor.digest, self.descriptor.media_type

    def top_manifest(self) -> ManifestInfo:
        try:
            return super().top_manifest()
        except NotFoundError:
            self.missing = True
            raise


class _ReferrerDestination(RegistryDestination):
    """A referrer, written by digest with ``put_referrer``: notes whether the registry answered ``OCI-Subject`` (it
    indexes referrers itself), and the manifest once the engine has read it (for its fallback index entry)."""

    def __init__(self, client: Any, reference: Reference):
        super().__init__(client, reference)
        self.manifest: ManifestInfo | None = None
        self.indexed_by_registry = False

    def target(self, top: ManifestInfo) -> tuple[str, str]:
        self.manifest = top
        return super().target(top)

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        if not top:
            super().write_manifest(manifest, top)
            return
        self.indexed_by_registry = self.client.put_referrer(self.repository, manifest.raw, manifest.media_type)


class _TagDestination(RegistryDestination):
    """A cosign tag at the destination, whose current digest the carrier has looked up already."""

    def __init__(self, client: Any, reference: Reference, current: str | None):
        super().__init__(client, reference)
        self._current = current

    def current(self) -> str | None:
        return self._current


def _layer_key(layer: Descriptor) -> tuple[str, str]:
    return layer.digest, json.dumps(layer.annotations or {}, sort_keys=True)


class AttachmentCarrier:
    """Finds the attachments of digests at the source and carries them to the destination repository.

    ``source`` and ``dest`` are references to the two repositories (tag and digest are not used). ``copy_one`` copies
    one image from a source to a destination with the engine's options (jobs, force, dry run).
    """

    def __init__(
        self,
        source_client: Any,
        source: Reference,
        dest_client: Any,
        dest: Reference,
        wanted: tuple[str, ...] | None,
        copy_one: CopyOne,
        *,
        dry_run: bool = False,
        force: bool = False,
        progress: CopyProgress | None = None,
    ):
        self.source_client = source_client
        self.source = dataclasses.replace(source, tag=None, digest=None)
        self.dest_client = dest_client
        self.dest = dataclasses.replace(dest, tag=None, digest=None)
        self.finder = AttachmentFinder(source_client, source.repository, wanted)
        self.copy_one = copy_one
        self.dry_run = dry_run
        self.force = force
        self.progress = progress if progress is not None else CopyProgress()
        self.warnings: list[str] = []
        self._registry_indexes = False  # learnt from an OCI-Subject answer: no fallback index is the client's to keep

    def carry_all(self, subjects: Iterable[str]) -> list[CarriedAttachment]:
        """Find the attachments of ``subjects`` (and theirs) and carry each, subjects before their attachments."""
        return self.carry(self.finder.all_of(subjects))

    def carry(self, attachments: Iterable[Attachment]) -> list[CarriedAttachment]:
        groups: dict[str, list[Attachment]] = {}
        for attachment in attachments:  # all_of's order: every attachment comes after its subject's group
            groups.setdefault(attachment.subject, []).append(attachment)
        carried: list[CarriedAttachment] = []
        for subject, group in groups.items():
            carried.extend(self._carry_referrers(subject, [item for item in group if item.via != VIA_COSIGN_TAG]))
            carried.extend(self._carry_cosign_tag(item) for item in group if item.via == VIA_COSIGN_TAG)
        return carried

    # -- referrers --------------------------------------------------------------------------------

    def _carry_referrers(self, subject: str, referrers: list[Attachment]) -> list[CarriedAttachment]:
        if not referrers:
            return []
        answer = self.dest_client.referrers(self.dest.repository, subject)
        listed = {child.digest for child in answer.manifests} if answer is not None else None
        outcomes: list[tuple[Attachment, str, _ReferrerDestination | None]] = []
        for attachment in referrers:
            if listed is not None and attachment.digest in listed and not self.force:
                outcomes.append((attachment, PRESENT, None))
                continue
            outcomes.append(self._copy_referrer(attachment))
        if listed is None and not self._registry_indexes:
            outcomes = self._maintain_fallback_index(subject, outcomes)
        return [self._entry(attachment, action, destination) for attachment, action, destination in outcomes]

    def _copy_referrer(self, attachment: Attachment) -> tuple[Attachment, str, _ReferrerDestination | None]:
        destination = _ReferrerDestination(self.dest_client, self.dest.with_digest(attachment.digest))
        copied = self._copy(attachment, destination)
        if copied is None:
            return attachment, MISSING, None
        if destination.indexed_by_registry:
            self._registry_indexes = True
        return attachment, COPIED if copied.changed else PRESENT, destination

    def _maintain_fallback_index(
        self, subject: str, outcomes: list[tuple[Attachment, str, _ReferrerDestination | None]]
    ) -> list[tuple[Attachment, str, _ReferrerDestination | None]]:
        index = FallbackIndex(self.dest_client, self.dest.repository, subject)
        kept = []
        for attachment, action, destination in outcomes:
            if action != MISSING and not index.lists(attachment.digest):
                index.add(referrer_descriptor(self._manifest_of(attachment, destination)))
                action = INDEXED if action == PRESENT else action
            kept.append((attachment, action, destination))
        if index.pending and not self.dry_run:
            index.write()  # after every manifest it lists: they were written above, or were there
            self.progress.changed = True
        return kept

    def _manifest_of(self, attachment: Attachment, destination: _ReferrerDestination | None) -> ManifestInfo:
        """The referrer's manifest, for its index entry: as the engine read it, else (it was there already) read
        from the destination, whose copy is the same bytes."""
        if destination is not None and destination.manifest is not None:
            return destination.manifest
        fetched = self.dest_client.get_manifest(self.dest.repository, attachment.digest)
        return parse_manifest(fetched.raw, fetched.media_type or attachment.descriptor.media_type)

    # -- cosign tags ------------------------------------------------------------------------------

    def _carry_cosign_tag(self, attachment: Attachment) -> CarriedAttachment:
        """Under the same tag at the destination. A tag there on another manifest is moved only when the source's
        holds every layer of it (cosign appended a signature at the source): one that holds layers the source's
        lacks (signatures made at the destination) is kept, with a warning, as replacing it would lose them."""
        present = self.dest_client.head_manifest(self.dest.repository, attachment.tag)
        current = present.digest if present is not None else None
        if current not in (None, attachment.digest) and not self.force and not self._source_covers(attachment, current):
            self.warnings.append(
                "%s:%s at the destination holds layers (signatures made there) that the source's %s lacks: it was"
                " left as it is, so the source's %s of %s was not carried; merge them with cosign, or delete the tag"
                " at the destination to take the source's"
                % (self.dest.name, attachment.tag, attachment.digest, attachment.kind, attachment.subject)
            )
            return self._entry(attachment, KEPT, None)
        destination = _TagDestination(self.dest_client, self.dest.with_tag(attachment.tag), current)
        copied = self._copy(attachment, destination)
        if copied is None:
            action = MISSING
        elif not copied.changed:
            action = PRESENT
        else:
            action = COPIED if copied.previous_digest is None else REPLACED
        return self._entry(attachment, action, None)

    def _source_covers(self, attachment: Attachment, current: str) -> bool:
        """Whether the source's manifest lists every layer (digest and annotations: a signature is an annotation) of
        the destination's manifest ``current``."""
        theirs = self.dest_client.get_manifest(self.dest.repository, current)
        ours = self.source_client.get_manifest(self.source.repository, attachment.digest)
        source_layers = [_layer_key(layer) for layer in parse_manifest(ours.raw, ours.media_type).layers]
        return all(_layer_key(layer) in source_layers for layer in parse_manifest(theirs.raw, theirs.media_type).layers)

    # -- both -------------------------------------------------------------------------------------

    def _copy(self, attachment: Attachment, destination: RegistryDestination) -> CopyResult | None:
        """Copy the attachment's image with the engine; None when the source has no such manifest (warned)."""
        source = _KnownSource(self.source_client, self.source.with_digest(attachment.digest), attachment.descriptor)
        try:
            result = self.copy_one(source, destination)
        except NotFoundError:
            if not source.missing:
                raise
            self.warnings.append(
                "%s lists %s as an attachment of %s, but has no manifest %s (deleted, or removed by garbage"
                " collection): it was not copied"
                % (
                    "%s/%s" % (self.source.registry, self.source.repository)
                    + (" (tag %s)" % attachment.tag if attachment.tag else ""),
                    attachment.digest,
                    attachment.subject,
                    attachment.digest,
                )
            )
            return None
        if result.changed and not self.dry_run:
            self.progress.changed = True
        return result

    def _entry(
        self, attachment: Attachment, action: str, destination: _ReferrerDestination | None
    ) -> CarriedAttachment:
        artifact_type = attachment.artifact_type
        if artifact_type is None and destination is not None and destination.manifest is not None:
            artifact_type = artifact_type_of(destination.manifest)
        if self.dry_run:
            action = _IN_CHECK_MODE.get(action, action)
        return CarriedAttachment(
            attachment.subject, attachment.digest, artifact_type, attachment.via, action, attachment.tag
        )


def descendants(source: ImageSource, index: ManifestInfo) -> list[str]:
    """The digests of every manifest ``index`` lists, and of theirs for a nested index (read from ``source``), each
    once."""
    found: list[str] = []
    seen: set[str] = {index.digest}
    pending = list(index.manifests)
    while pending:
        child = pending.pop(0)
        if child.digest in seen:
            continue
        seen.add(child.digest)
        found.append(child.digest)
        if is_index(child.media_type):
            pending.extend(source.child_manifest(child).manifests)
    return found

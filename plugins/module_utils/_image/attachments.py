# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding an image's attachments in a registry: signatures, attestations, SBOMs and other referrers.

For each digest, in the order the specs give them: the referrers API where the registry serves it (asked once per
registry: a 404 means it does not, and its fallback tags hold the referrers then), else the fallback tag
``sha256-<hex>``; and cosign's ``.sig``, ``.att`` and ``.sbom`` tags. Attachments have attachments too (a
signature of an SBOM): they are found the same way, each digest once, so a loop cannot run forever.

The repository's tag list is read once, and tells which fallback and cosign tags exist, so that a tag that is not
there costs no request. What the finder returns is what the registry says; copying it is the caller's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    COSIGN_KINDS,
    cosign_tag,
    fallback_tag,
    is_wanted,
    referrers_in,
)

VIA_API = "api"
VIA_FALLBACK_TAG = "fallback_tag"
VIA_COSIGN_TAG = "cosign_tag"


@dataclasses.dataclass(frozen=True)
class Attachment:
    """One attachment of ``subject``: its manifest's descriptor, how it was found, and under which tag."""

    subject: str
    descriptor: Descriptor
    via: str  # VIA_API, VIA_FALLBACK_TAG or VIA_COSIGN_TAG
    tag: str | None = None  # the fallback tag whose index lists it, or the cosign tag it is
    kind: str | None = None  # the cosign kind of a cosign tag (cosign-signature, ...)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def artifact_type(self) -> str | None:
        return self.descriptor.artifact_type or self.kind


class AttachmentFinder:
    """Finds attachments in one repository of one registry; safe to share between threads.

    ``wanted`` is a ``referrer_types`` selection (None: every attachment), from ``_oci/referrers.wanted_types``.
    """

    def __init__(self, client: Any, repository: str, wanted: tuple[str, ...] | None = None):
        self.client = client
        self.repository = repository
        self.wanted = wanted
        self._tags: frozenset[str] | None = None
        self._lock = threading.Lock()

    @property
    def tags(self) -> frozenset[str]:
        """The repository's tags, read once (a repository that does not exist has none)."""
        with self._lock:
            if self._tags is None:
                try:
                    self._tags = frozenset(self.client.list_tags(self.repository))
                except NotFoundError:
                    self._tags = frozenset()
            return self._tags

    def of(self, digest: str) -> list[Attachment]:
        """The attachments that name ``digest`` as their subject, directly."""
        return self._referrers(digest) + self._cosign_tags(digest)

    def all_of(self, digests: Iterable[str]) -> list[Attachment]:
        """The attachments of every digest in ``digests``, and theirs, each digest looked at once (loop guard)."""
        found: list[Attachment] = []
        seen: set[str] = set()
        pending = list(digests)
        while pending:
            digest = pending.pop(0)
            if digest in seen:
                continue
            seen.add(digest)
            for attachment in self.of(digest):
                found.append(attachment)
                pending.append(attachment.digest)
        return found

    def _referrers(self, digest: str) -> list[Attachment]:
        answer = self.client.referrers(self.repository, digest)
        if answer is not None:
            index_manifests = answer.manifests
            via, tag = VIA_API, None
        else:
            tag = fallback_tag(digest)
            if tag not in self.tags:
                return []
            try:
                fetched = self.client.get_manifest(self.repository, tag)
            except NotFoundError:
                return []  # gone since the tag list was read
            index_manifests = parse_manifest(fetched.raw, fetched.media_type).manifests
            via = VIA_FALLBACK_TAG
        listed = referrers_in(index_manifests, self.wanted, filtered=answer is not None and answer.filtered)
        return [Attachment(digest, child, via, tag) for child in listed]

    def _cosign_tags(self, digest: str) -> list[Attachment]:
        found = []
        for kind in COSIGN_KINDS:
            tag = cosign_tag(digest, kind)
            if tag not in self.tags or not is_wanted(kind, self.wanted):
                continue
            descriptor = self.client.head_manifest(self.repository, tag)
            if descriptor is not None:
                found.append(Attachment(digest, descriptor, VIA_COSIGN_TAG, tag, kind))
        return found

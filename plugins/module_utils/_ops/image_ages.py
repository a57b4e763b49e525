# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When the images of one repository were created, read with as few requests as the API allows.

An image's age is the ``created`` time of its image config; for an artifact whose config is not an image config,
the ``org.opencontainers.image.created`` annotation of its manifest; for a multi-platform index, the newest of its
platforms' images (buildx attestation manifests, platform ``unknown/unknown``, are not read). Every manifest and
config is read at most once, however many tags share it; one that cannot be read as one has an unknown age rather
than failing the task.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    NotFoundError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    ManifestInfo,
    has_image_config,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import MANIFEST_MEDIA_TYPES
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import is_attestation
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import parse_time

CREATED_ANNOTATION = "org.opencontainers.image.created"
# What a manifest or config that cannot be read as one leaves us with: an unknown age, not a failed task.
UNREADABLE = (UnsupportedError, RegistryResponseError)


class ImageAges:
    """The manifests read so far in one repository (digest -> ManifestInfo, None when missing or unreadable), and
    the creation times they lead to."""

    def __init__(self, client: Any, repository: str, concurrency: int):
        self.client = client
        self.repository = repository
        self.concurrency = concurrency
        self.manifests: dict[str, ManifestInfo | None] = {}
        self.missing: set[str] = set()  # digests a manifest GET answered 404 for (the rest of the None: unreadable)
        self._config_created: dict[str, datetime.datetime | None] = {}

    def read_tag(self, tag: str, with_manifest: bool) -> Descriptor | None:
        """Where a tag points: a ``HEAD``, or a manifest ``GET`` (remembered) when its age is needed. None: gone."""
        if not with_manifest:
            return self.client.head_manifest(self.repository, tag)
        try:
            fetched = self.client.get_manifest(self.repository, tag)
        except NotFoundError:
            return None
        self._remember(fetched)
        return Descriptor(media_type=fetched.media_type, digest=fetched.digest, size=fetched.size)

    def created(self, digests: Iterable[str]) -> dict[str, datetime.datetime | None]:
        """digest -> creation time (None: unknown) of each image or index in ``digests``, whose manifests
        :meth:`read_tag` has read; the platform manifests of indexes and the image configs are read here."""
        digests = set(digests)
        children = {
            child.digest
            for info in (self.manifests.get(digest) for digest in digests)
            if info is not None and info.is_index
            for child in info.manifests
            if _is_platform_image(child)
        }
        self._read_all(sorted(children - set(self.manifests)), self._fetch)
        images = [self.manifests.get(digest) for digest in digests | children]
        configs = sorted({image.config.digest for image in images if image is not None and has_image_config(image)})
        self._config_created.update(zip(configs, self._read_all(configs, self._read_config_created)))
        return {digest: self._created(self.manifests.get(digest)) for digest in digests}

    def _created(self, info: ManifestInfo | None) -> datetime.datetime | None:
        if info is None:
            return None
        if info.is_index:
            known = [moment for moment in map(self._created, self._children(info)) if moment is not None]
            if known:
                return max(known)
        elif has_image_config(info):
            created = self._config_created.get(info.config.digest)  # type: ignore[union-attr]
            if created is not None:
                return created
        return parse_time((info.annotations or {}).get(CREATED_ANNOTATION))

    def _children(self, index: ManifestInfo) -> list[ManifestInfo | None]:
        return [self.manifests.get(child.digest) for child in index.manifests if _is_platform_image(child)]

    def children_of(self, indexes: Iterable[str]) -> set[str]:
        """Every digest that the indexes ``indexes`` refer to. An index that cannot be read fails: unlike an age,
        this is a safety question (deleting one of those digests would break the index)."""
        indexes = sorted(set(indexes))
        self._read_all([digest for digest in indexes if self.manifests.get(digest) is None], self._fetch_strictly)
        return {child.digest for digest in indexes for child in self.manifests[digest].manifests}  # type: ignore[union-attr]

    def read_manifests(self, digests: Iterable[str]) -> dict[str, ManifestInfo | None]:
        """digest -> manifest of each of ``digests``, each read once (None: missing, then in :attr:`missing`, or
        unreadable). For questions a missing or broken manifest answers with "nothing here", such as which referrers
        a fallback index lists."""
        digests = sorted(set(digests))
        self._read_all([digest for digest in digests if digest not in self.manifests], self._fetch)
        return {digest: self.manifests.get(digest) for digest in digests}

    def _read_all(self, items: list[str], function: Any) -> list[Any]:
        return map_concurrently(function, items, self.concurrency)

    def _remember(self, fetched: Any) -> None:
        try:
            self.manifests[fetched.digest] = parse_manifest(fetched.raw, fetched.media_type)
        except UNREADABLE:
            self.manifests[fetched.digest] = None

    def _fetch(self, digest: str) -> None:
        try:
            self._remember(self.client.get_manifest(self.repository, digest))
        except NotFoundError:
            self.manifests[digest] = None
            self.missing.add(digest)

    def _fetch_strictly(self, digest: str) -> None:
        fetched = self.client.get_manifest(self.repository, digest)
        self.manifests[digest] = parse_manifest(fetched.raw, fetched.media_type)

    def _read_config_created(self, config_digest: str) -> datetime.datetime | None:
        try:
            raw = self.client.read_blob(self.repository, config_digest, limit=MAX_CONFIG_BYTES)
        except NotFoundError:
            return None
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return parse_time(config.get("created")) if isinstance(config, dict) else None


def _is_platform_image(child: Descriptor) -> bool:
    """An index entry worth reading for an age: a manifest, and not a buildx attestation (unknown/unknown)."""
    if child.media_type and child.media_type not in MANIFEST_MEDIA_TYPES:
        return False
    return not is_attestation(child)

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifests and descriptors, parsed from the exact bytes received and never written back.

A manifest's digest is the hash of its bytes, and re-serialising JSON (key order, whitespace) would change it:
:class:`ManifestInfo` reads the document but keeps ``raw`` as it came.
"""

from __future__ import annotations

import dataclasses
import json

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidReferenceError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_SCHEMA1_MANIFEST,
    IMAGE_CONFIG_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_MEDIA_TYPES,
    normalize_media_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import validate_digest


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (config, layer, child manifest, subject)."""

    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    urls: tuple = ()
    annotations: dict | None = None
    artifact_type: str | None = None

    def __hash__(self) -> int:
        # platform and annotations are dicts; equal descriptors still share digest, size and media type.
        return hash((self.digest, self.size, self.media_type))

    def to_dict(self) -> dict:
        """``{digest, size, media_type}`` plus platform, urls, annotations and artifact_type when set."""
        result: dict = {"digest": self.digest, "size": self.size, "media_type": self.media_type}
        if self.platform is not None:
            result["platform"] = dict(self.platform)
        if self.urls:
            result["urls"] = list(self.urls)
        if self.annotations:
            result["annotations"] = dict(self.annotations)
        if self.artifact_type:
            result["artifact_type"] = self.artifact_type
        return result


def parse_descriptor(obj: object, *, where: str = "descriptor") -> Descriptor:
    """Read one descriptor object; raise :class:`RegistryResponseError` saying which field is wrong."""
    if not isinstance(obj, dict):
        raise RegistryResponseError("Malformed manifest: %s is not a JSON object." % where)
    digest = obj.get("digest")
    try:
        digest = validate_digest(digest)
    except InvalidReferenceError as exc:
        raise RegistryResponseError("Malformed manifest: %s has an invalid digest. %s" % (where, exc)) from None
    size = obj.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RegistryResponseError(
            "Malformed manifest: %s (%s) has size %r, not a byte count." % (where, digest, size)
        )
    media_type = obj.get("mediaType", "")
    if not isinstance(media_type, str):
        raise RegistryResponseError("Malformed manifest: %s (%s) has a non-string mediaType." % (where, digest))
    platform = obj.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise RegistryResponseError(
            "Malformed manifest: %s (%s) has a platform that is not an object." % (where, digest)
        )
    urls = obj.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise RegistryResponseError(
            "Malformed manifest: %s (%s) has urls that are not a list of strings." % (where, digest)
        )
    annotations = obj.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise RegistryResponseError(
            "Malformed manifest: %s (%s) has annotations that are not an object." % (where, digest)
        )
    artifact_type = obj.get("artifactType")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform,
        urls=tuple(urls),
        annotations=annotations,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
    )


@dataclasses.dataclass(frozen=True)
class ManifestInfo:
    """A parsed image manifest or index. ``raw`` holds the exact bytes; ``digest`` is their sha256."""

    media_type: str
    raw: bytes
    digest: str
    document: dict
    config: Descriptor | None = None
    layers: tuple = ()
    manifests: tuple = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict | None = None

    def __hash__(self) -> int:
        # document is a dict; equal manifests have equal bytes and so equal digests.
        return hash(self.digest)

    @property
    def size(self) -> int:
        """Bytes of the manifest itself."""
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def total_size(self) -> int:
        """Image: manifest + config + layers. Index: index + its child manifests (their blobs are not known here)."""
        parts = self.manifests if self.is_index else ((self.config,) if self.config else ()) + self.layers
        return self.size + sum(descriptor.size for descriptor in parts)

    @property
    def blobs(self) -> tuple:
        """Config then layers (images); empty for indexes, whose children are manifests, not blobs."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def platforms(self) -> list:
        """For an index: ``[{os, architecture, variant, digest, size}]`` of its children that name a platform."""
        result = []
        for child in self.manifests:
            if child.platform is None:
                continue
            result.append(
                {
                    "os": child.platform.get("os"),
                    "architecture": child.platform.get("architecture"),
                    "variant": child.platform.get("variant"),
                    "digest": child.digest,
                    "size": child.size,
                }
            )
        return result


def _schema1_error(media_type: str) -> UnsupportedError:
    return UnsupportedError(
        "The manifest uses Docker image manifest schema 1 (%s), which is deprecated and not supported. "
        "Push the image again with a current client (docker, podman, skopeo, crane) to store it as Docker "
        "schema 2 or OCI." % media_type
    )


def _media_type_of(document: dict, content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise RegistryResponseError("Malformed manifest: mediaType is %r, not a string." % (declared,))
    header = normalize_media_type(content_type)
    schema_version = document.get("schemaVersion")
    if (
        schema_version == 1
        or normalize_media_type(declared) in SCHEMA1_MEDIA_TYPES
        or (not declared and header in SCHEMA1_MEDIA_TYPES)
        or "fsLayers" in document
    ):
        named = [
            media_type for media_type in (normalize_media_type(declared), header) if media_type in SCHEMA1_MEDIA_TYPES
        ]
        raise _schema1_error(named[0] if named else DOCKER_SCHEMA1_MANIFEST)
    if declared:
        return normalize_media_type(declared)
    if header in MANIFEST_MEDIA_TYPES:
        return header
    # No mediaType and an uninformative Content-Type (application/json, octet-stream): go by shape.
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document or "layers" in document:
        return OCI_MANIFEST
    raise RegistryResponseError(
        "The document is not a manifest: it has no mediaType, the content type is %r, and it has neither "
        "'manifests' nor 'config'/'layers'." % (content_type or "")
    )


def parse_manifest(data: bytes, content_type: str | None = None) -> ManifestInfo:
    """Parse manifest bytes as received from a registry or a local store.

    The media type is the document's ``mediaType``, else ``content_type``, else guessed from the shape
    (``manifests`` -> OCI index, ``config``/``layers`` -> OCI manifest). Schema 1 raises
    :class:`UnsupportedError`; non-JSON or a non-object raises :class:`RegistryResponseError`.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise RegistryResponseError("The manifest is %s, not bytes." % type(data).__name__)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryResponseError(
            "The manifest is not valid JSON (%d bytes, content type %r): %s" % (len(data), content_type or "", exc)
        ) from None
    if not isinstance(document, dict):
        raise RegistryResponseError("The manifest is JSON but not an object (got %s)." % type(document).__name__)

    media_type = _media_type_of(document, content_type)
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise UnsupportedError(
            "Unsupported manifest media type %r: supported are %s." % (media_type, ", ".join(MANIFEST_ACCEPT))
        )
    schema_version = document.get("schemaVersion")
    if schema_version is not None and schema_version != 2:
        raise RegistryResponseError("Malformed manifest: schemaVersion is %r, expected 2." % (schema_version,))

    subject = document.get("subject")
    annotations = document.get("annotations")
    artifact_type = document.get("artifactType")
    common = {
        "media_type": media_type,
        "raw": data,
        "digest": compute_digest(data),
        "document": document,
        "subject": parse_descriptor(subject, where="subject") if subject is not None else None,
        "artifact_type": artifact_type if isinstance(artifact_type, str) else None,
        "annotations": annotations if isinstance(annotations, dict) else None,
    }
    if media_type in INDEX_MEDIA_TYPES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise RegistryResponseError("Malformed %s: 'manifests' is missing or not a list." % media_type)
        manifests = tuple(
            parse_descriptor(child, where="manifests[%d]" % index) for index, child in enumerate(children)
        )
        return ManifestInfo(manifests=manifests, **common)

    if "config" not in document:
        raise RegistryResponseError("Malformed %s: it has no 'config' descriptor." % media_type)
    config = parse_descriptor(document["config"], where="config")
    layer_list = document.get("layers", [])
    if not isinstance(layer_list, list):
        raise RegistryResponseError("Malformed %s: 'layers' is not a list." % media_type)
    layers = tuple(parse_descriptor(layer, where="layers[%d]" % index) for index, layer in enumerate(layer_list))
    return ManifestInfo(config=config, layers=layers, **common)


MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's own limit; a larger answer is not a manifest


def _declared_media_type(raw: bytes) -> str:
    try:
        value = json.loads(raw).get("mediaType")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def has_image_config(manifest: ManifestInfo) -> bool:
    """An image manifest whose config is an image config, the one that holds ``created``, ``os`` and the rest.

    Some old pushes leave the config's mediaType out; those are image configs too. An artifact's config is not.
    """
    if manifest.config is None:
        return False
    return not manifest.config.media_type or manifest.config.media_type in IMAGE_CONFIG_MEDIA_TYPES

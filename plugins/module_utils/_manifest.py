# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media types, digests, manifest parsing and platform selection.

Manifests are kept as the exact bytes received: a manifest's digest is the hash of those bytes, and
re-serialising JSON (key order, whitespace) would change it. :class:`ManifestInfo` reads the document
but never writes it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._reference import validate_digest

# OCI image-spec
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

# Docker image manifest v2, schema 2
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

# Docker image manifest v2, schema 1: deprecated, rejected with a clear message.
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_MEDIA_TYPES = frozenset((OCI_INDEX, DOCKER_MANIFEST_LIST))
IMAGE_MANIFEST_MEDIA_TYPES = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
MANIFEST_MEDIA_TYPES = INDEX_MEDIA_TYPES | IMAGE_MANIFEST_MEDIA_TYPES
SCHEMA1_MEDIA_TYPES = frozenset((DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST))
FOREIGN_LAYER_MEDIA_TYPES = frozenset(
    (
        DOCKER_FOREIGN_LAYER,
        OCI_LAYER_NONDISTRIBUTABLE_TAR,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
    )
)

# Accept header order for manifest requests: indexes first so a multi-platform tag comes back whole.
MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]
MANIFEST_ACCEPT_HEADER = ", ".join(MANIFEST_ACCEPT)

DIGEST_ALGORITHMS = ("sha256", "sha512")


def normalize_media_type(media_type: str | None) -> str:
    """``application/x; charset=utf-8`` -> ``application/x`` (lowercase); None -> ``""``."""
    if not isinstance(media_type, str):
        return ""
    return media_type.split(";", 1)[0].strip().lower()


def is_index(media_type: str | None) -> bool:
    """True for an OCI image index or a Docker manifest list."""
    return normalize_media_type(media_type) in INDEX_MEDIA_TYPES


def is_image_manifest(media_type: str | None) -> bool:
    """True for an OCI image manifest or a Docker v2 schema 2 manifest."""
    return normalize_media_type(media_type) in IMAGE_MANIFEST_MEDIA_TYPES


def is_foreign_layer(media_type: str | None) -> bool:
    """True for layers that registries need not hold (Docker foreign, OCI non-distributable): not copied."""
    return normalize_media_type(media_type) in FOREIGN_LAYER_MEDIA_TYPES


# ----------------------------------------------------------------------------------------------------
# Digests


def _hasher(algorithm: str):
    if algorithm not in DIGEST_ALGORITHMS:
        raise UnsupportedError(
            "Digest algorithm %r is not supported: use one of %s." % (algorithm, ", ".join(DIGEST_ALGORITHMS))
        )
    return hashlib.new(algorithm)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data`` (sha256 or sha512)."""
    hasher = _hasher(algorithm)
    hasher.update(data)
    return "%s:%s" % (algorithm, hasher.hexdigest())


def _describe(description: str | None) -> str:
    return " of %s" % description if description else ""


def verify_digest(data: bytes, expected: str, *, description: str | None = None) -> str:
    """Return ``expected`` when ``data`` hashes to it; raise :class:`DigestMismatchError` naming both otherwise.

    ``description`` (``"blob sha256:... from ghcr.io/org/app"``) makes the message say what was checked.
    """
    expected = validate_digest(expected)
    actual = compute_digest(data, expected.partition(":")[0])
    if actual != expected:
        raise DigestMismatchError(
            "Digest mismatch%s: expected %s but the %d bytes received hash to %s."
            % (_describe(description), expected, len(data), actual)
        )
    return expected


class DigestVerifier:
    """Hash a stream chunk by chunk and check it against the digest (and size) it was asked for."""

    def __init__(self, expected: str, *, expected_size: int | None = None, description: str | None = None):
        self.expected = validate_digest(expected)
        self.algorithm = self.expected.partition(":")[0]
        self.expected_size = expected_size
        self.description = description
        self.size = 0
        self._hasher = _hasher(self.algorithm)

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.size += len(chunk)

    @property
    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    @property
    def digest(self) -> str:
        """``algorithm:hex`` of everything seen so far."""
        return "%s:%s" % (self.algorithm, self.hexdigest)

    def verify(self) -> str:
        """Return the digest when the stream matched; raise :class:`DigestMismatchError` otherwise."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                "Size mismatch%s: expected %d bytes for %s but received %d bytes."
                % (_describe(self.description), self.expected_size, self.expected, self.size)
            )
        actual = self.digest
        if actual != self.expected:
            raise DigestMismatchError(
                "Digest mismatch%s: expected %s but the %d bytes received hash to %s."
                % (_describe(self.description), self.expected, self.size, actual)
            )
        return actual


# ----------------------------------------------------------------------------------------------------
# Manifests


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


# ----------------------------------------------------------------------------------------------------
# Platforms

_PLATFORM_PART = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ARCHITECTURE_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}
# The variant an architecture means when none is written (containerd's normalisation).
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7", "amd64": "v1"}
_PLATFORM_FORM = "expected 'os/architecture[/variant]', e.g. 'linux/amd64' or 'linux/arm64/v8'"


def parse_platform(text: object) -> dict:
    """``"linux/arm64/v8"`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` (variant None if absent).

    Lowercases, and maps common aliases (``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``, ``armhf`` ->
    ``arm/v7``); raises :class:`InvalidInputError` naming the value otherwise.
    """
    if not isinstance(text, str):
        raise InvalidInputError("Invalid platform %r: %s." % (text, _PLATFORM_FORM))
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(_PLATFORM_PART.fullmatch(part) for part in parts):
        raise InvalidInputError("Invalid platform %r: %s." % (text, _PLATFORM_FORM))
    os_name, architecture = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    architecture, alias_variant = _ARCHITECTURE_ALIASES.get(architecture, (architecture, None))
    if variant is None:
        variant = alias_variant
    elif architecture in ("arm", "arm64") and variant.isdigit():
        variant = "v" + variant  # containerd accepts linux/arm64/8 for v8
    return {"os": os_name, "architecture": architecture, "variant": variant}


def format_platform(platform: dict) -> str:
    """``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` -> ``"linux/arm64/v8"``."""
    if not isinstance(platform, dict) or not platform.get("os") or not platform.get("architecture"):
        raise InvalidInputError("Invalid platform %r: it needs 'os' and 'architecture'." % (platform,))
    parts = [platform["os"], platform["architecture"]]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(str(part) for part in parts)


def _normalised_platform(platform: object) -> tuple | None:
    """(os, architecture, variant-with-default) for comparison, or None when it is not a usable platform."""
    if isinstance(platform, str):
        platform = parse_platform(platform)
    if not isinstance(platform, dict):
        return None
    os_name = platform.get("os")
    architecture = platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(architecture, str):
        return None
    os_name, architecture = os_name.lower(), architecture.lower()
    variant = platform.get("variant")
    architecture, alias_variant = _ARCHITECTURE_ALIASES.get(architecture, (architecture, None))
    variant = (variant.lower() if isinstance(variant, str) and variant else None) or alias_variant
    if variant is not None and architecture in ("arm", "arm64") and variant.isdigit():
        variant = "v" + variant
    return os_name, architecture, variant or _DEFAULT_VARIANTS.get(architecture)


def platform_matches(wanted: str | dict, descriptor_platform: dict | None) -> bool:
    """True when a descriptor's platform is ``wanted``: ``linux/arm64`` equals ``linux/arm64/v8``,
    ``linux/amd64`` equals ``linux/amd64/v1``, ``linux/arm`` equals ``linux/arm/v7``.

    OS version and features are not compared.
    """
    wanted_key = _normalised_platform(wanted)
    if wanted_key is None:
        raise InvalidInputError("Invalid platform %r: %s." % (wanted, _PLATFORM_FORM))
    return _normalised_platform(descriptor_platform) == wanted_key


def _is_real_platform(platform: dict | None) -> bool:
    # buildx stores attestations as index children with platform unknown/unknown.
    if not isinstance(platform, dict):
        return False
    os_name, architecture = platform.get("os"), platform.get("architecture")
    return isinstance(os_name, str) and isinstance(architecture, str) and "unknown" not in (os_name, architecture)


def select_platform(index_info: ManifestInfo, wanted: str | dict) -> Descriptor:
    """The first child manifest of an index that matches ``wanted``; :class:`NotFoundError` lists the others."""
    if not isinstance(index_info, ManifestInfo) or not index_info.is_index:
        raise InvalidInputError(
            "select_platform needs an image index or manifest list, not %s."
            % getattr(index_info, "media_type", type(index_info).__name__)
        )
    for child in index_info.manifests:
        if child.platform is not None and platform_matches(wanted, child.platform):
            return child
    wanted_text = wanted if isinstance(wanted, str) else format_platform(wanted)
    available = [format_platform(child.platform) for child in index_info.manifests if _is_real_platform(child.platform)]
    raise NotFoundError(
        "No manifest for platform %s in the index %s; available platforms: %s."
        % (wanted_text, index_info.digest, ", ".join(available) if available else "none")
    )

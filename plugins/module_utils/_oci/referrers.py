# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What names an image as its subject, as data: referrers, their fallback index, and cosign's attachment tags.

An image's attachments are found three ways (the distribution-spec 1.1 and cosign):

- the referrers API, ``GET /v2/<name>/referrers/<digest>``, answers an index of the manifests whose ``subject`` is
  the digest, each described with its ``artifactType`` and ``annotations``;
- where a registry does not serve that API, the same index is kept under the fallback tag ``<alg>-<encoded>``
  (``sha256-<hex>``), which the client that pushes a referrer maintains;
- cosign 2 and older tag its signature, attestation and SBOM images ``sha256-<hex>.sig``, ``.att`` and ``.sbom``.

This file knows those names and shapes; asking a registry is ``_registry``'s, copying ``_image``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, ManifestInfo
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_INDEX

# cosign's attachment tags: the suffix and the name a ``referrer_types`` list gives each kind.
COSIGN_SIGNATURE = "cosign-signature"
COSIGN_ATTESTATION = "cosign-attestation"
COSIGN_SBOM = "cosign-sbom"
COSIGN_SUFFIXES = {".sig": COSIGN_SIGNATURE, ".att": COSIGN_ATTESTATION, ".sbom": COSIGN_SBOM}
COSIGN_KINDS = tuple(COSIGN_SUFFIXES.values())
# The referrers tag schema: the algorithm, a dash, the encoded digest cut to 64 characters (distribution-spec 1.1).
FALLBACK_TAG_LENGTH = 64
_ATTACHMENT_TAG = re.compile(
    r"(?P<algorithm>sha256|sha384|sha512)-(?P<encoded>[0-9a-f]{64})(?P<suffix>\.sig|\.att|\.sbom)?"
)
# A referrers answer that says the registry applied the artifactType filter itself.
FILTERS_APPLIED_HEADER = "OCI-Filters-Applied"


def fallback_tag(digest: str) -> str:
    """The tag under which a registry without the referrers API keeps the referrers of ``digest``."""
    algorithm, _colon, encoded = digest.partition(":")
    return "%s-%s" % (algorithm, encoded[:FALLBACK_TAG_LENGTH])


def cosign_tag(digest: str, kind: str) -> str:
    """cosign's tag for the ``kind`` (``cosign-signature``, ...) of attachment of ``digest``: ``sha256-<hex>.sig``."""
    suffixes = {name: suffix for suffix, name in COSIGN_SUFFIXES.items()}
    if kind not in suffixes:
        raise InvalidInputError(
            "Unknown cosign attachment kind %r: expected one of %s" % (kind, ", ".join(COSIGN_KINDS))
        )
    return fallback_tag(digest) + suffixes[kind]


def parse_attachment_tag(tag: str) -> tuple[str, str | None] | None:
    """``(subject digest, cosign kind or None for the fallback index)`` when ``tag`` is an attachment tag, else None.

    Only digests whose encoded part fits the tag whole (sha256) can be read back; a longer digest is cut in its tag,
    so its tag names a prefix, which :func:`attachment_tag_matches` compares instead.
    """
    found = _ATTACHMENT_TAG.fullmatch(tag) if isinstance(tag, str) else None
    if found is None:
        return None
    suffix = found.group("suffix")
    return "%s:%s" % (found.group("algorithm"), found.group("encoded")), COSIGN_SUFFIXES[suffix] if suffix else None


def is_attachment_tag(tag: str) -> bool:
    return parse_attachment_tag(tag) is not None


def attachment_tag_matches(tag: str, digest: str) -> bool:
    """Whether ``tag`` is the fallback tag or a cosign tag of ``digest``."""
    return isinstance(tag, str) and tag.split(".", 1)[0] == fallback_tag(digest) and is_attachment_tag(tag)


def artifact_type_of(manifest: ManifestInfo) -> str | None:
    """A manifest's artifact type: its ``artifactType``, else (an image manifest) its config's media type."""
    if manifest.artifact_type:
        return manifest.artifact_type
    if not manifest.is_index and manifest.config is not None and manifest.config.media_type:
        return manifest.config.media_type
    return None


def referrer_descriptor(manifest: ManifestInfo) -> dict[str, Any]:
    """The descriptor a referrers index lists for ``manifest``: media type, digest, size, artifact type and every
    annotation of the manifest (the spec asks for them all, so that clients can filter without reading it)."""
    descriptor: dict[str, Any] = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
    artifact_type = artifact_type_of(manifest)
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if manifest.annotations:
        descriptor["annotations"] = dict(manifest.annotations)
    return descriptor


def with_referrer(index: ManifestInfo | None, descriptor: Mapping[str, Any]) -> bytes | None:
    """The fallback index ``index`` (None: there is none yet) with ``descriptor`` added, or None when it lists that
    digest already: add, never replace; never a duplicate. What the index held before is kept as it was."""
    if index is None:
        document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    else:
        if any(child.digest == descriptor["digest"] for child in index.manifests):
            return None
        document = json.loads(index.raw)
    document["manifests"] = list(document.get("manifests") or []) + [dict(descriptor)]
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def wanted_types(values: Iterable[Any] | None) -> tuple[str, ...] | None:
    """A ``referrer_types`` option: None (every type) or the artifact types and cosign kinds to keep."""
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise InvalidInputError(
            "referrer_types must be a list of artifact types (media types such as"
            " 'application/vnd.dev.sigstore.bundle.v0.3+json') or %s; got %r" % (", ".join(COSIGN_KINDS), values)
        )
    kept: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or ("/" not in value and value not in COSIGN_KINDS):
            raise InvalidInputError(
                "referrer_types: %r is neither an artifact type (a media type, with a '/') nor one of %s"
                % (value, ", ".join(COSIGN_KINDS))
            )
        if value not in kept:
            kept.append(value)
    return tuple(kept)


def is_wanted(kind: str | None, wanted: tuple[str, ...] | None) -> bool:
    """Whether an attachment of this artifact type or cosign kind is to be kept (``wanted`` None: every one)."""
    return wanted is None or (kind is not None and kind in wanted)


def referrers_in(
    descriptors: Iterable[Descriptor], wanted: tuple[str, ...] | None, filtered: bool = False
) -> list[Descriptor]:
    """The descriptors of a referrers answer (or fallback index) whose artifact type is wanted. The registry's own
    filter is trusted only when it says it applied it (``filtered``, from ``OCI-Filters-Applied``)."""
    if filtered:
        return list(descriptors)
    return [child for child in descriptors if is_wanted(child.artifact_type, wanted)]


def filters_applied(headers: Mapping[str, str]) -> bool:
    """Whether a referrers answer's headers say the registry filtered by ``artifactType``."""
    value = next((text for name, text in headers.items() if name.lower() == FILTERS_APPLIED_HEADER.lower()), "")
    return "artifacttype" in {part.strip().lower() for part in value.split(",")}

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media types of the OCI image-spec and Docker's image manifest v2, and what each kind is; and the media types,
annotations and names of what cosign and sigstore attach to images (signatures, attestations, bundles)."""

from __future__ import annotations

import re

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


IMAGE_CONFIG_MEDIA_TYPES = frozenset((OCI_CONFIG, DOCKER_CONFIG))

# cosign and sigstore: the media types, annotations and names of signatures and attestations (cosign
# specs/SIGNATURE_SPEC.md and specs/BUNDLE_SPEC.md, the DSSE and in-toto specs).
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"  # what cosign 3 writes
SIGSTORE_BUNDLE_MEDIA_TYPES = frozenset(
    (
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        SIGSTORE_BUNDLE_MEDIA_TYPE,
    )
)
# Later bundle versions keep the v0.3 form (``.v0.4+json``); their JSON is read the same way.
_SIGSTORE_BUNDLE_MEDIA_TYPE = re.compile(
    r"application/vnd\.dev\.sigstore\.bundle(?:\.v0\.[0-9]+\+json|\+json;\s*version=0\.[0-9]+)"
)
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"  # the Rekor entry of a .sig layer, not a sigstore bundle
COSIGN_RFC3161_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
ATTESTATION_PREDICATE_TYPE_ANNOTATION = "predicateType"  # on each .att layer
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"  # "dsse-envelope" or "message-signature"
BUNDLE_PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"  # critical.type of a simple-signing payload
COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"  # the statement cosign 3's ``sign`` signs
IN_TOTO_STATEMENT_TYPES = frozenset(("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"))


def is_sigstore_bundle_media_type(media_type: object) -> bool:
    """True for a sigstore bundle's media type, any version (v0.1, v0.2, v0.3 and the later ``.v0.N+json``)."""
    return isinstance(media_type, str) and bool(_SIGSTORE_BUNDLE_MEDIA_TYPE.fullmatch(media_type.strip().lower()))

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Referrers as data (plugins/module_utils/_oci/referrers.py), to the distribution-spec 1.1 and cosign's tags.

No registry here serves the referrers API, so its answers are built by hand, exactly as the spec words them.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    COSIGN_SIGNATURE,
    artifact_type_of,
    attachment_tag_matches,
    cosign_tag,
    fallback_tag,
    filters_applied,
    is_attachment_tag,
    parse_attachment_tag,
    referrer_descriptor,
    referrers_in,
    wanted_types,
    with_referrer,
)

SUBJECT = "sha256:" + "5" * 64
SBOM = "application/spdx+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact(artifact_type: str | None, annotations: dict | None = None, config_type: str = OCI_EMPTY) -> bytes:
    document: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest_of(b"{}"), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 500},
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, indent=3).encode()


def index_of(*descriptors: dict) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(descriptors)}).encode()


def test_the_fallback_tag_follows_the_referrers_tag_schema() -> None:
    assert fallback_tag(SUBJECT) == "sha256-" + "5" * 64
    long = "sha512:" + "a" * 128
    assert fallback_tag(long) == "sha512-" + "a" * 64  # the encoded part is cut to 64 characters


def test_cosign_tags_and_their_kinds() -> None:
    assert cosign_tag(SUBJECT, COSIGN_SIGNATURE) == "sha256-" + "5" * 64 + ".sig"
    assert cosign_tag(SUBJECT, "cosign-attestation").endswith(".att")
    assert cosign_tag(SUBJECT, "cosign-sbom").endswith(".sbom")
    with pytest.raises(InvalidInputError, match="'notation'.*cosign-signature, cosign-attestation, cosign-sbom"):
        cosign_tag(SUBJECT, "notation")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("sha256-" + "5" * 64, (SUBJECT, None)),
        ("sha256-" + "5" * 64 + ".sig", (SUBJECT, "cosign-signature")),
        ("sha256-" + "5" * 64 + ".att", (SUBJECT, "cosign-attestation")),
        ("sha256-" + "5" * 64 + ".sbom", (SUBJECT, "cosign-sbom")),
        ("sha256-" + "5" * 63, None),  # too short to be a digest
        ("sha256-" + "5" * 64 + ".sig2", None),
        ("sha256-" + "A" * 64, None),  # digests are lowercase hex
        ("md5-" + "5" * 64, None),
        ("v1.0.0", None),
        ("latest", None),
    ],
)
def test_attachment_tags_are_recognised_and_nothing_else(tag: str, expected: tuple | None) -> None:
    assert parse_attachment_tag(tag) == expected
    assert is_attachment_tag(tag) is (expected is not None)


def test_a_tag_belongs_to_its_subject_only() -> None:
    assert attachment_tag_matches(cosign_tag(SUBJECT, COSIGN_SIGNATURE), SUBJECT)
    assert attachment_tag_matches(fallback_tag(SUBJECT), SUBJECT)
    assert not attachment_tag_matches(fallback_tag("sha256:" + "6" * 64), SUBJECT)
    assert not attachment_tag_matches("latest", SUBJECT)


def test_the_artifact_type_is_the_field_else_the_config_media_type() -> None:
    assert artifact_type_of(parse_manifest(artifact(SBOM))) == SBOM
    untyped = parse_manifest(artifact(None, config_type="application/vnd.dev.cosign.simplesigning.v1+json"))
    assert artifact_type_of(untyped) == "application/vnd.dev.cosign.simplesigning.v1+json"


def test_a_referrer_is_listed_with_its_type_and_every_annotation() -> None:
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "dev.sigstore.bundle.content": "x"}
    raw = artifact(BUNDLE, annotations)
    assert referrer_descriptor(parse_manifest(raw)) == {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(raw),
        "size": len(raw),
        "artifactType": BUNDLE,
        "annotations": annotations,
    }


def test_the_fallback_index_is_added_to_never_replaced_nor_duplicated() -> None:
    first = referrer_descriptor(parse_manifest(artifact(SBOM)))
    second = referrer_descriptor(parse_manifest(artifact(BUNDLE)))
    created = with_referrer(None, first)
    assert created is not None
    index = parse_manifest(created)
    assert index.media_type == OCI_INDEX and [child.digest for child in index.manifests] == [first["digest"]]

    # Another writer's entry, with a field we do not know, stays exactly as it was.
    foreign = dict(first, digest=digest_of(b"other"), annotations={"x": "y"}, data="e30=")
    existing = parse_manifest(index_of(foreign))
    grown = with_referrer(existing, second)
    assert grown is not None
    assert json.loads(grown)["manifests"] == [foreign, second]

    assert with_referrer(parse_manifest(grown), second) is None  # present already: nothing to write


def test_referrers_are_filtered_here_unless_the_registry_says_it_did() -> None:
    sbom = referrer_descriptor(parse_manifest(artifact(SBOM)))
    bundle = referrer_descriptor(parse_manifest(artifact(BUNDLE)))
    answer = parse_manifest(index_of(sbom, bundle))
    assert [child.digest for child in referrers_in(answer.manifests, None)] == [sbom["digest"], bundle["digest"]]
    assert [child.digest for child in referrers_in(answer.manifests, (BUNDLE,))] == [bundle["digest"]]
    assert [child.digest for child in referrers_in(answer.manifests, (BUNDLE,), filtered=True)] == [
        sbom["digest"],
        bundle["digest"],
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"OCI-Filters-Applied": "artifactType"}, True),
        ({"oci-filters-applied": "annotation, artifactType"}, True),
        ({"OCI-Filters-Applied": "annotation"}, False),
        ({}, False),
    ],
)
def test_the_filters_applied_header(headers: dict, expected: bool) -> None:
    assert filters_applied(headers) is expected


def test_referrer_types_are_media_types_or_cosign_kinds() -> None:
    assert wanted_types(None) is None
    assert wanted_types([BUNDLE, "cosign-signature", BUNDLE]) == (BUNDLE, "cosign-signature")
    for bad in ("cosign-signature", ["signature"], [""], [3]):
        with pytest.raises(InvalidInputError, match="referrer_types"):
            wanted_types(bad)  # type: ignore[arg-type]

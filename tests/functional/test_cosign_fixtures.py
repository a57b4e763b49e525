"""The cosign fixture library (support/cosign.py): what it builds holds together, the real registry stores it, and
skopeo reads it back byte for byte where cosign looks for it.

The plugin's verifier (plugins/module_utils/_ops/signatures.py) is the check that the signatures are real; its own
unit tests make their signatures separately, so a layout mistake shared by both would still need both to agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory
from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo

from ansible_collections.ocireg.registry.plugins.module_utils._oci import mediatypes, referrers
from ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures import (
    verify_bundle,
    verify_dsse_envelope,
    verify_simple_signing,
)

DIGEST = "sha256:" + "5e" * 32
REFERENCE = "registry.example:5000/t/app"
SUBJECT = {"mediaType": cosign.OCI_MANIFEST, "size": 1234, "digest": DIGEST}
CREATED = "2025-06-01T12:00:00Z"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


def test_the_fixtures_and_the_plugin_spell_cosigns_names_alike() -> None:
    # Each side spells them out from cosign's and sigstore's specs; a typo on either side shows here.
    assert (cosign.SIMPLE_SIGNING, cosign.DSSE_ENVELOPE, cosign.IN_TOTO, cosign.BUNDLE_V03) == (
        mediatypes.SIMPLE_SIGNING_MEDIA_TYPE,
        mediatypes.DSSE_ENVELOPE_MEDIA_TYPE,
        mediatypes.IN_TOTO_PAYLOAD_TYPE,
        mediatypes.SIGSTORE_BUNDLE_MEDIA_TYPE,
    )
    assert cosign.SIGNATURE_ANNOTATION == mediatypes.COSIGN_SIGNATURE_ANNOTATION
    assert cosign.COSIGN_SIGN_PREDICATE == mediatypes.COSIGN_SIGN_PREDICATE_TYPE
    assert cosign.cosign_tag(DIGEST, ".att") == referrers.cosign_tag(DIGEST, referrers.COSIGN_ATTESTATION)


def assert_holds_together(artifact: cosign.Artifact) -> dict[str, Any]:
    """The manifest names exactly its blobs, by digest and size; returns it parsed."""
    document = artifact.document
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == artifact.media_type
    described = [document["config"], *document["layers"]]
    assert [(d["digest"], d["size"], d["mediaType"]) for d in described] == [
        (b.digest, b.size, b.media_type) for b in artifact.blobs
    ]
    assert artifact.manifest == json.dumps(document, separators=(",", ":")).encode(), "not compact, as Go writes it"
    return document


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_a_signature_image_is_cosigns_shape_and_verifies(kind: str) -> None:
    key = cosign.signing_key(kind)
    layers = [
        cosign.simple_signature(DIGEST, key, docker_reference=REFERENCE),
        cosign.simple_signature(DIGEST, key, docker_reference=REFERENCE, optional={"b": "2", "a": "1"}, legacy=True),
    ]
    image = cosign.signature_image(DIGEST, layers)
    document = assert_holds_together(image)
    assert image.tag == "sha256-%s.sig" % ("5e" * 32)
    assert list(document) == ["schemaVersion", "mediaType", "config", "layers"]
    config = json.loads(image.blobs[0].data)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.digest for layer in layers]}
    assert config["history"] == [{"created": cosign.ZERO_TIME}] * 2
    assert b'"optional":{"a":"1","b":"2"}' in layers[1].data
    for layer, described in zip(layers, document["layers"]):
        assert described["mediaType"] == cosign.SIMPLE_SIGNING
        verdict = verify_simple_signing(layer.data, described["annotations"], DIGEST, key.public_pem)
        assert verdict.verified, verdict.reason


def test_the_tampering_helpers_break_what_they_say() -> None:
    key = cosign.signing_key("ecdsa-p256")
    layer = cosign.simple_signature(DIGEST, key, docker_reference=REFERENCE)
    other = cosign.simple_signature("sha256:" + "0f" * 32, key, docker_reference=REFERENCE)
    wrong_key = cosign.simple_signature(
        DIGEST, cosign.signing_key("ecdsa-p256", "intruder"), docker_reference=REFERENCE
    )
    cases = {
        "tampered": (cosign.tampered_payload(layer), "the signature does not verify with the key"),
        "truncated": (cosign.truncated_signature(layer), "the signature is truncated or malformed"),
        "other digest": (other, "the payload names sha256:0f0f"),
        "wrong key": (wrong_key, "the signature does not verify with the key"),
        "not base64": (cosign.with_signature_text(layer, "%%%"), "the signature is not base64"),
    }
    for name, (broken, reason) in cases.items():
        verdict = verify_simple_signing(broken.data, broken.annotations, DIGEST, key.public_pem)
        assert not verdict.verified and verdict.reason.startswith(reason), (name, verdict)
    assert json.loads(cosign.tampered_payload(layer).data), "the tampered payload is still JSON"


@pytest.mark.parametrize("kind", ["ecdsa-p384", "ed25519"])
def test_an_attestation_image_and_an_sbom_image(kind: str) -> None:
    key = cosign.signing_key(kind)
    layer = cosign.attestation_layer(DIGEST, key, docker_reference=REFERENCE)
    attestation = cosign.attestation_image(DIGEST, [layer])
    document = assert_holds_together(attestation)
    assert attestation.tag.endswith(".att")
    assert document["layers"][0]["mediaType"] == cosign.DSSE_ENVELOPE
    assert document["layers"][0]["annotations"] == {"predicateType": cosign.SLSA_PROVENANCE_V02}
    envelope = json.loads(layer.data)
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["signatures"][0]["keyid"] == ""
    assert verify_dsse_envelope(layer.data, DIGEST, key.public_pem).verified
    assert not verify_dsse_envelope(layer.data, DIGEST, key.public_pem, predicate_types=["x"]).verified
    sbom = cosign.sbom_image(DIGEST, b'{"spdxVersion":"SPDX-2.3"}')
    assert_holds_together(sbom)
    assert sbom.tag.endswith(".sbom") and sbom.layers[0].media_type == cosign.SPDX_JSON


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_a_bundle_referrer_is_cosign_3s_shape_and_verifies(kind: str) -> None:
    key = cosign.signing_key(kind)
    referrer = cosign.sign_bundle(SUBJECT, key, created=CREATED)
    document = assert_holds_together(referrer)
    assert referrer.tag is None
    assert list(document) == [
        "schemaVersion",
        "mediaType",
        "config",
        "layers",
        "annotations",
        "subject",
        "artifactType",
    ]
    assert document["artifactType"] == document["layers"][0]["mediaType"] == cosign.BUNDLE_V03
    assert document["config"] == {
        "mediaType": cosign.OCI_EMPTY,
        "size": 2,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "artifactType": cosign.BUNDLE_V03,
    }
    assert document["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": cosign.COSIGN_SIGN_PREDICATE,
        "org.opencontainers.image.created": CREATED,
    }
    assert document["subject"] == SUBJECT
    bundle = referrer.layers[0].data
    assert json.loads(bundle)["verificationMaterial"] == {"publicKey": {"hint": key.hint}}
    assert verify_bundle(bundle, DIGEST, key.public_pem).verified
    for broken in (
        cosign.tampered_bundle(bundle, flip_payload=True),
        cosign.tampered_bundle(bundle, truncate_signature=10),
    ):
        assert not verify_bundle(broken, DIGEST, key.public_pem).verified
    if not kind.startswith("ed25519"):
        assert verify_bundle(cosign.message_signature_bundle(DIGEST, key), DIGEST, key.public_pem).verified


def test_an_attestation_bundle_is_not_counted_as_a_signature() -> None:
    key = cosign.signing_key("ecdsa-p256")
    referrer = cosign.attest_bundle(SUBJECT, key, name=REFERENCE, created=CREATED)
    bundle = referrer.layers[0].data
    assert referrer.document["annotations"]["dev.sigstore.bundle.predicateType"] == "https://slsa.dev/provenance/v1"
    assert verify_bundle(bundle, DIGEST, key.public_pem).reason.endswith("attestation, not a cosign signature")
    assert verify_bundle(bundle, DIGEST, key.public_pem, predicate_types=None).verified


def test_the_fallback_index_adds_and_never_duplicates() -> None:
    key = cosign.signing_key("ecdsa-p256")
    first = cosign.sign_bundle(SUBJECT, key, created=CREATED)
    second = cosign.attest_bundle(SUBJECT, key, name=REFERENCE, created=CREATED)
    index = cosign.fallback_index([first])
    grown = cosign.fallback_index([second, first], existing=index.manifest)
    entries = grown.document["manifests"]
    assert [entry["digest"] for entry in entries] == [first.digest, second.digest]
    assert entries[0] == {
        "mediaType": cosign.OCI_MANIFEST,
        "size": first.size,
        "digest": first.digest,
        "annotations": first.document["annotations"],
        "artifactType": cosign.BUNDLE_V03,
    }


# -- against the registry --------------------------------------------------------------------------------------------


def seeded(registry: RegistryServer, image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo], repo: str):
    image = image_factory()
    witness = skopeo(registry)
    witness.copy(image.oci, f"{repo}:v1")
    return image, witness


def test_a_signature_pushed_where_cosign_looks_reads_back_byte_for_byte(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    unique_repo: str,
) -> None:
    image, witness = seeded(registry_open, image_factory, skopeo, unique_repo)
    key = cosign.signing_key("ecdsa-p256")
    layer = cosign.simple_signature(image.digest, key, docker_reference=f"{registry_open.host}/{unique_repo}")
    signature = cosign.signature_image(image.digest, [layer])
    client = connect(registry_open, unique_repo)
    assert cosign.push(client, unique_repo, signature) == signature.digest

    where = f"{unique_repo}:sha256-{image.digest.partition(':')[2]}.sig"
    assert witness.inspect(where, raw=True) == signature.manifest
    assert witness.inspect(where, raw=True, config=True) == signature.blobs[0].data
    served = json.loads(witness.inspect(where, raw=True))["layers"][0]
    payload = client.read_blob(unique_repo, served["digest"])
    assert payload == layer.data
    assert verify_simple_signing(payload, served["annotations"], image.digest, key.public_pem).verified


def test_bundle_referrers_and_their_fallback_index_on_a_registry_without_the_referrers_api(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    unique_repo: str,
) -> None:
    image, witness = seeded(registry_open, image_factory, skopeo, unique_repo)
    key = cosign.signing_key("ed25519")
    signed = cosign.sign_bundle(cosign.subject_of(image), key)
    client = connect(registry_open, unique_repo)
    index = cosign.push_referrers(client, unique_repo, image.digest, [signed])
    fallback = f"{unique_repo}:{cosign.referrers_tag(image.digest)}"
    assert witness.inspect(fallback, raw=True) == index.manifest
    assert witness.inspect(f"{unique_repo}@{signed.digest}", raw=True) == signed.manifest

    attested = cosign.attest_bundle(cosign.subject_of(image), key, name=f"{registry_open.host}/{unique_repo}")
    grown = cosign.push_referrers(client, unique_repo, image.digest, [attested, signed])
    listed = json.loads(witness.inspect(fallback, raw=True))["manifests"]
    assert [entry["digest"] for entry in listed] == [signed.digest, attested.digest]
    assert witness.inspect(fallback, raw=True) == grown.manifest

    bundle = client.read_blob(unique_repo, signed.layers[0].digest)
    assert verify_bundle(bundle, image.digest, key.public_pem).verified


def test_attestation_and_sbom_images_are_stored_under_their_tags(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    unique_repo: str,
) -> None:
    image, witness = seeded(registry_open, image_factory, skopeo, unique_repo)
    key = cosign.signing_key("rsa-2048")
    reference = f"{registry_open.host}/{unique_repo}"
    attestation = cosign.attestation_image(
        image.digest, [cosign.attestation_layer(image.digest, key, docker_reference=reference)]
    )
    sbom = cosign.sbom_image(image.digest, b'{"spdxVersion":"SPDX-2.3"}')
    client = connect(registry_open, unique_repo)
    for artifact in (attestation, sbom):
        cosign.push(client, unique_repo, artifact)
        assert witness.inspect(f"{unique_repo}:{artifact.tag}", raw=True) == artifact.manifest
    tags = set(witness.list_tags(unique_repo))
    assert {attestation.tag, sbom.tag} <= tags


def test_skopeo_with_sigstore_attachments_carries_our_signature_unchanged(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    # containers/image reads the .sig layers itself (payload blob, signature annotation) and writes its own .sig at
    # the destination: the payload and the annotation must come through byte for byte.
    source, dest = unique_repo_factory(), unique_repo_factory()
    image, witness = seeded(registry_open, image_factory, skopeo, source)
    key = cosign.signing_key("ecdsa-p256")
    layer = cosign.simple_signature(image.digest, key, docker_reference=f"{registry_open.host}/{source}")
    cosign.push(connect(registry_open, source), source, cosign.signature_image(image.digest, [layer]))
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "sigstore.yaml").write_text(
        "docker:\n  %s:\n    use-sigstore-attachments: true\n" % registry_open.host
    )
    src = witness.ref(f"{source}@{image.digest}")
    dst = witness.ref(f"{dest}:v1")
    witness.run(  # a global flag before the command: the later --registries.d wins over the isolation's own
        "--registries.d",
        str(registries_d),
        "copy",
        "--quiet",
        *witness._side_args(src, "src-"),
        *witness._side_args(dst, "dest-"),
        src,
        dst,
    )
    carried = json.loads(witness.inspect(f"{dest}:{cosign.cosign_tag(image.digest)}", raw=True))
    assert [entry["mediaType"] for entry in carried["layers"]] == [cosign.SIMPLE_SIGNING]
    assert (
        carried["layers"][0]["annotations"][cosign.SIGNATURE_ANNOTATION]
        == layer.annotations[cosign.SIGNATURE_ANNOTATION]
    )
    assert connect(registry_open, dest).read_blob(dest, carried["layers"][0]["digest"]) == layer.data

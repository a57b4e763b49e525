# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registry_info's attachments and signature verdicts (plugins/module_utils/_ops/details.py AttachmentInspector, and
its use in _ops/inventory.py), on the in-memory registry of conftest.py.

No registry here serves the referrers API: it is answered here, in this file, as the distribution-spec 1.1 words it
(an index of the manifests whose subject is the digest, each with its artifactType and annotations), next to a
registry without it (the first ask answers 404, which the client remembers). Signatures are made here with
``cryptography``, to cosign's layouts, and only what the inspector does with them is checked: the verifier has its own
tests (test_signatures.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    COSIGN_SIGNATURE_ANNOTATION,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import artifact_type_of
from ansible_collections.ocireg.registry.plugins.module_utils._ops import inventory
from ansible_collections.ocireg.registry.plugins.module_utils._ops.details import AttachmentInspector
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import Referrers

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # ansible-test units without it: the tests that sign are skipped
    HAVE_CRYPTOGRAPHY = False

NAME = "team/app"
SPDX = "application/spdx+json"
SLSA = "https://slsa.dev/provenance/v1"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
PREDICATE = "dev.sigstore.bundle.predicateType"
DEFAULTS: dict[str, Any] = {
    "registry": None,
    "repository": None,
    "image": None,
    "repositories": None,
    "tags": None,
    "details": False,
    "paths": None,
    "max_file_size": 1048576,
    "platform": None,
    "concurrency": 8,
    "referrers": False,
    "verify_key": None,
}


def dumps(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


# -- a referrers API, or none, on the memory registry ------------------------------------------------------------


def serve_referrers(registry: Any, *, api: bool, delay: float = 0.0) -> None:
    """Give ``registry`` a ``referrers`` method that answers as RegistryClient.referrers does.

    ``api``: the registry serves the API: every ask is a request, answered with what names the digest. Else the
    first answer (a 404) teaches the client that there is none, and then it asks no more; until that first answer has
    come back (``delay`` seconds), every other thread that asks sends its own request, as a real client would.
    """
    learnt = threading.Event()

    def referrers(repository: str, digest: str, artifact_type: str | None = None) -> Referrers | None:
        if not api and learnt.is_set():
            return None
        registry._log("referrers", repository, digest)
        time.sleep(delay)
        if not api:
            learnt.set()
            return None
        listed = []
        for child, (raw, media_type) in list(registry.repositories.get(repository).manifests.items()):
            info = parse_manifest(raw, media_type)
            if info.subject is not None and info.subject.digest == digest:
                listed.append(
                    Descriptor(
                        media_type=media_type,
                        digest=child,
                        size=len(raw),
                        annotations=dict(info.annotations) if info.annotations else None,
                        artifact_type=artifact_type_of(info),
                    )
                )
        return Referrers(tuple(listed), False)

    registry.referrers = referrers


# -- content -------------------------------------------------------------------------------------------------------


def artifact(
    registry: Any,
    subject: Any,
    *,
    artifact_type: str | None = None,
    config_type: str = OCI_EMPTY,
    annotations: dict | None = None,
    layers: list[tuple[str, bytes, dict | None]] | None = None,
    tags: tuple[str, ...] = (),
) -> tuple[str, bytes]:
    """A manifest with ``subject`` (a Pushed, or a (digest, raw) pair), stored; returns (digest, raw)."""
    subject_digest, subject_raw = (subject.digest, subject.raw) if hasattr(subject, "raw") else subject
    described = []
    for media_type, data, layer_annotations in layers or [("application/octet-stream", b"x", None)]:
        entry: dict[str, Any] = {"mediaType": media_type, "digest": registry.blob(NAME, data), "size": len(data)}
        if layer_annotations:
            entry["annotations"] = layer_annotations
        described.append(entry)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": registry.blob(NAME, b"{}"), "size": 2},
        "layers": described,
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_raw)},
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    raw = dumps(document)
    return registry.store(NAME, raw, OCI_MANIFEST, tags), raw


def fallback_index(registry: Any, subject_digest: str, entries: list[dict[str, Any]]) -> str:
    """Store the fallback index of ``subject_digest`` listing ``entries`` (descriptors as dicts); returns its tag."""
    tag = "sha256-" + hex_of(subject_digest)
    registry.store(NAME, dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}), OCI_INDEX, [tag])
    return tag


def entry_of(digest: str, raw: bytes, **fields: Any) -> dict[str, Any]:
    return dict({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}, **fields)


def cosign_image(registry: Any, subject_digest: str, suffix: str, layers: list[tuple[str, bytes, dict | None]]) -> str:
    """cosign 2's attachment image under ``sha256-<hex><suffix>``; returns its digest."""
    config = dumps({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": []}, "config": {}})
    described = []
    for media_type, data, layer_annotations in layers:
        entry: dict[str, Any] = {"mediaType": media_type, "digest": registry.blob(NAME, data), "size": len(data)}
        if layer_annotations:
            entry["annotations"] = layer_annotations
        described.append(entry)
    raw = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": registry.blob(NAME, config), "size": len(config)},
            "layers": described,
        }
    )
    return registry.store(NAME, raw, OCI_MANIFEST, ["sha256-%s%s" % (hex_of(subject_digest), suffix)])


# -- referrers -----------------------------------------------------------------------------------------------------


def test_the_referrers_api_answer_is_used_as_it_is_and_asked_for_each_digest_once(memory_registry) -> None:
    serve_referrers(memory_registry, api=True)
    image = memory_registry.add_image(NAME, ["v1"])
    sbom, sbom_raw = artifact(memory_registry, image, artifact_type=SPDX, annotations={"made-by": "syft"})
    # No artifactType: the API gives the config's media type; no annotations: the API lists none, so none.
    plain, plain_raw = artifact(memory_registry, image, config_type="application/vnd.example.config.v1+json")
    signature, signature_raw = artifact(
        memory_registry, (sbom, sbom_raw), artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE, annotations={PREDICATE: "x"}
    )
    inspector = AttachmentInspector(memory_registry)

    found = inspector.details(NAME, image.digest, referrers=True, signatures=False)

    assert found == {
        "referrers": [
            {
                "subject": image.digest,
                "digest": sbom,
                "media_type": OCI_MANIFEST,
                "artifact_type": SPDX,
                "size": len(sbom_raw),
                "annotations": {"made-by": "syft"},
                "via": "api",
                "tag": None,
            },
            {
                "subject": image.digest,
                "digest": plain,
                "media_type": OCI_MANIFEST,
                "artifact_type": "application/vnd.example.config.v1+json",
                "size": len(plain_raw),
                "annotations": {},
                "via": "api",
                "tag": None,
            },
            {
                "subject": sbom,
                "digest": signature,
                "media_type": OCI_MANIFEST,
                "artifact_type": SIGSTORE_BUNDLE_MEDIA_TYPE,
                "size": len(signature_raw),
                "annotations": {PREDICATE: "x"},
                "via": "api",
                "tag": None,
            },
        ]
    }
    # Each digest asked once (the image, then each referrer: the loop guard), one tag list, no manifest read.
    assert [(r.kind, r.reference) for r in memory_registry.requests if r.kind == "referrers"] == [
        ("referrers", image.digest),
        ("referrers", sbom),
        ("referrers", plain),
        ("referrers", signature),
    ]
    assert memory_registry.kinds() == {"referrers": 4, "list_tags": 1}


def test_a_fallback_entry_without_its_artifact_type_or_annotations_costs_a_read_of_the_referrer(memory_registry):
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    full, full_raw = artifact(memory_registry, image, artifact_type=SPDX, annotations={"a": "1"})
    untyped, untyped_raw = artifact(memory_registry, image, config_type="application/vnd.example.config.v1+json")
    bare, bare_raw = artifact(memory_registry, image, artifact_type=SPDX, annotations={"b": "2"})
    tag = fallback_index(
        memory_registry,
        image.digest,
        [
            entry_of(full, full_raw, artifactType=SPDX, annotations={"a": "1"}),
            entry_of(untyped, untyped_raw, annotations={}),  # annotations listed (none), but no artifactType
            entry_of(bare, bare_raw),  # what older writers wrote
        ],
    )

    found = AttachmentInspector(memory_registry).details(NAME, image.digest, referrers=True, signatures=False)

    assert [(e["digest"], e["artifact_type"], e["annotations"], e["via"], e["tag"]) for e in found["referrers"]] == [
        (full, SPDX, {"a": "1"}, "fallback_tag", tag),
        (untyped, "application/vnd.example.config.v1+json", {}, "fallback_tag", tag),
        (bare, SPDX, {"b": "2"}, "fallback_tag", tag),
    ]
    reads = [r.reference for r in memory_registry.requests if r.kind == "get_manifest"]
    assert reads == [tag, untyped, bare], "the full entry is not read"


def test_a_cosign_tag_costs_a_head_and_its_annotations_are_only_known_once_its_manifest_is_read(memory_registry):
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    sig = cosign_image(memory_registry, image.digest, ".sig", [(SIMPLE_SIGNING_MEDIA_TYPE, b"{}", None)])
    sbom = cosign_image(memory_registry, image.digest, ".sbom", [(SPDX, b"{}", None)])

    found = AttachmentInspector(memory_registry).details(NAME, image.digest, referrers=True, signatures=False)

    assert [(e["digest"], e["artifact_type"], e["annotations"], e["via"]) for e in found["referrers"]] == [
        (sig, "cosign-signature", None, "cosign_tag"),
        (sbom, "cosign-sbom", None, "cosign_tag"),
    ]
    assert [e["tag"] for e in found["referrers"]] == [
        "sha256-%s.sig" % hex_of(image.digest),
        "sha256-%s.sbom" % hex_of(image.digest),
    ]
    assert memory_registry.kinds() == {"referrers": 1, "list_tags": 1, "head_manifest": 2}


def test_a_registry_without_the_api_is_asked_once_however_many_threads_look(memory_registry) -> None:
    # The first ask answers slowly; eight threads ask at once. Only one request may go out: the rest wait for it.
    serve_referrers(memory_registry, api=False, delay=0.05)
    images = [memory_registry.add_image(NAME, ["v%d" % number]) for number in range(8)]
    inspector = AttachmentInspector(memory_registry)
    inspector.know_tags(NAME, memory_registry.tags_of(NAME))
    start = threading.Barrier(len(images))
    found: list[Any] = []

    def look(image: Any) -> None:
        start.wait()
        found.append(inspector.details(NAME, image.digest, referrers=True, signatures=False))

    threads = [threading.Thread(target=look, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert found == [{"referrers": []}] * len(images)
    assert memory_registry.kinds() == {"referrers": 1}, "one probe, and no tag list: the caller had read it"


def test_a_listing_reads_each_tag_list_once_for_its_tags_and_their_attachments(memory_registry, memory_clients):
    image = memory_registry.add_image(NAME, ["v1", "v2"])
    sig = cosign_image(memory_registry, image.digest, ".sig", [(SIMPLE_SIGNING_MEDIA_TYPE, b"{}", None)])
    other = memory_registry.add_image("team/other", ["v1"])

    for params in (
        {"repository": "registry.test/" + NAME},
        {"registry": "registry.test", "repositories": [NAME, "team/other"]},
    ):
        del memory_registry.requests[:]
        serve_referrers(memory_registry, api=False)  # a new task, a new client, which knows nothing yet
        result = inventory.Inventory(
            dict(DEFAULTS, details=True, referrers=True, tags=["v*"], **params), lambda *_: memory_clients, print
        ).run()

        tags = result["tags"] if "tags" in result else result["repositories"][0]["tags"]
        assert [(entry["tag"], [r["digest"] for r in entry["referrers"]]) for entry in tags] == [
            ("v1", [sig]),
            ("v2", [sig]),
        ]
        lists = sorted(r.repository for r in memory_registry.requests if r.kind == "list_tags")
        assert lists == ([NAME] if "repository" in params else ["team/app", "team/other"])
        assert memory_registry.count("referrers") == 1
    assert result["repositories"][1]["tags"][0]["digest"] == other.digest
    assert result["repositories"][1]["tags"][0]["referrers"] == []


def test_a_listing_without_referrers_reports_none_and_asks_nothing_more(memory_registry, memory_clients) -> None:
    serve_referrers(memory_registry, api=True)
    image = memory_registry.add_image(NAME, ["v1"])
    artifact(memory_registry, image, artifact_type=SPDX)

    result = inventory.Inventory(
        dict(DEFAULTS, repository="registry.test/" + NAME, details=True), lambda *_: memory_clients, print
    ).run()

    assert "referrers" not in result["tags"][0]
    assert memory_registry.count("referrers") == 0


def test_a_referrer_that_a_fallback_index_lists_but_is_gone_is_reported_as_listed_with_a_warning(
    memory_registry, memory_clients
) -> None:
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    gone, gone_raw = artifact(memory_registry, image, artifact_type=SPDX)
    fallback_index(memory_registry, image.digest, [entry_of(gone, gone_raw)])
    memory_registry.remove(NAME, gone)
    warnings: list[str] = []

    result = inventory.Inventory(
        dict(DEFAULTS, image="registry.test/%s:v1" % NAME, referrers=True), lambda *_: memory_clients, warnings.append
    ).run()

    (entry,) = result["image"]["referrers"]
    assert (entry["digest"], entry["artifact_type"], entry["annotations"]) == (gone, None, None)
    assert len(warnings) == 1 and "%s@%s (" % (NAME, gone) in warnings[0] and "MANIFEST_UNKNOWN" in warnings[0]


# -- signatures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Any:
    if not HAVE_CRYPTOGRAPHY:
        pytest.skip("needs the Python library cryptography to make signatures")
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(private: Any, data: bytes) -> str:
    return base64.b64encode(private.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def simple_signing(private: Any, digest: str) -> tuple[str, bytes, dict]:
    payload = dumps(
        {
            "critical": {
                "identity": {"docker-reference": "registry.test/" + NAME},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    return SIMPLE_SIGNING_MEDIA_TYPE, payload, {COSIGN_SIGNATURE_ANNOTATION: sign(private, payload)}


def bundle(private: Any, digest: str, predicate_type: str = COSIGN_SIGN) -> bytes:
    statement = dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": hex_of(digest)}}],
            "predicateType": predicate_type,
            "predicate": {},
        }
    )
    payload_type = "application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(statement), statement)
    envelope = {
        "payload": base64.b64encode(statement).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": sign(private, pae)}],
    }
    return dumps({"mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE, "verificationMaterial": {}, "dsseEnvelope": envelope})


def verify(registry: Any, digest: str, private: Any, *, referrers: bool = False) -> dict[str, Any]:
    key = inventory.load_verify_key(public_pem(private))
    return AttachmentInspector(registry, key).details(NAME, digest, referrers=referrers, signatures=True)


def test_only_signatures_are_checked_and_attestations_are_known_without_reading_them(memory_registry, signer):
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    signed, signed_raw = artifact(
        memory_registry,
        image,
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: COSIGN_SIGN},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, image.digest), None)],
    )
    attested, attested_raw = artifact(
        memory_registry,
        image,
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: SLSA},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, image.digest, SLSA), None)],
    )
    sbom, sbom_raw = artifact(memory_registry, image, artifact_type=SPDX)
    fallback_index(
        memory_registry,
        image.digest,
        [
            entry_of(signed, signed_raw, artifactType=SIGSTORE_BUNDLE_MEDIA_TYPE, annotations={PREDICATE: COSIGN_SIGN}),
            entry_of(attested, attested_raw, artifactType=SIGSTORE_BUNDLE_MEDIA_TYPE, annotations={PREDICATE: SLSA}),
            entry_of(sbom, sbom_raw, artifactType=SPDX, annotations={}),
        ],
    )
    cosign_image(memory_registry, image.digest, ".att", [("application/vnd.dsse.envelope.v1+json", b"{}", None)])
    sig = cosign_image(memory_registry, image.digest, ".sig", [simple_signing(signer, image.digest)])

    found = verify(memory_registry, image.digest, signer)

    assert [(e["digest"], e["manifest"], e["via"], e["verified"]) for e in found["signatures"]] == [
        (signed, signed, "fallback_tag", True),
        (compute_digest(simple_signing(signer, image.digest)[1]), sig, "cosign_tag", True),
    ]
    assert "referrers" not in found
    reads = {r.reference for r in memory_registry.requests if r.kind in ("get_manifest", "read_blob")}
    assert attested not in reads and sbom not in reads, "an attestation or an SBOM is not read"
    assert memory_registry.count("get_manifest", sig) == 1


def test_a_signature_of_an_attachment_is_a_referrer_of_the_image_but_not_its_signature(memory_registry, signer):
    serve_referrers(memory_registry, api=True)
    image = memory_registry.add_image(NAME, ["v1"])
    sbom, sbom_raw = artifact(memory_registry, image, artifact_type=SPDX)
    of_sbom, _raw = artifact(
        memory_registry,
        (sbom, sbom_raw),
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: COSIGN_SIGN},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, sbom), None)],
    )
    of_image, _raw = artifact(
        memory_registry,
        image,
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: COSIGN_SIGN},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, image.digest), None)],
    )

    found = verify(memory_registry, image.digest, signer, referrers=True)

    assert [(e["subject"], e["digest"]) for e in found["referrers"]] == [
        (image.digest, sbom),
        (image.digest, of_image),
        (sbom, of_sbom),
    ]
    assert [(e["digest"], e["via"], e["tag"], e["verified"]) for e in found["signatures"]] == [
        (of_image, "api", None, True)
    ]
    assert memory_registry.count("get_manifest", of_sbom) == 0, "not the image's signature: not read"


def test_a_bundle_whose_fallback_entry_names_no_type_is_read_to_know_what_it_is(memory_registry, signer) -> None:
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    signed, signed_raw = artifact(
        memory_registry,
        image,
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: COSIGN_SIGN},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, image.digest), None)],
    )
    attested, attested_raw = artifact(
        memory_registry,
        image,
        artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE,
        annotations={PREDICATE: SLSA},
        layers=[(SIGSTORE_BUNDLE_MEDIA_TYPE, bundle(signer, image.digest, SLSA), None)],
    )
    other, other_raw = artifact(memory_registry, image, artifact_type=SPDX)
    fallback_index(
        memory_registry,
        image.digest,
        [entry_of(signed, signed_raw), entry_of(attested, attested_raw), entry_of(other, other_raw)],
    )

    found = verify(memory_registry, image.digest, signer, referrers=True)

    assert [(e["digest"], e["verified"]) for e in found["signatures"]] == [(signed, True)]
    # Each manifest read once, for the verdicts and the referrers entries both.
    for digest in (signed, attested, other):
        assert memory_registry.count("get_manifest", digest) == 1
    assert [e["annotations"] for e in found["referrers"]] == [{PREDICATE: COSIGN_SIGN}, {PREDICATE: SLSA}, {}]


def test_what_cannot_be_read_or_holds_no_signature_is_a_verdict_not_a_failure(memory_registry, signer) -> None:
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    good = simple_signing(signer, image.digest)
    lost = simple_signing(signer, "sha256:" + "1" * 64)
    sig = cosign_image(memory_registry, image.digest, ".sig", [good, lost, ("text/plain", b"hello", None)])
    del memory_registry.repositories[NAME].blobs[compute_digest(lost[1])]
    empty, empty_raw = artifact(
        memory_registry, image, artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE, layers=[("text/plain", b"no bundle", None)]
    )
    gone, gone_raw = artifact(memory_registry, image, artifact_type=SIGSTORE_BUNDLE_MEDIA_TYPE)
    fallback_index(
        memory_registry,
        image.digest,
        [
            entry_of(empty, empty_raw, artifactType=SIGSTORE_BUNDLE_MEDIA_TYPE, annotations={}),
            entry_of(gone, gone_raw, artifactType=SIGSTORE_BUNDLE_MEDIA_TYPE, annotations={}),
        ],
    )
    memory_registry.remove(NAME, gone)
    # A .sig image with no simple-signing layer at all says so too.
    other = memory_registry.add_image(NAME, ["v2"])
    bare = cosign_image(memory_registry, other.digest, ".sig", [("text/plain", b"hello", None)])

    found = verify(memory_registry, image.digest, signer)
    bare_found = verify(memory_registry, other.digest, signer)

    verdicts = [(e["digest"], e["manifest"], e["verified"], e["reason"]) for e in found["signatures"]]
    assert [v[:3] for v in verdicts] == [
        (empty, empty, False),
        (gone, gone, False),
        (compute_digest(good[1]), sig, True),
        (compute_digest(lost[1]), sig, False),
    ]
    assert verdicts[0][3] == "it holds no sigstore bundle layer"
    assert verdicts[1][3].startswith("its manifest cannot be read: ")
    assert verdicts[3][3].startswith("its layer cannot be read: ")
    assert [(e["digest"], e["verified"], e["reason"]) for e in bare_found["signatures"]] == [
        (bare, False, "it holds no simple-signing layer")
    ]


# -- the key -------------------------------------------------------------------------------------------------------


def test_the_key_is_read_from_its_text_or_a_file(signer, tmp_path) -> None:
    pem = public_pem(signer)
    (tmp_path / "cosign.pub").write_text(pem)
    from_text = inventory.load_verify_key(pem)
    from_file = inventory.load_verify_key(str(tmp_path / "cosign.pub"))
    from_home = inventory.load_verify_key("  %s  " % (tmp_path / "cosign.pub"))
    assert from_text.fingerprint == from_file.fingerprint == from_home.fingerprint
    assert from_text.description == "ECDSA P-256"


def test_a_bad_key_is_named_and_never_repeated(signer, tmp_path) -> None:
    (tmp_path / "big.pub").write_bytes(b"x" * (inventory.MAX_KEY_FILE_BYTES + 1))
    (tmp_path / "note.txt").write_text("just a note\n")
    garbage = "c2VjcmV0LWlzaC1sb29raW5nLXRleHQ"
    cases = {
        "": "verify_key is empty",
        " \n ": "verify_key is empty",
        garbage: "is neither the PEM text of a public key",
        str(tmp_path): "is neither the PEM text of a public key",  # a directory is no key file
        str(tmp_path / "big.pub"): "which is larger than %d bytes" % inventory.MAX_KEY_FILE_BYTES,
        str(tmp_path / "note.txt"): "verify_key (the file %s) is not a PEM public key" % (tmp_path / "note.txt"),
        garbage + "\n" + garbage: "verify_key is not a PEM public key",
    }
    for value, words in cases.items():
        with pytest.raises(InvalidInputError) as raised:
            inventory.load_verify_key(value)
        assert words in str(raised.value), (value, str(raised.value))
        assert garbage not in str(raised.value)


def test_a_bad_key_fails_the_inventory_before_it_asks_for_a_client(signer) -> None:
    asked: list[Any] = []

    def make_clients(*args: Any) -> Any:
        asked.append(args)
        raise AssertionError("no client may be made")

    params = dict(DEFAULTS, image="registry.test/%s:v1" % NAME, verify_key="-----BEGIN PUBLIC KEY-----\nAA==\n")
    with pytest.raises(InvalidInputError, match="does not decode as a public key|incomplete PEM block"):
        inventory.Inventory(params, make_clients, print)
    assert asked == []


def test_an_image_result_has_signatures_only_with_a_key_and_referrers_only_when_asked(
    memory_registry, memory_clients, signer
) -> None:
    serve_referrers(memory_registry, api=False)
    image = memory_registry.add_image(NAME, ["v1"])
    cosign_image(memory_registry, image.digest, ".sig", [simple_signing(signer, image.digest)])
    reference = "registry.test/%s:v1" % NAME

    def image_of(**params: Any) -> dict[str, Any]:
        return inventory.Inventory(dict(DEFAULTS, image=reference, **params), lambda *_: memory_clients, print).run()[
            "image"
        ]

    plain = image_of()
    with_key = image_of(verify_key=public_pem(signer))
    both = image_of(verify_key=public_pem(signer), referrers=True)
    assert "referrers" not in plain and "signatures" not in plain
    assert "referrers" not in with_key and [s["verified"] for s in with_key["signatures"]] == [True]
    assert [r["artifact_type"] for r in both["referrers"]] == ["cosign-signature"]
    assert both["referrers"][0]["annotations"] == {}, "read for the verdict, so known"
    assert {k: v for k, v in both.items() if k not in ("referrers", "signatures")} == plain

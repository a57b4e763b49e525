"""registry_info ``referrers`` and ``verify_key`` against the real distribution registry (2.8: no referrers API, so
every referrer here is found through its fallback tag ``sha256-<hex>`` or a cosign tag).

Signatures, attestations, SBOMs and bundles are made by support/cosign.py to cosign's byte layouts and pushed with
the collection's client; the registry's access log counts what a task asked. Every case runs in check mode and for
real: registry_info only reads, so both give the same result, with ``changed: false``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory, ours
from support.images import Image
from support.playbook import PlaybookRun
from support.rawhttp import RawClient
from support.registry import RegistryServer

MODULE = "ocireg.registry.registry_info"
Playbook = Callable[..., PlaybookRun]
KEY_KINDS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519")


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


def task(name: str, ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, MODULE: args, "register": "result"}
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def results(run: PlaybookRun, names: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    for name in names:
        result = run.task(name)
        assert not result.get("failed"), result.get("msg") or run.output
        assert result["changed"] is False
        found[name] = result
    return found


def in_both_modes(
    playbook: Playbook, server: RegistryServer, tasks: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Run TASKS in check mode, then for real: the same results (returned) and the same requests (the real run's)."""
    names = [entry["name"] for entry in tasks]
    mark = server.mark()
    checked = results(playbook(tasks, check=True), names)
    check_requests = ours(server.requests_since(mark))
    mark = server.mark()
    real = results(playbook(tasks), names)
    real_requests = ours(server.requests_since(mark))
    assert checked == real
    assert summary(check_requests) == summary(real_requests)
    assert {entry["method"] for entry in real_requests} <= {"GET", "HEAD"}, "registry_info only reads"
    return real, real_requests


def summary(entries: list[dict[str, Any]]) -> Counter:
    """``(method, what, reference)`` of each request: what is ping, catalog, tags (the reference: the repository),
    referrers (counted, whatever the digest), manifests or blobs."""
    counted: Counter = Counter()
    for entry in entries:
        path = entry["path"]
        if path in ("/v2/", "/v2/_catalog"):
            counted[(entry["method"], "ping" if path == "/v2/" else "catalog", None)] += 1
            continue
        if path.endswith("/tags/list"):
            counted[(entry["method"], "tags", path[len("/v2/") : -len("/tags/list")])] += 1
            continue
        if "/referrers/" in path:  # which digest is asked first depends on which thread gets there first
            counted[(entry["method"], "referrers", None)] += 1
            continue
        for what in ("manifests", "blobs"):
            marker = "/%s/" % what
            if marker in path:
                counted[(entry["method"], what, path.split(marker, 1)[1])] += 1
                break
        else:
            raise AssertionError("unexpected request %s %s" % (entry["method"], path))
    return counted


def requests_of(entries: list[dict[str, Any]], what: str) -> list[str]:
    return [
        "%s %s" % (method, ref)
        for (method, kind, ref), n in summary(entries).items()
        for _copy in range(n)
        if kind == what
    ]


def referrer_entry(subject: str, artifact: cosign.Artifact, via: str, tag: str | None, **changes: Any) -> dict:
    """What registry_info reports for ARTIFACT: by default as its descriptor in a fallback index says."""
    document = artifact.document
    entry = {
        "subject": subject,
        "digest": artifact.digest,
        "media_type": cosign.OCI_MANIFEST,
        "artifact_type": document.get("artifactType") or document["config"]["mediaType"],
        "size": artifact.size,
        "annotations": document.get("annotations") or {},
        "via": via,
        "tag": tag,
    }
    entry.update(changes)
    return entry


def push_image(raw_client: RawClient, image: Image, repo: str, *tags: str) -> Image:
    raw_client.push_image(image, repo, list(tags) or ["v1"])
    return image


# ----------------------------------------------------------------------------------------------------
# referrers: what is attached, and how it was found


def test_an_images_attachments_are_listed_with_how_and_where_they_were_found(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    image = push_image(raw_client(registry_open), image_factory(), unique_repo, "v1")
    client = connect(registry_open, unique_repo)
    key = cosign.signing_key("ecdsa-p256")
    reference = "%s/%s" % (registry_open.host, unique_repo)
    subject = cosign.subject_of(image)
    # cosign 3: a signature bundle and an attestation bundle, in the fallback index; a signature of the attestation
    # (a referrer of a referrer), in the attestation's own fallback index.
    signed = cosign.sign_bundle(subject, key, created="2025-06-01T12:00:00Z")
    attested = cosign.attest_bundle(subject, key, name=reference, created="2025-06-01T12:00:01Z")
    cosign.push_referrers(client, unique_repo, image.digest, [signed, attested])
    countersigned = cosign.sign_bundle(cosign.subject_of(attested), key, created="2025-06-01T12:00:02Z")
    cosign.push_referrers(client, unique_repo, attested.digest, [countersigned])
    # cosign 2: the .sig, .att and .sbom tags.
    sig = cosign.signature_image(image.digest, [cosign.simple_signature(image.digest, key, docker_reference=reference)])
    att = cosign.attestation_image(
        image.digest, [cosign.attestation_layer(image.digest, key, docker_reference=reference)]
    )
    sbom = cosign.sbom_image(image.digest, b'{"spdxVersion":"SPDX-2.3"}')
    for artifact in (sig, att, sbom):
        cosign.push(client, unique_repo, artifact)

    found, sent = in_both_modes(
        playbook,
        registry_open,
        [
            task("attachments", image="%s:v1" % reference, referrers=True),
            task("without", image="%s:v1" % reference),
        ],
    )

    fallback = cosign.referrers_tag(image.digest)
    details = found["attachments"]["image"]
    assert details["digest"] == image.digest
    assert details["referrers"] == [
        referrer_entry(image.digest, signed, "fallback_tag", fallback),
        referrer_entry(image.digest, attested, "fallback_tag", fallback),
        referrer_entry(image.digest, sig, "cosign_tag", sig.tag, artifact_type="cosign-signature", annotations=None),
        referrer_entry(image.digest, att, "cosign_tag", att.tag, artifact_type="cosign-attestation", annotations=None),
        referrer_entry(image.digest, sbom, "cosign_tag", sbom.tag, artifact_type="cosign-sbom", annotations=None),
        referrer_entry(attested.digest, countersigned, "fallback_tag", cosign.referrers_tag(attested.digest)),
    ]
    assert "signatures" not in details, "signatures only with verify_key"
    without = found["without"]["image"]
    assert "referrers" not in without
    assert {k: v for k, v in details.items() if k != "referrers"} == without

    # What the attachments cost, on top of the image itself (its manifest and its config, as "without" shows):
    # the referrers API asked once (404: distribution 2.8 has none), one tag list, the two fallback indexes that
    # exist, a HEAD per cosign tag that exists, and no referrer manifest (the fallback indexes describe them fully).
    # Every other fallback and cosign tag is known missing from the tag list, and costs nothing.
    counted = summary(sent)
    hexdigest = image.digest.partition(":")[2]
    assert counted == Counter(
        {
            ("GET", "ping", None): 2,
            ("GET", "manifests", "v1"): 2,
            ("GET", "blobs", image.platforms["linux/amd64"].config.digest): 2,
            ("GET", "referrers", None): 1,
            ("GET", "tags", unique_repo): 1,
            ("GET", "manifests", fallback): 1,
            ("GET", "manifests", cosign.referrers_tag(attested.digest)): 1,
            ("HEAD", "manifests", "sha256-%s.sig" % hexdigest): 1,
            ("HEAD", "manifests", "sha256-%s.att" % hexdigest): 1,
            ("HEAD", "manifests", "sha256-%s.sbom" % hexdigest): 1,
        }
    )


def test_a_fallback_index_written_without_annotations_costs_a_read_of_each_referrer_and_a_gone_one_is_told(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    # Older writers listed only mediaType, digest and size in the fallback index: the referrer's own manifest says
    # the rest. A referrer deleted since (garbage collection does that on distribution) is reported as the index
    # lists it, with a warning.
    image = push_image(raw_client(registry_open), image_factory(), unique_repo, "v1")
    client = connect(registry_open, unique_repo)
    key = cosign.signing_key("ed25519")
    subject = cosign.subject_of(image)
    signed = cosign.sign_bundle(subject, key, created="2025-06-01T12:00:00Z")
    gone = cosign.attest_bundle(subject, key, name="x", created="2025-06-01T12:00:01Z")
    for artifact in (signed, gone):
        cosign.push(client, unique_repo, artifact)
    bare = [{"mediaType": a.media_type, "size": a.size, "digest": a.digest} for a in (signed, gone)]
    index = cosign.go_json({"schemaVersion": 2, "mediaType": cosign.OCI_INDEX, "manifests": bare})
    fallback = cosign.referrers_tag(image.digest)
    client.put_manifest(unique_repo, fallback, index, cosign.OCI_INDEX)
    client.delete_manifest(unique_repo, gone.digest)

    found, sent = in_both_modes(
        playbook,
        registry_open,
        [task("older", image="%s/%s@%s" % (registry_open.host, unique_repo, image.digest), referrers=True)],
    )

    result = found["older"]
    assert result["image"]["referrers"] == [
        referrer_entry(image.digest, signed, "fallback_tag", fallback),
        referrer_entry(image.digest, gone, "fallback_tag", fallback, artifact_type=None, annotations=None),
    ]
    (warning,) = result["warnings"]
    assert "1 referrer(s) listed by a fallback index" in warning
    assert "%s@%s" % (unique_repo, gone.digest) in warning
    assert "garbage-collect" in warning
    # One GET of each referrer's manifest (the gone one answers 404), besides the image and its fallback index.
    assert requests_of(sent, "manifests") == [
        "GET " + image.digest,
        "GET " + fallback,
        "GET " + signed.digest,
        "GET " + gone.digest,
    ]


def signed_images(
    server: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: RawClient,
    connect: ClientFactory,
    repo: str,
    tags: list[str],
) -> dict[str, tuple[Image, list[cosign.Artifact]]]:
    """An image under each of TAGS, signed: the first with a .sig, the next with a bundle, and so on in turn."""
    client = connect(server, repo)
    key = cosign.signing_key("ecdsa-p256")
    made = {}
    for number, tag in enumerate(tags):
        image = push_image(raw_client, image_factory(), repo, tag)
        if number % 2 == 0:
            layer = cosign.simple_signature(image.digest, key, docker_reference="%s/%s" % (server.host, repo))
            attachment = cosign.signature_image(image.digest, [layer])
            cosign.push(client, repo, attachment)
        else:
            attachment = cosign.sign_bundle(cosign.subject_of(image), key, created="2025-06-01T12:00:00Z")
            cosign.push_referrers(client, repo, image.digest, [attachment])
        made[tag] = (image, [attachment])
    return made


def expected_referrers(image: Image, attachments: list[cosign.Artifact]) -> list[dict[str, Any]]:
    entries = []
    for artifact in attachments:
        if artifact.tag:
            entries.append(
                referrer_entry(
                    image.digest,
                    artifact,
                    "cosign_tag",
                    artifact.tag,
                    artifact_type="cosign-signature",
                    annotations=None,
                )
            )
        else:
            entries.append(referrer_entry(image.digest, artifact, "fallback_tag", cosign.referrers_tag(image.digest)))
    return entries


def test_a_repository_with_details_lists_each_tags_attachments_from_one_tag_list(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    made = signed_images(
        registry_open, image_factory, raw_client(registry_open), connect, unique_repo, ["v1", "v2", "v3"]
    )
    repository = "%s/%s" % (registry_open.host, unique_repo)

    found, sent = in_both_modes(
        playbook,
        registry_open,
        [task("releases", repository=repository, details=True, referrers=True, tags=["v*"], concurrency=8)],
    )

    described = {entry["tag"]: entry for entry in found["releases"]["tags"]}
    assert sorted(described) == ["v1", "v2", "v3"]
    for tag, (image, attachments) in made.items():
        assert described[tag]["digest"] == image.digest
        assert described[tag]["referrers"] == expected_referrers(image, attachments), tag
    # One tag list for the listing and every tag's attachments (the .sig and fallback tags, left out by the filter,
    # are still known from it); the referrers API asked once, by one thread, though eight describe the tags.
    assert requests_of(sent, "tags") == ["GET " + unique_repo]
    assert len(requests_of(sent, "referrers")) == 1
    assert sorted(requests_of(sent, "manifests")) == sorted(
        ["GET v1", "GET v2", "GET v3"]
        + ["HEAD " + made[tag][1][0].tag for tag in ("v1", "v3")]
        + ["GET " + cosign.referrers_tag(made["v2"][0].digest)]
    )


def test_every_tag_listed_with_details_has_its_referrers_the_attachment_tags_too(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    made = signed_images(registry_open, image_factory, raw_client(registry_open), connect, unique_repo, ["v1", "v2"])
    repository = "%s/%s" % (registry_open.host, unique_repo)

    found, _sent = in_both_modes(
        playbook, registry_open, [task("all", repository=repository, details=True, referrers=True)]
    )

    described = {entry["tag"]: entry for entry in found["all"]["tags"]}
    sig_tag = made["v1"][1][0].tag
    fallback = cosign.referrers_tag(made["v2"][0].digest)
    assert sorted(described) == sorted(["v1", "v2", sig_tag, fallback])
    assert described["v1"]["referrers"] == expected_referrers(*made["v1"])
    assert described["v2"]["referrers"] == expected_referrers(*made["v2"])
    # The attachment tags are tags too: described, with nothing attached to them.
    assert described[sig_tag]["referrers"] == [] and described[fallback]["referrers"] == []


def test_a_registry_with_details_lists_attachments_with_one_tag_list_per_repository_and_one_referrers_probe(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
) -> None:
    server = registry_factory("open")
    raw = raw_client(server)
    made = {repo: signed_images(server, image_factory, raw, connect, repo, ["v1", "v2"]) for repo in ("a/one", "b/two")}

    found, sent = in_both_modes(
        playbook,
        server,
        [task("registry", registry=server.host, details=True, referrers=True, tags=["v*"], concurrency=4)],
    )

    repositories = {entry["name"]: entry["tags"] for entry in found["registry"]["repositories"]}
    assert sorted(repositories) == ["a/one", "b/two"]
    for repo, tags in made.items():
        described = {entry["tag"]: entry for entry in repositories[repo]}
        assert sorted(described) == ["v1", "v2"]
        for tag, (image, attachments) in tags.items():
            assert described[tag]["referrers"] == expected_referrers(image, attachments), (repo, tag)
    assert sorted(requests_of(sent, "tags")) == ["GET a/one", "GET b/two"]
    assert len(requests_of(sent, "referrers")) == 1, "a registry without the referrers API is asked once per task"


# ----------------------------------------------------------------------------------------------------
# verify_key: the verdict on each cosign signature


def verdict(signature: str, manifest: cosign.Artifact, via: str, tag: str | None, verified: bool, reason: str):
    return {
        "digest": signature,
        "manifest": manifest.digest,
        "via": via,
        "tag": tag,
        "verified": verified,
        "reason": reason,
    }


def strip_reasons(verdicts: list[dict[str, Any]], reasons: list[str]) -> list[dict[str, Any]]:
    """VERDICTS with each reason checked to start with the expected one, then replaced by it."""
    assert len(verdicts) == len(reasons), verdicts
    for entry, reason in zip(verdicts, reasons):
        assert entry["reason"].startswith(reason), (entry, reason)
    return [dict(entry, reason=reason) for entry, reason in zip(verdicts, reasons)]


def test_good_signatures_verify_with_each_kind_of_key_in_both_formats(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    raw, client = raw_client(registry_open), connect(registry_open, unique_repo)
    reference = "%s/%s" % (registry_open.host, unique_repo)
    signed = {}
    for kind in KEY_KINDS:
        key = cosign.signing_key(kind)
        image = push_image(raw, image_factory(), unique_repo, kind)
        subject = cosign.subject_of(image)
        sig = cosign.signature_image(
            image.digest, [cosign.simple_signature(image.digest, key, docker_reference=reference)]
        )
        bundle = cosign.sign_bundle(subject, key, created="2025-06-01T12:00:00Z")
        # Attachments that are not signatures, which verification leaves out: an attestation in each format.
        attestation = cosign.attest_bundle(subject, key, name=reference, created="2025-06-01T12:00:01Z")
        att = cosign.attestation_image(
            image.digest, [cosign.attestation_layer(image.digest, key, docker_reference=reference)]
        )
        cosign.push(client, unique_repo, sig)
        cosign.push(client, unique_repo, att)
        cosign.push_referrers(client, unique_repo, image.digest, [bundle, attestation])
        signed[kind] = (image, key, sig, bundle)

    found, sent = in_both_modes(
        playbook,
        registry_open,
        [
            task(kind, image="%s:%s" % (reference, kind), verify_key=key.public_pem)
            for kind, (_i, key, _s, _b) in signed.items()
        ],
    )

    schemes = {
        "ecdsa-p256": "ECDSA P-256, SHA-256",
        "ecdsa-p384": "ECDSA P-384, SHA-384",
        "rsa-2048": "RSA-2048 PKCS#1 v1.5, SHA-256",
        "ed25519": "Ed25519ph",
    }
    for kind, (image, _key, sig, bundle) in signed.items():
        details = found[kind]["image"]
        assert "referrers" not in details, "referrers only when asked"
        fallback = cosign.referrers_tag(image.digest)
        assert details["signatures"] == [
            verdict(
                bundle.digest,
                bundle,
                "fallback_tag",
                fallback,
                True,
                "verified with the key (%s, DSSE statement)" % schemes[kind],
            ),
            verdict(
                sig.layers[0].digest, sig, "cosign_tag", sig.tag, True, "verified with the key (%s)" % schemes[kind]
            ),
        ], kind
    # Per image (one task each): the referrers API asked (404), the tag list, the fallback index, a HEAD of the
    # .sig and .att tags; the .sig manifest and its payload, the signature bundle's manifest and its bundle. The
    # attestations are never read: the fallback index entry and the cosign tag say what they are.
    expected: Counter = Counter()
    for kind, (image, _key, sig, bundle) in signed.items():
        hexdigest = image.digest.partition(":")[2]
        expected.update(
            [
                ("GET", "ping", None),
                ("GET", "manifests", kind),
                ("GET", "blobs", image.platforms["linux/amd64"].config.digest),
                ("GET", "referrers", None),
                ("GET", "tags", unique_repo),
                ("GET", "manifests", cosign.referrers_tag(image.digest)),
                ("HEAD", "manifests", "sha256-%s.sig" % hexdigest),
                ("HEAD", "manifests", "sha256-%s.att" % hexdigest),
                ("GET", "manifests", sig.digest),
                ("GET", "blobs", sig.layers[0].digest),
                ("GET", "manifests", bundle.digest),
                ("GET", "blobs", bundle.layers[0].digest),
            ]
        )
    assert summary(sent) == expected


def test_bad_signatures_are_reported_not_verified_each_with_its_reason(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
) -> None:
    image = push_image(raw_client(registry_open), image_factory(), unique_repo, "v1")
    other = "sha256:" + "0f" * 32
    client = connect(registry_open, unique_repo)
    reference = "%s/%s" % (registry_open.host, unique_repo)
    key, intruder = cosign.signing_key("ecdsa-p256"), cosign.signing_key("ecdsa-p256", "intruder")
    good = cosign.simple_signature(image.digest, key, docker_reference=reference)
    layers = [
        good,
        cosign.simple_signature(image.digest, intruder, docker_reference=reference),
        cosign.Blob(cosign.flip_byte(good.data), good.media_type, good.annotations),
        cosign.simple_signature(other, key, docker_reference=reference),
        cosign.truncated_signature(good),
    ]
    sig = cosign.signature_image(image.digest, layers)
    cosign.push(client, unique_repo, sig)
    subject = cosign.subject_of(image)
    good_bundle = cosign.sign_bundle(subject, key, created="2025-06-01T12:00:00Z")
    bundle_bytes = good_bundle.layers[0].data
    bundles = [
        good_bundle,
        cosign.sign_bundle(subject, intruder, created="2025-06-01T12:00:01Z"),
        cosign.replace_layer(good_bundle, cosign.tampered_bundle(bundle_bytes, flip_payload=True)),
        cosign.bundle_referrer(
            subject, cosign.dsse_bundle(cosign.cosign_sign_statement(other), key), created="2025-06-01T12:00:02Z"
        ),
        cosign.replace_layer(good_bundle, cosign.tampered_bundle(bundle_bytes, truncate_signature=10)),
    ]
    cosign.push_referrers(client, unique_repo, image.digest, bundles)

    found, sent = in_both_modes(
        playbook,
        registry_open,
        [task("verify", image="%s:v1" % reference, verify_key=key.public_pem, referrers=True)],
    )

    fallback = cosign.referrers_tag(image.digest)
    details = found["verify"]["image"]
    reasons = [
        "verified with the key (ECDSA P-256, SHA-256",
        "the signature does not verify with the key (the bundle names another key: hint %s" % intruder.hint,
        "the signature does not verify with the key",
        "the statement names %s, not %s" % (other, image.digest),
        "the signature is truncated or malformed",
        "verified with the key (ECDSA P-256, SHA-256)",
        "the signature does not verify with the key",
        "the signature does not verify with the key",
        "the payload names %s, not %s" % (other, image.digest),
        "the signature is truncated or malformed",
    ]
    expected = [
        verdict(bundle.digest, bundle, "fallback_tag", fallback, number == 0, reasons[number])
        for number, bundle in enumerate(bundles)
    ] + [
        verdict(layer.digest, sig, "cosign_tag", sig.tag, number == 0, reasons[5 + number])
        for number, layer in enumerate(layers)
    ]
    assert strip_reasons(details["signatures"], reasons) == expected
    assert found["verify"].get("warnings") is None, "a signature that does not verify is a fact, not a warning"
    # With referrers too, the .sig image's manifest is read once, for both; its entry then has its annotations.
    sig_entry = next(entry for entry in details["referrers"] if entry["digest"] == sig.digest)
    assert sig_entry["annotations"] == {}
    assert summary(sent)[("GET", "manifests", sig.digest)] == 1
    assert all(summary(sent)[("GET", "manifests", bundle.digest)] == 1 for bundle in bundles)
    assert all(summary(sent)[("GET", "blobs", layer.digest)] == 1 for layer in layers)


def failures(run: PlaybookRun, names: list[str]) -> dict[str, str]:
    messages = {}
    for name in names:
        entries = [entry for entry in run.results if entry["task"] == name]
        assert entries, "task %r did not run:\n%s" % (name, run.output)
        assert entries[-1]["status"] == "failed", entries[-1]
        assert entries[-1]["result"].get("changed") in (False, None), name
        messages[name] = entries[-1]["result"]["msg"]
    return messages


def test_a_key_that_cannot_be_used_fails_the_task_before_any_request_without_repeating_it(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import serialization

    image = push_image(raw_client(registry_open), image_factory(), unique_repo, "v1")
    reference = "%s/%s:v1" % (registry_open.host, unique_repo)
    key = cosign.signing_key("ecdsa-p256")
    private_pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = key.public_pem.splitlines()[1]
    damaged = key.public_pem.replace(body, body[:10] + "!!!!" + body[14:])
    garbage = "this is not a key at all, just some text"
    weak = cosign.generate_key("rsa-1024").public_pem
    cases = {
        "garbage": (garbage, ["neither the PEM text of a public key", "nor the path of a file that exists"]),
        "garbage lines": ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\nabc\n", ["not a PEM public key"]),
        "damaged": (damaged, ["does not decode as a public key"]),
        "private": (private_pem, ["is a private key", "give the public key"]),
        "weak": (weak, ["RSA key of 1024 bits", "too weak"]),
        "missing file": (str(tmp_path / "no-such.pub"), ["nor the path of a file that exists"]),
        "empty": ("  ", ["verify_key is empty"]),
    }
    tasks = [task(name, ignore_errors=True, image=reference, verify_key=value) for name, (value, _w) in cases.items()]
    tasks.append(
        task("not with a repository", ignore_errors=True, repository=reference[:-3], verify_key=key.public_pem)
    )
    tasks.append(task("referrers without details", ignore_errors=True, repository=reference[:-3], referrers=True))
    names = [entry["name"] for entry in tasks]

    for check in (True, False):
        mark = registry_open.mark()
        messages = failures(playbook(tasks, check=check), names)
        assert registry_open.requests_since(mark) == [], "every case failed before asking the registry anything"
        for name, (value, words) in cases.items():
            for word in words:
                assert word in messages[name], (name, messages[name])
            for line in value.strip().splitlines():
                if len(line) > 8 and "-----" not in line:
                    assert line not in messages[name], "%s: the message repeats the key" % name
        assert "use it with image, not repository" in messages["not with a repository"]
        assert "details=true" in messages["referrers without details"]

    # The same key from a file, and from a file that holds something else.
    (tmp_path / "cosign.pub").write_text(key.public_pem)
    (tmp_path / "cosign.key").write_text(private_pem)
    tasks = [
        task("file", image=reference, verify_key=str(tmp_path / "cosign.pub")),
        task("private file", ignore_errors=True, image=reference, verify_key=str(tmp_path / "cosign.key")),
    ]
    for check in (True, False):
        run = playbook(tasks, check=check)
        assert results(run, ["file"])["file"]["image"]["signatures"] == []  # unsigned: nothing to verify
        message = failures(run, ["private file"])["private file"]
        assert "verify_key (the file %s) is a private key" % (tmp_path / "cosign.key") in message
        assert private_pem.splitlines()[1] not in message
    assert image.digest


def test_without_cryptography_verify_key_says_what_to_install_and_referrers_still_work(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    raw_client: Callable[..., RawClient],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    push_image(raw_client(registry_open), image_factory(), unique_repo, "v1")
    reference = "%s/%s:v1" % (registry_open.host, unique_repo)
    blocked = tmp_path / "no-cryptography"
    (blocked / "cryptography").mkdir(parents=True)
    (blocked / "cryptography" / "__init__.py").write_text("raise ImportError('cryptography is not installed here')\n")
    tasks = [
        task("verify", ignore_errors=True, image=reference, verify_key=cosign.signing_key("ecdsa-p256").public_pem),
        task("referrers", image=reference, referrers=True),
    ]
    for check in (True, False):
        mark = registry_open.mark()
        run = playbook(tasks, check=check, env={"PYTHONPATH": str(blocked)})
        message = failures(run, ["verify"])["verify"]
        assert "Failed to import the required Python library (cryptography)" in message
        assert results(run, ["referrers"])["referrers"]["image"]["referrers"] == []
        verify_requests = list(ours(registry_open.requests_since(mark)))
        assert len(verify_requests) == 5  # only the referrers task asked: ping, manifest, config, referrers, tags

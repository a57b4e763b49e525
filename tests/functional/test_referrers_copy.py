"""registry_image and registry_tag with ``referrers: true``: signatures, attestations and SBOMs travel with the image,
against the real distribution registry (2.8: no referrers API, no ``OCI-Subject``, so referrers are found through the
fallback tag ``sha256-<hex>`` and the task keeps the destination's fallback index itself).

Both cosign formats, made by support/cosign.py to cosign's byte layouts: cosign 2's ``.sig``/``.att`` images under
their tags, and cosign 3's sigstore bundle referrers listed in a fallback index. Each case runs in check mode, for
real, and again (idempotent); skopeo is the witness of what the destination holds, and the registries' access logs
count what an up-to-date run costs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import cosign
from support.client import ClientFactory, ours
from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

IMAGE = "ocireg.registry.registry_image"
TAG = "ocireg.registry.registry_tag"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
Playbook = Callable[..., PlaybookRun]


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


def task(name: str, module: str = IMAGE, **options: Any) -> dict[str, Any]:
    return {"name": name, module: options}


def credentials(*servers: RegistryServer) -> dict[str, Any]:
    return {s.host: {"username": s.username, "password": s.password} for s in servers if s.username}


def ok(run: PlaybookRun, name: str) -> dict[str, Any]:
    result = run.task(name)
    assert not result.get("failed"), result.get("msg") or run.output
    return result


def calls(server: RegistryServer, mark: int) -> list[tuple[str, str]]:
    """(method, path) of what the collection asked since MARK, auth handshakes (401) left out."""
    return [(r["method"], r["path"]) for r in ours(server.requests_since(mark)) if r["status"] != 401]


def writes(server: RegistryServer, mark: int) -> list[tuple[str, str]]:
    return [call for call in calls(server, mark) if call[0] in WRITES]


def carried(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(item["subject"], item["digest"], item["via"], item["action"]) for item in result["referrers"]]


def fallback_entries(witness: Skopeo, repo: str, subject: str) -> list[dict[str, Any]]:
    return json.loads(witness.inspect(f"{repo}:{cosign.referrers_tag(subject)}", raw=True))["manifests"]


class Signed:
    """An image in REPO and its attachments in both cosign formats: for the image (an index here), a ``.sig`` and a
    signature bundle in the fallback index; for one child, an ``.att`` and an attestation bundle."""

    def __init__(self, server: RegistryServer, client: Any, repo: str, image: Image):
        self.image = image
        self.key = cosign.signing_key("ecdsa-p256")
        self.reference = f"{server.host}/{repo}"
        layer = cosign.simple_signature(image.digest, self.key, docker_reference=self.reference)
        self.signature_layer = layer
        self.signature = cosign.signature_image(image.digest, [layer])
        cosign.push(client, repo, self.signature)
        self.bundle = cosign.sign_bundle(cosign.subject_of(image), self.key, created="2025-06-01T12:00:00Z")
        self.index = cosign.push_referrers(client, repo, image.digest, [self.bundle])
        child = image.platforms["linux/arm64"] if image.is_index else None
        self.child = child
        if child is not None:
            statement = cosign.attestation_layer(child.digest, self.key, docker_reference=self.reference)
            self.attestation = cosign.attestation_image(child.digest, [statement])
            cosign.push(client, repo, self.attestation)
            self.attestation_bundle = cosign.attest_bundle(
                cosign.subject_of(child), self.key, name=self.reference, created="2025-06-01T12:00:00Z"
            )
            cosign.push_referrers(client, repo, child.digest, [self.attestation_bundle])

    def expected(self, action: str) -> list[tuple[str, str, str, str]]:
        """What the task reports, in its order: the image's referrers, its cosign tags, then the child's."""
        found = [
            (self.image.digest, self.bundle.digest, "fallback_tag", action),
            (self.image.digest, self.signature.digest, "cosign_tag", action),
        ]
        if self.child is not None:
            found += [
                (self.child.digest, self.attestation_bundle.digest, "fallback_tag", action),
                (self.child.digest, self.attestation.digest, "cosign_tag", action),
            ]
        return found


def assert_carried(witness: Skopeo, repo: str, signed: Signed) -> None:
    """The destination holds every attachment with the source's exact bytes, where cosign and the spec look."""
    image = signed.image
    assert witness.manifest(f"{repo}:{signed.signature.tag}") == signed.signature.manifest
    assert witness.manifest(f"{repo}@{signed.bundle.digest}") == signed.bundle.manifest
    assert fallback_entries(witness, repo, image.digest) == [signed.bundle.descriptor()]
    if signed.child is not None:
        assert witness.manifest(f"{repo}:{signed.attestation.tag}") == signed.attestation.manifest
        assert witness.manifest(f"{repo}@{signed.attestation_bundle.digest}") == signed.attestation_bundle.manifest
        assert fallback_entries(witness, repo, signed.child.digest) == [signed.attestation_bundle.descriptor()]


# ----------------------------------------------------------------------------------------------------
# registry_image, across registries


def test_signatures_and_attestations_travel_to_another_registry_with_an_indexs_children(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=["linux/amd64", "linux/arm64"])
    skopeo(registry_open).copy(image.oci, f"{source_repo}:1.0")
    signed = Signed(registry_open, connect(registry_open, source_repo), source_repo, image)
    copy = task(
        "copy",
        src=f"{registry_open.host}/{source_repo}:1.0",
        dest=f"{registry_htpasswd.host}/{dest_repo}:1.0",
        credentials=credentials(registry_htpasswd),
        referrers=True,
    )
    witness = skopeo(registry_htpasswd)

    mark = registry_htpasswd.mark()
    checked = ok(playbook([copy], check=True, diff=True), "copy")
    assert checked["changed"] and carried(checked) == signed.expected("would copy")
    assert checked["diff"] == {"before": {"digest": None}, "after": {"digest": image.digest}}
    assert writes(registry_htpasswd, mark) == []

    mark = registry_htpasswd.mark()
    result = ok(playbook([copy]), "copy")
    assert result["changed"] and result["digest"] == image.digest
    assert carried(result) == signed.expected("copied")
    assert {item["artifact_type"] for item in result["referrers"]} == {
        cosign.BUNDLE_V03,
        "cosign-signature",
        "cosign-attestation",
    }
    assert witness.manifest(f"{dest_repo}:1.0") == image.manifest
    assert_carried(witness, dest_repo, signed)
    manifest_puts = [
        path.rsplit("/", 1)[1] for method, path in writes(registry_htpasswd, mark) if "/manifests/" in path
    ]
    # The image first (children, then the index under its tag), then each attachment after its subject, each
    # fallback index after the referrer it lists.
    children = len(image.manifests)
    assert set(manifest_puts[:children]) == set(image.manifests.values()) and manifest_puts[children] == "1.0"
    assert manifest_puts.index(signed.bundle.digest) < manifest_puts.index(cosign.referrers_tag(image.digest))
    child = signed.child.digest
    assert manifest_puts.index(signed.attestation_bundle.digest) < manifest_puts.index(cosign.referrers_tag(child))

    mark, source_mark = registry_htpasswd.mark(), registry_open.mark()
    again = ok(playbook([copy], diff=True), "copy")
    assert not again["changed"] and carried(again) == signed.expected("present")
    assert writes(registry_htpasswd, mark) == [] and writes(registry_open, source_mark) == []


def test_a_signature_added_at_the_source_later_arrives_on_the_rerun(
    registry_open: RegistryServer,
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    skopeo(registry_open).copy(image.oci, f"{source_repo}:1.0")
    client = connect(registry_open, source_repo)
    signed = Signed(registry_open, client, source_repo, image)
    copy = task(
        "copy",
        src=f"{registry_open.host}/{source_repo}:1.0",
        dest=f"{registry_token.host}/{dest_repo}:1.0",
        credentials=credentials(registry_token),
        referrers=True,
    )
    ok(playbook([copy]), "copy")
    witness = skopeo(registry_token)

    # Later, a second signer: cosign 2 appends a layer to the .sig image (a new digest under the same tag); cosign 3
    # pushes another bundle and adds it to the fallback index.
    second_key = cosign.signing_key("ecdsa-p384", "second signer")
    second_layer = cosign.simple_signature(image.digest, second_key, docker_reference=signed.reference)
    resigned = cosign.signature_image(image.digest, [signed.signature_layer, second_layer])
    cosign.push(client, source_repo, resigned)
    second_bundle = cosign.sign_bundle(cosign.subject_of(image), second_key, created="2025-07-01T00:00:00Z")
    cosign.push_referrers(client, source_repo, image.digest, [second_bundle])

    checked = ok(playbook([copy], check=True), "copy")
    assert checked["changed"]
    assert carried(checked) == [
        (image.digest, signed.bundle.digest, "fallback_tag", "present"),
        (image.digest, second_bundle.digest, "fallback_tag", "would copy"),
        (image.digest, resigned.digest, "cosign_tag", "would replace"),
    ]
    assert witness.manifest(f"{dest_repo}:{resigned.tag}") == signed.signature.manifest

    result = ok(playbook([copy]), "copy")
    assert result["changed"]
    assert carried(result) == [
        (image.digest, signed.bundle.digest, "fallback_tag", "present"),
        (image.digest, second_bundle.digest, "fallback_tag", "copied"),
        (image.digest, resigned.digest, "cosign_tag", "replaced"),
    ]
    assert witness.manifest(f"{dest_repo}:{resigned.tag}") == resigned.manifest
    assert fallback_entries(witness, dest_repo, image.digest) == [
        signed.bundle.descriptor(),
        second_bundle.descriptor(),
    ]

    mark = registry_token.mark()
    settled = ok(playbook([copy]), "copy")
    assert not settled["changed"] and {item["action"] for item in settled["referrers"]} == {"present"}
    assert writes(registry_token, mark) == []


def test_the_destinations_fallback_index_is_added_to_never_replaced_nor_duplicated(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    skopeo(registry_open).copy(image.oci, f"{source_repo}:1.0")
    signed = Signed(registry_open, connect(registry_open, source_repo), source_repo, image)
    # The destination has the image already, with an SBOM attestation of its own in its fallback index.
    skopeo(registry_htpasswd).copy(image.oci, f"{dest_repo}:1.0")
    dest_client = connect(registry_htpasswd, dest_repo)
    theirs = cosign.attest_bundle(
        cosign.subject_of(image),
        cosign.signing_key("ed25519", "prod"),
        name="prod",
        predicate_type="https://spdx.dev/Document",
    )
    before = cosign.push_referrers(dest_client, dest_repo, image.digest, [theirs])
    copy = task(
        "copy",
        src=f"{registry_open.host}/{source_repo}:1.0",
        dest=f"{registry_htpasswd.host}/{dest_repo}:1.0",
        credentials=credentials(registry_htpasswd),
        referrers=True,
    )
    witness = skopeo(registry_htpasswd)

    result = ok(playbook([copy]), "copy")
    assert result["changed"], "the image was there: the attachments are the change"
    assert carried(result) == signed.expected("copied")
    entries = fallback_entries(witness, dest_repo, image.digest)
    assert entries == [json.loads(before.manifest)["manifests"][0], signed.bundle.descriptor()]
    assert witness.manifest(f"{dest_repo}@{theirs.digest}") == theirs.manifest

    mark = registry_htpasswd.mark()
    for _run in range(2):
        again = ok(playbook([copy]), "copy")
        assert not again["changed"] and carried(again) == signed.expected("present")
    assert writes(registry_htpasswd, mark) == []
    assert fallback_entries(witness, dest_repo, image.digest) == entries


def test_skopeo_with_sigstore_attachments_reads_the_carried_signature_unchanged(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    # containers/image looks for sigstore signatures where cosign puts them (sha256-<hex>.sig) when told to: what
    # the task carried must be found there, and its payload and signature come through skopeo byte for byte.
    source_repo, dest_repo, onward = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{source_repo}:1.0")
    signed = Signed(registry_open, connect(registry_open, source_repo), source_repo, image)
    ok(
        playbook(
            [
                task(
                    "copy",
                    src=f"{registry_open.host}/{source_repo}:1.0",
                    dest=f"{registry_open.host}/{dest_repo}:1.0",
                    referrers=True,
                    referrer_types=["cosign-signature"],
                )
            ]
        ),
        "copy",
    )
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "sigstore.yaml").write_text(
        "docker:\n  %s:\n    use-sigstore-attachments: true\n" % registry_open.host
    )
    src, dst = witness.ref(f"{dest_repo}@{image.digest}"), witness.ref(f"{onward}:1.0")
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
    onward_signature = json.loads(witness.inspect(f"{onward}:{signed.signature.tag}", raw=True))
    (layer,) = onward_signature["layers"]
    assert layer["mediaType"] == cosign.SIMPLE_SIGNING
    annotation = cosign.SIGNATURE_ANNOTATION
    assert layer["annotations"][annotation] == signed.signature_layer.annotations[annotation]
    assert connect(registry_open, onward).read_blob(onward, layer["digest"]) == signed.signature_layer.data


# ----------------------------------------------------------------------------------------------------
# What an up-to-date run costs


def test_an_up_to_date_rerun_costs_heads_and_one_tag_list_more_than_without_referrers(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    skopeo(registry_open).copy(image.oci, f"{source_repo}:1.0")
    signed = Signed(registry_open, connect(registry_open, source_repo), source_repo, image)
    options = {
        "src": f"{registry_open.host}/{source_repo}:1.0",
        "dest": f"{registry_htpasswd.host}/{dest_repo}:1.0",
        "credentials": credentials(registry_htpasswd),
    }
    ok(playbook([task("copy", **options, referrers=True)]), "copy")

    def rerun(referrers: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        source_mark, dest_mark = registry_open.mark(), registry_htpasswd.mark()
        result = ok(playbook([task("copy", **options, referrers=referrers)]), "copy")
        assert not result["changed"]
        return calls(registry_open, source_mark), calls(registry_htpasswd, dest_mark)

    plain_source, plain_dest = rerun(False)
    assert plain_source == [("HEAD", f"/v2/{source_repo}/manifests/1.0")]
    assert plain_dest == [("HEAD", f"/v2/{dest_repo}/manifests/1.0")]

    source_calls, dest_calls = rerun(True)
    fallback, sig = cosign.referrers_tag(image.digest), signed.signature.tag
    assert sorted(source_calls) == sorted(
        [
            ("HEAD", f"/v2/{source_repo}/manifests/1.0"),
            ("GET", f"/v2/{source_repo}/referrers/{image.digest}"),  # the API probe: 404, once per registry
            ("GET", f"/v2/{source_repo}/tags/list"),  # once: which fallback and cosign tags exist
            ("GET", f"/v2/{source_repo}/manifests/{fallback}"),
            ("HEAD", f"/v2/{source_repo}/manifests/{sig}"),
        ]
    )
    assert sorted(dest_calls) == sorted(
        [
            ("HEAD", f"/v2/{dest_repo}/manifests/1.0"),
            ("GET", f"/v2/{dest_repo}/referrers/{image.digest}"),
            ("HEAD", f"/v2/{dest_repo}/manifests/{signed.bundle.digest}"),
            ("GET", f"/v2/{dest_repo}/manifests/{fallback}"),
            ("HEAD", f"/v2/{dest_repo}/manifests/{sig}"),
        ]
    )
    # The attachments' own attachments (none) cost nothing: the tag list read once answers for every digest.


# ----------------------------------------------------------------------------------------------------
# Platform subsets, local stores


def test_a_platform_subset_carries_its_platforms_attachments_and_warns_about_the_index(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=["linux/amd64", "linux/arm64"])
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{source_repo}:1.0")
    signed = Signed(registry_open, connect(registry_open, source_repo), source_repo, image)
    copy = task(
        "subset",
        src=f"{registry_open.host}/{source_repo}:1.0",
        dest=f"{registry_open.host}/{dest_repo}:1.0",
        platforms=["linux/arm64"],
        referrers=True,
    )
    result = ok(playbook([copy]), "subset")
    assert result["digest"] != image.digest
    assert carried(result) == signed.expected("copied")[2:], "the child's, not the index's"
    (warning,) = result["warnings"]
    assert "platform subset" in warning and image.digest in warning
    assert not witness.exists(f"{dest_repo}:{signed.signature.tag}")
    assert witness.manifest(f"{dest_repo}:{signed.attestation.tag}") == signed.attestation.manifest


def test_local_stores_say_they_hold_no_attachments_before_any_request(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory()
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:1.0")
    mark = registry_open.mark()
    run = playbook(
        [
            {
                "name": "save",
                IMAGE: {
                    "src": f"{registry_open.host}/{unique_repo}:1.0",
                    "dest": f"oci:{tmp_path}/out:1.0",
                    "referrers": True,
                },
                "ignore_errors": True,
            }
        ]
    )
    entries = [entry for entry in run.results if entry["task"] == "save"]
    assert entries and entries[-1]["status"] == "failed", run.output
    message = entries[-1]["result"]["msg"]
    assert f"oci:{tmp_path}/out:1.0" in message and "local image stores" in message and "not supported" in message
    assert calls(registry_open, mark) == []
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------
# registry_tag


def test_registry_tag_promotion_carries_attachments_within_a_registry_and_rechecks_them(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    connect: ClientFactory,
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    staging, prod = unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=["linux/amd64", "linux/arm64"])
    witness = skopeo(registry_token)
    witness.copy(image.oci, f"{staging}:1.0")
    client = connect(registry_token, staging)
    signed = Signed(registry_token, client, staging, image)
    promote = task(
        "promote",
        TAG,
        repository=f"{registry_token.host}/{prod}",
        tag=["1.0", "stable"],
        source=f"{registry_token.host}/{staging}@{image.digest}",
        username=registry_token.username,
        password=registry_token.password,
        referrers=True,
    )

    mark = registry_token.mark()
    checked = ok(playbook([promote], check=True), "promote")
    assert checked["changed"] and carried(checked) == signed.expected("would copy")
    assert writes(registry_token, mark) == []

    mark = registry_token.mark()
    result = ok(playbook([promote]), "promote")
    assert carried(result) == signed.expected("copied")
    assert_carried(witness, prod, signed)
    assert witness.digest(f"{prod}:stable") == image.digest
    # Every blob of the image and its attachments was mounted from staging: no blob data went up.
    sent = ours(registry_token.requests_since(mark))
    assert not [r for r in sent if r["method"] == "PATCH" or (r["method"] == "PUT" and "/blobs/uploads/" in r["path"])]

    # The tags are up to date; a signature is added at the source: it arrives, and no tag moves.
    second = cosign.sign_bundle(
        cosign.subject_of(image), cosign.signing_key("rsa-2048"), created="2025-08-01T00:00:00Z"
    )
    cosign.push_referrers(client, staging, image.digest, [second])
    again = ok(playbook([promote]), "promote")
    assert again["changed"] and [tag["changed"] for tag in again["tags"]] == [False, False]
    assert (image.digest, second.digest, "fallback_tag", "copied") in carried(again)
    assert fallback_entries(witness, prod, image.digest) == [signed.bundle.descriptor(), second.descriptor()]

    mark = registry_token.mark()
    settled = ok(playbook([promote]), "promote")
    assert not settled["changed"] and {item["action"] for item in settled["referrers"]} == {"present"}
    assert writes(registry_token, mark) == []

    # Within one repository there is nothing to carry: the attachments are there already.
    mark = registry_token.mark()
    within = task(
        "within",
        TAG,
        repository=f"{registry_token.host}/{prod}",
        tag=["latest"],
        source=f"{registry_token.host}/{prod}:1.0",
        username=registry_token.username,
        password=registry_token.password,
        referrers=True,
    )
    inside = ok(playbook([within]), "within")
    assert inside["changed"] and inside["referrers"] == []
    assert not [call for call in calls(registry_token, mark) if call[1].endswith("/tags/list")]

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carrying attachments with an image (plugins/module_utils/_image/attachment_copy.py, and the copy engine's
``referrers`` in copy.py), and the fallback index a client keeps on a registry without the referrers API; then
``registry_tag``'s TagUpdate with ``referrers``.

The engine runs for real, through RegistrySource and RegistryDestination, over the in-memory registries of
conftest.py: by default they behave as distribution 2.8 (no referrers API, no ``OCI-Subject``, an index's manifests
must be there before it), and with ``referrers_api=True`` as a registry that serves the API. tests/functional runs
the same against the real distribution registry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import RegistryError, UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachment_copy import FallbackIndex
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import copy_image, transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import CopyProgress, ImageDestination
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import RegistrySource
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference, parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    cosign_tag,
    fallback_tag,
    referrer_descriptor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import TagUpdate

SOURCE_HOST, DEST_HOST = "source.test", "dest.test"
STAGING, PROD = "team/staging", "team/prod"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM = "application/spdx+json"


@pytest.fixture
def registries(make_registry, make_clients):
    """``(source registry, destination registry, clients)``, two registries without the referrers API."""
    source, dest = make_registry(SOURCE_HOST), make_registry(DEST_HOST)
    return source, dest, make_clients(source, dest)


def signed(registry, repository: str = STAGING, tag: str = "1.0"):
    """An image with a cosign 3 bundle referrer (in its fallback index) and a cosign 2 ``.sig``."""
    image = registry.add_image(repository, [tag])
    bundle = registry.add_referrer(repository, image, BUNDLE, note="signature")
    registry.add_fallback_index(repository, image.digest, [bundle])
    signature = registry.add_cosign(repository, image.digest)
    return image, bundle, signature


def copy(clients, src: str, dest: str, **options):
    return copy_image(clients, parse_reference(src), parse_reference(dest), referrers=True, **options)


def listed(registry, repository: str, subject: str) -> list[dict]:
    """The fallback index of ``subject`` in ``repository`` as stored, or [] when there is none."""
    digest = registry.tags_of(repository).get(fallback_tag(subject))
    return json.loads(registry.raw(repository, digest))["manifests"] if digest else []


def actions(result) -> list[tuple[str, str, str]]:
    return [(item["digest"], item["via"], item["action"]) for item in result.referrers]


def writes(registry) -> list[tuple[str, str]]:
    return [(request.kind, request.reference) for request in registry.writes()]


# -- across registries, on registries without the referrers API -----------------------------------------------------


def test_the_attachments_follow_the_image_byte_for_byte_and_the_fallback_index_is_written_last(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert result.changed and result.digest == image.digest
    assert actions(result) == [
        (bundle.digest, "fallback_tag", "copied"),
        (signature.digest, "cosign_tag", "copied"),
    ]
    assert result.referrers[0] == {
        "subject": image.digest,
        "digest": bundle.digest,
        "artifact_type": BUNDLE,
        "via": "fallback_tag",
        "action": "copied",
        "tag": fallback_tag(image.digest),
    }
    assert result.referrers[1]["tag"] == cosign_tag(image.digest, "cosign-signature")
    assert result.referrers[1]["artifact_type"] == "cosign-signature"
    assert dest.raw(PROD, bundle.digest) == bundle.raw
    assert dest.tags_of(PROD)[cosign_tag(image.digest, "cosign-signature")] == signature.digest
    assert dest.raw(PROD, signature.digest) == signature.raw
    assert listed(dest, PROD, image.digest) == [referrer_descriptor(parse_manifest(bundle.raw, OCI_MANIFEST))]
    manifest_writes = [entry for entry in writes(dest) if entry[0] in ("put_manifest", "put_referrer")]
    assert manifest_writes == [
        ("put_manifest", "1.0"),  # the image is complete before anything that names it
        ("put_referrer", bundle.digest),
        ("put_manifest", fallback_tag(image.digest)),  # after every manifest it lists
        ("put_manifest", cosign_tag(image.digest, "cosign-signature")),
    ]
    assert source.writes() == []


def test_an_up_to_date_run_rechecks_the_attachments_with_heads_and_one_tag_list(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)
    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    source.requests.clear()
    dest.requests.clear()

    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert not again.changed
    assert actions(again) == [(bundle.digest, "fallback_tag", "present"), (signature.digest, "cosign_tag", "present")]
    assert source.writes() == [] and dest.writes() == []
    # Source: the image's HEAD, its tag list once, the fallback index, the cosign tag's HEAD. The referrers API was
    # learnt missing on the first run, by the same clients: not asked again.
    assert source.kinds() == {"head_manifest": 2, "list_tags": 1, "get_manifest": 1}
    # Destination: the image's HEAD, a HEAD by digest for the referrer, its fallback index, the cosign tag's HEAD.
    assert dest.kinds() == {"head_manifest": 3, "get_manifest": 1}
    assert dest.count("head_manifest", bundle.digest) == 1


def test_without_attachments_an_up_to_date_run_costs_the_tag_list_and_one_api_probe(registries) -> None:
    source, dest, clients = registries
    source.add_image(STAGING, ["1.0"])
    copy_image(clients, parse_reference("source.test/team/staging:1.0"), parse_reference("dest.test/team/prod:1.0"))
    source.requests.clear()
    dest.requests.clear()
    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    assert again.referrers == [] and not again.changed
    assert source.kinds() == {"head_manifest": 1, "referrers": 1, "list_tags": 1}
    assert dest.kinds() == {"head_manifest": 1}


def test_a_signature_added_at_the_source_later_arrives_and_the_index_grows(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)
    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    # Later: cosign 2 appends a second signature to the .sig image; cosign 3 pushes a second bundle.
    resigned = source.add_cosign(STAGING, image.digest, signatures=("one", "two"))
    second = source.add_referrer(STAGING, image, BUNDLE, note="second signature")
    source.add_fallback_index(STAGING, image.digest, [bundle, second])

    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert again.changed
    assert actions(again) == [
        (bundle.digest, "fallback_tag", "present"),
        (second.digest, "fallback_tag", "copied"),
        (resigned.digest, "cosign_tag", "replaced"),
    ]
    assert dest.tags_of(PROD)[cosign_tag(image.digest, "cosign-signature")] == resigned.digest
    assert [entry["digest"] for entry in listed(dest, PROD, image.digest)] == [bundle.digest, second.digest]


def test_the_destination_index_is_added_to_never_replaced_nor_duplicated(registries) -> None:
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    source.copy_to(STAGING, image.digest, PROD)  # the image is at the destination registry already...
    dest.repositories[PROD] = source.repositories.pop(PROD)
    theirs = dest.add_referrer(PROD, image, SBOM, note="made at the destination")
    dest.add_fallback_index(PROD, image.digest, [theirs])  # ...with an attachment of its own, in its index
    before = listed(dest, PROD, image.digest)

    for _run in range(2):
        copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    entries = listed(dest, PROD, image.digest)
    assert entries[0] == before[0]
    assert [entry["digest"] for entry in entries] == [theirs.digest, bundle.digest]
    assert dest.count("put_manifest", fallback_tag(image.digest)) == 1, "the second run wrote nothing"


def test_a_referrer_present_but_not_indexed_is_indexed(registries) -> None:
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    dest.untag(PROD, fallback_tag(image.digest))  # someone deleted the fallback index; the referrer stays

    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert actions(again)[0] == (bundle.digest, "fallback_tag", "indexed")
    assert again.changed
    assert [entry["digest"] for entry in listed(dest, PROD, image.digest)] == [bundle.digest]
    assert dest.count("put_referrer") == 1, "the manifest was there: not written again"


def test_a_referrer_garbage_collected_at_the_destination_is_put_back(registries) -> None:
    # distribution's garbage-collect --delete-untagged removes referrers that only a fallback index names.
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    dest.remove(PROD, bundle.digest)

    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert actions(again)[0] == (bundle.digest, "fallback_tag", "copied")
    assert dest.raw(PROD, bundle.digest) == bundle.raw
    assert dest.count("put_manifest", fallback_tag(image.digest)) == 1, "it listed the referrer already"


def test_check_mode_lists_what_would_be_copied_and_writes_nothing(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)

    dry = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", dry_run=True)

    assert dry.changed
    assert actions(dry) == [
        (bundle.digest, "fallback_tag", "would copy"),
        (signature.digest, "cosign_tag", "would copy"),
    ]
    assert dest.writes() == []

    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    dest.untag(PROD, fallback_tag(image.digest))
    resigned = source.add_cosign(STAGING, image.digest, signatures=("one", "two"))
    dest.requests.clear()
    dry = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", dry_run=True)
    assert actions(dry) == [
        (bundle.digest, "fallback_tag", "would index"),
        (resigned.digest, "cosign_tag", "would replace"),
    ]
    assert dry.changed and dest.writes() == []


def test_an_index_carries_the_attachments_of_its_children_and_its_own(registries) -> None:
    source, dest, clients = registries
    amd64 = source.add_image(STAGING, platform="linux/amd64")
    arm64 = source.add_image(STAGING, platform="linux/arm64")
    index = source.add_index(STAGING, [amd64, arm64], ["1.0"])
    of_index = source.add_cosign(STAGING, index.digest)
    of_arm = source.add_referrer(STAGING, arm64, BUNDLE)
    source.add_fallback_index(STAGING, arm64.digest, [of_arm])
    of_amd = source.add_cosign(STAGING, amd64.digest, ".att")

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert [(item["subject"], item["digest"], item["action"]) for item in result.referrers] == [
        (index.digest, of_index.digest, "copied"),
        (amd64.digest, of_amd.digest, "copied"),
        (arm64.digest, of_arm.digest, "copied"),
    ]
    assert dest.tags_of(PROD)[cosign_tag(amd64.digest, "cosign-attestation")] == of_amd.digest
    assert [entry["digest"] for entry in listed(dest, PROD, arm64.digest)] == [of_arm.digest]

    # Up to date: the index is read once (by digest) to know its children; each attachment costs a HEAD.
    source.requests.clear()
    dest.requests.clear()
    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    assert {item["action"] for item in again.referrers} == {"present"}
    assert source.count("get_manifest", index.digest) == 1
    assert dest.kinds() == {"head_manifest": 4, "get_manifest": 1}


def test_a_platform_subset_carries_its_platforms_attachments_and_warns_about_the_index(registries) -> None:
    source, dest, clients = registries
    amd64 = source.add_image(STAGING, platform="linux/amd64")
    arm64 = source.add_image(STAGING, platform="linux/arm64")
    index = source.add_index(STAGING, [amd64, arm64], ["1.0"])
    source.add_cosign(STAGING, index.digest)
    of_amd = source.add_cosign(STAGING, amd64.digest)
    source.add_cosign(STAGING, arm64.digest)

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", platforms=["linux/amd64"])

    assert result.digest != index.digest
    assert [(item["subject"], item["digest"]) for item in result.referrers] == [(amd64.digest, of_amd.digest)]
    assert len(result.warnings) == 1
    assert "platform subset" in result.warnings[0] and index.digest in result.warnings[0]
    assert "cosign-signature" in result.warnings[0]
    assert cosign_tag(index.digest, "cosign-signature") not in dest.tags_of(PROD)

    unsigned = source.add_index(STAGING, [amd64, arm64], ["2.0"], attestations=True)
    quiet = copy(clients, "source.test/team/staging:2.0", "dest.test/team/prod:2.0", platforms=["linux/amd64"])
    assert quiet.warnings == [], "nothing of the index was left behind: %s" % unsigned.digest


def test_referrers_of_referrers_follow_their_subject(registries) -> None:
    source, dest, clients = registries
    image = source.add_image(STAGING, ["1.0"])
    sbom = source.add_referrer(STAGING, image, SBOM)
    source.add_fallback_index(STAGING, image.digest, [sbom])
    sbom_signature = source.add_referrer(STAGING, sbom, BUNDLE)
    source.add_fallback_index(STAGING, sbom.digest, [sbom_signature])
    sbom_cosign = source.add_cosign(STAGING, sbom.digest)

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert [(item["subject"], item["digest"]) for item in result.referrers] == [
        (image.digest, sbom.digest),
        (sbom.digest, sbom_signature.digest),
        (sbom.digest, sbom_cosign.digest),
    ]
    order = [reference for kind, reference in writes(dest) if kind in ("put_manifest", "put_referrer")]
    assert order.index(sbom.digest) < order.index(sbom_signature.digest)
    assert [entry["digest"] for entry in listed(dest, PROD, sbom.digest)] == [sbom_signature.digest]


def test_referrer_types_choose_what_travels(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)
    sbom = source.add_referrer(STAGING, image, SBOM)
    source.add_fallback_index(STAGING, image.digest, [bundle, sbom])

    only_sbom = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", referrer_types=[SBOM])
    assert actions(only_sbom) == [(sbom.digest, "fallback_tag", "copied")]
    assert cosign_tag(image.digest, "cosign-signature") not in dest.tags_of(PROD)

    signatures = copy(
        clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", referrer_types=["cosign-signature"]
    )
    assert actions(signatures) == [(signature.digest, "cosign_tag", "copied")]
    with pytest.raises(RegistryError, match="neither an artifact type"):
        copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", referrer_types=["sig"])


def test_a_referrer_the_source_lists_but_lacks_is_reported_missing_and_not_indexed(registries) -> None:
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    ghost = source.add_referrer(STAGING, image, SBOM)
    source.add_fallback_index(STAGING, image.digest, [bundle, ghost])
    source.remove(STAGING, ghost.digest)  # garbage collected at the source, still in its index

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert actions(result)[:2] == [(bundle.digest, "fallback_tag", "copied"), (ghost.digest, "fallback_tag", "missing")]
    assert len(result.warnings) == 1 and ghost.digest in result.warnings[0]
    assert [entry["digest"] for entry in listed(dest, PROD, image.digest)] == [bundle.digest]


def test_a_referrer_whose_blob_is_gone_at_the_source_fails_the_task_naming_it(registries) -> None:
    # Only a manifest missing at the source is "missing"; any other 404 on the way is a failure, not a skip.
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    layer = parse_manifest(bundle.raw, OCI_MANIFEST).layers[0]
    del source.repositories[STAGING].blobs[layer.digest]
    with pytest.raises(RegistryError, match="carrying its attachments.*BLOB_UNKNOWN|carrying its attachments.*blob"):
        copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    assert bundle.digest not in dest.manifest_digests(PROD)


def test_a_cosign_tag_with_signatures_made_at_the_destination_is_kept(registries) -> None:
    source, dest, clients = registries
    image, _bundle, signature = signed(source)
    copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    countersigned = dest.add_cosign(PROD, image.digest, signatures=("one", "prod"))  # cosign appended one there

    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert actions(again)[1] == (signature.digest, "cosign_tag", "kept")
    assert not again.changed
    assert dest.tags_of(PROD)[cosign_tag(image.digest, "cosign-signature")] == countersigned.digest
    assert len(again.warnings) == 1 and "left as it is" in again.warnings[0]


# -- a destination that indexes referrers itself ----------------------------------------------------------------------


def test_a_registry_with_the_api_indexes_referrers_itself_and_its_listing_answers_presence(make_registry, make_clients):
    source = make_registry(SOURCE_HOST, referrers_api=True)
    dest = make_registry(DEST_HOST, referrers_api=True)
    clients = make_clients(source, dest)
    image = source.add_image(STAGING, ["1.0"])
    bundle = source.add_referrer(STAGING, image, BUNDLE)

    result = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")

    assert actions(result) == [(bundle.digest, "api", "copied")]
    assert fallback_tag(image.digest) not in dest.tags_of(PROD), "the registry indexes it: no fallback tag"
    dest.requests.clear()
    again = copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    assert actions(again) == [(bundle.digest, "api", "present")]
    assert dest.kinds() == {"head_manifest": 1, "referrers": 1}, "the API's listing says it is there: no HEAD"


def test_an_oci_subject_answer_means_no_fallback_index(registries, make_registry, make_clients) -> None:
    source, _dest, _clients = registries
    image, bundle, _signature = signed(source)
    dest = make_registry(DEST_HOST, referrers_api=True)  # answers OCI-Subject to put_referrer...
    dest.referrers = lambda repository, digest, artifact_type=None: None  # ...though its API did not answer
    result = copy(make_clients(source, dest), "source.test/team/staging:1.0", "dest.test/team/prod:1.0")
    assert actions(result)[0] == (bundle.digest, "fallback_tag", "copied")
    assert fallback_tag(image.digest) not in dest.tags_of(PROD)


# -- the fallback index itself ----------------------------------------------------------------------------------------


def test_the_fallback_index_is_read_added_to_and_written_once(memory_registry) -> None:
    image = memory_registry.add_image(PROD, ["1.0"])
    first = memory_registry.add_referrer(PROD, image, BUNDLE)
    second = memory_registry.add_referrer(PROD, image, SBOM)

    index = FallbackIndex(memory_registry, PROD, image.digest)
    assert not index.lists(first.digest)  # 404: there is none yet
    assert not index.write(), "nothing added: an empty index is never written"
    assert index.add(referrer_descriptor(parse_manifest(first.raw, OCI_MANIFEST)))
    assert not index.add(referrer_descriptor(parse_manifest(first.raw, OCI_MANIFEST))), "never twice"
    assert index.add(referrer_descriptor(parse_manifest(second.raw, OCI_MANIFEST)))
    assert index.write()
    assert not index.write(), "written once"
    assert memory_registry.count("put_manifest", fallback_tag(image.digest)) == 1
    stored = json.loads(memory_registry.raw(PROD, memory_registry.tags_of(PROD)[fallback_tag(image.digest)]))
    assert stored["mediaType"] == OCI_INDEX
    assert [entry["digest"] for entry in stored["manifests"]] == [first.digest, second.digest]
    assert stored["manifests"][1] == {
        "mediaType": OCI_MANIFEST,
        "digest": second.digest,
        "size": len(second.raw),
        "artifactType": SBOM,
        "annotations": json.loads(second.raw)["annotations"],
    }

    again = FallbackIndex(memory_registry, PROD, image.digest)
    assert again.lists(first.digest) and again.lists(second.digest)
    assert not again.add(referrer_descriptor(parse_manifest(second.raw, OCI_MANIFEST)))
    assert not again.write()


def test_a_fallback_index_keeps_what_it_listed_even_fields_it_does_not_know(memory_registry) -> None:
    image = memory_registry.add_image(PROD, ["1.0"])
    old = memory_registry.add_referrer(PROD, image, BUNDLE)
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": old.digest, "size": len(old.raw), "x-extra": [1]}],
            "annotations": {"kept": "yes"},
        }
    ).encode()
    memory_registry.store(PROD, raw, OCI_INDEX, [fallback_tag(image.digest)])
    new = memory_registry.add_referrer(PROD, image, SBOM)
    index = FallbackIndex(memory_registry, PROD, image.digest)
    index.add(referrer_descriptor(parse_manifest(new.raw, OCI_MANIFEST)))
    index.write()
    stored = json.loads(memory_registry.raw(PROD, memory_registry.tags_of(PROD)[fallback_tag(image.digest)]))
    assert stored["annotations"] == {"kept": "yes"}
    assert stored["manifests"][0] == json.loads(raw)["manifests"][0]
    assert stored["manifests"][1]["digest"] == new.digest


def test_a_fallback_tag_on_something_else_is_not_overwritten(memory_registry) -> None:
    image = memory_registry.add_image(PROD, ["1.0"])
    memory_registry.add_image(PROD, [fallback_tag(image.digest)])  # an image someone tagged so
    index = FallbackIndex(memory_registry, PROD, image.digest)
    with pytest.raises(UnsupportedError, match="not an index"):
        index.lists("sha256:" + "1" * 64)


def test_a_fallback_index_listing_a_manifest_that_is_not_there_is_refused_by_distribution(memory_registry) -> None:
    # Why the carrier writes every referrer before the index: distribution 2.8 (and the memory registry) refuse an
    # index whose manifests are not there.
    image = memory_registry.add_image(PROD, ["1.0"])
    elsewhere = memory_registry.add_referrer("other/repo", image, BUNDLE)
    index = FallbackIndex(memory_registry, PROD, image.digest)
    index.add(referrer_descriptor(parse_manifest(elsewhere.raw, OCI_MANIFEST)))
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN|blob unknown"):
        index.write()


# -- where attachments cannot go, and failures halfway -------------------------------------------------------------


class LocalStore(ImageDestination):
    name = "oci:/tmp/layout:1.0"


def test_local_stores_refuse_referrers_before_any_request(registries) -> None:
    source, _dest, _clients = registries
    source.add_image(STAGING, ["1.0"])
    registry_source = RegistrySource(source, parse_reference("source.test/team/staging:1.0"))
    with pytest.raises(UnsupportedError, match="oci:/tmp/layout:1.0.*local image stores"):
        transfer(registry_source, LocalStore(), referrers=True)
    assert source.requests == []


def test_a_failure_while_carrying_says_the_image_was_copied_and_reports_progress(registries) -> None:
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    dest.fail_on("put_referrer")
    progress = CopyProgress()
    with pytest.raises(RegistryError) as failed:
        copy(clients, "source.test/team/staging:1.0", "dest.test/team/prod:1.0", progress=progress)
    assert str(failed.value).startswith("%s was copied to dest.test/team/prod:1.0, but carrying" % image.digest)
    assert progress.changed
    assert dest.tags_of(PROD)["1.0"] == image.digest
    assert bundle.digest not in dest.manifest_digests(PROD)
    assert fallback_tag(image.digest) not in dest.tags_of(PROD), "no index lists what is not there"


def test_within_one_registry_attachment_blobs_are_mounted(memory_registry, memory_clients) -> None:
    image, bundle, signature = signed(memory_registry)
    result = copy(memory_clients, "registry.test/team/staging:1.0", "registry.test/team/prod:1.0")
    assert {item["action"] for item in result.referrers} == {"copied"}
    assert memory_registry.count("upload_blob") == 0
    blobs = {blob.digest for pushed in (bundle, signature) for blob in parse_manifest(pushed.raw).blobs}
    assert {request.reference for request in memory_registry.requests if request.kind == "mount_blob"} >= blobs
    assert image.digest == result.digest


# -- registry_tag (TagUpdate) ----------------------------------------------------------------------------------------


def tag_update(clients, tags: list[str], source: str, dry_run: bool = False, **options: Any) -> TagUpdate:
    return TagUpdate(
        clients,
        parse_repository("dest.test/team/prod"),
        tags,
        source=source,
        dry_run=dry_run,
        referrers=True,
        **options,
    )


def run(update: TagUpdate) -> dict:
    pending = update.plan()
    if (pending or update.carry_pending) and not update.dry_run:
        update.apply(pending)
    return update.result()


def test_tag_promotion_carries_attachments_and_rechecks_them_when_the_tags_are_up_to_date(registries) -> None:
    source, dest, clients = registries
    image, bundle, signature = signed(source)

    dry = run(tag_update(clients, ["1.0", "stable"], "source.test/team/staging:1.0", dry_run=True))
    assert dry["changed"] and {item["action"] for item in dry["referrers"]} == {"would copy"}
    assert dest.writes() == []

    real = run(tag_update(clients, ["1.0", "stable"], "source.test/team/staging:1.0"))
    assert [(item["digest"], item["action"]) for item in real["referrers"]] == [
        (bundle.digest, "copied"),
        (signature.digest, "copied"),
    ]
    assert dest.tags_of(PROD)["stable"] == image.digest

    resigned = source.add_cosign(STAGING, image.digest, signatures=("one", "two"))
    source.requests.clear()
    dest.requests.clear()
    update = tag_update(clients, ["1.0", "stable"], "source.test/team/staging:1.0")
    again = run(update)
    assert update.carry_pending
    assert again["changed"], "no tag moved, but a signature arrived"
    assert [change["changed"] for change in again["tags"]] == [False, False]
    assert [(item["digest"], item["action"]) for item in again["referrers"]] == [
        (bundle.digest, "present"),
        (resigned.digest, "replaced"),
    ]
    assert dest.tags_of(PROD)[cosign_tag(image.digest, "cosign-signature")] == resigned.digest
    # The source HEAD of the tag, once, told the media type: not asked again (by digest) for the attachments.
    assert source.count("head_manifest", "1.0") == 1
    assert source.count("head_manifest") == 2, "the tag, and the .sig tag: %s" % source.requests

    settled = run(tag_update(clients, ["1.0", "stable"], "source.test/team/staging:1.0"))
    assert not settled["changed"]
    assert {item["action"] for item in settled["referrers"]} == {"present"}


def test_tag_promotion_carries_only_the_referrer_types_asked_for(registries) -> None:
    source, dest, clients = registries
    image, _bundle, signature = signed(source)
    result = run(tag_update(clients, ["1.0"], "source.test/team/staging:1.0", referrer_types=["cosign-signature"]))
    assert [(item["digest"], item["action"]) for item in result["referrers"]] == [(signature.digest, "copied")]
    assert fallback_tag(image.digest) not in dest.tags_of(PROD)


def test_a_failure_while_only_carrying_reports_changed_only_once_something_was_written(registries) -> None:
    source, dest, clients = registries
    image, bundle, _signature = signed(source)
    run(tag_update(clients, ["1.0"], "source.test/team/staging:1.0"))
    second = source.add_referrer(STAGING, image, BUNDLE, note="second")
    source.add_fallback_index(STAGING, image.digest, [bundle, second])
    source.add_cosign(STAGING, image.digest, signatures=("one", "two"))
    dest.fail_on("put_manifest", cosign_tag(image.digest, "cosign-signature"))

    update = tag_update(clients, ["1.0"], "source.test/team/staging:1.0")
    assert update.plan() == [] and update.carry_pending
    assert not update.changed_so_far
    with pytest.raises(
        RegistryError, match="^Carrying the attachments .* of %s from .* to dest.test/team/prod" % image.digest
    ):
        update.apply([])
    assert update.changed_so_far, "the second referrer and the fallback index were written before the failure"
    assert second.digest in dest.manifest_digests(PROD)

    dest.hooks.clear()
    dest.fail_on("put_referrer")
    third = source.add_referrer(STAGING, image, BUNDLE, note="third")
    source.add_fallback_index(STAGING, image.digest, [bundle, second, third])
    update = tag_update(clients, ["1.0"], "source.test/team/staging:1.0")
    update.plan()
    with pytest.raises(RegistryError):
        update.apply([])
    assert not update.changed_so_far, "nothing was written"


def test_tag_promotion_by_digest_when_up_to_date_heads_the_source_once(registries) -> None:
    source, dest, clients = registries
    image, _bundle, _signature = signed(source)
    run(tag_update(clients, ["1.0"], "source.test/team/staging@" + image.digest))
    source.requests.clear()
    again = run(tag_update(clients, ["1.0"], "source.test/team/staging@" + image.digest))
    assert not again["changed"]
    assert source.count("head_manifest", image.digest) == 1


def test_within_one_repository_there_is_nothing_to_carry(memory_registry, memory_clients) -> None:
    image, _bundle, _signature = signed(memory_registry, PROD)
    update = TagUpdate(
        memory_clients,
        parse_repository("registry.test/team/prod"),
        ["stable"],
        source="registry.test/team/prod:1.0",
        referrers=True,
    )
    result = run(update)
    assert result["referrers"] == [] and result["digest"] == image.digest
    again = run(
        TagUpdate(
            memory_clients,
            parse_repository("registry.test/team/prod"),
            ["stable"],
            source="registry.test/team/prod:1.0",
            referrers=True,
        )
    )
    assert again["referrers"] == [] and not again["changed"]
    assert memory_registry.count("list_tags") == 0


def test_tag_promotion_without_referrers_leaves_the_attachments(registries) -> None:
    source, dest, clients = registries
    signed(source)
    update = TagUpdate(clients, parse_repository("dest.test/team/prod"), ["1.0"], source="source.test/team/staging:1.0")
    result = run(update)
    assert "referrers" not in result
    assert source.count("list_tags") == 0
    assert [tag for tag in dest.tags_of(PROD) if tag.startswith("sha256-")] == []


def test_tag_referrer_types_are_checked_before_any_request(registries) -> None:
    source, _dest, clients = registries
    with pytest.raises(RegistryError, match="referrer_types"):
        tag_update(clients, ["1.0"], "source.test/team/staging:1.0", referrer_types="cosign-signature")
    assert source.requests == []

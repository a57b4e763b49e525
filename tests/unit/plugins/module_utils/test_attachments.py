# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding an image's attachments (plugins/module_utils/_image/attachments.py, AttachmentFinder) and asking the
referrers API (plugins/module_utils/_registry/api.py, RegistryClient.referrers and put_referrer).

No registry here serves the referrers API (distribution 2.8 answers 404), so that path is tested without a server:
the client against a fake transport that answers exactly as the distribution-spec 1.1 words it (200 with an OCI
index even when empty, ``Link`` for the next page, ``OCI-Filters-Applied: artifactType`` when it filtered, any 404
meaning "no API: use the fallback tag"), and the finder against the in-memory registry of conftest.py, with and
without its ``referrers_api``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidReferenceError
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachments import (
    VIA_API,
    VIA_COSIGN_TAG,
    VIA_FALLBACK_TAG,
    AttachmentFinder,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    cosign_tag,
    fallback_tag,
    wanted_types,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import Referrers, RegistryClient

REPO = "team/app"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM = "application/spdx+json"
SUBJECT = "sha256:" + "5" * 64


def dumps(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- content in a memory registry (conftest.py's add_referrer, add_fallback_index, add_cosign) ------------------------


def push_referrer(registry: Any, repository: str, subject: Any, artifact_type: str, note: str = "") -> Descriptor:
    """A referrer of ``subject``, as the descriptor an index lists for it."""
    pushed = registry.add_referrer(repository, subject, artifact_type, note=note)
    document = json.loads(pushed.raw)
    return Descriptor(
        OCI_MANIFEST, pushed.digest, len(pushed.raw), annotations=document["annotations"], artifact_type=artifact_type
    )


def index_referrers(registry: Any, repository: str, subject: str, *referrers: Descriptor) -> None:
    registry.store(
        repository,
        dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": item.media_type,
                        "digest": item.digest,
                        "size": item.size,
                        "artifactType": item.artifact_type,
                        "annotations": item.annotations,
                    }
                    for item in referrers
                ],
            }
        ),
        OCI_INDEX,
        [fallback_tag(subject)],
    )


def push_cosign(registry: Any, repository: str, subject: str, suffix: str = ".sig") -> str:
    return registry.add_cosign(repository, subject, suffix).digest


# -- AttachmentFinder on a registry without the API: the fallback tag and cosign tags ------------------------------


def test_without_the_api_the_fallback_index_and_cosign_tags_are_found_from_one_tag_list(memory_registry) -> None:
    image = memory_registry.add_image(REPO, ["v1"])
    bundle = push_referrer(memory_registry, REPO, image, BUNDLE, "signature")
    sbom = push_referrer(memory_registry, REPO, image, SBOM, "sbom")
    index_referrers(memory_registry, REPO, image.digest, bundle, sbom)
    signature = push_cosign(memory_registry, REPO, image.digest)
    attestation = push_cosign(memory_registry, REPO, image.digest, ".att")
    other = memory_registry.add_image(REPO, ["v2"])  # nothing attached: costs no request

    finder = AttachmentFinder(memory_registry, REPO)
    found = finder.of(image.digest) + finder.of(other.digest)

    assert [(item.digest, item.via, item.tag, item.artifact_type) for item in found] == [
        (bundle.digest, VIA_FALLBACK_TAG, fallback_tag(image.digest), BUNDLE),
        (sbom.digest, VIA_FALLBACK_TAG, fallback_tag(image.digest), SBOM),
        (signature, VIA_COSIGN_TAG, cosign_tag(image.digest, "cosign-signature"), "cosign-signature"),
        (attestation, VIA_COSIGN_TAG, cosign_tag(image.digest, "cosign-attestation"), "cosign-attestation"),
    ]
    assert all(item.subject == image.digest for item in found)
    assert found[0].descriptor.annotations["note"] == "signature"
    # The API asked once (a 404, remembered), the tag list once, the fallback index once, a HEAD per cosign tag.
    assert memory_registry.kinds() == {"referrers": 1, "list_tags": 1, "get_manifest": 1, "head_manifest": 2}


def test_a_repository_that_does_not_exist_has_no_attachments(memory_registry) -> None:
    assert AttachmentFinder(memory_registry, "no/such").of(SUBJECT) == []


def test_the_wanted_types_filter_referrers_and_cosign_tags(memory_registry) -> None:
    image = memory_registry.add_image(REPO, ["v1"])
    bundle = push_referrer(memory_registry, REPO, image, BUNDLE)
    sbom = push_referrer(memory_registry, REPO, image, SBOM)
    index_referrers(memory_registry, REPO, image.digest, bundle, sbom)
    signature = push_cosign(memory_registry, REPO, image.digest)
    push_cosign(memory_registry, REPO, image.digest, ".sbom")

    finder = AttachmentFinder(memory_registry, REPO, wanted_types([SBOM, "cosign-signature"]))
    assert [item.digest for item in finder.of(image.digest)] == [sbom.digest, signature]
    assert memory_registry.count("head_manifest") == 1  # an unwanted cosign tag is not even looked at
    assert AttachmentFinder(memory_registry, REPO, wanted_types([])).of(image.digest) == []


def test_referrers_of_referrers_are_found_and_a_loop_ends(memory_registry) -> None:
    image = memory_registry.add_image(REPO, ["v1"])
    sbom = push_referrer(memory_registry, REPO, image, SBOM)
    index_referrers(memory_registry, REPO, image.digest, sbom)
    sbom_signature = push_referrer(memory_registry, REPO, sbom, BUNDLE)
    # A fallback index can list anything: the signature's own index names the image's SBOM again, a loop.
    index_referrers(memory_registry, REPO, sbom.digest, sbom_signature)
    index_referrers(memory_registry, REPO, sbom_signature.digest, sbom)
    cosign_of_sbom = push_cosign(memory_registry, REPO, sbom.digest)

    found = AttachmentFinder(memory_registry, REPO).all_of([image.digest, image.digest])
    assert [(item.subject, item.digest) for item in found] == [
        (image.digest, sbom.digest),
        (sbom.digest, sbom_signature.digest),
        (sbom.digest, cosign_of_sbom),
        (sbom_signature.digest, sbom.digest),  # listed, but not looked into again
    ]
    assert memory_registry.count("list_tags") == 1
    assert memory_registry.count("get_manifest") == 3  # each fallback index once


def test_a_fallback_index_whose_tag_went_since_the_tag_list_was_read_means_none(memory_registry) -> None:
    image = memory_registry.add_image(REPO, ["v1"])
    index_referrers(memory_registry, REPO, image.digest, push_referrer(memory_registry, REPO, image, BUNDLE))
    finder = AttachmentFinder(memory_registry, REPO)
    assert finder.tags
    memory_registry.untag(REPO, fallback_tag(image.digest))
    assert finder.of(image.digest) == []


# -- AttachmentFinder with the referrers API -----------------------------------------------------------------------


def test_with_the_api_referrers_come_from_it_and_the_fallback_tag_is_not_read(make_registry) -> None:
    registry = make_registry(referrers_api=True)
    image = registry.add_image(REPO, ["v1"])
    bundle = push_referrer(registry, REPO, image, BUNDLE)
    sbom = push_referrer(registry, REPO, image, SBOM)
    # A stale fallback index from before the registry had the API: not what the API-serving registry says.
    index_referrers(registry, REPO, image.digest, push_referrer(registry, "other/repo", image, "application/x-old"))
    found = AttachmentFinder(registry, REPO).of(image.digest)
    assert sorted((item.digest, item.via, item.tag, item.artifact_type) for item in found) == sorted(
        [(bundle.digest, VIA_API, None, BUNDLE), (sbom.digest, VIA_API, None, SBOM)]
    )
    assert found[0].descriptor.annotations  # the API lists the annotations: no need to read the manifests
    assert registry.count("get_manifest") == 0
    assert registry.count("referrers") == 1


class ScriptedReferrers:
    """A client whose referrers answer is given: to see what the finder does with the registry's own filtering."""

    def __init__(self, answer: Referrers | None):
        self.answer = answer
        self.asked: list[tuple] = []

    def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> Referrers | None:
        self.asked.append((repository, digest, artifact_type))
        return self.answer

    def list_tags(self, repository: str) -> list[str]:
        return []


LISTED = (
    Descriptor(OCI_MANIFEST, "sha256:" + "1" * 64, 10, artifact_type=BUNDLE),
    Descriptor(OCI_MANIFEST, "sha256:" + "2" * 64, 10, artifact_type=SBOM),
    Descriptor(OCI_MANIFEST, "sha256:" + "3" * 64, 10),  # an older writer left artifactType out
)


def test_the_finder_filters_by_artifact_type_itself_unless_the_registry_says_it_did() -> None:
    wanted = wanted_types([SBOM])
    unfiltered = ScriptedReferrers(Referrers(LISTED, filtered=False))
    assert [item.digest for item in AttachmentFinder(unfiltered, REPO, wanted).of(SUBJECT)] == [LISTED[1].digest]
    trusted = ScriptedReferrers(Referrers(LISTED[1:2], filtered=True))
    assert [item.digest for item in AttachmentFinder(trusted, REPO, wanted).of(SUBJECT)] == [LISTED[1].digest]
    everything = ScriptedReferrers(Referrers(LISTED, filtered=False))
    assert len(AttachmentFinder(everything, REPO).of(SUBJECT)) == 3


# -- the in-memory registry's referrers API (conftest.py), which other tests rely on --------------------------------


def test_the_memory_registry_serves_the_api_only_when_asked_to(make_registry) -> None:
    plain = make_registry()
    image = plain.add_image(REPO, ["v1"])
    push_referrer(plain, REPO, image, BUNDLE)
    assert plain.referrers(REPO, image.digest) is None
    assert plain.referrers(REPO, image.digest) is None
    assert plain.count("referrers") == 1, "the client remembers the 404: asked once"

    serving = make_registry(referrers_api=True)
    image = serving.add_image(REPO, ["v1"])
    bundle = push_referrer(serving, REPO, image, BUNDLE)
    sbom = push_referrer(serving, REPO, image, SBOM)
    assert serving.referrers(REPO, "sha256:" + "0" * 64) == Referrers((), False), "empty, never a 404"
    assert serving.referrers("no/such", image.digest) == Referrers((), False)
    assert {item.digest for item in serving.referrers(REPO, image.digest).manifests} == {bundle.digest, sbom.digest}
    assert serving.referrers(REPO, image.digest, SBOM) == Referrers((sbom,), True)
    unfiltering = make_registry(referrers_api=True, filters_applied=False)
    image = unfiltering.add_image(REPO, ["v1"])
    push_referrer(unfiltering, REPO, image, BUNDLE)
    push_referrer(unfiltering, REPO, image, SBOM)
    answer = unfiltering.referrers(REPO, image.digest, SBOM)
    assert not answer.filtered and len(answer.manifests) == 2


def test_the_memory_registry_answers_oci_subject_only_with_the_api(make_registry) -> None:
    for serving in (False, True):
        registry = make_registry(referrers_api=serving)
        image = registry.add_image(REPO, ["v1"])
        raw = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_EMPTY, "digest": registry.blob(REPO, b"{}"), "size": 2},
                "layers": [],
                "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.raw)},
            }
        )
        assert registry.put_referrer(REPO, raw, OCI_MANIFEST) is serving
        assert digest_of(raw) in registry.manifest_digests(REPO)
        assert registry.writes()[-1].kind == "put_referrer"


# -- RegistryClient.referrers and put_referrer against a fake transport, to the distribution-spec 1.1 ----------------


class Answer:
    """One HTTP answer: status, headers, body and the ``Link`` header as requests parses it."""

    def __init__(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, next_url: str | None = None
    ):
        self.status_code = status
        self.body = body
        self.headers = CaseInsensitiveDict(headers or {})
        self.links = {"next": {"url": next_url}} if next_url else {}

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        for start in range(0, len(self.body), chunk_size):
            yield self.body[start : start + chunk_size]

    def close(self) -> None:
        pass

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass


class ScriptedTransport:
    """Answers each request with the next answer; records (method, path, params, headers)."""

    def __init__(self, *answers: Answer):
        self.registry = "registry.example.com"
        self.answers = list(answers)
        self.sent: list[tuple[str, str, Any, dict]] = []

    def request(self, method: str, path: str, **options: Any) -> Answer:
        self.sent.append((method, path, options.get("params"), dict(options.get("headers") or {})))
        answer = self.answers.pop(0)
        if answer.status_code not in options.get("ok", (200,)):
            raise AssertionError("the client did not expect %d for %s %s" % (answer.status_code, method, path))
        return answer


def referrers_page(*entries: dict) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def entry(number: int, artifact_type: str | None) -> dict:
    described: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + str(number) * 64,
        "size": 100 + number,
    }
    if artifact_type:
        described["artifactType"] = artifact_type
        described["annotations"] = {"org.opencontainers.image.created": "2025-01-0%dT00:00:00Z" % number}
    return described


INDEX_TYPE = {"Content-Type": OCI_INDEX}


def test_the_api_answers_an_index_and_every_page_is_followed() -> None:
    transport = ScriptedTransport(
        Answer(200, referrers_page(entry(1, BUNDLE), entry(2, SBOM)), INDEX_TYPE, "/v2/team/app/referrers/x?last=2"),
        Answer(200, referrers_page(entry(3, None)), INDEX_TYPE),
    )
    answer = RegistryClient(transport).referrers(REPO, SUBJECT)  # type: ignore[arg-type]
    assert [item.digest for item in answer.manifests] == ["sha256:" + str(n) * 64 for n in (1, 2, 3)]
    assert answer.manifests[0].artifact_type == BUNDLE
    assert answer.manifests[0].annotations == {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"}
    assert answer.manifests[2].artifact_type is None
    assert not answer.filtered
    assert [(method, path) for method, path, _params, _headers in transport.sent] == [
        ("GET", "/v2/team/app/referrers/" + SUBJECT),
        ("GET", "/v2/team/app/referrers/x?last=2"),
    ]
    assert transport.sent[0][3]["Accept"] == OCI_INDEX


def test_an_empty_answer_is_an_answer_not_a_missing_api() -> None:
    transport = ScriptedTransport(Answer(200, referrers_page(), INDEX_TYPE), Answer(200, referrers_page(), INDEX_TYPE))
    client = RegistryClient(transport)  # type: ignore[arg-type]
    assert client.referrers(REPO, SUBJECT) == Referrers((), False)
    assert client.referrers(REPO, SUBJECT) == Referrers((), False)
    assert len(transport.sent) == 2, "an empty index teaches nothing about the API: asked again"


@pytest.mark.parametrize(
    ("header", "filtered"),
    [("artifactType", True), ("ArtifactType, somethingElse", True), ("somethingElse", False), (None, False)],
)
def test_the_filter_is_trusted_only_when_the_registry_says_it_applied_it(header, filtered) -> None:
    headers = dict(INDEX_TYPE, **({"OCI-Filters-Applied": header} if header else {}))
    transport = ScriptedTransport(Answer(200, referrers_page(entry(2, SBOM)), headers))
    answer = RegistryClient(transport).referrers(REPO, SUBJECT, artifact_type=SBOM)  # type: ignore[arg-type]
    assert answer.filtered is filtered
    assert transport.sent[0][2] == {"artifactType": SBOM}


def test_a_filter_counts_only_when_every_page_says_so() -> None:
    transport = ScriptedTransport(
        Answer(200, referrers_page(entry(2, SBOM)), dict(INDEX_TYPE, **{"OCI-Filters-Applied": "artifactType"}), "/n"),
        Answer(200, referrers_page(entry(4, SBOM)), INDEX_TYPE),
    )
    answer = RegistryClient(transport).referrers(REPO, SUBJECT, artifact_type=SBOM)  # type: ignore[arg-type]
    assert len(answer.manifests) == 2 and not answer.filtered
    assert transport.sent[1][2] is None, "the next page's URL carries its own query"


def test_a_header_without_a_filter_asked_for_means_nothing() -> None:
    headers = dict(INDEX_TYPE, **{"OCI-Filters-Applied": "artifactType"})
    transport = ScriptedTransport(Answer(200, referrers_page(entry(1, BUNDLE)), headers))
    assert not RegistryClient(transport).referrers(REPO, SUBJECT).filtered  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', {"Content-Type": "application/json"}),
        Answer(404, b"404 page not found", {"Content-Type": "text/plain"}),  # distribution 2.8's answer
        Answer(200, b"<html>login</html>", {"Content-Type": "text/html"}),  # a proxy's page: not an index
    ],
)
def test_any_404_means_no_api_learnt_once_per_registry(answer) -> None:
    transport = ScriptedTransport(answer)
    client = RegistryClient(transport)  # type: ignore[arg-type]
    assert client.referrers(REPO, SUBJECT) is None
    assert client.referrers("other/repo", "sha256:" + "6" * 64) is None
    assert len(transport.sent) == 1


def test_a_malformed_digest_is_refused_before_any_request() -> None:
    transport = ScriptedTransport()
    with pytest.raises(InvalidReferenceError):
        RegistryClient(transport).referrers(REPO, "sha256:nothex")  # type: ignore[arg-type]
    assert transport.sent == []


@pytest.mark.parametrize(("headers", "indexed"), [({"OCI-Subject": SUBJECT}, True), ({}, False)])
def test_put_referrer_puts_by_digest_and_says_whether_the_registry_indexed_it(headers, indexed) -> None:
    raw = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
    transport = ScriptedTransport(Answer(201, b"", dict(headers, **{"Docker-Content-Digest": digest_of(raw)})))
    assert RegistryClient(transport).put_referrer(REPO, raw, OCI_MANIFEST) is indexed  # type: ignore[arg-type]
    method, path, _params, sent_headers = transport.sent[0]
    assert (method, path, sent_headers["Content-Type"]) == (
        "PUT",
        "/v2/team/app/manifests/" + digest_of(raw),
        OCI_MANIFEST,
    )

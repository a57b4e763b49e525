# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RegistryClient.get_manifest (plugins/module_utils/_registry/api.py): which answers it accepts, which it reads
again, and when it gives up, against a fake transport that serves a scripted list of answers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from ansible_collections.ocireg.registry.plugins.module_utils._errors import DigestMismatchError
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import RetryPolicy

REGISTRY = "registry.example.com"
REPO = "team/app"
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
GOOD = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE, "layers": []}).encode()
OTHER = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE, "layers": [], "annotations": {"a": "b"}}).encode()


def sha256(data: bytes) -> str:
    return "sha256:%s" % hashlib.sha256(data).hexdigest()


def flipped(data: bytes, position: int | None = None) -> bytes:
    changed = bytearray(data)
    changed[len(data) // 2 if position is None else position] ^= 0x01
    return bytes(changed)


class Answer:
    """A streamed 200 answer: BODY, with HEADERS."""

    def __init__(self, body: bytes, headers: dict[str, str]):
        self.body = body
        self.status_code = 200
        self.headers = CaseInsensitiveDict({"Content-Type": MEDIA_TYPE, **headers})

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        for start in range(0, len(self.body), chunk_size):
            yield self.body[start : start + chunk_size]

    def close(self) -> None:
        pass

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class ScriptedTransport:
    """Answers each request with the next of ANSWERS (body, Docker-Content-Digest or None); records the paths."""

    def __init__(self, answers: list[tuple[bytes, str | None]], retries: int):
        self.registry = REGISTRY
        self.answers = list(answers)
        self.paths: list[str] = []
        self.retry = RetryPolicy(retries, base_delay=0.0, sleep=lambda seconds: None)

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        assert method == "GET" and kwargs.get("stream") is True
        self.paths.append(path)
        body, claimed = self.answers.pop(0)
        return Answer(body, {"Docker-Content-Digest": claimed} if claimed is not None else {})


def client(answers: list[tuple[bytes, str | None]], retries: int = 1) -> tuple[RegistryClient, ScriptedTransport]:
    transport = ScriptedTransport(answers, retries)
    return RegistryClient(transport), transport  # type: ignore[arg-type]


# -- by tag: the Docker-Content-Digest header cross-checks --------------------------------------------------------


def test_by_tag_a_header_that_matches_costs_one_request() -> None:
    api, transport = client([(GOOD, sha256(GOOD))])

    fetched = api.get_manifest(REPO, "v1")

    assert (fetched.raw, fetched.digest, fetched.media_type) == (GOOD, sha256(GOOD), MEDIA_TYPE)
    assert transport.paths == ["/v2/team/app/manifests/v1"]


def test_by_tag_no_header_or_one_that_cannot_be_checked_is_no_reason_to_read_again() -> None:
    for claimed in (None, "", "md5:0123456789abcdef0123456789abcdef", "sha256:short", "nonsense"):
        api, transport = client([(GOOD, claimed)])
        assert api.get_manifest(REPO, "v1").raw == GOOD, claimed
        assert len(transport.paths) == 1, claimed


def test_by_tag_a_sha512_header_is_checked_with_sha512() -> None:
    sha512 = "sha512:%s" % hashlib.sha512(GOOD).hexdigest()
    api, transport = client([(GOOD, sha512)])

    fetched = api.get_manifest(REPO, "v1")

    assert fetched.digest == sha256(GOOD) and len(transport.paths) == 1


def test_by_tag_a_wrong_but_stable_header_costs_a_second_read_then_the_bytes_are_accepted() -> None:
    wrong = sha256(OTHER)
    api, transport = client([(GOOD, wrong), (GOOD, wrong)])

    fetched = api.get_manifest(REPO, "v1")

    assert fetched.raw == GOOD and fetched.digest == sha256(GOOD)
    assert len(transport.paths) == 2


def test_by_tag_a_corrupt_first_read_is_read_again_and_the_good_bytes_returned() -> None:
    api, transport = client([(flipped(GOOD), sha256(GOOD)), (GOOD, sha256(GOOD))])

    fetched = api.get_manifest(REPO, "v1")

    assert fetched.raw == GOOD and fetched.digest == sha256(GOOD)
    assert len(transport.paths) == 2


def test_by_tag_with_a_wrong_header_and_a_corrupt_first_read_two_reads_must_agree() -> None:
    wrong = sha256(OTHER)
    api, transport = client([(flipped(GOOD), wrong), (GOOD, wrong), (GOOD, wrong)], retries=2)

    assert api.get_manifest(REPO, "v1").raw == GOOD
    assert len(transport.paths) == 3


def test_by_tag_retries_exhausted_is_a_digest_error_naming_registry_repository_tag_and_both_digests() -> None:
    corrupt, other_corrupt = flipped(GOOD), flipped(GOOD, 3)
    api, transport = client([(corrupt, sha256(GOOD)), (other_corrupt, sha256(GOOD))], retries=1)

    with pytest.raises(DigestMismatchError) as caught:
        api.get_manifest(REPO, "v1")

    message = str(caught.value)
    for part in (REGISTRY, "team/app:v1", sha256(GOOD), sha256(corrupt), sha256(other_corrupt)):
        assert part in message, (part, message)
    assert caught.value.registry == REGISTRY and caught.value.repository == REPO
    assert len(transport.paths) == 2


def test_by_tag_with_no_retries_a_disagreeing_header_is_an_error_after_one_read() -> None:
    # One read cannot tell a corrupt answer from a wrong header: without a second read the bytes are refused.
    api, transport = client([(GOOD, sha256(OTHER))], retries=0)

    with pytest.raises(DigestMismatchError, match="team/app:v1 whose content hashes to %s" % sha256(GOOD)):
        api.get_manifest(REPO, "v1")
    assert len(transport.paths) == 1


# -- by digest: the bytes must hash to it ---------------------------------------------------------------------


def test_by_digest_a_corrupt_read_is_read_again_within_retries() -> None:
    digest = sha256(GOOD)
    api, transport = client([(flipped(GOOD), digest), (GOOD, digest)], retries=1)

    assert api.get_manifest(REPO, digest).raw == GOOD
    assert transport.paths == ["/v2/team/app/manifests/%s" % digest] * 2


def test_by_digest_no_retries_left_is_a_digest_error_naming_registry_and_digest() -> None:
    digest = sha256(GOOD)
    api, transport = client([(flipped(GOOD), digest), (GOOD, digest)], retries=0)

    with pytest.raises(DigestMismatchError) as caught:
        api.get_manifest(REPO, digest)

    message = str(caught.value)
    assert REGISTRY in message and digest in message and sha256(flipped(GOOD)) in message, message
    assert len(transport.paths) == 1


def test_by_digest_the_header_is_not_needed_and_one_good_read_is_one_request() -> None:
    digest = sha256(GOOD)
    api, transport = client([(GOOD, None)], retries=3)

    assert api.get_manifest(REPO, digest).digest == digest
    assert len(transport.paths) == 1

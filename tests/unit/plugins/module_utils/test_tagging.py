# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag state logic without a registry (plugins/module_utils/_ops/tagging.py)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    InvalidReferenceError,
    TagOverwriteError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import (
    PLACEHOLDER_LABEL,
    TagChange,
    check_overwrite,
    common_digest,
    missing_tags,
    overwrite_conflicts,
    parse_source,
    placeholder_for,
    plan_absent,
    plan_present,
    same_registry,
    same_repository,
    tag_diff,
    validate_tag_list,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
REPO = parse_repository("registry.example.com/team/app")


# -- options ----------------------------------------------------------------------------------------------------


def test_tag_list_keeps_order_and_drops_repeats() -> None:
    assert validate_tag_list(["v2", "latest", "v2", "1.0"]) == ["v2", "latest", "1.0"]
    assert validate_tag_list("solo") == ["solo"]


@pytest.mark.parametrize("bad", ["bad tag", "-dash", ".dot", "x" * 129, "tag:colon", ""])
def test_a_bad_tag_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        validate_tag_list(["fine", bad])
    assert repr(bad)[:50] in str(caught.value)
    assert "option tag" in str(caught.value)


@pytest.mark.parametrize("empty", [[], None, ()])
def test_at_least_one_tag_is_needed(empty: object) -> None:
    with pytest.raises(InvalidInputError, match="at least one tag"):
        validate_tag_list(empty)


def test_a_bare_digest_means_the_repository_itself() -> None:
    source = parse_source(A, REPO)
    assert (source.registry, source.repository, source.tag, source.digest) == (REPO.registry, REPO.repository, None, A)
    assert same_repository(source, REPO)


def test_a_malformed_bare_digest_is_not_taken_for_a_hub_image() -> None:
    # Parsed as a reference, 'sha256:abc' would be docker.io/library/sha256 with tag abc.
    with pytest.raises(InvalidReferenceError) as caught:
        parse_source("sha256:abc", REPO)
    assert "'sha256:abc'" in str(caught.value)
    assert "digest" in str(caught.value)


@pytest.mark.parametrize("bare", ["md5:" + "0" * 32, "sha1:" + "a" * 40, "SHA1:" + "a" * 40, "blake3:" + "b" * 64])
def test_a_bare_digest_of_an_algorithm_registries_lack_is_refused_naming_the_supported_ones(bare: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_source(bare, REPO)
    assert repr(bare) in str(caught.value)
    assert "sha256, sha384 and sha512" in str(caught.value) or "must be lowercase" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("registry.example.com/team/app:1.0", "registry.example.com", "team/app", "1.0", None),
        ("registry.example.com/team/app", "registry.example.com", "team/app", "latest", None),
        ("registry.example.com/staging/app@" + B, "registry.example.com", "staging/app", None, B),
        ("ghcr.io/org/app:2", "ghcr.io", "org/app", "2", None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
    ],
)
def test_source_references(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    source = parse_source(text, REPO)
    assert (source.registry, source.repository, source.tag, source.digest) == (registry, repository, tag, digest)


def test_a_source_on_the_same_registry_uses_the_repository_scheme() -> None:
    repository = parse_repository("https://127.0.0.1:5000/team/app")
    same = parse_source("127.0.0.1:5000/other/app:1", repository)
    assert same.base_url == "https://127.0.0.1:5000"
    assert same_registry(same, repository) and not same_repository(same, repository)
    elsewhere = parse_source("127.0.0.1:6000/team/app:1", repository)
    assert elsewhere.base_url == "http://127.0.0.1:6000"
    assert not same_registry(elsewhere, repository)
    explicit = parse_source("http://127.0.0.1:5000/team/app:1", repository)
    assert not same_registry(explicit, repository)


def test_a_source_keeps_whether_it_named_its_registry() -> None:
    bare = parse_source("1.1.0", REPO)
    assert (bare.canonical, bare.registry_implied, bare.looks_like_bare_tag) == (
        "docker.io/library/1.1.0:latest",
        True,
        True,
    )
    assert bare.docker_hub_note(REPO.name).endswith(
        "; to name a tag of registry.example.com/team/app, write registry.example.com/team/app:1.1.0."
    )
    hub_repository = parse_repository("team/app")
    sibling = parse_source("team/other:1", hub_repository)  # same registry: the repository's scheme, and its reading
    assert (sibling.registry_implied, sibling.looks_like_bare_tag) == (True, False)
    by_digest = parse_source(A, hub_repository)  # a bare digest is in the repository, read as the repository was
    assert (by_digest.registry_implied, by_digest.looks_like_bare_tag) == (True, False)
    for named in ("docker.io/library/1.1.0", "registry.example.com/team/app:1.1.0"):
        assert not parse_source(named, REPO).registry_implied
    assert not parse_source(A, REPO).registry_implied


@pytest.mark.parametrize("bad", ["Not/Valid:1", "team/app:bad tag", "team/app@sha256:1234", "a//b:1"])
def test_a_bad_source_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_source(bad, REPO)
    assert "source" in str(caught.value).lower()
    assert repr(bad) in str(caught.value) or repr(bad.rpartition("@")[2]) in str(caught.value)


# -- planning ---------------------------------------------------------------------------------------------------


def test_present_moves_creates_and_keeps() -> None:
    changes = plan_present({"stable": B, "new": None, "ok": A}, A)
    assert [change.to_dict() for change in changes] == [
        {"tag": "stable", "digest": A, "previous_digest": B, "changed": True},
        {"tag": "new", "digest": A, "previous_digest": None, "changed": True},
        {"tag": "ok", "digest": A, "previous_digest": A, "changed": False},
    ]
    assert tag_diff(changes) == {
        "before": {"stable": B, "new": None, "ok": A},
        "after": {"stable": A, "new": A, "ok": A},
    }


def test_absent_removes_what_exists() -> None:
    changes = plan_absent({"gone": None, "old": B})
    assert [(change.tag, change.changed) for change in changes] == [("gone", False), ("old", True)]
    assert all(change.digest is None for change in changes)


def test_overwrite_guard_names_only_tags_on_another_digest() -> None:
    current = {"1.0": B, "1.1": C, "fresh": None, "same": A}
    assert overwrite_conflicts(current, A) == {"1.0": B, "1.1": C}
    with pytest.raises(TagOverwriteError) as caught:
        check_overwrite("registry.example.com/team/app", current, A)
    message = str(caught.value)
    assert "1.0 (now %s)" % B in message and "1.1 (now %s)" % C in message
    assert "fresh" not in message and "same" not in message
    assert A in message and "overwrite is false" in message
    check_overwrite("registry.example.com/team/app", {"fresh": None, "same": A}, A)  # nothing to protect


def test_missing_tags_and_common_digest() -> None:
    assert missing_tags({"a": A, "b": None, "c": None}) == ["b", "c"]
    assert common_digest([A, A]) == A
    assert common_digest([A, B]) is None
    assert common_digest([]) is None
    assert TagChange("t", None, None).changed is False


# -- the placeholder of the safe untag --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "media_type", "config_media_type"),
    [
        (DOCKER_MANIFEST, DOCKER_MANIFEST, DOCKER_CONFIG),
        (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, DOCKER_CONFIG),
        (OCI_MANIFEST, OCI_MANIFEST, OCI_CONFIG),
        (OCI_INDEX + "; charset=utf-8", OCI_MANIFEST, OCI_CONFIG),
        ("", OCI_MANIFEST, OCI_CONFIG),
    ],
)
def test_placeholder_is_in_the_family_of_the_current_manifest(
    current: str, media_type: str, config_media_type: str
) -> None:
    placeholder = placeholder_for(current, "nonce")
    info = parse_manifest(placeholder.manifest.raw, placeholder.manifest.media_type)
    assert info.media_type == placeholder.manifest.media_type == media_type
    assert info.config is not None
    assert info.config.media_type == config_media_type
    assert info.config.digest == compute_digest(placeholder.config)
    assert info.config.size == len(placeholder.config)
    assert info.layers == ()
    assert placeholder.manifest.digest == compute_digest(placeholder.manifest.raw)
    assert json.loads(placeholder.config)["config"]["Labels"] == {PLACEHOLDER_LABEL: "nonce"}


def test_each_placeholder_is_unique() -> None:
    first, second = placeholder_for(OCI_MANIFEST, "one"), placeholder_for(OCI_MANIFEST, "two")
    assert first.manifest.digest != second.manifest.digest and first.manifest.config != second.manifest.config
    assert placeholder_for(OCI_MANIFEST, "one") == first  # deterministic for a given nonce

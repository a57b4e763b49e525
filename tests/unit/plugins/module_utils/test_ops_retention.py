# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a registry_repo task does (plugins/module_utils/_ops/retention.py: RepositoryRetention), and the image ages
it decides by (_ops/image_ages.py: ImageAges), end to end on the in-memory registry of conftest.py."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_SIGNED_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.image_ages import ImageAges
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import (
    RETENTION_RULES,
    RepositoryRetention,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NAME = "team/app"
REPO = parse_repository("registry.test/team/app")


def days_ago(days: float) -> str:
    return (NOW - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rules(**given) -> dict:
    """The retention dict as Ansible hands it over: every rule, None when not set."""
    return {rule: given.get(rule) for rule in RETENTION_RULES}


def retention(registry, state: str = "present", concurrency: int = 4, **given) -> RepositoryRetention:
    return RepositoryRetention(registry, REPO, state, rules(**given) if given else None, concurrency)


def run(registry, state: str = "present", concurrency: int = 4, **given) -> tuple[RepositoryRetention, dict]:
    """make_plan(NOW) then, as the module does outside check mode, apply() when something changes."""
    task = retention(registry, state, concurrency, **given)
    task.make_plan(NOW)
    if task.plan.changed:
        task.apply()
    return task, task.result()


# -- the rules, end to end --------------------------------------------------------------------------------------


def test_keep_last_keeps_the_newest_images_with_all_their_tags_and_deletes_the_rest_by_digest(memory_registry):
    oldest = memory_registry.add_image(NAME, ["v1"], created=days_ago(40))
    older = memory_registry.add_image(NAME, ["v2", "v2-alias"], created=days_ago(30))
    newer = memory_registry.add_image(NAME, ["v3", "v3-alias"], created=days_ago(20))
    newest = memory_registry.add_image(NAME, ["v4"], created=days_ago(10))
    unknown = memory_registry.add_image(NAME, ["undated"], created=None)  # sorts as the oldest
    memory_registry.requests.clear()

    _task, result = run(memory_registry, keep_last=2)
    outcomes = result.pop("tags")
    prepared = result["diff"].pop("prepared")

    assert memory_registry.tags_of(NAME) == {"v3": newer.digest, "v3-alias": newer.digest, "v4": newest.digest}
    assert memory_registry.manifest_digests(NAME) == {newer.digest, newest.digest}
    assert result == {
        "changed": True,
        "exists": True,
        "deleted_tags": ["undated", "v1", "v2", "v2-alias"],
        "kept_tags": ["v3", "v3-alias", "v4"],
        "deleted_digests": sorted([oldest.digest, older.digest, unknown.digest]),
        "referrers": [],
        "diff": {
            "before": {"tags": ["undated", "v1", "v2", "v2-alias", "v3", "v3-alias", "v4"]},
            "after": {"tags": ["v3", "v3-alias", "v4"]},
        },
    }
    # the tag list once, a manifest GET per tag (its age matters), a config per image, one DELETE per image; and
    # whether the registry serves the referrers API (asked once: its 404 says no, and the client remembers)
    assert memory_registry.kinds() == {
        "list_tags": 1,
        "get_manifest": 7,
        "read_blob": 5,
        "delete_manifest": 3,
        "referrers": 1,
    }
    digest_of = {"undated": unknown, "v1": oldest, "v2": older, "v2-alias": older, "v3": newer, "v3-alias": newer}
    digest_of["v4"] = newest
    assert [(o["tag"], o["digest"], o["action"], o["reason"], o["removed_by"]) for o in outcomes] == [
        ("undated", unknown.digest, "deleted", "keep_last", "digest"),
        ("v1", oldest.digest, "deleted", "keep_last", "digest"),
        ("v2", older.digest, "deleted", "keep_last", "digest"),
        ("v2-alias", older.digest, "deleted", "keep_last", "digest"),
        ("v3", newer.digest, "kept", "keep_last", None),
        ("v3-alias", newer.digest, "kept", "keep_last", None),
        ("v4", newest.digest, "kept", "keep_last", None),
    ]
    assert (
        outcomes[2]["detail"]
        == "its image is not among the 2 newest (keep_last); its image is deleted by digest, with v2-alias"
    )
    assert outcomes[6]["detail"] == "its image (created %s) is among the 2 newest (keep_last)" % days_ago(10)
    # the diff says the same, a line per tag
    assert prepared.splitlines() == ["%(action)s %(tag)s (%(reason)s): %(detail)s" % o for o in outcomes]


def test_older_than_keeps_recent_images_and_those_of_unknown_age_with_a_warning(memory_registry) -> None:
    memory_registry.add_image(NAME, ["old"], created=days_ago(40))
    recent = memory_registry.add_image(NAME, ["recent"], created=days_ago(5))
    undated = memory_registry.add_image(NAME, ["undated", "undated-too"], created=None)
    memory_registry.store(NAME, b'{"schemaVersion": 1, "fsLayers": []}', DOCKER_SCHEMA1_SIGNED_MANIFEST, ["ancient"])
    artifact = memory_registry.add_artifact(NAME, ["chart"])  # no created annotation: age unknown too

    task, result = run(memory_registry, older_than="30d")

    assert result["deleted_tags"] == ["old"]
    assert set(memory_registry.tags_of(NAME)) == {"recent", "undated", "undated-too", "ancient", "chart"}
    assert task.warnings == [
        "older_than kept 4 tag(s) of registry.test/team/app because their images have no readable creation time:"
        " ancient, chart, undated, undated-too"
    ]
    assert {recent.digest, undated.digest, artifact.digest} <= memory_registry.manifest_digests(NAME)


def test_match_and_keep_without_an_age_rule_read_no_manifest_and_no_config(memory_registry) -> None:
    shared = memory_registry.add_image(NAME, ["pr-1", "pr-keep"])
    alone = memory_registry.add_image(NAME, ["pr-2", "pr-3"])
    memory_registry.add_image(NAME, ["main", "v1.0"])
    memory_registry.requests.clear()

    _task, result = run(memory_registry, match=["pr-.*"], keep=["pr-keep"])

    assert (result["deleted_tags"], result["kept_tags"]) == (["pr-1", "pr-2", "pr-3"], ["main", "pr-keep", "v1.0"])
    by_tag = {outcome["tag"]: outcome for outcome in result["tags"]}
    assert {tag: (o["action"], o["reason"], o["removed_by"]) for tag, o in by_tag.items()} == {
        "main": ("kept", "match", None),
        "pr-1": ("deleted", "match", "untag"),  # match let it go, keep did not stop it
        "pr-2": ("deleted", "match", "digest"),
        "pr-3": ("deleted", "match", "digest"),
        "pr-keep": ("kept", "keep", None),
        "v1.0": ("kept", "match", None),
    }
    assert by_tag["pr-1"]["detail"] == (
        "matches the match pattern 'pr-.*'; matches no keep pattern; removed on its own: its image stays for the kept"
        " tag pr-keep"
    )
    assert by_tag["pr-keep"]["detail"] == "matches the keep pattern 'pr-keep'"
    assert result["deleted_digests"] == [alone.digest]
    # pr-1 shares its image with pr-keep: untagged on its own (the placeholder then deleted), the image stays
    assert memory_registry.tags_of(NAME)["pr-keep"] == shared.digest
    assert shared.digest in memory_registry.manifest_digests(NAME)
    assert len(memory_registry.manifest_digests(NAME)) == 2
    assert memory_registry.kinds() == {
        "list_tags": 1,
        "head_manifest": 6,
        "delete_manifest": 2,  # alone's, and pr-1's placeholder
        "delete_tag": 1,
        "upload_blob": 1,
        "put_manifest": 1,
        "referrers": 1,  # the one question whether the API is served (the images that go may have referrers)
    }


def test_when_no_tag_is_matched_and_not_kept_only_the_tag_list_is_read(memory_registry) -> None:
    memory_registry.add_image(NAME, ["v1", "v2", "pr-keep"])
    _task, result = run(memory_registry, match=["pr-.*"], keep=["pr-keep"], keep_last=1)
    assert (result["changed"], result["kept_tags"], memory_registry.kinds()) == (
        False,
        ["pr-keep", "v1", "v2"],
        {"list_tags": 1},
    )
    # the reasons need no digest, and none was read
    assert [(o["tag"], o["digest"], o["action"], o["reason"]) for o in result["tags"]] == [
        ("pr-keep", None, "kept", "keep"),
        ("v1", None, "kept", "match"),
        ("v2", None, "kept", "match"),
    ]


def test_without_retention_every_tag_is_kept_for_no_retention(memory_registry) -> None:
    memory_registry.add_image(NAME, ["v1", "latest"])
    task, result = run(memory_registry)
    assert result["tags"] == [
        {
            "tag": tag,
            "digest": None,
            "action": "kept",
            "reason": "no_retention",
            "detail": "no retention is set, so nothing is deleted",
            "removed_by": None,
        }
        for tag in ("latest", "v1")
    ]
    assert (result["changed"], task.warnings, memory_registry.kinds()) == (False, [], {"list_tags": 1})


def test_untagging_many_tags_asks_to_delete_by_name_only_until_the_registry_refuses(make_registry) -> None:
    for tag_deletes, asked in ((False, 1), (True, 4)):
        registry = make_registry(tag_deletes=tag_deletes)
        registry.add_image(NAME, ["keep", "t1", "t2", "t3", "t4"])
        _task, result = run(registry, keep=["keep"])
        assert result["deleted_tags"] == ["t1", "t2", "t3", "t4"]
        assert registry.count("delete_tag") == asked
        assert list(registry.tags_of(NAME)) == ["keep"]


# -- indexes ----------------------------------------------------------------------------------------------------


def test_an_index_is_as_old_as_its_newest_platform_image(memory_registry) -> None:
    amd64 = memory_registry.add_image(NAME, created=days_ago(100))
    arm64 = memory_registry.add_image(NAME, created=days_ago(2), platform="linux/arm64/v8")
    index = memory_registry.add_index(NAME, [amd64, arm64], ["multi"], attestations=True)
    memory_registry.add_image(NAME, ["single"], created=days_ago(50))

    _task, result = run(memory_registry, older_than="30d")

    assert (result["deleted_tags"], result["kept_tags"]) == (["single"], ["multi"])
    assert memory_registry.tags_of(NAME) == {"multi": index.digest}
    attestations = set(index.children) - {amd64.digest, arm64.digest}
    assert not any(memory_registry.count(reference=digest) for digest in attestations)  # never read


def test_a_digest_a_surviving_index_needs_is_untagged_not_deleted(memory_registry) -> None:
    amd64 = memory_registry.add_image(NAME, ["amd64-only"], created=days_ago(90))
    arm64 = memory_registry.add_image(NAME, created=days_ago(1), platform="linux/arm64")
    index = memory_registry.add_index(NAME, [amd64, arm64], ["multi"])
    memory_registry.requests.clear()

    _task, result = run(memory_registry, older_than="30d")

    assert (result["deleted_tags"], result["deleted_digests"]) == (["amd64-only"], [])
    assert [(o["tag"], o["action"], o["reason"], o["removed_by"]) for o in result["tags"]] == [
        ("amd64-only", "deleted", "older_than", "untag"),
        ("multi", "kept", "older_than", None),
    ]
    assert result["tags"][0]["detail"].endswith("; removed on its own: its image stays for the kept index multi")
    assert memory_registry.tags_of(NAME) == {"multi": index.digest}
    assert {amd64.digest, arm64.digest, index.digest} <= memory_registry.manifest_digests(NAME)
    assert amd64.digest not in {r.reference for r in memory_registry.requests if r.kind == "delete_manifest"}


def test_the_index_protection_holds_without_age_rules_too(memory_registry) -> None:
    amd64 = memory_registry.add_image(NAME, ["amd64-only"])
    index = memory_registry.add_index(NAME, [amd64], ["multi"], media_type=DOCKER_MANIFEST_LIST)
    memory_registry.requests.clear()

    _task, result = run(memory_registry, match=["amd64-.*"])

    assert (result["deleted_tags"], result["deleted_digests"]) == (["amd64-only"], [])
    assert result["tags"][0]["detail"] == (
        "matches the match pattern 'amd64-.*'; removed on its own: its image stays for the kept index multi"
    )
    assert amd64.digest in memory_registry.manifest_digests(NAME)
    assert memory_registry.count("get_manifest") == 1  # the surviving index, to learn what it needs
    assert memory_registry.count("get_manifest", index.digest) == 1


def test_state_absent_deletes_every_digest_indexes_first(memory_registry) -> None:
    amd64 = memory_registry.add_image(NAME, ["amd64"])
    arm64 = memory_registry.add_image(NAME, platform="linux/arm64")
    index = memory_registry.add_index(NAME, [amd64, arm64], ["multi", "latest"])
    single = memory_registry.add_image(NAME, ["single", "v1"], media_type=DOCKER_MANIFEST)
    memory_registry.requests.clear()

    _task, result = run(memory_registry, state="absent")

    deletes = [r.reference for r in memory_registry.requests if r.kind == "delete_manifest"]
    assert deletes[0] == index.digest
    assert sorted(deletes) == result["deleted_digests"] == sorted([index.digest, amd64.digest, single.digest])
    assert memory_registry.tags_of(NAME) == {}
    assert (result["changed"], result["exists"], result["kept_tags"]) == (True, True, [])
    assert result["deleted_tags"] == ["amd64", "latest", "multi", "single", "v1"]
    assert {(o["action"], o["reason"], o["removed_by"]) for o in result["tags"]} == {
        ("deleted", "state=absent", "digest")
    }
    assert [o["tag"] for o in result["tags"]] == result["deleted_tags"]
    assert result["tags"][1]["detail"] == "state=absent deletes every tag; its image is deleted by digest, with multi"
    assert memory_registry.kinds() == {"list_tags": 1, "head_manifest": 5, "delete_manifest": 3, "referrers": 1}
    assert arm64.digest in memory_registry.manifest_digests(NAME)  # untagged child: garbage collection's job


@pytest.mark.parametrize("given", [{"state": "absent"}, {}, {"keep_last": 1}, {"match": ["pr-.*"]}])
def test_a_missing_repository_is_no_change_with_a_warning_naming_it(memory_registry, given: dict) -> None:
    task, result = run(memory_registry, **given)
    assert (result["changed"], result["exists"], result["deleted_tags"], result["kept_tags"]) == (False, False, [], [])
    assert result["tags"] == []
    assert task.warnings == [
        "Repository registry.test/team/app does not exist, so there is nothing to delete. If you expected tags there,"
        " check its name and the registry."
    ]
    assert memory_registry.kinds() == {"list_tags": 1}


def test_a_repository_without_tags_is_no_change_with_a_warning(memory_registry) -> None:
    memory_registry.add_image(NAME, ["gone"])
    memory_registry.untag(NAME, "gone")  # distribution lists it, with no tags
    task, result = run(memory_registry, keep_last=1)
    assert (result["changed"], result["exists"]) == (False, False)
    assert task.warnings == [
        "Repository registry.test/team/app has no tags, so there is nothing to delete. If you expected tags there,"
        " check its name and the registry."
    ]


@pytest.mark.parametrize("given", [{"state": "absent"}, {}, {"keep_last": 1}])
def test_a_repository_with_tags_gives_no_such_warning(memory_registry, given: dict) -> None:
    memory_registry.add_image(NAME, ["v1"])
    task, _result = run(memory_registry, **given)
    assert task.warnings == []


def test_retention_with_state_absent_is_refused(memory_registry) -> None:
    with pytest.raises(InvalidInputError, match="retention only applies to state=present"):
        retention(memory_registry, state="absent", keep_last=1)
    assert memory_registry.requests == []


# -- requests ---------------------------------------------------------------------------------------------------


def test_each_config_and_platform_manifest_is_read_once_however_many_tags_share_it(memory_registry) -> None:
    shared = [memory_registry.add_image(NAME, ["a%d" % n, "b%d" % n], created=days_ago(60)) for n in range(5)]
    assert len({image.config_digest for image in shared}) == 1
    index = memory_registry.add_index(NAME, shared[:2], ["i1", "i2", "i3"])
    memory_registry.requests.clear()

    task, result = run(memory_registry, concurrency=8, older_than="30d")

    assert result["deleted_tags"] == sorted(
        ["a%d" % n for n in range(5)] + ["b%d" % n for n in range(5)] + ["i1", "i2", "i3"]
    )
    assert memory_registry.count("read_blob") == 1
    for child in index.children:
        assert memory_registry.count("get_manifest", child) == 0  # read by tag already (a0, a1)
    assert memory_registry.count("get_manifest") == 13  # one per tag
    assert task.warnings == []


# -- failures and check mode ------------------------------------------------------------------------------------


def test_a_failure_halfway_reports_what_was_deleted_and_what_was_not(memory_registry) -> None:
    images = [memory_registry.add_image(NAME, ["t%d" % n], created=days_ago(100 - n)) for n in range(3)]
    memory_registry.add_image(NAME, ["keep", "shared"], created=days_ago(1))
    task = retention(memory_registry, concurrency=1, keep=["keep"], older_than="30d")
    plan = task.make_plan(NOW)
    failing = plan.delete_digests[1]
    memory_registry.fail_on("delete_manifest", failing)
    tag_of = {image.digest: "t%d" % n for n, image in enumerate(images)}

    with pytest.raises(RegistryError) as caught:
        task.apply()
    failure = task.failure(caught.value)

    done = tag_of[plan.delete_digests[0]]
    left = sorted(set(tag_of.values()) - {done})
    assert plan.deleted_tags == ("t0", "t1", "t2")  # 'shared' is not old enough
    assert failure["msg"].startswith(str(caught.value).rstrip("."))
    assert failure["msg"].endswith(". Deleted before the failure: %s; not deleted: %s." % (done, ", ".join(left)))
    assert failure == dict(
        failure,
        changed=True,
        exists=True,
        deleted_tags=[done],
        kept_tags=sorted(["keep", "shared"] + left),
        deleted_digests=[plan.delete_digests[0]],
    )
    assert set(memory_registry.tags_of(NAME)) == {"keep", "shared", *left}


def test_a_failure_before_anything_went_says_nothing_was_deleted(make_registry) -> None:
    registry = make_registry(deletes_enabled=False)
    registry.add_image(NAME, ["a"])
    task = retention(registry, state="absent")
    task.make_plan(NOW)
    with pytest.raises(UnsupportedError) as caught:
        task.apply()
    failure = task.failure(caught.value)
    assert failure["msg"].endswith("Deleted before the failure: nothing; not deleted: a.")
    assert "storage.delete.enabled" in failure["msg"]
    assert (failure["changed"], failure["deleted_tags"], failure["kept_tags"]) == (False, [], ["a"])


def build_mixed(registry) -> None:
    amd64 = registry.add_image(NAME, ["amd64-old"], created=days_ago(90))
    arm64 = registry.add_image(NAME, created=days_ago(1), platform="linux/arm64")
    registry.add_index(NAME, [amd64, arm64], ["multi"], attestations=True)
    registry.add_image(NAME, ["old", "old-alias"], created=days_ago(60))
    registry.add_image(NAME, ["shared-old", "keep-me"], created=days_ago(60))
    registry.add_image(NAME, ["new"], created=days_ago(3))
    registry.add_image(NAME, ["undated"], created=None)
    registry.requests.clear()


@pytest.mark.parametrize(
    "given", [{"older_than": "30d", "keep": ["keep-.*"]}, {"keep_last": 2}, {"match": ["old.*", "amd64-.*"]}, {}]
)
def test_check_mode_is_the_plan_alone_and_reports_what_a_real_run_does(make_registry: Callable, given: dict) -> None:
    real, dry = make_registry(), make_registry()
    build_mixed(real)
    build_mixed(dry)
    state = "present" if given else "absent"

    real_task, expected = run(real, state, **given)
    dry_task = retention(dry, state, **given)
    dry_task.make_plan(NOW)

    assert expected["changed"] is True
    assert dry_task.result() == expected
    assert dry_task.warnings == real_task.warnings
    assert dry.writes() == []
    # the same reads as the real run (in another order: they run concurrently), and none of its writes
    assert Counter(dry.requests) == Counter(request for request in real.requests if request not in real.writes())


# -- ImageAges --------------------------------------------------------------------------------------------------


def ages_of(registry, tags: list[str], concurrency: int = 4) -> tuple[ImageAges, dict]:
    ages = ImageAges(registry, NAME, concurrency)
    digests = {tag: ages.read_tag(tag, True).digest for tag in tags}
    created = ages.created(digests.values())
    return ages, {tag: created[digest] for tag, digest in digests.items()}


def moment(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def test_ages_of_images_artifacts_and_indexes(memory_registry) -> None:
    memory_registry.add_image(NAME, ["image"], created=days_ago(5))
    memory_registry.add_image(
        NAME, ["docker"], created="2024-03-04T05:06:07.123456789+02:00", media_type=DOCKER_MANIFEST
    )
    memory_registry.add_artifact(NAME, ["artifact"], created=days_ago(7))
    memory_registry.add_artifact(NAME, ["bare-artifact"])
    memory_registry.add_image(NAME, ["undated"], created=None)
    amd64 = memory_registry.add_image(NAME, created=days_ago(30))
    arm64 = memory_registry.add_image(NAME, created=days_ago(3), platform="linux/arm64")
    undated = memory_registry.add_image(NAME, created=None, platform="linux/s390x")
    index = memory_registry.add_index(NAME, [amd64, undated, arm64], ["multi"], attestations=True)
    memory_registry.add_index(NAME, [undated], ["undated-index"], media_type=DOCKER_MANIFEST_LIST)
    memory_registry.requests.clear()

    _ages, created = ages_of(memory_registry, list(memory_registry.tags_of(NAME)))

    assert created == {
        "image": moment(5),
        "docker": datetime.datetime(2024, 3, 4, 3, 6, 7, 123456, tzinfo=UTC),
        "artifact": moment(7),  # its annotation; its config (a 1999 'created') is not an image config
        "bare-artifact": None,
        "undated": None,
        "multi": moment(3),  # the newest platform; the attestations (2099) are not read
        "undated-index": None,
    }
    attestations = set(index.children) - {amd64.digest, arm64.digest, undated.digest}
    assert len(attestations) == 3
    assert not any(memory_registry.count(reference=digest) for digest in attestations)
    for platform_image in (amd64, arm64, undated):
        assert memory_registry.count("get_manifest", platform_image.digest) == 1  # once, for two indexes
    assert memory_registry.count("read_blob") == 6  # three images, the three platforms; no artifact config


def test_manifests_and_configs_that_cannot_be_read_leave_the_age_unknown(memory_registry) -> None:
    memory_registry.store(NAME, b"not json", "application/vnd.oci.image.manifest.v1+json", ["broken"])
    memory_registry.store(NAME, b'{"schemaVersion": 1, "fsLayers": []}', DOCKER_SCHEMA1_SIGNED_MANIFEST, ["ancient"])
    lost = memory_registry.add_image(NAME, ["lost-config"], created=days_ago(1))
    del memory_registry.repositories[NAME].blobs[lost.config_digest]
    bad = memory_registry.add_image(NAME, ["bad-config"], created=days_ago(2), labels={"x": "y"})
    memory_registry.repositories[NAME].blobs[bad.config_digest] = b"[not an object]"
    gone = memory_registry.add_image(NAME, created=days_ago(3))
    memory_registry.add_index(NAME, [gone], ["incomplete"])
    memory_registry.remove(NAME, gone.digest)

    _ages, created = ages_of(memory_registry, ["broken", "ancient", "lost-config", "bad-config", "incomplete"])

    assert set(created.values()) == {None}


def test_read_tag_without_the_manifest_is_one_head_and_a_vanished_tag_is_none(memory_registry) -> None:
    image = memory_registry.add_image(NAME, ["a"])
    ages = ImageAges(memory_registry, NAME, 4)

    assert ages.read_tag("a", False).digest == image.digest
    assert ages.read_tag("gone", False) is None
    assert ages.read_tag("gone", True) is None
    assert ages.manifests == {}
    assert [(r.kind, r.reference) for r in memory_registry.requests] == [
        ("head_manifest", "a"),
        ("head_manifest", "gone"),
        ("get_manifest", "gone"),
    ]


def test_children_of_names_every_entry_and_fails_on_an_index_it_cannot_read(memory_registry) -> None:
    amd64 = memory_registry.add_image(NAME)
    index = memory_registry.add_index(NAME, [amd64], ["multi"], attestations=True)
    other = memory_registry.add_index(NAME, [memory_registry.add_image(NAME, platform="linux/arm64")])
    ages = ImageAges(memory_registry, NAME, 4)
    ages.read_tag("multi", True)
    memory_registry.requests.clear()

    assert ages.children_of([index.digest, other.digest]) == set(index.children) | set(other.children)
    assert [(r.kind, r.reference) for r in memory_registry.requests] == [("get_manifest", other.digest)]

    broken = memory_registry.store(NAME, b"{broken", "application/vnd.oci.image.index.v1+json")
    with pytest.raises(RegistryResponseError, match="not valid JSON"):
        ages.children_of([broken])


def test_a_dry_run_fails_where_the_registry_does_not_delete_and_checks_once(make_registry) -> None:
    registry = make_registry(deletes_enabled=False)
    image = registry.add_image(NAME, ["a", "b"])
    task = retention(registry, state="absent")
    task.make_plan(NOW)
    registry.requests.clear()
    with pytest.raises(UnsupportedError) as caught:
        task.check_deletes()
    assert "storage.delete.enabled" in str(caught.value) and "Nothing was changed" in str(caught.value)
    assert "a still points at %s" % image.digest in str(caught.value)
    assert registry.kinds() == {"confirm_deletes": 1}
    with pytest.raises(UnsupportedError):
        task.check_deletes()  # the answer is remembered for the task
    assert registry.kinds() == {"confirm_deletes": 1}


def test_a_dry_run_that_deletes_nothing_asks_nothing(memory_registry) -> None:
    memory_registry.add_image(NAME, ["keep"])
    task = retention(memory_registry, keep=["keep"], older_than="1d")
    task.make_plan(NOW)
    memory_registry.requests.clear()
    task.check_deletes()
    assert memory_registry.requests == []


# -- attachments, end to end ------------------------------------------------------------------------------------


def test_an_old_signed_image_goes_after_its_attachments_and_the_kept_image_keeps_its_own(memory_registry) -> None:
    old = memory_registry.add_image(NAME, ["v1"], created=days_ago(30))
    new = memory_registry.add_image(NAME, ["v2"], created=days_ago(1))
    old_sig = memory_registry.add_cosign(NAME, old.digest)
    old_att = memory_registry.add_cosign(NAME, old.digest, ".att", signatures=("attestation",))
    bundle = memory_registry.add_referrer(NAME, old, note="old bundle")
    fallback = memory_registry.add_fallback_index(NAME, old.digest, [bundle])
    new_sig = memory_registry.add_cosign(NAME, new.digest)
    task, result = run(memory_registry, keep_last=1)

    deletes = [request.reference for request in memory_registry.requests if request.kind == "delete_manifest"]
    # the attachments first (any order among them), then the fallback index, then the image
    assert sorted(deletes[:3]) == sorted([old_sig.digest, old_att.digest, bundle.digest])
    assert deletes[3:] == [fallback.digest, old.digest]
    assert result["kept_tags"] == sorted(["v2", "sha256-%s.sig" % new.digest.split(":")[1]])
    assert set(memory_registry.manifest_digests(NAME)) >= {new.digest, new_sig.digest}
    assert [(r["digest"], r["action"], r["via"]) for r in result["referrers"]] == [
        (bundle.digest, "deleted", "fallback_tag")
    ]
    reasons = {outcome["tag"]: outcome["reason"] for outcome in result["tags"]}
    assert reasons["v1"] == "keep_last" and reasons["sha256-%s.sig" % old.digest.split(":")[1]] == "attachment"
    # the re-run finds nothing to do
    assert run(memory_registry, keep_last=1)[1]["changed"] is False


def test_attachments_ignore_makes_attachment_tags_ordinary_candidates(memory_registry) -> None:
    image = memory_registry.add_image(NAME, ["v1"], created=days_ago(1))
    signature = memory_registry.add_cosign(NAME, image.digest)
    task = RepositoryRetention(memory_registry, REPO, "present", {"match": ["sha256-.*"], "attachments": "ignore"}, 4)
    task.make_plan(NOW)
    assert (task.plan.deleted_tags, task.plan.delete_digests) == (
        ("sha256-%s.sig" % image.digest.split(":")[1],),
        (signature.digest,),
    )
    assert memory_registry.count("referrers") == 0  # nothing is followed, the API is not asked


def test_answers_that_never_settle_fail_instead_of_looping(memory_registry, monkeypatch) -> None:
    old = memory_registry.add_image(NAME, ["v1"], created=days_ago(30))
    new = memory_registry.add_image(NAME, ["v2"], created=days_ago(1))
    memory_registry.add_fallback_index(NAME, new.digest, [memory_registry.add_referrer(NAME, new)])
    memory_registry.add_cosign(NAME, old.digest)
    # the kept fallback index must be read (it protects its referrers); a reader that reads nothing is asked again
    monkeypatch.setattr(ImageAges, "children_of", lambda self, indexes: set())
    with pytest.raises(RegistryResponseError, match="do not settle. Nothing was deleted."):
        retention(memory_registry, keep_last=1).make_plan(NOW)
    assert memory_registry.writes() == []

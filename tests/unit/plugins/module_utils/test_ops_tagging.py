# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a registry_tag task does (plugins/module_utils/_ops/tagging.py: TagUpdate, remove_tag, require_tags), on the
in-memory registry of conftest.py.

Not here: a source in another repository or registry that must be copied or mounted (``TagUpdate._promote`` and
the copy engine's ``copy_image``) needs a real transport; tests/functional covers it against distribution. Up to
date and dry-run promotions, which stop before copying, are here.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    TagOverwriteError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import DOCKER_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import TagUpdate, remove_tag, require_tags

NAME = "team/app"
REPO = parse_repository("registry.test/team/app")
ABSENT = "sha256:" + "0" * 64


def run(clients, tags: list[str], **options) -> dict:
    """plan() then, as the module does outside check mode, apply() when something is pending; the result."""
    update = TagUpdate(clients, REPO, tags, **options)
    pending = update.plan()
    if pending and not options.get("dry_run"):
        update.apply(pending)
    return update.result()


def pretty(registry, image) -> str:
    """``image`` stored again as indented JSON under no tag: bytes that any re-serialisation would change."""
    return registry.store(NAME, json.dumps(json.loads(image.raw), indent=3).encode(), image.media_type)


@pytest.fixture
def scene(memory_registry) -> Callable:
    """Builds the same repository in any memory registry: old (on stable), new (on 1.0 and latest)."""

    def build(registry=memory_registry) -> dict:
        old = registry.add_image(NAME, ["stable"], created="2024-01-01T00:00:00Z")
        new = registry.add_image(NAME, ["1.0", "latest"], created="2024-02-01T00:00:00Z")
        registry.requests.clear()
        return {"old": old.digest, "new": new.digest}

    return build


# -- present ----------------------------------------------------------------------------------------------------


def test_present_creates_moves_and_keeps_with_the_bytes_of_a_tag_named_source(memory_registry, memory_clients) -> None:
    old = memory_registry.add_image(NAME, ["stable"])
    new = memory_registry.add_image(NAME, ["latest"])
    source = pretty(memory_registry, new)  # same image, other bytes: its own digest
    memory_registry.tag(NAME, "1.0", source)
    memory_registry.requests.clear()

    result = run(memory_clients, ["stable", "latest", "fresh"], source="registry.test/team/app:1.0")

    assert memory_registry.tags_of(NAME) == {"stable": source, "latest": source, "1.0": source, "fresh": source}
    assert memory_registry.raw(NAME, source) == json.dumps(json.loads(new.raw), indent=3).encode()
    assert result == {
        "changed": True,
        "digest": source,
        "tags": [
            {"tag": "stable", "digest": source, "previous_digest": old.digest, "changed": True},
            {"tag": "latest", "digest": source, "previous_digest": new.digest, "changed": True},
            {"tag": "fresh", "digest": source, "previous_digest": None, "changed": True},
        ],
        "diff": {
            "before": {"stable": old.digest, "latest": new.digest, "fresh": None},
            "after": {"stable": source, "latest": source, "fresh": source},
        },
    }
    # one HEAD for the source and one per tag, one GET of the source for its bytes, one PUT per tag that moves
    assert memory_registry.kinds() == {"head_manifest": 4, "get_manifest": 1, "put_manifest": 3}
    assert [(r.kind, r.reference) for r in memory_registry.writes()] == [
        ("put_manifest", "stable"),
        ("put_manifest", "latest"),
        ("put_manifest", "fresh"),
    ]


def test_present_with_a_bare_digest_reads_the_source_once_by_digest(memory_registry, memory_clients, scene) -> None:
    digests = scene()

    result = run(memory_clients, ["stable", "latest"], source=digests["new"])

    assert memory_registry.tags_of(NAME) == {"stable": digests["new"], "1.0": digests["new"], "latest": digests["new"]}
    assert [change["changed"] for change in result["tags"]] == [True, False]
    assert (result["changed"], result["digest"]) == (True, digests["new"])
    assert [(r.kind, r.reference) for r in memory_registry.requests] == [
        ("head_manifest", "stable"),
        ("head_manifest", "latest"),
        ("get_manifest", digests["new"]),  # by digest, so the bytes are verified against it
        ("put_manifest", "stable"),
    ]


@pytest.mark.parametrize("by_digest", [False, True], ids=["source-by-tag", "source-by-digest"])
def test_a_second_run_changes_nothing_and_costs_one_head_per_tag_and_source(
    memory_registry, memory_clients, scene, by_digest: bool
) -> None:
    digests = scene()
    source = digests["new"] if by_digest else "registry.test/team/app:1.0"
    run(memory_clients, ["stable", "next"], source=source)
    memory_registry.requests.clear()

    result = run(memory_clients, ["stable", "next"], source=source)

    assert result["changed"] is False
    assert [change["changed"] for change in result["tags"]] == [False, False]
    assert result["diff"]["before"] == result["diff"]["after"] == {"stable": digests["new"], "next": digests["new"]}
    assert memory_registry.kinds() == {"head_manifest": 2 if by_digest else 3}


def test_up_to_date_tags_with_a_source_in_another_repository_cost_only_heads(make_registry, make_clients) -> None:
    registry = make_registry()
    image = registry.add_image("team/staging", ["rc"])
    registry.copy_to("team/staging", image.digest, NAME, ["1.0", "latest"])
    registry.requests.clear()

    by_tag = run(make_clients(registry), ["1.0", "latest"], source="registry.test/team/staging:rc")
    by_digest = run(make_clients(registry), ["1.0", "latest"], source="registry.test/team/staging@" + image.digest)

    assert by_tag["changed"] is by_digest["changed"] is False
    assert by_tag["digest"] == by_digest["digest"] == image.digest
    assert [(r.kind, r.repository, r.reference) for r in registry.requests] == [
        ("head_manifest", "team/staging", "rc"),
        ("head_manifest", NAME, "1.0"),
        ("head_manifest", NAME, "latest"),
        ("head_manifest", NAME, "1.0"),
        ("head_manifest", NAME, "latest"),
    ]


def test_a_dry_run_reads_writes_nothing_and_reports_what_a_real_run_does(make_registry, make_clients, scene) -> None:
    real, dry = make_registry(), make_registry()
    scene(real)
    digests = scene(dry)
    options = {"source": "registry.test/team/app:1.0"}

    expected = run(make_clients(real), ["stable", "latest", "fresh"], **options)
    update = TagUpdate(make_clients(dry), REPO, ["stable", "latest", "fresh"], dry_run=True, **options)
    pending = update.plan()

    assert pending == ["stable", "fresh"]
    assert update.result() == expected
    assert dry.writes() == []
    assert dry.tags_of(NAME) == {"stable": digests["old"], "1.0": digests["new"], "latest": digests["new"]}
    assert dry.kinds() == {"head_manifest": 4}  # what the real run read but the source's bytes


def test_a_dry_run_promotion_checks_the_source_and_writes_nothing(memory_registry, memory_clients) -> None:
    staged = memory_registry.add_image("team/staging")
    memory_registry.add_image(NAME, ["1.0"])
    memory_registry.requests.clear()
    source = "registry.test/team/staging@" + staged.digest

    update = TagUpdate(memory_clients, REPO, ["1.0", "new"], source=source, dry_run=True)

    assert update.plan() == ["1.0", "new"]
    assert update.result()["digest"] == staged.digest
    assert memory_registry.writes() == []
    assert (memory_registry.count("head_manifest", staged.digest), memory_registry.count("get_manifest")) == (1, 0)
    with pytest.raises(NotFoundError, match="Source registry.test/team/staging@%s does not exist" % ABSENT):
        TagUpdate(memory_clients, REPO, ["new"], source="registry.test/team/staging@" + ABSENT, dry_run=True).plan()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_missing_source_is_named_and_nothing_is_written(memory_registry, memory_clients, dry_run: bool) -> None:
    memory_registry.add_image(NAME, ["1.0"])
    for source, shown in ((ABSENT, "registry.test/team/app@" + ABSENT), ("registry.test/team/app:nope", None)):
        with pytest.raises(NotFoundError) as caught:
            run(memory_clients, ["1.0"], source=source, dry_run=dry_run)
        assert "Source %s does not exist" % (shown or "registry.test/team/app:nope") in str(caught.value)
    assert memory_registry.writes() == []


def test_a_source_that_moves_between_its_head_and_its_get_is_followed(memory_registry, memory_clients, scene) -> None:
    digests = scene()
    newer = memory_registry.add_image(NAME)
    memory_registry.on("get_manifest", "1.0", lambda: memory_registry.tag(NAME, "1.0", newer.digest))

    result = run(memory_clients, ["fresh"], source="registry.test/team/app:1.0")

    assert (result["digest"], memory_registry.tags_of(NAME)["fresh"]) == (newer.digest, newer.digest)
    assert result["tags"] == [{"tag": "fresh", "digest": newer.digest, "previous_digest": None, "changed": True}]
    assert digests["new"] != newer.digest


# -- overwrite: false -------------------------------------------------------------------------------------------


def test_overwrite_false_refuses_naming_every_tag_that_would_move(memory_registry, memory_clients, scene) -> None:
    digests = scene()
    memory_registry.add_image(NAME, ["rc"])
    before = memory_registry.tags_of(NAME)

    with pytest.raises(TagOverwriteError) as caught:
        run(memory_clients, ["stable", "latest", "rc", "fresh"], source="registry.test/team/app:1.0", overwrite=False)

    message = str(caught.value)
    assert "stable (now %s)" % digests["old"] in message
    assert "rc (now " in message
    assert "latest" not in message and "fresh" not in message  # already on the source, or not there yet
    assert "Nothing was changed" in message
    assert memory_registry.writes() == []
    assert memory_registry.tags_of(NAME) == before


def test_overwrite_false_creates_missing_tags_and_keeps_those_on_the_source(memory_registry, memory_clients, scene):
    digests = scene()

    result = run(memory_clients, ["latest", "fresh"], source="registry.test/team/app:1.0", overwrite=False)

    assert [change["changed"] for change in result["tags"]] == [False, True]
    assert memory_registry.tags_of(NAME)["fresh"] == digests["new"]


def test_overwrite_false_also_guards_against_a_source_that_moved(memory_registry, memory_clients, scene) -> None:
    scene()
    newer = memory_registry.add_image(NAME)
    memory_registry.on("get_manifest", "1.0", lambda: memory_registry.tag(NAME, "1.0", newer.digest))

    with pytest.raises(TagOverwriteError, match="latest"):
        run(memory_clients, ["latest", "fresh"], source="registry.test/team/app:1.0", overwrite=False)
    assert memory_registry.writes() == []


# -- no source --------------------------------------------------------------------------------------------------


def test_without_a_source_the_tags_must_exist(memory_registry, memory_clients, scene) -> None:
    digests = scene()

    same = run(memory_clients, ["1.0", "latest"])
    mixed = run(memory_clients, ["1.0", "stable"])

    assert (same["changed"], same["digest"], mixed["digest"]) == (False, digests["new"], None)
    assert [change["previous_digest"] for change in mixed["tags"]] == [digests["new"], digests["old"]]
    with pytest.raises(NotFoundError, match=r"^Tags nope, gone of registry.test/team/app do not exist, .*them"):
        run(memory_clients, ["nope", "1.0", "gone"])
    with pytest.raises(NotFoundError, match=r"^Tag nope of registry.test/team/app does not exist, .*create it"):
        run(memory_clients, ["nope"])
    assert memory_registry.writes() == []
    assert memory_registry.kinds() == {"head_manifest": 8}


def test_require_tags() -> None:
    require_tags(REPO, {"a": ABSENT})
    with pytest.raises(NotFoundError) as caught:
        require_tags(REPO, {"a": ABSENT, "b": None})
    assert (caught.value.registry, caught.value.repository) == ("registry.test", NAME)


def test_a_source_with_state_absent_is_refused_before_any_request(memory_registry, memory_clients) -> None:
    with pytest.raises(InvalidInputError, match="source .* only applies to state=present"):
        TagUpdate(memory_clients, REPO, ["a"], state="absent", source="registry.test/team/app:1.0")
    assert memory_registry.requests == []


# -- absent -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag_deletes", [False, True], ids=["distribution-2.x", "deletes-tags-by-name"])
def test_absent_removes_only_the_named_tags(make_registry, make_clients, tag_deletes: bool) -> None:
    registry = make_registry(tag_deletes=tag_deletes)
    shared = registry.add_image(NAME, ["a", "b", "keep"])
    docker = registry.add_image(NAME, ["d", "other"], media_type=DOCKER_MANIFEST)
    manifests = registry.manifest_digests(NAME)
    registry.requests.clear()

    result = run(make_clients(registry), ["a", "b", "d", "never-there"], state="absent")

    assert registry.tags_of(NAME) == {"keep": shared.digest, "other": docker.digest}
    assert registry.manifest_digests(NAME) == manifests  # no image deleted, and no placeholder left behind
    assert result == {
        "changed": True,
        "tags": [
            {"tag": "a", "digest": None, "previous_digest": shared.digest, "changed": True},
            {"tag": "b", "digest": None, "previous_digest": shared.digest, "changed": True},
            {"tag": "d", "digest": None, "previous_digest": docker.digest, "changed": True},
            {"tag": "never-there", "digest": None, "previous_digest": None, "changed": False},
        ],
        "diff": {
            "before": {"a": shared.digest, "b": shared.digest, "d": docker.digest, "never-there": None},
            "after": {"a": None, "b": None, "d": None, "never-there": None},
        },
    }
    if tag_deletes:
        assert registry.kinds() == {"head_manifest": 4, "delete_tag": 3}
    else:  # the safe untag: a placeholder config, the placeholder on the tag, the placeholder deleted by digest
        assert registry.kinds() == {
            "head_manifest": 4,
            "delete_tag": 3,
            "upload_blob": 3,
            "put_manifest": 3,
            "delete_manifest": 3,
        }
        deleted = {r.reference for r in registry.requests if r.kind == "delete_manifest"}
        assert len(deleted) == 3 and not deleted & manifests  # only placeholders, each its own


def test_absent_of_missing_tags_is_no_change(memory_registry, memory_clients) -> None:
    memory_registry.add_image(NAME, ["a"])
    result = run(memory_clients, ["x", "y"], state="absent")
    assert result["changed"] is False and "digest" not in result
    assert memory_registry.kinds() == {"head_manifest": 2}


def test_absent_where_deletes_are_disabled_leaves_the_tag_where_it_was(make_registry, make_clients) -> None:
    registry = make_registry(deletes_enabled=False)
    image = registry.add_image(NAME, ["a", "b"])

    with pytest.raises(UnsupportedError) as caught:
        run(make_clients(registry), ["a"], state="absent")

    assert registry.tags_of(NAME) == {"a": image.digest, "b": image.digest}
    message = str(caught.value)
    assert message.startswith("Cannot remove tag a from registry.test/team/app: the registry deletes neither tags by")
    assert "storage.delete.enabled" in message
    assert "The tag still points at %s" % image.digest in message
    assert caught.value.status == 405
    writes = registry.writes()
    assert [(r.kind, r.reference) for r in writes if r.kind != "delete_manifest"] == [
        ("delete_tag", "a"),  # 405: False
        ("upload_blob", writes[1].reference),  # the placeholder's config
        ("put_manifest", "a"),  # the placeholder on the tag
        ("put_manifest", "a"),  # the tag put back
    ]
    assert [r.reference for r in writes if r.kind == "delete_manifest"] != [image.digest]  # the placeholder, refused


def test_when_putting_the_tag_back_fails_too_the_error_says_where_it_points(make_registry) -> None:
    registry = make_registry(deletes_enabled=False)
    image = registry.add_image(NAME, ["a"])
    puts = []

    def second_put_fails() -> None:
        puts.append(1)
        if len(puts) == 2:
            raise registry._error(503, "UNAVAILABLE", "put manifest %s:a" % NAME, NAME)

    registry.on("put_manifest", "a", second_put_fails)

    with pytest.raises(UnsupportedError) as caught:
        remove_tag(registry, NAME, "a", registry.head_manifest(NAME, "a"), nonce="fixed")

    placeholder = registry.tags_of(NAME)["a"]
    assert placeholder != image.digest
    message = str(caught.value)
    assert "deleting its placeholder manifest %s failed" % placeholder in message
    assert "putting the tag back on %s failed too" % image.digest in message
    assert "The tag now points at the placeholder" in message


def test_remove_tag_says_how_and_can_skip_asking_to_delete_by_name(make_registry) -> None:
    by_name, untagging = make_registry(tag_deletes=True), make_registry()
    for registry in (by_name, untagging):
        registry.add_image(NAME, ["a", "b", "c"])

    assert remove_tag(by_name, NAME, "a", by_name.head_manifest(NAME, "a")) == "deleted"
    assert remove_tag(untagging, NAME, "a", untagging.head_manifest(NAME, "a")) == "untagged"
    assert remove_tag(untagging, NAME, "b", untagging.head_manifest(NAME, "b"), try_delete_by_name=False) == "untagged"
    assert untagging.count("delete_tag") == 1
    assert (set(by_name.tags_of(NAME)), set(untagging.tags_of(NAME))) == ({"b", "c"}, {"c"})

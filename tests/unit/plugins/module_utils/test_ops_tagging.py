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

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    TagOverwriteError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import DOCKER_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import RepositoryRetention
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import (
    TagUpdate,
    Untagger,
    remove_tag,
    require_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import NO_SUCH_MANIFEST

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


# -- a source or repository without a registry: Docker Hub, and the message says so -------------------------------


HUB_NOTE = (
    "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name a tag of"
    " registry.test/team/app, write registry.test/team/app:1.1.0."
)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bare_tag_as_source_fails_saying_it_was_read_as_a_docker_hub_image(make_registry, make_clients, dry_run):
    local, hub = make_registry(), make_registry("docker.io")
    local.add_image(NAME, ["1.1.0"])
    clients = make_clients(local, hub)

    with pytest.raises(NotFoundError) as caught:
        run(clients, ["stable"], source="1.1.0", dry_run=dry_run)
    assert str(caught.value) == (
        "Source docker.io/library/1.1.0:latest does not exist: registry docker.io has no manifest latest in repository"
        " library/1.1.0. " + HUB_NOTE
    )

    hub.fail_on(
        "head_manifest", error=TransportError("Cannot reach registry docker.io at registry-1.docker.io: no DNS")
    )
    with pytest.raises(TransportError) as caught:
        run(clients, ["stable"], source="1.1.0", dry_run=dry_run)
    assert str(caught.value) == "Cannot reach registry docker.io at registry-1.docker.io: no DNS. " + HUB_NOTE
    assert local.writes() == [] and hub.writes() == []


def test_the_docker_hub_note_is_only_for_text_that_named_no_registry(make_registry, make_clients) -> None:
    local, hub = make_registry(), make_registry("docker.io")
    clients = make_clients(local, hub)
    for source in ("docker.io/library/1.1.0", "registry.test/team/other:1.1.0"):
        with pytest.raises(NotFoundError) as caught:
            run(clients, ["stable"], source=source)
        assert "names no registry" not in str(caught.value)
    # A reference with a tag of its own is read as Docker Hub too, without the hint for a bare tag.
    with pytest.raises(NotFoundError) as caught:
        run(clients, ["stable"], source="app:1.1.0")
    assert str(caught.value).endswith(
        "'app:1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/app:1.1.0."
    )
    # The repository itself, when it names no registry.
    hub.fail_on("head_manifest", error=TransportError("Cannot reach registry docker.io at registry-1.docker.io"))
    with pytest.raises(TransportError) as caught:
        TagUpdate(clients, parse_repository("team/app"), ["stable"], state="absent").plan()
    assert str(caught.value) == (
        "Cannot reach registry docker.io at registry-1.docker.io. 'team/app' names no registry, so it was read as the"
        " Docker Hub image docker.io/team/app."
    )


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
    # Once, before anything is removed: does the registry delete at all (a DELETE that changes nothing)?
    assert (registry.requests[4].kind, registry.requests[4].reference) == ("confirm_deletes", NO_SUCH_MANIFEST)
    if tag_deletes:
        assert registry.kinds() == {"head_manifest": 4, "confirm_deletes": 1, "delete_tag": 3}
    else:  # the safe untag: a placeholder config, the placeholder on the tag, the placeholder deleted by digest
        assert registry.kinds() == {
            "head_manifest": 4,
            "confirm_deletes": 1,
            "delete_tag": 1,  # refused once (distribution 2.x: 400), never asked again
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


@pytest.mark.parametrize("dry_run", [False, True], ids=["real-run", "check-mode"])
def test_absent_where_deletes_are_disabled_fails_before_moving_anything(make_registry, make_clients, dry_run) -> None:
    registry = make_registry(deletes_enabled=False)
    image = registry.add_image(NAME, ["a", "b", "c"])
    manifests = registry.manifest_digests(NAME)
    registry.requests.clear()

    update = TagUpdate(make_clients(registry), REPO, ["a", "b", "never-there"], state="absent", dry_run=dry_run)
    with pytest.raises(UnsupportedError) as caught:
        update.plan()  # where the module reports changed: false

    assert str(caught.value) == (
        "Cannot remove tags a, b from registry.test/team/app: Failed to check whether deletes are allowed in team/app"
        " (a DELETE of a manifest that does not exist) on registry registry.test, repository team/app: HTTP 405"
        " UNSUPPORTED (The operation is unsupported.). Deleting is disabled on this registry (distribution:"
        " storage.delete.enabled). Nothing was changed: a still points at %s; b still points at %s."
        % (image.digest, image.digest)
    )
    assert (caught.value.status, caught.value.codes) == (405, ["UNSUPPORTED"])
    assert registry.kinds() == {"head_manifest": 3, "confirm_deletes": 1}
    assert registry.writes() == []
    assert registry.tags_of(NAME) == {tag: image.digest for tag in "abc"}
    assert registry.manifest_digests(NAME) == manifests  # no placeholder left behind


def test_absent_where_the_check_says_neither_puts_the_tag_back_when_the_delete_is_refused(
    make_registry, make_clients
) -> None:
    registry = make_registry(deletes_enabled=False, confirms_deletes=False)
    image = registry.add_image(NAME, ["a", "b"])

    update = TagUpdate(make_clients(registry), REPO, ["a", "b"], state="absent")
    pending = update.plan()  # the check's answer says neither: found out by trying, in a way that can be undone
    with pytest.raises(UnsupportedError) as caught:
        update.apply(pending)

    assert registry.tags_of(NAME) == {"a": image.digest, "b": image.digest}
    assert update.changed_so_far is False  # the tag was put back: the module reports changed: false
    message = str(caught.value)
    assert message.startswith("Cannot remove tag a from registry.test/team/app: the registry deletes neither tags by")
    assert "storage.delete.enabled" in message
    assert "The tag still points at %s" % image.digest in message
    assert (caught.value.status, caught.value.codes) == (405, ["UNSUPPORTED"])
    writes = registry.writes()
    placeholder = writes[3].reference
    assert "the placeholder manifest %s it was moved onto stays, untagged" % placeholder in message
    assert [(r.kind, r.reference) for r in writes] == [
        ("delete_tag", "a"),  # 405: False
        ("upload_blob", writes[1].reference),  # the placeholder's config
        ("put_manifest", "a"),  # the placeholder on the tag
        ("delete_manifest", placeholder),  # refused
        ("put_manifest", "a"),  # the tag put back
    ]  # and b is not tried


def test_a_dry_run_of_absent_checks_deletes_and_writes_nothing(memory_registry, memory_clients) -> None:
    image = memory_registry.add_image(NAME, ["a", "b"])
    memory_registry.requests.clear()

    result = run(memory_clients, ["a", "gone"], state="absent", dry_run=True)

    assert result["changed"] is True
    assert result["tags"][0] == {"tag": "a", "digest": None, "previous_digest": image.digest, "changed": True}
    assert memory_registry.kinds() == {"head_manifest": 2, "confirm_deletes": 1}
    assert memory_registry.writes() == []
    # nothing to remove: no check either
    memory_registry.requests.clear()
    assert run(memory_clients, ["gone"], state="absent", dry_run=True)["changed"] is False
    assert memory_registry.kinds() == {"head_manifest": 1}


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


# -- Untagger: what a task learns once -----------------------------------------------------------------------------


@pytest.mark.parametrize("tag_deletes", [False, True], ids=["distribution-2.x", "deletes-tags-by-name"])
def test_an_untagger_checks_deletes_once_and_asks_by_name_until_refused(make_registry, tag_deletes) -> None:
    registry = make_registry(tag_deletes=tag_deletes)
    registry.add_image(NAME, ["keep", "t1", "t2", "t3", "t4"])
    registry.requests.clear()
    untagger = Untagger(registry, NAME)

    hows = map_concurrently(lambda tag: untagger.remove(tag, registry.head_manifest(NAME, tag)), ["t1", "t2"], 1)
    hows += map_concurrently(lambda tag: untagger.remove(tag, registry.head_manifest(NAME, tag)), ["t3", "t4"], 4)

    assert hows == ["deleted" if tag_deletes else "untagged"] * 4
    assert list(registry.tags_of(NAME)) == ["keep"]
    # deleted by name, no check is needed; untagged, the check comes once, before the first placeholder
    assert (registry.count("delete_tag"), registry.count("confirm_deletes")) == ((4, 0) if tag_deletes else (1, 1))
    if not tag_deletes:
        assert [r.kind for r in registry.requests[:4]] == [
            "head_manifest",
            "delete_tag",
            "confirm_deletes",
            "upload_blob",
        ]


def test_an_untagger_that_was_refused_says_so_for_every_tag_and_asks_once(make_registry) -> None:
    registry = make_registry(deletes_enabled=False)
    image = registry.add_image(NAME, ["a", "b"])
    untagger = Untagger(registry, NAME)
    for tag in ("a", "b"):
        with pytest.raises(
            UnsupportedError, match="Cannot remove tag %s .* Nothing was changed: %s still points" % (tag, tag)
        ):
            untagger.remove(tag, registry.head_manifest(NAME, tag))
    assert registry.count("confirm_deletes") == 1 and registry.writes() == [registry.requests[1]]  # one delete_tag
    assert registry.tags_of(NAME) == {"a": image.digest, "b": image.digest}


def test_registry_repo_untags_with_one_check_per_task_and_none_after_a_delete_by_digest(make_registry) -> None:
    # Only untags: one check, and where deletes are off, the task fails before anything moved.
    for deletes_enabled in (True, False):
        registry = make_registry(deletes_enabled=deletes_enabled)
        image = registry.add_image(NAME, ["keep", "t1", "t2", "t3"])
        task = RepositoryRetention(
            registry, REPO, "present", {"match": None, "keep": ["keep"], "keep_last": None, "older_than": None}, 4
        )
        task.make_plan()
        registry.requests.clear()
        if deletes_enabled:
            task.apply()
            assert list(registry.tags_of(NAME)) == ["keep"]
        else:
            with pytest.raises(
                UnsupportedError, match="Cannot remove tag t1 .*storage.delete.enabled.*Nothing was changed"
            ):
                task.apply()
            assert registry.writes() == [registry.requests[0]]  # the delete by name, refused
            assert registry.tags_of(NAME) == {tag: image.digest for tag in ("keep", "t1", "t2", "t3")}
        assert registry.count("confirm_deletes") == 1

    # A digest deleted first shows that deletes work: no check at all.
    registry = make_registry()
    registry.add_image(NAME, ["old"])
    registry.add_image(NAME, ["keep", "t1"])
    task = RepositoryRetention(
        registry, REPO, "present", {"match": None, "keep": ["keep"], "keep_last": None, "older_than": None}, 4
    )
    task.make_plan()
    task.apply()
    assert list(registry.tags_of(NAME)) == ["keep"]
    assert registry.count("confirm_deletes") == 0


def test_remove_tag_says_how_and_can_skip_asking_to_delete_by_name(make_registry) -> None:
    by_name, untagging = make_registry(tag_deletes=True), make_registry()
    for registry in (by_name, untagging):
        registry.add_image(NAME, ["a", "b", "c"])

    assert remove_tag(by_name, NAME, "a", by_name.head_manifest(NAME, "a")) == "deleted"
    assert remove_tag(untagging, NAME, "a", untagging.head_manifest(NAME, "a")) == "untagged"
    assert remove_tag(untagging, NAME, "b", untagging.head_manifest(NAME, "b"), try_delete_by_name=False) == "untagged"
    assert untagging.count("delete_tag") == 1
    assert (set(by_name.tags_of(NAME)), set(untagging.tags_of(NAME))) == ({"b", "c"}, {"c"})


def test_a_failure_halfway_reports_changed_when_a_tag_went_or_a_write_began(make_registry, make_clients) -> None:
    registry = make_registry(tag_deletes=True)
    image = registry.add_image(NAME, ["a", "b"])
    registry.fail_on("delete_tag", "b", UnsupportedError("refused", status=405))
    update = TagUpdate(make_clients(registry), REPO, ["a", "b"], state="absent")
    with pytest.raises(UnsupportedError):
        update.apply(update.plan())
    assert update.removed == ["a"] and update.changed_so_far is True
    assert registry.tags_of(NAME) == {"b": image.digest}

    other = registry.add_image(NAME, ["c"])
    registry.fail_on("put_manifest", "d", UnsupportedError("refused", status=405))
    present = TagUpdate(make_clients(registry), REPO, ["c", "d"], source=other.digest)
    pending = present.plan()
    assert present.changed_so_far is False  # nothing written yet
    with pytest.raises(UnsupportedError):
        present.apply(pending)
    assert present.changed_so_far is True  # a write began: it may have landed

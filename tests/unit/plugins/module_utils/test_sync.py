# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registry_sync's runner (plugins/module_utils/_ops/sync.py) on the in-memory registries of conftest.py: entries
checked before any request, catalog walks, what a re-run costs, prune across entries, on_error, and one transfer
per blob for the whole task. tests/functional runs the same through ansible-playbook against distribution."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync import (
    SyncTask,
    parse_budget,
    parse_entries,
)

TASK = {
    "platforms": "all",
    "referrers": False,
    "referrer_types": None,
    "existing": "update",
    "immutable": None,
    "prune": False,
    "prune_limit": 100,
    "jobs": 2,
}
SRC, DST = "src.test", "dst.test"


def run(clients: Any, images: list[dict[str, Any]], dry_run: bool = False, **options: Any) -> dict[str, Any]:
    task_options = dict(TASK, **{k: v for k, v in options.items() if k in TASK})
    entries = parse_entries(images, task_options)
    budget = parse_budget(options.get("max_copies"), options.get("time_budget"))
    clients.request_count = 0
    task = SyncTask(
        clients,
        entries,
        concurrency=options.get("concurrency", 4),
        on_error=options.get("on_error", "continue"),
        budget=budget,
        dry_run=dry_run,
    )
    return task.run()


def by_tag(result: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    return {(image["dest"], image["tag"]): image["action"] for image in result["images"]}


@pytest.fixture
def two(make_registry, make_clients):
    source, dest = make_registry(SRC), make_registry(DST)
    return source, dest, make_clients(source, dest)


def test_mirror_then_rerun_costs_a_tag_list_per_repository_and_side_and_a_head_per_tag(two):
    source, dest, clients = two
    for tag in ("1.0.0", "1.1.0", "edge"):
        source.add_image("team/app", [tag])
    images = [{"src": SRC + "/team/app", "dest": DST + "/mirror/app"}]
    preview = run(clients, images, dry_run=True)
    assert set(by_tag(preview).values()) == {"copied"} and dest.writes() == []
    first = run(clients, images)
    assert first["changed"] and first["summary"]["copied"] == 3
    assert dest.tags_of("mirror/app") == source.tags_of("team/app")
    source.requests.clear()
    dest.requests.clear()
    again = run(clients, images)
    assert not again["changed"] and again["summary"]["unchanged"] == 3
    for registry in (source, dest):
        assert registry.kinds() == {"list_tags": 1, "head_manifest": 3}


def test_keep_and_immutable_cost_nothing_per_present_tag(two):
    source, dest, clients = two
    for tag in ("1.0.0", "edge"):
        source.add_image("app", [tag])
        dest.add_image("app", [tag])
    source.requests.clear()
    dest.requests.clear()
    kept = run(clients, [{"src": SRC + "/app", "dest": DST + "/app", "existing": "keep"}])
    assert by_tag(kept) == {(DST + "/app", "1.0.0"): "skipped", (DST + "/app", "edge"): "skipped"}
    assert source.kinds() == dest.kinds() == {"list_tags": 1}
    frozen = run(clients, [{"src": SRC + "/app", "dest": DST + "/app"}], immutable=[r"[0-9.]+"])
    assert by_tag(frozen)[(DST + "/app", "1.0.0")] == "skipped"
    assert dest.count("head_manifest", "1.0.0") == 0 and dest.count("head_manifest", "edge") == 1


def test_a_prefix_walks_the_catalog_and_maps_each_path_under_dest(two):
    source, _dest, clients = two
    for repository in ("team/a", "team/b/c", "other/x"):
        source.add_image(repository, ["1"])
    images = [{"src": SRC + "/team", "repositories": ["a", "b/*"], "dest": DST + "/m"}]
    result = run(clients, images)
    assert by_tag(result) == {(DST + "/m/a", "1"): "copied", (DST + "/m/b/c", "1"): "copied"}
    assert source.count("catalog") == 1


def test_one_upload_per_blob_for_the_whole_task_then_mounts(two):
    source, dest, clients = two
    image = source.add_image("a", ["1"])
    source.copy_to("a", image.digest, "b", ["1"])
    result = run(clients, [{"src": SRC + "/a", "dest": DST + "/a"}, {"src": SRC + "/b", "dest": DST + "/b"}])
    assert result["summary"]["copied"] == 2
    # one config and one layer: uploaded once each, then mounted into the second repository
    assert dest.count("upload_blob") == 2 and dest.count("mount_blob") == 2
    assert result["summary"]["blobs"] == 4


def test_prune_keeps_the_tags_of_every_entry_that_maps_there_and_attachment_tags(two):
    source, dest, clients = two
    source.add_image("app", ["1", "2"])
    old = dest.add_image("app", ["1", "old"])
    dest.tag("app", "sha256-" + old.digest.split(":")[1] + ".sig", old.digest)
    images = [
        {"src": SRC + "/app", "dest": DST + "/app", "match": ["1"]},
        {"src": SRC + "/app:2", "dest": DST + "/app"},
    ]
    result = run(clients, images, prune=True)
    assert sorted(dest.tags_of("app")) == ["1", "2", "sha256-" + old.digest.split(":")[1] + ".sig"]
    assert [image["tag"] for image in result["images"] if image["action"] == "pruned"] == ["old"]


def test_prune_refusals_change_nothing(two):
    source, dest, clients = two
    source.add_image("empty", ["x"])
    source.untag("empty", "x")
    dest.add_image("app", ["1", "2"])
    with pytest.raises(RegistryError, match="lists no tags"):
        run(clients, [{"src": SRC + "/empty", "dest": DST + "/app"}], prune=True)
    source.add_image("app", ["1"])
    with pytest.raises(RegistryError, match="1 tags would be deleted .* more than prune_limit 0"):
        run(clients, [{"src": SRC + "/app", "dest": DST + "/app"}], prune=True, prune_limit=0)
    assert dest.writes() == [] and sorted(dest.tags_of("app")) == ["1", "2"]


def test_on_error_continue_and_stop(two, make_registry, make_clients):
    source, dest, clients = two
    source.add_image("a", ["1"])
    source.add_image("c", ["1"])
    images = [{"src": SRC + "/" + name, "dest": DST + "/" + name} for name in ("a", "b", "c")]
    going = run(clients, images, concurrency=1)
    assert [item["src"] for item in going["failures"]] == [SRC + "/b"]
    assert going["summary"]["copied"] == 2 and sorted(dest.repositories) == ["a", "c"]
    stopped = run(make_clients(source, make_registry(DST)), images, concurrency=1, on_error="stop")
    assert stopped["summary"]["failed"] == 1
    assert stopped["summary"]["copied"] == 0 and stopped["summary"]["deferred"] == 1  # a planned, c never planned


def test_max_copies_defers_the_rest(two):
    source, dest, clients = two
    for tag in ("t1", "t2", "t3"):
        source.add_image("app", [tag])
    first = run(clients, [{"src": SRC + "/app", "dest": DST + "/app"}], max_copies=2, concurrency=1)
    assert first["summary"]["copied"] == 2 and first["summary"]["deferred"] == 1
    second = run(clients, [{"src": SRC + "/app", "dest": DST + "/app"}], max_copies=2)
    assert second["summary"]["copied"] == 1 and second["summary"]["unchanged"] == 2


def test_latest_by_created_reads_ages_only_of_the_selected_source_tags(two):
    source, _dest, clients = two
    source.add_image("app", ["old"], created="2020-01-01T00:00:00Z")
    source.add_image("app", ["new"], created="2025-01-01T00:00:00Z")
    source.add_image("app", ["mid"], created="2023-01-01T00:00:00Z")
    source.add_image("app", ["skip"], created="2026-01-01T00:00:00Z")
    result = run(clients, [{"src": SRC + "/app", "dest": DST + "/app", "latest": 2, "exclude": ["skip"]}])
    assert sorted(image["tag"] for image in result["images"]) == ["mid", "new"]
    assert source.count("get_manifest", "skip") == 0


@pytest.mark.parametrize(
    "images, message",
    [
        ([], "images must be a non-empty list"),
        (["x"], "images[0] must be a dictionary"),
        ([{"src": SRC + "/a:1@sha256:" + "a" * 64, "dest": DST + "/a"}], "names both a tag and a digest"),
        ([{"src": SRC + "/a", "dest": DST + "/a:1"}], "must not include a tag"),
        ([{"src": SRC + "/a", "dest": DST + "/a", "repositories": []}], "images[0].repositories must be a list"),
        ([{"src": SRC + "/a", "dest": DST + "/a", "existing": "never"}], "images[0].existing must be one of"),
        ([{"src": SRC + "/a", "dest": DST + "/a", "prune_limit": -1}], "images[0].prune_limit must be"),
        ([{"src": SRC + "/a", "dest": DST + "/a", "platforms": []}], "platforms must be"),
    ],
)
def test_bad_entries_are_named_before_any_request(images, message):
    with pytest.raises(InvalidInputError) as caught:
        parse_entries(images, TASK)
    assert message in str(caught.value)


def test_task_options_are_checked(two):
    _source, _dest, clients = two
    entries = parse_entries([{"src": SRC + "/a", "dest": DST + "/a"}], TASK)
    with pytest.raises(InvalidInputError, match="concurrency must be a whole number from 1 to 64, got 0"):
        SyncTask(clients, entries, concurrency=0, on_error="continue", budget=parse_budget(None, None), dry_run=False)
    with pytest.raises(InvalidInputError, match="on_error must be one of continue, stop, got 'later'"):
        SyncTask(clients, entries, concurrency=1, on_error="later", budget=parse_budget(None, None), dry_run=False)
    with pytest.raises(InvalidInputError, match="time_budget 'soon' is not a duration"):
        parse_budget(None, "soon")

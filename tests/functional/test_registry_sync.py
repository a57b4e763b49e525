"""ocireg.registry.registry_sync through ansible-playbook, against the real distribution registry, with skopeo as the
witness and the registries' access logs counting what a run costs.

Images are seeded with support/seed.py (raw HTTP, blobs uploaded once and mounted): every repo:tag has its own
manifest digest, and all share one small image's blobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.client import ours
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.seed import seed_many
from support.skopeo import Skopeo

MODULE = "ocireg.registry.registry_sync"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
Playbook = Callable[..., PlaybookRun]


def task(name: str, *, check: bool = False, ignore: bool = False, **options: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, MODULE: options, "register": name.replace(" ", "_")}
    if check:
        entry["check_mode"] = True
    if ignore:
        entry["ignore_errors"] = True
    return entry


def credentials(*servers: RegistryServer) -> dict[str, Any]:
    return {s.host: {"username": s.username, "password": s.password} for s in servers if s.username}


def ok(run: PlaybookRun, name: str) -> dict[str, Any]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "ok", (entries[-1]["result"].get("msg") if entries else "", run.output)
    return entries[-1]["result"]


def failed(run: PlaybookRun, name: str) -> dict[str, Any]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    return entries[-1]["result"]


def calls(server: RegistryServer, mark: int) -> list[tuple[str, str]]:
    """(method, path) of what the collection asked since MARK, auth handshakes (401) left out."""
    return [(r["method"], r["path"]) for r in ours(server.requests_since(mark)) if r["status"] != 401]


def actions(result: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    return {(image["dest"], image["tag"]): image["action"] for image in result["images"]}


def counts(result: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in result["summary"].items() if value and key not in ("requests", "bytes")}


@pytest.fixture
def prefix(unique_repo_factory: Callable[[], str]) -> str:
    return unique_repo_factory()


def test_many_repositories_check_mode_real_run_rerun_and_what_an_up_to_date_run_costs(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    prefix: str,
) -> None:
    seeded = seed_many(registry_open, [f"{prefix}/a", f"{prefix}/b"], ["1.0.0", "1.1.0", "edge"], distinct=True)
    dests = {repo: f"{registry_htpasswd.host}/mirror/{repo}" for repo in seeded.repos}
    options = {
        "images": [{"src": f"{registry_open.host}/{repo}", "dest": dests[repo]} for repo in seeded.repos],
        "credentials": credentials(registry_htpasswd),
    }
    witness = skopeo(registry_htpasswd)
    mark = registry_htpasswd.mark()
    run = playbook([task("preview", check=True, **options)], diff=True)
    preview = ok(run, "preview")
    assert preview["changed"] is True
    assert set(actions(preview).values()) == {"copied"} and len(preview["images"]) == 6
    assert [call for call in calls(registry_htpasswd, mark) if call[0] in WRITES] == []
    assert not witness.exists(f"mirror/{seeded.repos[0]}:1.0.0")
    assert preview["diff"]["after"][dests[seeded.repos[0]].split("/", 1)[0] + "/mirror/" + seeded.repos[0]] == {
        tag: seeded.digest(seeded.repos[0], tag) for tag in seeded.tags
    }

    run = playbook([task("mirror", **options), task("again", **options)])
    mirrored, again = ok(run, "mirror"), ok(run, "again")
    assert mirrored["changed"] is True and counts(mirrored) == {"selected": 6, "copied": 6, "blobs": 4}
    for repo in seeded.repos:
        for tag in seeded.tags:
            assert witness.digest(f"mirror/{repo}:{tag}") == seeded.digest(repo, tag)
    assert again["changed"] is False and counts(again) == {"selected": 6, "unchanged": 6}
    assert {image["digest"] for image in again["images"]} == {
        d for tags in seeded.digests.values() for d in tags.values()
    }

    # An up-to-date run: one tag list per repository and side, one HEAD per tag on each side, nothing else.
    source_mark, dest_mark = registry_open.mark(), registry_htpasswd.mark()
    current = ok(playbook([task("up to date", **options)]), "up to date")
    sent = [ours(s.requests_since(m)) for s, m in ((registry_open, source_mark), (registry_htpasswd, dest_mark))]
    assert current["summary"]["requests"] == sum(len(each) for each in sent)  # 401 handshakes included
    for server, path in ((registry_open, "{repo}"), (registry_htpasswd, "mirror/{repo}")):
        made = calls(server, source_mark if server is registry_open else dest_mark)
        expected = [("GET", "/v2/%s/tags/list" % path.format(repo=repo)) for repo in seeded.repos]
        expected += [
            ("HEAD", "/v2/%s/manifests/%s" % (path.format(repo=repo), tag))
            for repo in seeded.repos
            for tag in seeded.tags
        ]
        assert sorted(made) == sorted(expected), server.kind


def test_prune_and_both_refusals(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], playbook: Playbook, prefix: str, raw_client: Any
) -> None:
    source = seed_many(registry_open, [f"{prefix}/src"], ["1", "2"], distinct=True)
    mirror = seed_many(registry_open, [f"{prefix}/dst"], ["1", "old-a", "old-b"], distinct=True)
    src, dest = f"{registry_open.host}/{prefix}/src", f"{registry_open.host}/{prefix}/dst"
    witness = skopeo(registry_open)
    limited = task("limited", ignore=True, images=[{"src": src, "dest": dest}], prune=True, prune_limit=1)
    options = {"images": [{"src": src, "dest": dest}], "prune": True, "prune_limit": 2}
    mark = registry_open.mark()
    run = playbook(
        [limited, task("preview", check=True, **options), task("prune", **options), task("again", **options)]
    )
    refused = failed(run, "limited")
    assert "2 tags would be deleted (old-a, old-b), more than prune_limit 1" in refused["msg"]
    preview = ok(run, "preview")
    assert actions(preview)[(dest, "old-a")] == "pruned" and preview["summary"]["pruned"] == 2
    pruned = ok(run, "prune")
    assert pruned["changed"] and counts(pruned) == {"selected": 2, "copied": 2, "pruned": 2, "blobs": 2}
    assert {image["previous_digest"] for image in pruned["images"] if image["action"] == "pruned"} == {
        mirror.digest(f"{prefix}/dst", "old-a"),
        mirror.digest(f"{prefix}/dst", "old-b"),
    }
    assert sorted(witness.list_tags(f"{prefix}/dst")) == ["1", "2"]
    assert witness.digest(f"{prefix}/dst:1") == source.digest(f"{prefix}/src", "1")
    assert ok(run, "again")["changed"] is False
    # The refusal and check mode wrote nothing: the only writes are the real prune's copy and its untags.
    assert not any(method in WRITES and "/old-" in path for method, path in calls(registry_open, mark)[:8])

    # A source that lists no tags (its only manifest deleted) would wipe the mirror: refused, nothing changed.
    emptied = seed_many(registry_open, [f"{prefix}/gone"], ["x"], distinct=True)
    raw_client(registry_open).delete_manifest(f"{prefix}/gone", emptied.digest(f"{prefix}/gone", "x"))
    empty = task(
        "empty", ignore=True, images=[{"src": f"{registry_open.host}/{prefix}/gone", "dest": dest}], prune=True
    )
    refused = failed(playbook([empty]), "empty")
    assert "lists no tags" in refused["msg"] and "Nothing was changed" in refused["msg"]
    assert sorted(witness.list_tags(f"{prefix}/dst")) == ["1", "2"]


def test_existing_keep_and_immutable_cost_nothing_per_present_tag(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], playbook: Playbook, prefix: str
) -> None:
    source = seed_many(registry_open, [f"{prefix}/src"], ["1.0.0", "1.1.0", "edge"], distinct=True)
    mirror = seed_many(registry_open, [f"{prefix}/dst"], ["1.0.0", "1.1.0", "edge"], distinct=True)
    src, dest = f"{registry_open.host}/{prefix}/src", f"{registry_open.host}/{prefix}/dst"
    keep = task("keep", images=[{"src": src, "dest": dest, "existing": "keep"}])
    immutable = task("immutable", check=True, images=[{"src": src, "dest": dest}], immutable=[r"[0-9.]+"])
    mark = registry_open.mark()
    run = playbook([keep])
    kept = ok(run, "keep")
    assert kept["changed"] is False and counts(kept) == {"selected": 3, "skipped": 3}
    assert sorted(calls(registry_open, mark)) == [
        ("GET", f"/v2/{prefix}/dst/tags/list"),
        ("GET", f"/v2/{prefix}/src/tags/list"),
    ]
    mark = registry_open.mark()
    frozen = ok(playbook([immutable]), "immutable")
    assert actions(frozen) == {(dest, "1.0.0"): "skipped", (dest, "1.1.0"): "skipped", (dest, "edge"): "copied"}
    # The present immutable tags cost nothing; edge costs its HEADs on both sides, then the dry-run copy's reads.
    touched = [path for _method, path in calls(registry_open, mark) if "/manifests/" in path]
    assert not any(path.endswith(("/1.0.0", "/1.1.0")) for path in touched)
    assert f"/v2/{prefix}/src/manifests/edge" in touched and f"/v2/{prefix}/dst/manifests/edge" in touched
    assert skopeo(registry_open).digest(f"{prefix}/dst:1.0.0") == mirror.digest(f"{prefix}/dst", "1.0.0")
    assert source.digest(f"{prefix}/src", "1.0.0") != mirror.digest(f"{prefix}/dst", "1.0.0")


def test_semver_latest_and_a_prefix_walking_the_catalog(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], playbook: Playbook, prefix: str
) -> None:
    tags = ["v1.0.0", "1.2.0", "v1.3.0-rc.1", "1.3.0", "v1.4.1", "2.0.0", "latest", "1.5"]
    seed_many(registry_open, [f"{prefix}/team/app", f"{prefix}/team/tool", f"{prefix}/other/x"], tags, distinct=True)
    options = {
        "images": [
            {
                "src": f"{registry_open.host}/{prefix}/team",
                "repositories": ["app", "t*"],
                "dest": f"{registry_open.host}/{prefix}/mirror",
                "semver": ">=1.2 <2",
                "latest": 2,
            }
        ]
    }
    run = playbook([task("preview", check=True, **options), task("mirror", **options), task("again", **options)])
    preview, mirrored = ok(run, "preview"), ok(run, "mirror")
    expected = {
        (f"{registry_open.host}/{prefix}/mirror/{repo}", tag): "copied"
        for repo in ("app", "tool")
        for tag in ("v1.4.1", "1.3.0")
    }
    assert actions(preview) == expected and actions(mirrored) == expected
    assert ok(run, "again")["changed"] is False
    witness = skopeo(registry_open)
    for repo in ("app", "tool"):
        assert sorted(witness.list_tags(f"{prefix}/mirror/{repo}")) == ["1.3.0", "v1.4.1"]
    assert not witness.exists(f"{prefix}/mirror/x:1.3.0")


def test_on_error_continue_mirrors_the_rest_and_fails_listing_the_bad_one(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], playbook: Playbook, prefix: str
) -> None:
    seed_many(registry_open, [f"{prefix}/a", f"{prefix}/c"], ["1"], distinct=True)
    host = registry_open.host
    images = [{"src": f"{host}/{prefix}/{name}", "dest": f"{host}/{prefix}/m-{name}"} for name in ("a", "b", "c")]
    images.append({"src": f"{host}/{prefix}/a:nope", "dest": f"{host}/{prefix}/m-d"})
    run = playbook([task("mirror", ignore=True, images=images)])
    result = failed(run, "mirror")
    assert "2 of the images could not be mirrored" in result["msg"]
    assert result["changed"] is True and result["summary"]["copied"] == 2 and result["summary"]["failed"] == 2
    assert [(item["src"], item["dest"]) for item in result["failures"]] == [
        (f"{host}/{prefix}/b", f"{host}/{prefix}/m-b"),
        (f"{host}/{prefix}/a:nope", f"{host}/{prefix}/m-d:nope"),
    ]
    assert "does not exist" in result["failures"][1]["error"]
    assert actions(result)[(f"{host}/{prefix}/m-d", "nope")] == "failed"
    witness = skopeo(registry_open)
    assert witness.exists(f"{prefix}/m-a:1") and witness.exists(f"{prefix}/m-c:1")


def test_max_copies_and_time_budget_defer_and_the_next_run_finishes(
    registry_open: RegistryServer, skopeo: Callable[..., Skopeo], playbook: Playbook, prefix: str
) -> None:
    seed_many(registry_open, [f"{prefix}/src"], ["t1", "t2", "t3", "t4"], distinct=True)
    options = {
        "images": [{"src": f"{registry_open.host}/{prefix}/src", "dest": f"{registry_open.host}/{prefix}/dst"}],
        "max_copies": 3,
        "concurrency": 1,
    }
    no_time = {
        "images": [{"src": f"{registry_open.host}/{prefix}/src", "dest": f"{registry_open.host}/{prefix}/late"}],
        "time_budget": "0s",
    }
    run = playbook([task("first", **options), task("second", **options), task("no time", **no_time)])
    first, second = ok(run, "first"), ok(run, "second")
    late = ok(run, "no time")
    assert late["changed"] is False and counts(late) == {"selected": 4, "deferred": 4}
    assert not skopeo(registry_open).exists(f"{prefix}/late:t1")
    assert counts(first) == {"selected": 4, "copied": 3, "deferred": 1, "blobs": 2}
    assert counts(second) == {"selected": 4, "copied": 1, "unchanged": 3}
    assert sorted(skopeo(registry_open).list_tags(f"{prefix}/dst")) == ["t1", "t2", "t3", "t4"]


def test_bad_input_names_the_value_before_any_request(registry_open: RegistryServer, playbook: Playbook) -> None:
    host = registry_open.host
    bad = [
        ({"semver": "~>1.2"}, "images[0].semver '~>1.2'"),
        ({"match": ["("]}, "Invalid regular expression '('"),
        ({"latest": 0}, "images[0].latest must be a whole number, 1 or more, got 0"),
        ({"jobs": 0}, "images[0].jobs must be a whole number from 1 to 64, got 0"),
    ]
    tasks = [
        task("bad %d" % number, ignore=True, images=[dict({"src": f"{host}/x/y", "dest": f"{host}/x/z"}, **option)])
        for number, (option, _message) in enumerate(bad)
    ]
    tasks.append(
        task("bad time", ignore=True, images=[{"src": f"{host}/x/y", "dest": f"{host}/x/z"}], time_budget="soon")
    )
    mark = registry_open.mark()
    run = playbook(tasks)
    for number, (_option, message) in enumerate(bad):
        assert message in failed(run, "bad %d" % number)["msg"]
    assert "time_budget 'soon' is not a duration" in failed(run, "bad time")["msg"]
    assert calls(registry_open, mark) == []

"""registry_repo against the real distribution registry, run through ansible-playbook, with skopeo as the witness.

Each case: check mode (reports exactly what the real run then deletes, writes nothing), the real run, the re-run
(not changed). Images get creation times far in the past or within the last hour, so age rules have a clear answer.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from support.images import OCI_INDEX, Image
from support.rawhttp import RawClient
from support.registry import RegistryServer
from support.skopeo import Skopeo
from test_registry_tag import assert_ok, credentials_for, failure, tag_state, writes

MODULE = "ocireg.registry.registry_repo"
KINDS = ["open", "htpasswd", "token"]
RESULT_KEYS = ("deleted_tags", "kept_tags", "deleted_digests")


# The one write check mode makes: finding out whether the registry deletes at all, with a DELETE of a manifest that
# does not exist (404: deletes work; nothing changes either way).
DELETE_CHECK = re.compile(r"DELETE /v2/.+/manifests/sha256:0{64} 404")


def only_delete_checks(entries: list[dict[str, Any]]) -> int:
    """How many delete checks are among the write requests of ENTRIES; fails on any other write."""
    sent = writes(entries)
    assert [line for line in sent if not DELETE_CHECK.fullmatch(line)] == [], "check mode wrote to the registry"
    return len(sent)


def repo_task(name: str, server: RegistryServer, *, ignore_errors: bool = False, **options: Any) -> dict[str, Any]:
    """A registry_repo task against SERVER, with the server's credentials."""
    task: dict[str, Any] = {"name": name, MODULE: {**credentials_for(server), **options}}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def recent() -> str:
    """A creation time an hour ago: younger than any older_than the tests use."""
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    """What a run deleted and kept: check mode must report exactly what the real run then does."""
    return {key: result[key] for key in RESULT_KEYS}


def reasons(result: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """tag -> (action, reason, removed_by) from a registry_repo result."""
    return {entry["tag"]: (entry["action"], entry["reason"], entry["removed_by"]) for entry in result["tags"]}


def snapshot(sk: Skopeo, repo: str, digests: list[str]) -> tuple[dict[str, str], dict[str, bool]]:
    """tag -> digest of REPO, and whether each of DIGESTS still exists in it."""
    return tag_state(sk, repo), {digest: sk.exists(f"{repo}@{digest}") for digest in digests}


def push(raw: RawClient, image: Image, repo: str, *tags: str) -> str:
    return raw.push_image(image, repo, list(tags))


def push_mixed_index(
    raw: RawClient, image_factory: Callable[..., Image], repo: str, tag: str, created: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """An index whose platforms were built at different times (platform -> created); returns its and their digests."""
    entries, children = [], {}
    for platform, when in created.items():
        image = image_factory(platforms=[platform], created=when, layers=1, layer_size=64)
        child = image.platforms[platform]
        raw.push_platform(image, child, repo)
        os_name, architecture = platform.split("/")[:2]
        entries.append(
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": {"os": os_name, "architecture": architecture},
            }
        )
        children[platform] = child.digest
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    raw.put_manifest(repo, tag, index, OCI_INDEX)
    return "sha256:" + hashlib.sha256(index).hexdigest(), children


def requests_to(server: RegistryServer, mark: int, repo: str) -> list[str]:
    """'METHOD path' of every answered request since MARK that touched REPO (auth handshakes left out)."""
    return [
        "%s %s" % (e["method"], e["path"])
        for e in server.requests_since(mark)
        if e["path"].startswith(f"/v2/{repo}/") and e["status"] != 401
    ]


# -- retention ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_retention_keeps_images_that_surviving_tags_share(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    sk, raw = skopeo(server), raw_client(server)
    both_doomed = image_factory(created="2001-01-01T00:00:00Z", layers=1)
    one_kept = image_factory(created="2002-01-01T00:00:00Z", layers=1, media_types="docker")
    young = image_factory(created=recent(), layers=1)
    unmatched = image_factory(created="2000-01-01T00:00:00Z", layers=1)
    push(raw, both_doomed, unique_repo, "pr-1", "pr-1-alias")
    push(raw, one_kept, unique_repo, "pr-2", "pr-2b", "stable")
    push(raw, young, unique_repo, "pr-3")
    push(raw, unmatched, unique_repo, "v1.0")
    digests = [both_doomed.digest, one_kept.digest, young.digest, unmatched.digest]
    before = snapshot(sk, unique_repo, digests)
    retention = {"match": ["pr-.*", "stable"], "keep": ["stable"], "older_than": "30d"}
    tasks = [repo_task("retain", server, repository=f"{server.host}/{unique_repo}", retention=retention)]
    expected = {
        "deleted_tags": ["pr-1", "pr-1-alias", "pr-2", "pr-2b"],
        "kept_tags": ["pr-3", "stable", "v1.0"],
        "deleted_digests": [both_doomed.digest],
    }

    expected_reasons = {
        "pr-1": ("deleted", "older_than", "digest"),
        "pr-1-alias": ("deleted", "older_than", "digest"),
        "pr-2": ("deleted", "older_than", "untag"),  # its image stays for stable
        "pr-2b": ("deleted", "older_than", "untag"),
        "pr-3": ("kept", "older_than", None),  # too young
        "stable": ("kept", "keep", None),
        "v1.0": ("kept", "match", None),
    }

    mark = server.mark()
    check = playbook(tasks, check=True, diff=True)
    preview = check.task("retain")
    assert_ok(preview, True)
    assert outcome(preview) == expected
    assert preview["exists"] is True
    assert reasons(preview) == expected_reasons
    by_tag = {entry["tag"]: entry for entry in preview["tags"]}
    assert {tag: entry["digest"] for tag, entry in by_tag.items()} == before[0]  # skopeo's digests
    assert by_tag["pr-2"]["detail"] == (
        "matches the match pattern 'pr-.*'; matches no keep pattern; its image was created 2002-01-01T00:00:00Z,"
        " longer ago than 30d (older_than); removed on its own: its image stays for the kept tag stable"
    )
    assert by_tag["pr-1"]["detail"].endswith("; its image is deleted by digest, with pr-1-alias")
    assert by_tag["stable"]["detail"] == "matches the keep pattern 'stable'"
    assert by_tag["v1.0"]["detail"] == "matches no pattern of match ('pr-.*', 'stable')"
    assert preview["diff"] == {
        "before": {"tags": ["pr-1", "pr-1-alias", "pr-2", "pr-2b", "pr-3", "stable", "v1.0"]},
        "after": {"tags": ["pr-3", "stable", "v1.0"]},
        "prepared": "".join(
            "%s %s (%s): %s\n" % (entry["action"], entry["tag"], entry["reason"], entry["detail"])
            for entry in preview["tags"]
        ),
    }
    assert '-        "pr-1",' in check.stdout  # what --diff prints: the tag names, then a line per tag
    assert "deleted pr-2 (older_than): " in check.stdout and "kept stable (keep): " in check.stdout
    assert only_delete_checks(server.requests_since(mark)) == 1
    assert snapshot(sk, unique_repo, digests) == before, "check mode wrote to the registry"

    mark = server.mark()
    real = playbook(tasks, diff=True)
    result = real.task("retain")
    assert_ok(result, True)
    assert outcome(result) == outcome(preview)
    assert result["tags"] == preview["tags"]
    assert result["diff"] == preview["diff"]
    tags, present = snapshot(sk, unique_repo, digests)
    assert tags == {"pr-3": young.digest, "stable": one_kept.digest, "v1.0": unmatched.digest}
    assert present == {both_doomed.digest: False, one_kept.digest: True, young.digest: True, unmatched.digest: True}
    # Both tags of the doomed image went with one DELETE by digest; the shared image was never deleted. The
    # registry cannot delete a tag by name (400): asked once, then the others are untagged without asking.
    sent = server.requests_since(mark)
    deletes = [e["path"] for e in sent if e["method"] == "DELETE" and e["status"] == 202]
    assert deletes.count(f"/v2/{unique_repo}/manifests/{both_doomed.digest}") == 1
    assert f"/v2/{unique_repo}/manifests/{one_kept.digest}" not in deletes
    assert len(deletes) == 3  # the doomed image, and one placeholder for each of pr-2 and pr-2b
    by_name = [e["status"] for e in sent if e["method"] == "DELETE" and e["path"].endswith(("/pr-2", "/pr-2b"))]
    assert by_name == [400]
    assert not any(e["path"].endswith(("/pr-1", "/pr-1-alias")) for e in sent if e["method"] == "DELETE")

    again = playbook(tasks, diff=True)
    rerun = again.task("retain")
    assert_ok(rerun, False)
    assert outcome(rerun) == {"deleted_tags": [], "kept_tags": expected["kept_tags"], "deleted_digests": []}
    assert reasons(rerun) == {tag: expected_reasons[tag] for tag in expected["kept_tags"]}
    assert rerun["diff"]["before"] == rerun["diff"]["after"]
    assert snapshot(sk, unique_repo, digests) == (tags, present)


def test_retention_rules_and_their_combinations(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    sk, raw = skopeo(server), raw_client(server)

    def image(created: str) -> Image:
        return image_factory(created=created, layers=1, layer_size=64)

    # keep_last alone: images ranked by created (not by push order or name); no creation time sorts as oldest.
    by_count = unique_repo_factory()
    dated = {month: image(f"2020-{month:02d}-01T00:00:00Z") for month in (1, 2, 3, 4, 5)}
    for month in (3, 5, 1, 4, 2):
        push(raw, dated[month], by_count, f"b{month}")
    push(raw, dated[5], by_count, "z-alias-of-b5")
    undated = image("")
    push(raw, undated, by_count, "a-undated")

    # An index is as new as its newest platform: it outranks b-images a first-platform rule would rank it below.
    by_index = unique_repo_factory()
    index_digest, index_children = push_mixed_index(
        raw,
        image_factory,
        by_index,
        "multi",
        {"linux/amd64": "2020-01-01T00:00:00Z", "linux/arm64": "2020-12-01T00:00:00Z"},
    )
    middle = image("2020-06-01T00:00:00Z")
    push(raw, middle, by_index, "single")

    # match + keep_last: only main-* tags are counted and deleted; the release stays though it is the oldest.
    by_match = unique_repo_factory()
    mains = [image(f"2021-0{n}-01T00:00:00Z") for n in (1, 2, 3)]
    for n, main in enumerate(mains, 1):
        push(raw, main, by_match, f"main-{n}")
    release = image("2019-01-01T00:00:00Z")
    push(raw, release, by_match, "v1", "v1-main")  # patterns match whole names: main-.* does not match v1-main

    # keep + keep_last + older_than together, an undated image (older_than never deletes it, with a warning), and
    # an old tag whose image a kept tag shares (untagged, the image stays).
    combined = unique_repo_factory()
    x1, x2, x3 = (image(f"200{n}-01-01T00:00:00Z") for n in (1, 2, 3))
    fresh, nodate = image(recent()), image("")
    push(raw, x1, combined, "x1", "latest")
    push(raw, x2, combined, "x2")
    push(raw, x3, combined, "x3")
    push(raw, fresh, combined, "fresh")
    push(raw, nodate, combined, "nodate")

    # A tagged platform image of a kept index is untagged, never deleted by digest (that would break the index).
    child_tagged = unique_repo_factory()
    multi = image_factory(platforms=["linux/amd64", "linux/arm64"], created="2001-01-01T00:00:00Z", layers=1)
    push(raw, multi, child_tagged, "multi")
    raw.put_manifest(
        child_tagged, "multi-amd64", multi.platforms["linux/amd64"].manifest, multi.platforms["linux/amd64"].media_type
    )
    lone = image("2001-01-01T00:00:00Z")
    push(raw, lone, child_tagged, "multi-lone")

    cases: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "keep_last": (
            by_count,
            {"keep_last": 2},
            {
                "deleted_tags": ["a-undated", "b1", "b2", "b3"],
                "kept_tags": ["b4", "b5", "z-alias-of-b5"],
                "deleted_digests": sorted([undated.digest, dated[1].digest, dated[2].digest, dated[3].digest]),
            },
        ),
        "index by newest platform": (
            by_index,
            {"keep_last": 1},
            {"deleted_tags": ["single"], "kept_tags": ["multi"], "deleted_digests": [middle.digest]},
        ),
        "match": (
            by_match,
            {"match": ["main-.*"], "keep_last": 1},
            {
                "deleted_tags": ["main-1", "main-2"],
                "kept_tags": ["main-3", "v1", "v1-main"],
                "deleted_digests": sorted([mains[0].digest, mains[1].digest]),
            },
        ),
        "combined": (
            combined,
            {"keep": ["latest"], "keep_last": 1, "older_than": "4w"},
            {
                "deleted_tags": ["x1", "x2", "x3"],
                "kept_tags": ["fresh", "latest", "nodate"],
                "deleted_digests": sorted([x2.digest, x3.digest]),
            },
        ),
        "index child": (
            child_tagged,
            {"match": ["multi-.*"], "keep": ["multi"]},
            {"deleted_tags": ["multi-amd64", "multi-lone"], "kept_tags": ["multi"], "deleted_digests": [lone.digest]},
        ),
    }
    tasks = [
        repo_task(name, server, repository=f"{server.host}/{repo}", retention=retention)
        for name, (repo, retention, _expected) in cases.items()
    ]
    before = {name: tag_state(sk, repo) for name, (repo, _retention, _expected) in cases.items()}

    mark = server.mark()
    check = playbook(tasks, check=True, diff=True)
    assert check.rc == 0, check.output
    for name, (_repo, _retention, expected) in cases.items():
        result = check.task(name)
        assert_ok(result, True)
        assert outcome(result) == expected, name
    warnings = check.task("combined").get("warnings", [])
    assert any("nodate" in warning and "creation time" in warning for warning in warnings), warnings
    assert only_delete_checks(server.requests_since(mark)) == sum(
        1 for case in cases.values() if case[2]["deleted_tags"]
    )
    # Requests: the tag list once, one manifest GET per tag whose age matters (all of them here), each distinct
    # config once; without age rules, HEADs only.
    sent = requests_to(server, mark, by_count)
    assert sent.count(f"GET /v2/{by_count}/tags/list") == 1
    for tag in before["keep_last"]:
        assert sent.count(f"GET /v2/{by_count}/manifests/{tag}") == 1, tag
    config_reads = [line for line in sent if "/blobs/" in line]
    assert sorted(config_reads) == sorted(
        f"GET /v2/{by_count}/blobs/{i.config_digests['linux/amd64']}" for i in [*dated.values(), undated]
    )
    # and the delete check, and whether the registry serves the referrers API (its 404 says no; asked once)
    assert sum(line.startswith(f"GET /v2/{by_count}/referrers/") for line in sent) == 1
    assert len(sent) == 1 + len(before["keep_last"]) + len(config_reads) + 1 + 1
    child_sent = requests_to(server, mark, child_tagged)
    assert sorted(line.split(" ")[0] for line in child_sent) == ["DELETE", "GET", "GET", "GET", "HEAD", "HEAD", "HEAD"]
    # (the tag list, the kept index read to protect its children, whether the referrers API is served, a HEAD per
    # tag, and the delete check)
    assert sum(line.startswith(f"GET /v2/{child_tagged}/referrers/") for line in child_sent) == 1
    assert f"GET /v2/{child_tagged}/manifests/{multi.digest}" in child_sent
    for name, (repo, _retention, _expected) in cases.items():
        assert tag_state(sk, repo) == before[name], "check mode wrote to the registry"

    real = playbook(tasks, diff=True)
    assert real.rc == 0, real.output
    for name, (repo, _retention, expected) in cases.items():
        result = real.task(name)
        assert_ok(result, True)
        assert outcome(result) == expected, name
        assert result["diff"] == check.task(name)["diff"]
        assert tag_state(sk, repo) == {tag: before[name][tag] for tag in expected["kept_tags"]}, name
        for digest in expected["deleted_digests"]:
            assert not sk.exists(f"{repo}@{digest}"), (name, digest)
    assert sk.exists(f"{combined}@{x1.digest}")  # x1 was untagged; latest still uses the image
    assert reasons(real.task("combined")) == {
        "fresh": ("kept", "keep_last", None),  # the newest image of the candidates
        "latest": ("kept", "keep", None),
        "nodate": ("kept", "unknown_age", None),  # older_than cannot show it is old (the task warns)
        "x1": ("deleted", "older_than", "untag"),
        "x2": ("deleted", "older_than", "digest"),
        "x3": ("deleted", "older_than", "digest"),
    }
    child = {entry["tag"]: entry for entry in real.task("index child")["tags"]}
    assert child["multi-amd64"]["detail"].endswith("removed on its own: its image stays for the kept index multi")
    assert (child["multi-lone"]["removed_by"], child["multi"]["reason"]) == ("digest", "match")  # not multi-.*
    assert sk.digest(f"{child_tagged}:multi") == multi.digest
    for child in multi.manifests.values():
        assert sk.exists(f"{child_tagged}@{child}")
    for child in index_children.values():
        assert sk.exists(f"{by_index}@{child}")

    again = playbook(tasks)
    assert again.rc == 0, again.output
    for name, (_repo, _retention, expected) in cases.items():
        result = again.task(name)
        assert_ok(result, False)
        assert result["deleted_tags"] == [] and result["deleted_digests"] == []
        assert result["kept_tags"] == expected["kept_tags"]
    assert tag_state(sk, by_index) == {"multi": index_digest}


# -- the module's EXAMPLES --------------------------------------------------------------------------------------


def test_every_retention_example_is_safe_to_run_for_real(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    """Each retention example of registry_repo's EXAMPLES, copied as it is but without check_mode and with the
    repository replaced, runs for real on a repository of old CI builds, releases, latest, a signature of latest and
    a signature whose image is gone: it deletes builds (the orphans example: the orphaned signature), never a release,
    latest or latest's signature."""
    from ansible_collections.ocireg.registry.plugins.modules import registry_repo

    server = registry_open
    sk, raw = skopeo(server), raw_client(server)
    protected = ["latest", "v1.0.0", "v2.3.4"]
    builds = ["main-%d" % n for n in range(1, 13)] + ["pr-%d" % n for n in range(1, 4)] + ["feature-x"]
    orphan = "sha256-" + "ab" * 32 + ".sig"  # its image does not exist
    # every image old, each a different one: every rule, keep_last included, has something to delete
    images = {
        tag: image_factory(created="2001-01-%02dT00:00:00Z" % n, layers=1, layer_size=32)
        for n, tag in enumerate(protected + builds + [orphan], 1)
    }
    signature = "sha256-%s.sig" % images["latest"].digest.split(":")[1]
    images[signature] = image_factory(created="2001-02-01T00:00:00Z", layers=1, layer_size=32)
    protected.append(signature)
    examples = yaml.safe_load(registry_repo.EXAMPLES)
    retention_examples = [task for task in examples if "retention" in task.get(MODULE, {})]
    assert len(retention_examples) == 5, "an example was added or removed: look at this test"

    ran = []
    for position, example in enumerate(examples):
        if "retention" not in example.get(MODULE, {}):
            continue
        repo = unique_repo_factory()
        for tag, image in images.items():
            push(raw, image, repo, tag)
        task = {key: value for key, value in example.items() if key != "check_mode"}  # for real
        task[MODULE] = dict(example[MODULE], repository=f"{server.host}/{repo}")
        # the tasks after it that use its result (a debug of what it deleted), as written
        following = []
        for later in examples[position + 1 :]:
            if MODULE in later:
                break
            following.append(later)
        run = playbook([task, *following], diff=True)
        assert run.rc == 0, run.output
        result = run.task(example["name"])
        assert_ok(result, True)
        remaining = tag_state(sk, repo)
        for tag in protected:
            assert tag in remaining, (example["name"], tag, result["deleted_tags"])
        if example[MODULE]["retention"].get("orphans"):
            assert result["deleted_tags"] == [orphan], example["name"]
        else:
            assert set(result["deleted_tags"]) <= set(builds), example["name"]
        assert remaining == {tag: images[tag].digest for tag in result["kept_tags"]}, example["name"]
        ran.append((example["name"], result["deleted_tags"]))
    assert len(ran) == 5, ran


# -- state absent and present without retention ----------------------------------------------------------------


def test_absent_deletes_every_image_and_is_a_no_op_when_gone(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_token
    sk, raw = skopeo(server), raw_client(server)
    repo, never = unique_repo_factory(), unique_repo_factory()
    single = image_factory(layers=1)
    multi = image_factory(platforms=["linux/amd64", "linux/arm64"], layers=1)
    docker = image_factory(layers=1, media_types="docker")
    push(raw, single, repo, "a", "b")
    push(raw, multi, repo, "m")
    push(raw, docker, repo, "d")
    before = tag_state(sk, repo)
    host = server.host
    tasks = [
        repo_task("report", server, repository=f"{host}/{repo}"),
        repo_task("empty it", server, repository=f"{host}/{repo}", state="absent"),
        repo_task("missing", server, repository=f"{host}/{never}", state="absent"),
        repo_task("missing, present", server, repository=f"{host}/{never}"),
    ]
    expected = {
        "deleted_tags": ["a", "b", "d", "m"],
        "kept_tags": [],
        "deleted_digests": sorted([single.digest, multi.digest, docker.digest]),
    }

    check = playbook(tasks, check=True, diff=True)
    assert check.rc == 0, check.output
    report = check.task("report")
    assert_ok(report, False)
    assert report["exists"] is True and report["kept_tags"] == ["a", "b", "d", "m"] and report["deleted_tags"] == []
    preview = check.task("empty it")
    assert_ok(preview, True)
    assert outcome(preview) == expected
    assert preview["diff"]["before"] == {"tags": ["a", "b", "d", "m"]} and preview["diff"]["after"] == {"tags": []}
    # a misspelled name deletes nothing: the task says so, naming the repository
    never_warning = (
        f"Repository {host}/{never} does not exist, so there is nothing to delete. If you expected tags there, check"
        " its name and the registry."
    )
    for name in ("missing", "missing, present"):
        assert_ok(check.task(name), False)
        assert check.task(name)["exists"] is False
        assert outcome(check.task(name)) == {"deleted_tags": [], "kept_tags": [], "deleted_digests": []}
        assert check.task(name)["warnings"] == [never_warning]
    assert tag_state(sk, never) == {}  # skopeo finds no such repository either
    for name in ("report", "empty it"):
        assert "warnings" not in check.task(name), name
    assert {(entry["action"], entry["reason"]) for entry in preview["tags"]} == {("deleted", "state=absent")}
    assert {(entry["action"], entry["reason"]) for entry in report["tags"]} == {("kept", "no_retention")}
    assert tag_state(sk, repo) == before, "check mode wrote to the registry"

    real = playbook(tasks[1:])
    assert real.rc == 0, real.output
    assert outcome(real.task("empty it")) == outcome(preview)
    assert_ok(real.task("empty it"), True)
    assert tag_state(sk, repo) == {}
    for digest in (single.digest, multi.digest, docker.digest):
        assert not sk.exists(f"{repo}@{digest}")

    again = playbook(tasks[:2])
    assert again.rc == 0, again.output
    for name in ("report", "empty it"):
        result = again.task(name)
        assert_ok(result, False)
        assert result["exists"] is False and result["deleted_tags"] == []
        # distribution still lists the emptied repository, with no tags
        assert result["warnings"] == [
            f"Repository {host}/{repo} has no tags, so there is nothing to delete. If you expected tags there, check"
            " its name and the registry."
        ]


def test_a_registry_that_refuses_deletes_fails_the_task_and_nothing_changes(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
) -> None:
    server = registry_factory("open", config_overrides={"storage": {"delete": {"enabled": False}}})
    sk, raw = skopeo(server), raw_client(server)
    old, shared = image_factory(created="2001-01-01T00:00:00Z", layers=1), image_factory(layers=1)
    push(raw, old, "t/locked", "old")
    push(raw, shared, "t/locked", "pr-1", "keep-me")
    before = tag_state(sk, "t/locked")
    task = repo_task(
        "retain",
        server,
        ignore_errors=True,
        repository=f"{server.host}/t/locked",
        retention={"match": ["old", "pr-.*"]},
    )
    # Check mode finds out what the real run would (one DELETE of a digest that does not exist), and fails as it does.
    preview = failure(playbook([task], check=True), "retain")
    assert "storage.delete.enabled" in preview["msg"] and "Nothing was changed" in preview["msg"], preview["msg"]
    assert preview["changed"] is False

    result = failure(playbook([task]), "retain")
    assert "storage.delete.enabled" in result["msg"], result["msg"]
    assert "Deleted before the failure: nothing" in result["msg"]
    assert result["changed"] is False and result["deleted_tags"] == []
    assert tag_state(sk, "t/locked") == before


# -- bad input --------------------------------------------------------------------------------------------------


def test_bad_input_fails_naming_the_value_and_deletes_nothing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    server = registry_open
    sk = skopeo(server)
    old = image_factory(created="2001-01-01T00:00:00Z", layers=1)
    push(raw_client(server), old, unique_repo, "v1", "pr-1")
    repo = f"{server.host}/{unique_repo}"
    # task name -> (options, texts the message must contain). Every case would delete pr-1 if it were valid.
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "unknown unit": ({"retention": {"older_than": "3x"}}, ["'3x'", "retention.older_than", "30d"]),
        "every rule wrong": (
            {"retention": {"older_than": "-1d", "keep_last": -1, "keep": ["v.*", "("], "match": ["[a-"]}},
            ["'-1d'", "retention.keep_last", "got -1", "'('", "retention.keep", "'[a-'", "retention.match"],
        ),
        "fractional duration": ({"retention": {"older_than": "1.5d"}}, ["'1.5d'"]),
        "number without unit": ({"retention": {"older_than": 30}}, ["'30'"]),
        "keep_last not a number": ({"retention": {"keep_last": "three"}}, ["'three'", "keep_last"]),
        "keep_last a bool": ({"retention": {"keep_last": True}}, ["True", "retention.keep_last"]),
        "match not a list": ({"retention": {"match": {"pr": 1}}}, ["match", "list"]),
        "unknown rule": ({"retention": {"keep_latest": 3}}, ["keep_latest"]),
        "no rule": ({"retention": {}}, ["no rule", "state=absent"]),
        "retention with absent": ({"state": "absent", "retention": {"keep_last": 1}}, ["retention", "state=present"]),
        "bad concurrency": ({"concurrency": 0, "retention": {"keep_last": 1}}, ["concurrency", "got 0"]),
    }
    tasks = [
        repo_task(name, server, ignore_errors=True, **{"repository": repo, **options})
        for name, (options, _texts) in cases.items()
    ]
    before = snapshot(sk, unique_repo, [old.digest])
    mark = server.mark()

    run = playbook(tasks)
    for name, (_options, texts) in cases.items():
        result = failure(run, name)
        assert result["changed"] is False, (name, result)
        for text in texts:
            assert text in result["msg"], (name, text, result["msg"])
        assert "Traceback" not in result["msg"]

    assert server.requests_since(mark) == [], "bad input reached the registry"
    assert snapshot(sk, unique_repo, [old.digest]) == before

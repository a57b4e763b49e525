"""registry_tag against the real distribution registry, run through ansible-playbook, with skopeo as the witness.

Each case: check mode (reports the change, writes nothing), the real run (changed), the re-run (not changed).
Cross-repository and cross-registry promotion live in test_registry_tag_promotion.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.client import ClientFactory
from support.faultproxy import FaultProxy
from support.images import Image
from support.rawhttp import RawClient
from support.registry import RegistryServer, free_port
from support.skopeo import Skopeo, SkopeoError

from ansible_collections.ocireg.registry.plugins.module_utils._errors import UnsupportedError

MODULE = "ocireg.registry.registry_tag"
WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
KINDS = ["open", "htpasswd", "token"]
PLATFORMS = ["linux/amd64", "linux/arm64"]
UNKNOWN_DIGEST = "sha256:" + "0" * 64


# -- helpers (test_registry_tag_promotion.py uses them too) ----------------------------------------------------


def credentials_for(server: RegistryServer) -> dict[str, str]:
    """username/password module options for SERVER (none for an open registry)."""
    if server.username is None:
        return {}
    return {"username": server.username, "password": server.password or ""}


def tag_task(name: str, server: RegistryServer, *, ignore_errors: bool = False, **options: Any) -> dict[str, Any]:
    """A registry_tag task against SERVER, with the server's credentials."""
    task: dict[str, Any] = {"name": name, MODULE: {**credentials_for(server), **options}}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def tag_state(sk: Skopeo, repo: str) -> dict[str, str]:
    """tag -> digest of every tag in REPO, read by skopeo; {} when the repository does not exist."""
    try:
        tags = sk.list_tags(repo)
    except SkopeoError as err:
        if "name unknown" in err.stderr.lower() or "not found" in err.stderr.lower():
            return {}
        raise
    return {tag: sk.digest(f"{repo}:{tag}") for tag in sorted(tags)}


def writes(entries: list[dict[str, Any]]) -> list[str]:
    """The write requests among access-log ENTRIES, as 'METHOD path status'."""
    return ["%s %s %d" % (e["method"], e["path"], e["status"]) for e in entries if e["method"] in WRITE_METHODS]


def per_tag(result: dict[str, Any]) -> dict[str, tuple[str | None, str | None, bool]]:
    """tag -> (previous_digest, digest, changed) from a registry_tag result."""
    return {t["tag"]: (t["previous_digest"], t["digest"], t["changed"]) for t in result["tags"]}


def assert_ok(result: dict[str, Any], changed: bool) -> None:
    assert "msg" not in result, result["msg"]
    assert result["changed"] is changed, result


def failure(run: Any, name: str) -> dict[str, Any]:
    """The result of task NAME, which must have failed (the recorded result has no 'failed' key)."""
    statuses = [entry["status"] for entry in run.results if entry["task"] == name]
    assert statuses == ["failed"], (name, statuses, run.task(name))
    return run.task(name)


# -- present: same repository ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_tags_follow_their_source_in_the_repository(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    sk = skopeo(server)
    first, second = image_factory(ref="a"), image_factory(ref="b")
    multi = image_factory(ref="m", platforms=PLATFORMS)
    sk.copy(first.oci, f"{unique_repo}:v1")
    sk.copy(second.oci, f"{unique_repo}:v2")
    sk.copy(second.oci, f"{unique_repo}:stable")  # an existing tag the task moves
    sk.copy(multi.oci, f"{unique_repo}:multi")
    before = tag_state(sk, unique_repo)
    repo = f"{server.host}/{unique_repo}"
    tasks = [
        tag_task("many tags by tag", server, repository=repo, tag=["stable", "1", "1.0"], source=f"{repo}:v1"),
        tag_task("one tag by digest", server, repository=repo, tags="pinned", source=f"{repo}@{second.digest}"),
        tag_task("bare digest, index", server, repository=repo, tag=["index"], source=multi.digest),
        tag_task("index by tag", server, repository=repo, tag=["multi-latest"], source=f"{repo}:multi"),
    ]
    expected = {
        "stable": first.digest,
        "1": first.digest,
        "1.0": first.digest,
        "pinned": second.digest,
        "index": multi.digest,
        "multi-latest": multi.digest,
    }

    check = playbook(tasks, check=True, diff=True)
    assert check.rc == 0, check.output
    many = check.task("many tags by tag")
    assert_ok(many, True)
    assert many["digest"] == first.digest
    assert per_tag(many) == {
        "stable": (second.digest, first.digest, True),
        "1": (None, first.digest, True),
        "1.0": (None, first.digest, True),
    }
    assert many["diff"] == {
        "before": {"stable": second.digest, "1": None, "1.0": None},
        "after": {"stable": first.digest, "1": first.digest, "1.0": first.digest},
    }
    assert check.task("bare digest, index")["diff"] == {"before": {"index": None}, "after": {"index": multi.digest}}
    # What --diff prints: tag -> digest, null for a tag that does not exist.
    assert f'-    "stable": "{second.digest}"' in check.stdout
    assert f'+    "stable": "{first.digest}"' in check.stdout
    assert '-    "1": null,' in check.stdout
    for name in ("one tag by digest", "bare digest, index", "index by tag"):
        assert_ok(check.task(name), True)
    assert tag_state(sk, unique_repo) == before, "check mode wrote to the registry"

    real = playbook(tasks, diff=True)
    assert real.rc == 0, real.output
    for task in tasks:
        assert_ok(real.task(task["name"]), True)
    assert real.task("index by tag")["digest"] == multi.digest
    assert tag_state(sk, unique_repo) == {**before, **expected}
    # The exact bytes, not a re-serialisation: an index stays the same index, children and all.
    assert sk.manifest(f"{unique_repo}:index") == multi.manifest
    assert sk.manifest(f"{unique_repo}:stable") == first.manifest
    for child in multi.manifests.values():
        assert sk.exists(f"{unique_repo}@{child}")

    again = playbook(tasks, diff=True)
    assert again.rc == 0, again.output
    for task in tasks:
        result = again.task(task["name"])
        assert_ok(result, False)
        assert result["diff"]["before"] == result["diff"]["after"]
        assert all(not changed for _previous, _digest, changed in per_tag(result).values())
    assert per_tag(again.task("many tags by tag"))["stable"] == (first.digest, first.digest, False)
    assert tag_state(sk, unique_repo) == {**before, **expected}


def test_without_source_the_tags_only_have_to_exist(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    sk = skopeo(registry_open)
    first, second = image_factory(), image_factory()
    sk.copy(first.oci, f"{unique_repo}:a")
    sk.copy(first.oci, f"{unique_repo}:b")
    sk.copy(second.oci, f"{unique_repo}:c")
    repo = f"{registry_open.host}/{unique_repo}"
    run = playbook(
        [
            tag_task("same image", registry_open, repository=repo, tag=["a", "b"]),
            tag_task("two images", registry_open, repository=repo, tag=["a", "c"]),
        ],
        check=True,
    )
    same, mixed = run.task("same image"), run.task("two images")
    assert_ok(same, False)
    assert same["digest"] == first.digest
    assert_ok(mixed, False)
    assert mixed["digest"] is None
    assert per_tag(mixed) == {"a": (first.digest, first.digest, False), "c": (second.digest, second.digest, False)}


# -- absent -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_absent_removes_only_the_named_tags(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    sk = skopeo(server)
    single = image_factory()
    multi = image_factory(platforms=PLATFORMS)
    docker = image_factory(media_types="docker")  # the placeholder then is Docker schema 2 too
    for tag in ("a", "b", "c"):
        sk.copy(single.oci, f"{unique_repo}:{tag}")
    for tag in ("m1", "m2"):
        sk.copy(multi.oci, f"{unique_repo}:{tag}")
    raw_client(server).push_image(docker, unique_repo, ["d1", "d2"])
    before = tag_state(sk, unique_repo)
    assert before == {
        **{tag: single.digest for tag in "abc"},
        "m1": multi.digest,
        "m2": multi.digest,
        "d1": docker.digest,
        "d2": docker.digest,
    }
    repo = f"{server.host}/{unique_repo}"
    tasks = [
        tag_task("untag two", server, repository=repo, tag=["a", "b", "never-was"], state="absent"),
        tag_task("untag index", server, repository=repo, tag="m1", state="absent"),
        tag_task("untag docker", server, repository=repo, tag="d1", state="absent"),
    ]

    check = playbook(tasks, check=True, diff=True)
    assert check.rc == 0, check.output
    two = check.task("untag two")
    assert_ok(two, True)
    assert "digest" not in two
    assert per_tag(two) == {
        "a": (single.digest, None, True),
        "b": (single.digest, None, True),
        "never-was": (None, None, False),
    }
    assert two["diff"] == {
        "before": {"a": single.digest, "b": single.digest, "never-was": None},
        "after": {"a": None, "b": None, "never-was": None},
    }
    assert tag_state(sk, unique_repo) == before, "check mode wrote to the registry"

    mark = server.mark()
    real = playbook(tasks)
    assert real.rc == 0, real.output
    for task in tasks:
        assert_ok(real.task(task["name"]), True)
    # The siblings keep their images; the images themselves and an index's children are all still there.
    assert tag_state(sk, unique_repo) == {"c": single.digest, "m2": multi.digest, "d2": docker.digest}
    for digest in [single.digest, multi.digest, docker.digest, *multi.manifests.values()]:
        assert sk.exists(f"{unique_repo}@{digest}"), digest
    # No request ever deleted one of the images: only the placeholders were deleted by digest.
    deletes = [e for e in server.requests_since(mark) if e["method"] == "DELETE" and e["status"] == 202]
    assert len(deletes) == 4
    deleted = {e["path"].rsplit("/", 1)[1] for e in deletes}
    assert deleted.isdisjoint({single.digest, multi.digest, docker.digest})
    for digest in deleted:
        assert not sk.exists(f"{unique_repo}@{digest}")

    again = playbook(tasks)
    assert again.rc == 0, again.output
    for task in tasks:
        assert_ok(again.task(task["name"]), False)
    assert tag_state(sk, unique_repo) == {"c": single.digest, "m2": multi.digest, "d2": docker.digest}


def stored_manifests(server: RegistryServer, repo: str) -> set[str]:
    """Every manifest digest REPO holds, tagged or not, as the registry's storage directory lists them: a manifest is
    in the repository while its revision link exists (deleting it removes the link, not the directory)."""
    revisions = server.storage / "docker/registry/v2/repositories" / repo / "_manifests/revisions"
    return {f"{link.parent.parent.name}:{link.parent.name}" for link in revisions.glob("*/*/link")}


@pytest.mark.parametrize("kind", ["open", "token"])
def test_absent_where_deletes_are_disabled_fails_before_moving_anything_and_leaves_nothing(
    kind: str,
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
) -> None:
    server = registry_factory(kind, config_overrides={"storage": {"delete": {"enabled": False}}})
    sk = skopeo(server)
    image = image_factory()
    for tag in ("x", "y", "keep"):
        sk.copy(image.oci, f"t/keep:{tag}")
    tags, manifests = tag_state(sk, "t/keep"), stored_manifests(server, "t/keep")
    assert manifests == {image.digest}
    task = tag_task(
        "untag", server, ignore_errors=True, repository=f"{server.host}/t/keep", tag=["x", "y"], state="absent"
    )
    probe = f"DELETE /v2/t/keep/manifests/sha256:{'0' * 64} 405"

    for check in (True, False, False):  # check mode, the real run, and a second real run
        mark = server.mark()
        run = playbook([task], check=check)
        result = failure(run, "untag")
        assert result["changed"] is False, result
        assert result["msg"] == (
            f"Cannot remove tags x, y from {server.host}/t/keep: Failed to check whether deletes are allowed in t/keep"
            f" (a DELETE of a manifest that does not exist) on registry {server.host}, repository t/keep: HTTP 405"
            " UNSUPPORTED (The operation is unsupported.). Deleting is disabled on this registry (distribution:"
            f" storage.delete.enabled). Nothing was changed: x still points at {image.digest}; y still points at"
            f" {image.digest}."
        ), result["msg"]
        # One DELETE that changes nothing, and no other write: no placeholder was pushed, no tag was moved.
        assert writes([e for e in server.requests_since(mark) if e["status"] != 401]) == [probe]
        assert tag_state(sk, "t/keep") == tags
        assert stored_manifests(server, "t/keep") == manifests


def test_the_delete_check_against_distribution_changes_nothing_and_keeps_what_the_registry_said(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
) -> None:
    connect = ClientFactory()
    image = image_factory()
    try:
        for enabled in (True, False):
            server = registry_factory("open", config_overrides={"storage": {"delete": {"enabled": enabled}}})
            skopeo(server).copy(image.oci, "t/keep:x")
            client = connect(server, "t/keep")
            mark = server.mark()
            if enabled:
                assert client.confirm_deletes("t/keep") is True
            else:
                with pytest.raises(UnsupportedError) as caught:
                    client.confirm_deletes("t/keep")
                assert (caught.value.status, caught.value.codes) == (405, ["UNSUPPORTED"])
                assert str(caught.value).endswith(
                    "HTTP 405 UNSUPPORTED (The operation is unsupported.). Deleting is disabled on this registry"
                    " (distribution: storage.delete.enabled)"
                )
                with pytest.raises(UnsupportedError) as caught:
                    client.delete_manifest("t/keep", image.digest)
                assert (caught.value.status, caught.value.codes) == (405, ["UNSUPPORTED"])
                assert caught.value.details == [""]
            probe = f"DELETE /v2/t/keep/manifests/sha256:{'0' * 64} {404 if enabled else 405}"
            assert writes(server.requests_since(mark))[0] == probe
            assert stored_manifests(server, "t/keep") == {image.digest}
            assert tag_state(skopeo(server), "t/keep") == {"x": image.digest}

        # An answer that says neither (here a 502 from a proxy, past the retries): False, for the caller to try.
        proxy = fault_proxy(server)
        proxy.inject("502", method="DELETE", path=r"/manifests/sha256:0{64}$")
        assert connect(server.seen_at(proxy.host), "t/keep", retries=0).confirm_deletes("t/keep") is False
    finally:
        connect.close()


def test_absent_for_a_user_who_may_push_but_not_delete_fails_before_moving_anything(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
) -> None:
    server = registry_factory("token", user_actions={"alice": ["pull", "push"], "reader": ["pull"]})
    image = image_factory()
    skopeo(server, username="bob", password=server.users["bob"]).copy(image.oci, "t/keep:x")
    alice = {"username": "alice", "password": server.users["alice"]}
    task = {
        "name": "untag",
        MODULE: {"repository": f"{server.host}/t/keep", "tag": "x", "state": "absent", **alice},
        "ignore_errors": True,
    }

    for check in (True, False):
        mark = server.mark()
        result = failure(playbook([task], check=check), "untag")
        assert result["changed"] is False
        # the registry's refusal of the delete scope, in the words of the auth layer
        assert result["msg"].startswith(f"Cannot remove tag x from {server.host}/t/keep: "), result["msg"]
        assert "repository:t/keep:pull,push,delete" in result["msg"] and "alice" in result["msg"], result["msg"]
        assert f"Nothing was changed: x still points at {image.digest}." in result["msg"]
        assert [w for w in writes(server.requests_since(mark)) if not w.endswith(" 401")] == []
        assert stored_manifests(server, "t/keep") == {image.digest}
        assert tag_state(skopeo(server, username="bob", password=server.users["bob"]), "t/keep") == {"x": image.digest}


def test_absent_where_the_check_says_neither_puts_the_tag_back_when_the_registry_refuses(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    fault_proxy: Callable[..., FaultProxy],
) -> None:
    server = registry_factory("open", config_overrides={"storage": {"delete": {"enabled": False}}})
    sk = skopeo(server)
    image = image_factory()
    sk.copy(image.oci, "t/keep:x")
    sk.copy(image.oci, "t/keep:y")
    proxy = fault_proxy(server)
    proxy.inject("502", method="DELETE", path=r"/manifests/sha256:0{64}$")  # the check gets no useful answer
    task = tag_task("untag", server, ignore_errors=True, repository=f"{proxy.host}/t/keep", tag="x", state="absent")
    task[MODULE]["retries"] = 0

    result = failure(playbook([task]), "untag")

    assert "x" in result["msg"] and "storage.delete.enabled" in result["msg"], result["msg"]
    assert "The tag still points at %s" % image.digest in result["msg"]
    assert result["changed"] is False  # the tag was put back: no tag changed
    assert tag_state(sk, "t/keep") == {"x": image.digest, "y": image.digest}
    # Found out by trying: the placeholder the tag was moved onto could not be deleted, and stays, untagged.
    (placeholder,) = stored_manifests(server, "t/keep") - {image.digest}
    assert f"the placeholder manifest {placeholder} it was moved onto stays, untagged" in result["msg"]


def test_absent_checks_deletes_once_and_asks_by_name_once_per_task(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    sk = skopeo(registry_open)
    image = image_factory()
    for tag in ("a", "b", "c", "keep"):
        sk.copy(image.oci, f"{unique_repo}:{tag}")
    repo = f"{registry_open.host}/{unique_repo}"
    tasks = [tag_task("untag three", registry_open, repository=repo, tag=["a", "b", "c", "gone"], state="absent")]

    mark = registry_open.mark()
    check = playbook(tasks, check=True)
    assert_ok(check.task("untag three"), True)
    sent = registry_open.requests_since(mark)
    assert writes(sent) == [f"DELETE /v2/{unique_repo}/manifests/sha256:{'0' * 64} 404"]  # the check, nothing else
    assert tag_state(sk, unique_repo) == {tag: image.digest for tag in ("a", "b", "c", "keep")}

    mark = registry_open.mark()
    real = playbook(tasks)
    assert_ok(real.task("untag three"), True)
    sent = registry_open.requests_since(mark)
    assert tag_state(sk, unique_repo) == {"keep": image.digest}
    deletes = [e for e in sent if e["method"] == "DELETE"]
    assert [(e["path"].rsplit("/", 1)[1], e["status"]) for e in deletes[:2]] == [
        ("sha256:" + "0" * 64, 404),
        ("a", 400),
    ]
    assert [e["status"] for e in deletes[2:]] == [202, 202, 202]  # the three placeholders, by digest
    # 4 HEADs, the check, one DELETE by name, and per tag: POST+PUT of the placeholder config, PUT, DELETE
    assert len(sent) == 4 + 1 + 1 + 3 * 4, [f"{e['method']} {e['path']} {e['status']}" for e in sent]
    assert stored_manifests(registry_open, unique_repo) == {image.digest}

    again = playbook(tasks)
    assert_ok(again.task("untag three"), False)
    assert tag_state(sk, unique_repo) == {"keep": image.digest}


# -- overwrite guard --------------------------------------------------------------------------------------------


def test_overwrite_false_refuses_to_move_a_tag_and_changes_nothing(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    sk = skopeo(registry_token)
    release, candidate = image_factory(), image_factory()
    guarded_repo, allowed_repo = unique_repo_factory(), unique_repo_factory()
    for repo in (guarded_repo, allowed_repo):
        sk.copy(release.oci, f"{repo}:1.0")
        sk.copy(candidate.oci, f"{repo}:rc")
    before = tag_state(sk, guarded_repo)
    host = registry_token.host
    tasks = [
        tag_task(
            "guarded",
            registry_token,
            ignore_errors=True,
            repository=f"{host}/{guarded_repo}",
            tag=["fresh", "1.0"],
            source=f"{host}/{guarded_repo}:rc",
            overwrite=False,
        ),
        # Tags that are missing or already on the source are fine.
        tag_task(
            "allowed",
            registry_token,
            repository=f"{host}/{allowed_repo}",
            tag=["rc", "1.1"],
            source=f"{host}/{allowed_repo}:rc",
            overwrite=False,
        ),
    ]

    for check, allowed_changed in ((True, True), (False, True), (False, False)):
        mark = registry_token.mark()
        run = playbook(tasks, check=check)
        result = failure(run, "guarded")
        assert result["changed"] is False
        assert "overwrite is false" in result["msg"]
        assert "1.0 (now %s)" % release.digest in result["msg"]
        assert candidate.digest in result["msg"]
        assert "fresh" not in result["msg"]
        guarded_requests = [e for e in registry_token.requests_since(mark) if f"/{guarded_repo}/" in e["path"]]
        assert writes(guarded_requests) == []
        assert tag_state(sk, guarded_repo) == before
        allowed = run.task("allowed")
        assert_ok(allowed, allowed_changed)
        assert per_tag(allowed) == {
            "rc": (candidate.digest, candidate.digest, False),
            "1.1": (None if allowed_changed else candidate.digest, candidate.digest, allowed_changed),
        }
        assert tag_state(sk, allowed_repo) == {**before, **({} if check else {"1.1": candidate.digest})}


# -- bad input --------------------------------------------------------------------------------------------------


def test_bad_input_fails_naming_the_value_and_changes_nothing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    sk = skopeo(registry_open)
    image = image_factory()
    sk.copy(image.oci, f"{unique_repo}:v1")
    host = registry_open.host
    repo = f"{host}/{unique_repo}"
    # task name -> (options, text the message must contain)
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "bad tag": ({"repository": repo, "tag": ["ok", "bad tag!"], "source": f"{repo}:v1"}, ["'bad tag!'"]),
        "tag starting with a dash": ({"repository": repo, "tag": "-x", "source": f"{repo}:v1"}, ["'-x'"]),
        "empty tag list": ({"repository": repo, "tag": [], "source": f"{repo}:v1"}, ["at least one tag"]),
        "repository with a tag": ({"repository": f"{repo}:v1", "tag": "x"}, [f"'{repo}:v1'", "must not include a tag"]),
        "repository with uppercase": ({"repository": f"{host}/T/App", "tag": "x"}, [f"'{host}/T/App'"]),
        "bad source": ({"repository": repo, "tag": "x", "source": "Not/Valid:1"}, ["'Not/Valid:1'", "source"]),
        "bad bare digest": ({"repository": repo, "tag": "x", "source": "sha256:abc"}, ["'sha256:abc'"]),
        "bad digest in source": (
            {"repository": repo, "tag": "x", "source": f"{repo}@sha256:1234"},
            ["'sha256:1234'"],
        ),
        "missing tags, no source": (
            {"repository": repo, "tag": ["v1", "nope1", "nope2"]},
            ["nope1, nope2", "do not exist", "no source"],
        ),
        "unknown source tag": ({"repository": repo, "tag": "x", "source": f"{repo}:nope"}, [f"{repo}:nope"]),
        "unknown source digest": (
            {"repository": repo, "tag": "x", "source": UNKNOWN_DIGEST},
            [f"{repo}@{UNKNOWN_DIGEST}", "does not exist"],
        ),
        "unknown source repository": (
            {"repository": repo, "tag": "x", "source": f"{host}/t/nothing-here:v1"},
            [f"{host}/t/nothing-here:v1", "does not exist"],
        ),
        "source with state absent": (
            {"repository": repo, "tag": "v1", "state": "absent", "source": f"{repo}:v1"},
            ["source", "state=present"],
        ),
        "bad state": ({"repository": repo, "tag": "v1", "state": "gone"}, ["gone", "present", "absent"]),
    }
    tasks = [tag_task(name, registry_open, ignore_errors=True, **options) for name, (options, _texts) in cases.items()]
    before = tag_state(sk, unique_repo)
    mark = registry_open.mark()

    # A real run: validation and reads come before any write, so check mode fails the same way (see the
    # overwrite guard test for a check-mode failure).
    run = playbook(tasks)
    for name, (_options, texts) in cases.items():
        result = failure(run, name)
        assert result["changed"] is False, (name, result)
        for text in texts:
            assert text in result["msg"], (name, text, result["msg"])
        assert "Traceback" not in result["msg"]

    assert writes(registry_open.requests_since(mark)) == []
    assert tag_state(sk, unique_repo) == before
    assert tag_state(sk, "t/nothing-here") == {}


def test_a_source_without_a_registry_is_said_to_be_read_as_a_docker_hub_image(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    sk = skopeo(registry_open)
    image = image_factory()
    sk.copy(image.oci, f"{unique_repo}:1.1.0")
    before = tag_state(sk, unique_repo)
    repo = f"{registry_open.host}/{unique_repo}"
    # Docker Hub is made unreachable, and quickly so, whatever the machine's network: HTTPS goes to a closed port.
    no_hub = {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": "127.0.0.1,localhost"}
    options = {"repository": repo, "tag": "stable", "retries": 0}
    tasks = [
        {**tag_task("bare tag", registry_open, ignore_errors=True, source="1.1.0", **options), "environment": no_hub},
        {
            **tag_task("hub named", registry_open, ignore_errors=True, source="docker.io/library/1.1.0", **options),
            "environment": no_hub,
        },
    ]
    hint = (
        "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name a"
        f" tag of {repo}, write {repo}:1.1.0."
    )

    for check in (True, False, False):
        mark = registry_open.mark()
        run = playbook(tasks, check=check)
        bare, named = failure(run, "bare tag"), failure(run, "hub named")
        for result in (bare, named):
            assert result["changed"] is False
            assert result["msg"].startswith("Cannot reach registry docker.io"), result["msg"]
        assert bare["msg"].endswith(". " + hint) and bare["msg"].count("names no registry") == 1, bare["msg"]
        assert "names no registry" not in named["msg"], named["msg"]
        assert registry_open.requests_since(mark) == []  # the source is read first, and failed
        assert tag_state(sk, unique_repo) == before


# -- request counts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_up_to_date_task_costs_one_head_per_tag_and_per_tag_named_source(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    sk = skopeo(server)
    image = image_factory()
    for tag in ("src", "t1", "t2", "t3"):
        sk.copy(image.oci, f"{unique_repo}:{tag}")
    repo = f"{server.host}/{unique_repo}"
    task = tag_task("up to date", server, repository=repo, tag=["t1", "t2", "t3"], source=f"{repo}:src")
    issuer = server.token_issuer
    mark, token_mark = server.mark(), issuer.mark() if issuer else 0

    run = playbook([task])

    assert_ok(run.task("up to date"), False)
    sent = server.requests_since(mark)
    answered = sorted("%s %s" % (e["method"], e["path"]) for e in sent if e["status"] != 401)
    assert answered == sorted(f"HEAD /v2/{unique_repo}/manifests/{tag}" for tag in ("src", "t1", "t2", "t3"))
    handshakes = [e for e in sent if e["status"] == 401]
    assert len(handshakes) == (0 if kind == "open" else 1)
    assert all(e["method"] == "HEAD" for e in handshakes)
    if issuer is not None:
        tokens = issuer.requests_since(token_mark)
        assert len(tokens) == 1
        assert tokens[0].scopes == [f"repository:{unique_repo}:pull"]

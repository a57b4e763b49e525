"""registry_tag with a source in another repository (blobs mounted) or another registry (copied by the copy engine).

Check mode, the real run and the re-run for each; skopeo is the witness and the access logs show how blobs moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo
from test_registry_tag import PLATFORMS, assert_ok, per_tag, tag_state, tag_task, writes


def test_promotion_to_another_repository_mounts_the_blobs(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_token
    sk = skopeo(server)
    staging, prod = unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=PLATFORMS)
    sk.copy(image.oci, f"{staging}:1.0")
    task = tag_task(
        "promote",
        server,
        repository=f"{server.host}/{prod}",
        tag=["1.0", "stable"],
        source=f"{server.host}/{staging}:1.0",
        overwrite=False,
    )

    check = playbook([task], check=True, diff=True)
    result = check.task("promote")
    assert_ok(result, True)
    assert result["digest"] == image.digest
    assert result["diff"] == {
        "before": {"1.0": None, "stable": None},
        "after": {"1.0": image.digest, "stable": image.digest},
    }
    assert tag_state(sk, prod) == {}

    mark = server.mark()
    real = playbook([task])
    result = real.task("promote")
    assert_ok(result, True)
    assert per_tag(result) == {"1.0": (None, image.digest, True), "stable": (None, image.digest, True)}
    assert tag_state(sk, prod) == {"1.0": image.digest, "stable": image.digest}
    assert sk.manifest(f"{prod}:stable") == image.manifest
    for child in image.manifests.values():
        assert sk.exists(f"{prod}@{child}")
    # Every blob came by mount: no upload of blob data into prod.
    sent = server.requests_since(mark)
    posts = [e for e in sent if e["method"] == "POST" and e["status"] != 401]
    blobs = image.blob_digests()
    assert {e["params"]["mount"][0] for e in posts} == blobs
    assert all(e["status"] == 201 and e["params"]["from"] == [staging] for e in posts)
    assert not [e for e in sent if e["method"] == "PATCH" or "/blobs/uploads/" in e["path"] and e["method"] == "PUT"]
    assert tag_state(sk, staging) == {"1.0": image.digest}

    mark = server.mark()
    again = playbook([task])
    assert_ok(again.task("promote"), False)
    answered = sorted("%s %s" % (e["method"], e["path"]) for e in server.requests_since(mark) if e["status"] != 401)
    assert answered == sorted(
        [f"HEAD /v2/{staging}/manifests/1.0", f"HEAD /v2/{prod}/manifests/1.0", f"HEAD /v2/{prod}/manifests/stable"]
    )


def test_promotion_from_another_registry_copies_the_image(
    registry_htpasswd: RegistryServer,
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    source, dest = registry_htpasswd, registry_token
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    multi, single = image_factory(platforms=PLATFORMS), image_factory()
    skopeo(source).copy(multi.oci, f"{source_repo}:1.0")
    skopeo(source).copy(single.oci, f"{source_repo}:tools")
    sk = skopeo(dest)
    common = {
        "repository": f"{dest.host}/{dest_repo}",
        # username/password are for the repository's registry; the source's come from credentials.
        "credentials": {source.host: {"username": source.username, "password": source.password}},
    }
    tasks = [
        tag_task("by tag", dest, tag=["1.0", "latest"], source=f"{source.host}/{source_repo}:1.0", **common),
        tag_task("by digest", dest, tag="tools", source=f"{source.host}/{source_repo}@{single.digest}", **common),
    ]

    check = playbook(tasks, check=True, diff=True)
    assert_ok(check.task("by tag"), True)
    assert check.task("by digest")["diff"] == {"before": {"tools": None}, "after": {"tools": single.digest}}
    assert tag_state(sk, dest_repo) == {}

    source_mark = source.mark()
    real = playbook(tasks)
    assert_ok(real.task("by tag"), True)
    assert_ok(real.task("by digest"), True)
    assert real.task("by tag")["digest"] == multi.digest
    assert tag_state(sk, dest_repo) == {"1.0": multi.digest, "latest": multi.digest, "tools": single.digest}
    assert sk.manifest(f"{dest_repo}:latest") == multi.manifest
    for child in multi.manifests.values():
        assert sk.exists(f"{dest_repo}@{child}")
    assert writes(source.requests_since(source_mark)) == []

    source_mark, dest_mark = source.mark(), dest.mark()
    again = playbook(tasks)
    assert_ok(again.task("by tag"), False)
    assert_ok(again.task("by digest"), False)
    source_sent = [f"{e['method']} {e['path']}" for e in source.requests_since(source_mark) if e["status"] != 401]
    dest_sent = sorted(f"{e['method']} {e['path']}" for e in dest.requests_since(dest_mark) if e["status"] != 401)
    assert source_sent == [f"HEAD /v2/{source_repo}/manifests/1.0"]
    assert dest_sent == sorted(f"HEAD /v2/{dest_repo}/manifests/{tag}" for tag in ("1.0", "latest", "tools"))

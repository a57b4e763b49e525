"""Faults injected into real traffic: registry_info, registry_tag and registry_image keep working, lose nothing.

A FaultProxy sits in front of each real registry. With RandomFaults about 30% of the requests get a 503
(Retry-After: 0), a 429 (Retry-After: 1; once per proxy, as it makes every request wait a second), a 502, a
dropped connection (before the request reaches the registry, or after it did) or, for blob downloads, a body cut
in half. Every task must succeed, and
skopeo, reading the registry directly (not through the proxy), must see exactly the digests the tasks report.
Then the two sharp cases: a blob that stays truncated must fail the task before any manifest is written, and blobs
redirected to another origin must never take the Authorization header with them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import BlobStore, FaultProxy, RandomFaults
from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

IMAGE = "ocireg.registry.registry_image"
TAG = "ocireg.registry.registry_tag"
INFO = "ocireg.registry.registry_info"
REPO = "ocireg.registry.registry_repo"
PLATFORMS = ["linux/amd64", "linux/arm64"]

Playbook = Callable[..., PlaybookRun]


def task(name: str, module: str, *, ignore: bool = False, **options: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, module: options}
    if ignore:
        entry["ignore_errors"] = True
    return entry


def login(server: RegistryServer) -> dict[str, str]:
    return {"username": server.username, "password": server.password or ""} if server.username else {}


def succeeded(run: PlaybookRun, name: str, *proxies: FaultProxy) -> dict[str, Any]:
    """The result of task NAME, which must have succeeded; if not, the message and what PROXIES saw go wrong."""
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries, run.output
    result = entries[-1]["result"]
    assert entries[-1]["status"] == "ok", "%s: %s\n%s" % (name, result.get("msg", result), proxy_log(*proxies))
    return result


def proxy_log(*proxies: FaultProxy) -> str:
    """The requests that got a fault or an error status, for a failure message."""
    lines = [
        f"{proxy.port} {r.method} {r.path}?{r.query} fault={r.fault} status={r.status} upstream={r.upstream_status}"
        for proxy in proxies
        for r in proxy.requests
        if r.fault != "pass" or (r.status or 0) >= 400
    ]
    return "\n".join(lines[-60:])


def failed(run: PlaybookRun, name: str) -> dict[str, Any]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    return entries[-1]["result"]


def faulty(fault_proxy: Callable[..., FaultProxy], server: RegistryServer, schedule: RandomFaults) -> FaultProxy:
    """A proxy faulting about 30% of the requests at random (SCHEDULE: shared by both ends of a copy). Besides,
    its first manifest request surely gets a 429 and its first blob download surely breaks off."""
    proxy = fault_proxy(server, schedule=schedule)
    proxy.inject("429", path="/manifests/")
    proxy.inject("truncate", method="GET", path="/blobs/sha256:")
    return proxy


def random_faults(seed: str) -> RandomFaults:
    # No random 429s: each costs every request a second, so each proxy gets one, injected.
    return RandomFaults(0.35, seed=seed, budget={"429": 0})  # drawn at 35%: the family caps bring it near 30%


def assert_faults_were_real(*proxies: FaultProxy) -> None:
    """About 30% of the requests through PROXIES got a fault, of several kinds."""
    requests = [r for proxy in proxies for r in proxy.requests]
    # (a request whose client went away mid-body shows as "upstream error": a consequence, not a fault)
    faults = [fault for proxy in proxies for fault in proxy.faults_applied() if not fault.startswith("upstream")]
    assert len(requests) >= 20, len(requests)
    assert 0.15 <= len(faults) / len(requests) <= 0.45, (len(faults), len(requests))
    assert {"429", "truncate", "503"} <= set(faults), faults
    assert len(set(faults) & {"503", "502", "drop", "drop_after"}) >= 2, faults


def assert_complete(sk: Skopeo, ref: str, digest: str, tmp_path: Path) -> None:
    """skopeo, straight from the registry, sees DIGEST at REF and can copy out every blob of it (all verified)."""
    assert sk.digest(ref) == digest, ref
    target = tmp_path / f"witness-{hashlib.sha256(ref.encode()).hexdigest()[:12]}"
    sk.copy(ref, f"oci:{target}:copy")
    assert_layout_intact(target)


def assert_layout_intact(layout: Path) -> None:
    """Every blob file of an OCI layout hashes to its name."""
    blobs = list((layout / "blobs" / "sha256").iterdir())
    assert blobs
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob


def blob_total(image: Image) -> int:
    return len(image.blob_digests())


def blob_bytes(image: Image) -> int:
    return sum({b.digest: b.size for p in image.platforms.values() for b in [p.config, *p.layers]}.values())


def manifest_writes(proxy: FaultProxy) -> list[str]:
    return [f"{r.method} {r.path}" for r in proxy.requests if r.method == "PUT" and "/manifests/" in r.path]


# ----------------------------------------------------------------------------------------------------
# About 30% of the requests fail: every run still succeeds, with the right digests


def test_registry_image_copies_through_faults(
    registry_open: RegistryServer,
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(platforms=PLATFORMS, layers=2, layer_size=300_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    schedule = random_faults("image")
    src, dest = faulty(fault_proxy, registry_open, schedule), faulty(fault_proxy, registry_token, schedule)
    out = tmp_path / "out-layout"
    tasks = [
        task("across registries", IMAGE, src=f"{src.host}/{unique_repo}:v1", dest=f"{dest.host}/{unique_repo}:v1"),
        task("again", IMAGE, src=f"{src.host}/{unique_repo}:v1", dest=f"{dest.host}/{unique_repo}:v1"),
        task("mounted", IMAGE, src=f"{dest.host}/{unique_repo}:v1", dest=f"{dest.host}/{unique_repo}-mounted:v1"),
        task("pushed from a layout", IMAGE, src=image.oci, dest=f"{dest.host}/{unique_repo}-pushed:v1"),
        task("pulled to a layout", IMAGE, src=f"{dest.host}/{unique_repo}:v1", dest=f"oci:{out}:v1"),
    ]
    run = playbook([{**entry, IMAGE: {**login(registry_token), **entry[IMAGE]}} for entry in tasks])

    copied = succeeded(run, "across registries", src, dest)
    assert copied["changed"] and copied["digest"] == image.digest
    # each blob counted once, however often a fault made it start again
    assert copied["blobs"] == {"copied": blob_total(image), "mounted": 0, "skipped": 0, "bytes": blob_bytes(image)}
    again = succeeded(run, "again", src, dest)
    assert not again["changed"] and again["digest"] == image.digest
    mounted = succeeded(run, "mounted", dest)
    assert mounted["changed"] and mounted["blobs"]["mounted"] == blob_total(image)
    for name in ("pushed from a layout", "pulled to a layout"):
        result = succeeded(run, name, dest)
        assert result["changed"] and result["digest"] == image.digest, (name, result)

    witness = skopeo(registry_token)
    for repo in (unique_repo, f"{unique_repo}-mounted", f"{unique_repo}-pushed"):
        assert_complete(witness, f"{repo}:v1", image.digest, tmp_path)
        for digest in image.manifests.values():
            assert witness.digest(f"{repo}@{digest}") == digest
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == image.digest
    assert_layout_intact(out)
    assert_faults_were_real(src, dest)


def test_registry_tag_promotes_through_faults(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(platforms=PLATFORMS, layers=2, layer_size=200_000, compresslevel=1)
    single = image_factory(layers=2, layer_size=200_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    skopeo(registry_htpasswd).copy(single.oci, f"{unique_repo}:v1")
    schedule = random_faults("tag")
    src, dest = faulty(fault_proxy, registry_open, schedule), faulty(fault_proxy, registry_htpasswd, schedule)
    here = f"{dest.host}/{unique_repo}"
    tasks = [
        # in the repository: one GET of the source, a PUT per tag
        task("same repository", TAG, repository=here, tag=["stable", "1"], source=f"{here}:v1"),
        # another repository of the registry: the blobs are mounted
        task("other repository", TAG, repository=f"{here}-prod", tag=["v1", "stable"], source=f"{here}:v1"),
        # another registry: the copy engine streams the blobs
        task(
            "other registry", TAG, repository=f"{here}-mirror", tag=["v1", "2"], source=f"{src.host}/{unique_repo}:v1"
        ),
        task("same repository again", TAG, repository=here, tag=["stable", "1"], source=f"{here}:v1"),
        task(
            "other registry again",
            TAG,
            repository=f"{here}-mirror",
            tag=["v1", "2"],
            source=f"{src.host}/{unique_repo}:v1",
        ),
    ]
    run = playbook([{**entry, TAG: {**login(registry_htpasswd), **entry[TAG]}} for entry in tasks])

    expected = {
        "same repository": (single.digest, True),
        "other repository": (single.digest, True),
        "other registry": (image.digest, True),
        "same repository again": (single.digest, False),
        "other registry again": (image.digest, False),
    }
    for name, (digest, changed) in expected.items():
        result = succeeded(run, name, src, dest)
        assert (result["digest"], result["changed"]) == (digest, changed), (name, result)

    witness = skopeo(registry_htpasswd)
    for ref in (f"{unique_repo}:stable", f"{unique_repo}:1", f"{unique_repo}-prod:v1", f"{unique_repo}-prod:stable"):
        assert witness.digest(ref) == single.digest, ref
    assert_complete(witness, f"{unique_repo}-prod:stable", single.digest, tmp_path)
    for ref in (f"{unique_repo}-mirror:v1", f"{unique_repo}-mirror:2"):
        assert witness.digest(ref) == image.digest, ref
    assert_complete(witness, f"{unique_repo}-mirror:2", image.digest, tmp_path)
    assert_faults_were_real(src, dest)


def test_registry_info_reads_through_faults(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
) -> None:
    server = registry_factory("token")
    witness = skopeo(server)
    multi = image_factory(platforms=PLATFORMS, layers=1, layer_size=1000, labels={"team": "qa"})
    files = image_factory(layers=1, layer_size=100_000, files={"etc/motd": b"hello through faults\n"})
    for tag in ("v1", "v2", "v3"):
        witness.copy(multi.oci, f"team/multi:{tag}")
    witness.copy(files.oci, "team/files:v1")
    witness.copy(files.oci, "other/files:v1")
    proxy = faulty(fault_proxy, server, random_faults("info"))
    host = proxy.host
    tasks = [
        task("catalog", INFO, registry=host, details=True),
        task("repository", INFO, repository=f"{host}/team/multi", details=True, platform="linux/arm64"),
        task("image", INFO, image=f"{host}/team/files:v1", paths=["/etc/motd", "/etc"]),
        task("missing", INFO, image=f"{host}/team/files:nope"),
    ]
    run = playbook([{**entry, INFO: {**login(server), **entry[INFO]}} for entry in tasks])

    catalog = succeeded(run, "catalog", proxy)
    assert [entry["name"] for entry in catalog["repositories"]] == ["other/files", "team/files", "team/multi"]
    seen = {
        f"{entry['name']}:{details['tag']}": details["digest"]
        for entry in catalog["repositories"]
        for details in entry["tags"]
    }
    assert seen == {ref: witness.digest(ref) for ref in seen} and len(seen) == 5
    repository = succeeded(run, "repository", proxy)
    assert [details["tag"] for details in repository["tags"]] == ["v1", "v2", "v3"]
    for details in repository["tags"]:
        assert details["digest"] == witness.digest(f"team/multi:{details['tag']}") == multi.digest
        assert details["architecture"] == "arm64" and details["labels"] == {"team": "qa"}
        assert {p["digest"] for p in details["platforms"]} == set(multi.manifests.values())
    image = succeeded(run, "image", proxy)["image"]
    assert image["digest"] == witness.digest("team/files:v1") == files.digest
    layers = json.loads(witness.manifest("team/files:v1"))["layers"]
    assert [layer["digest"] for layer in image["layers"]] == [layer["digest"] for layer in layers]
    assert succeeded(run, "image")["files"]["/etc/motd"]["content"] == "hello through faults\n"
    assert succeeded(run, "missing", proxy)["exists"] is False
    assert_faults_were_real(proxy)


def test_registry_repo_retention_reads_ages_through_cut_config_downloads(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo: str,
) -> None:
    """keep_last ranks tags by the created time in each image's config: a config download cut in half is fetched
    again, so the plan is the same as without faults and the newest tags survive."""
    witness = skopeo(registry_open)
    images = {
        f"build-{day}": image_factory(layers=1, layer_size=1000, created=f"2024-01-0{day}T00:00:00Z", seed=day)
        for day in (1, 2, 3, 4)
    }
    for tag, image in images.items():
        witness.copy(image.oci, f"{unique_repo}:{tag}")
    proxy = fault_proxy(registry_open)
    for image in images.values():
        proxy.inject(["truncate", "502"], method="GET", path=image.platforms["linux/amd64"].config.digest)
    options = {"repository": f"{proxy.host}/{unique_repo}", "retention": {"keep_last": 2}}

    run = playbook([task("preview", REPO, **options)], check=True)
    preview = succeeded(run, "preview", proxy)
    assert sorted(preview["deleted_tags"]) == ["build-1", "build-2"]
    assert sorted(witness.list_tags(unique_repo)) == sorted(images)
    assert proxy.faults_applied().count("truncate") == 4

    run = playbook([task("apply", REPO, **options), task("again", REPO, **options)])
    assert sorted(succeeded(run, "apply", proxy)["deleted_tags"]) == ["build-1", "build-2"]
    assert succeeded(run, "again", proxy)["changed"] is False
    assert sorted(witness.list_tags(unique_repo)) == ["build-3", "build-4"]
    for tag in ("build-3", "build-4"):
        assert witness.digest(f"{unique_repo}:{tag}") == images[tag].digest


# ----------------------------------------------------------------------------------------------------
# Truncated blobs: retried, or the task fails with no manifest written


def test_a_truncated_blob_is_retried_and_the_copy_is_exact(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(layers=2, layer_size=400_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    layer = image.platforms["linux/amd64"].layers[0]
    config = image.platforms["linux/amd64"].config
    src = fault_proxy(registry_open)
    src.inject(["truncate", "truncate"], method="GET", path=layer.digest)
    src.inject(["truncate"], method="GET", path=config.digest)

    run = playbook(
        [
            task(
                "copy",
                IMAGE,
                src=f"{src.host}/{unique_repo}:v1",
                dest=f"{registry_htpasswd.host}/{unique_repo}:v1",
                **login(registry_htpasswd),
            ),
            task("describe", INFO, image=f"{src.host}/{unique_repo}:v1", paths=["/"]),
        ]
    )

    assert succeeded(run, "copy")["digest"] == image.digest
    assert succeeded(run, "describe")["image"]["digest"] == image.digest
    assert src.faults_applied().count("truncate") == 3
    layer_gets = [r.fault for r in src.requests if r.method == "GET" and r.path.endswith(layer.digest)]
    assert layer_gets[:3] == ["truncate", "truncate", "pass"]
    assert_complete(skopeo(registry_htpasswd), f"{unique_repo}:v1", image.digest, tmp_path)


def test_a_blob_that_stays_truncated_fails_the_task_and_writes_no_manifest(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo: str,
) -> None:
    image = image_factory(platforms=PLATFORMS, layers=2, layer_size=300_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    bad = image.platforms["linux/amd64"].config  # registry_info reads it too
    src = fault_proxy(registry_open)
    src.inject(["truncate"] * 50, method="GET", path=bad.digest)
    dest = fault_proxy(registry_htpasswd)
    source, target = f"{src.host}/{unique_repo}:v1", f"{dest.host}/{unique_repo}"
    tasks = {
        IMAGE: {"src": source, "dest": f"{target}-image:v1"},
        TAG: {"repository": f"{target}-tag", "tag": ["v1", "stable"], "source": source},
        INFO: {"image": source},
    }

    run = playbook(
        [
            task(module, module, ignore=True, retries=2, **login(registry_htpasswd), **options)
            for module, options in tasks.items()
        ]
    )

    for module in tasks:
        message = failed(run, module)["msg"]
        assert bad.digest in message and "Traceback" not in message, (module, message)
        assert "interrupted" in message or "corrupt" in message, (module, message)
    # each task read the blob 3 times (retries: 2), then gave up
    assert src.faults_applied().count("truncate") == 3 * len(tasks)
    assert manifest_writes(dest) == []
    witness = skopeo(registry_htpasswd)
    for repo in (f"{unique_repo}-image", f"{unique_repo}-tag"):
        assert not witness.exists(f"{repo}:v1") and not witness.exists(f"{repo}:stable")
        for digest in [image.digest, *image.manifests.values()]:
            assert not witness.exists(f"{repo}@{digest}")


# ----------------------------------------------------------------------------------------------------
# Redirected blobs: the other origin never sees the credentials


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_redirected_blobs_never_carry_the_authorization_header(
    kind: str,
    registry_factory: Callable[..., RegistryServer],
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    server = registry_factory(kind)
    image = image_factory(layers=2, layer_size=200_000, files={"etc/motd": b"redirected\n"})
    skopeo(server).copy(image.oci, "t/app:v1")
    proxy = fault_proxy(server)
    store = BlobStore(server.storage)
    proxy.redirect_blobs_to(store)
    scheme = "Basic" if kind == "htpasswd" else "Bearer"
    here = f"{proxy.host}/t/app"
    try:
        run = playbook(
            [
                task(
                    "copy out",
                    IMAGE,
                    src=f"{here}:v1",
                    dest=f"{registry_open.host}/t/redirect-{kind}:v1",
                    credentials={proxy.host: login(server)},
                ),
                task("pull to a layout", IMAGE, src=f"{here}:v1", dest=f"oci:{tmp_path / 'out'}:v1", **login(server)),
                task(
                    "promote",
                    TAG,
                    repository=f"{registry_open.host}/t/redirect-tag-{kind}",
                    tag="v1",
                    source=f"{here}:v1",
                    credentials={proxy.host: login(server)},
                ),
                task("read files", INFO, image=f"{here}:v1", paths=["/etc/motd"], **login(server)),
            ]
        )
    finally:
        store.stop()

    for name in ("copy out", "pull to a layout", "promote"):
        assert succeeded(run, name)["digest"] == image.digest, name
    assert succeeded(run, "read files")["files"]["/etc/motd"]["content"] == "redirected\n"
    assert skopeo(registry_open).digest(f"t/redirect-{kind}:v1") == image.digest
    assert_layout_intact(tmp_path / "out")
    # The registry got the credentials and answered every blob GET with a redirect...
    blob_gets = [r for r in proxy.requests if r.method == "GET" and "/blobs/sha256:" in r.path and r.status != 401]
    assert blob_gets and all(r.status == 307 for r in blob_gets)
    assert all(r.headers.get("Authorization", "").startswith(scheme + " ") for r in blob_gets)
    # ...and the blob store served every blob without ever seeing them.
    assert len(store.requests) >= len(blob_gets)
    assert {path.split("?")[0] for _method, path, _headers in store.requests} >= {
        f"/blobs/{d}" for d in image.blob_digests()
    }
    assert [headers for _method, _path, headers in store.requests if "Authorization" in headers] == []

"""ocireg.registry.registry_image through ansible-playbook, against real registries, with skopeo as the witness."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy
from support.images import Image, add_ref
from support.playbook import PlaybookRun
from support.registry import RegistryServer, free_port
from support.skopeo import Skopeo

MODULE = "ocireg.registry.registry_image"
PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
WRITES = ("POST", "PUT", "PATCH", "DELETE")

Playbook = Callable[..., PlaybookRun]


def task(name: str, *, check: bool = False, ignore: bool = False, **options: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, MODULE: options}
    if check:
        entry["check_mode"] = True
    if ignore:
        entry["ignore_errors"] = True
    return entry


def credentials(*servers: RegistryServer) -> dict[str, Any]:
    return {s.host: {"username": s.username, "password": s.password} for s in servers if s.username}


def ref(server: RegistryServer, name: str) -> str:
    return f"{server.host}/{name}"


def calls(server: RegistryServer, mark: int) -> list[tuple[str, str]]:
    """(method, path) of what the registry answered since MARK, auth handshakes (401) left out."""
    return [(r["method"], r["path"]) for r in server.requests_since(mark) if r["status"] != 401]


def failed(run: PlaybookRun, name: str) -> dict[str, Any]:
    """The result of a task that must have failed (ansible-core 2.19 keeps ``failed`` out of the result dict)."""
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    return entries[-1]["result"]


def blob_count(image: Image) -> int:
    return len({b.digest for p in image.platforms.values() for b in [p.config, *p.layers]})


def blob_bytes(image: Image) -> int:
    unique = {b.digest: b.size for p in image.platforms.values() for b in [p.config, *p.layers]}
    return sum(unique.values())


def blob_data_path(server: RegistryServer, digest: str) -> Path:
    encoded = digest.split(":", 1)[1]
    return server.storage / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"


# ----------------------------------------------------------------------------------------------------
# Registry to registry


def test_multi_platform_copy_to_a_registry_with_auth_check_mode_real_run_and_rerun(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
) -> None:
    # 1.2 MB layers: streamed (POST, PATCH, PUT); configs: sent whole.
    image = image_factory(platforms=PLATFORMS, layers=2, layer_size=1_200_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    copy = task(
        "copy",
        src=ref(registry_open, f"{unique_repo}:v1"),
        dest=ref(registry_htpasswd, f"{unique_repo}:v2"),
        credentials=credentials(registry_htpasswd),
    )
    witness = skopeo(registry_htpasswd)
    expected_blobs = {"copied": blob_count(image), "mounted": 0, "skipped": 0, "bytes": blob_bytes(image)}

    mark = registry_htpasswd.mark()
    checked = playbook([copy], check=True, diff=True).task("copy")
    assert checked["changed"] and checked["digest"] == image.digest, checked
    assert checked["blobs"] == expected_blobs
    assert checked["diff"] == {"before": {"digest": None}, "after": {"digest": image.digest}}
    assert not [call for call in calls(registry_htpasswd, mark) if call[0] in WRITES]
    assert not witness.exists(f"{unique_repo}:v2")

    result = playbook([copy], diff=True).task("copy")
    assert result["changed"] and result["digest"] == image.digest and result["media_type"] == image.media_type
    assert result["blobs"] == expected_blobs
    assert witness.manifest(f"{unique_repo}:v2") == image.manifest
    for platform, digest in image.manifests.items():
        assert witness.digest(f"{unique_repo}@{digest}") == digest, platform
    config = json.loads(witness.inspect(f"{unique_repo}@{image.manifests['linux/arm/v7']}", raw=True, config=True))
    assert config["variant"] == "v7"

    src_mark, dest_mark = registry_open.mark(), registry_htpasswd.mark()
    rerun = playbook([copy], diff=True).task("copy")
    assert not rerun["changed"] and rerun["digest"] == image.digest
    assert rerun["blobs"] == {"copied": 0, "mounted": 0, "skipped": 0, "bytes": 0}
    assert rerun["diff"] == {"before": {"digest": image.digest}, "after": {"digest": image.digest}}
    # One request per manifest, and no blob traffic.
    assert calls(registry_open, src_mark) == [("HEAD", f"/v2/{unique_repo}/manifests/v1")]
    assert calls(registry_htpasswd, dest_mark) == [("HEAD", f"/v2/{unique_repo}/manifests/v2")]


def test_same_registry_copy_mounts_every_blob_with_one_token(
    registry_token: RegistryServer,
    raw_client: Callable[..., Any],
    token_issuer: Any,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    # A Docker manifest list this time (skopeo reads no Docker media types from an OCI layout: push it raw).
    image = image_factory(platforms=PLATFORMS[:2], layers=2, layer_size=600_000, compresslevel=1, media_types="docker")
    raw_client(registry_token).push_image(image, source_repo, ["v1"])
    options = {
        "src": ref(registry_token, f"{source_repo}:v1"),
        "dest": ref(registry_token, f"{dest_repo}:v1"),
        "username": registry_token.username,
        "password": registry_token.password,
    }
    mark, token_mark = registry_token.mark(), token_issuer.mark()

    run = playbook([task("preview", check=True, **options), task("copy", **options)])

    everything = {"copied": 0, "mounted": blob_count(image), "skipped": 0, "bytes": 0}
    assert run.task("preview")["blobs"] == everything and run.task("preview")["changed"]
    assert run.task("copy")["blobs"] == everything and run.task("copy")["digest"] == image.digest
    requests = registry_token.requests_since(mark)
    mounts = [r for r in requests if r["method"] == "POST" and r["params"].get("mount")]
    assert len(mounts) == blob_count(image) and all(r["status"] == 201 for r in mounts)
    assert all(r["params"]["from"] == [source_repo] for r in mounts)
    # Zero blob bytes moved: no download, no upload session with data.
    assert not [r for r in requests if r["method"] in ("PATCH", "PUT") and "/blobs/" in r["path"]]
    assert not [r for r in requests if r["method"] == "GET" and "/blobs/" in r["path"]]
    wanted = {f"repository:{source_repo}:pull", f"repository:{dest_repo}:pull,push"}
    assert any(wanted <= set(r.scopes) for r in token_issuer.requests_since(token_mark))
    assert skopeo(registry_token).digest(f"{dest_repo}:v1") == image.digest


def test_platform_subsets_force_and_single_platform_sources(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    source_repo, dest_repo = unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=PLATFORMS, layers=1)
    single = image_factory(layers=1)
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{source_repo}:multi")
    witness.copy(single.oci, f"{source_repo}:single")
    src = ref(registry_open, f"{source_repo}:multi")

    run = playbook(
        [
            task("arm only", src=src, dest=ref(registry_open, f"{dest_repo}:arm"), platforms=["linux/arm64"]),
            task("arm again", src=src, dest=ref(registry_open, f"{dest_repo}:arm"), platforms="linux/aarch64"),
            task(
                "all named", src=src, dest=ref(registry_open, f"{dest_repo}:all"), platforms=list(reversed(PLATFORMS))
            ),
            task("forced", src=src, dest=ref(registry_open, f"{dest_repo}:all"), force=True),
            task("by digest", src=src, dest=ref(registry_open, dest_repo), platforms=["linux/arm/v7"]),
            task(
                "single ok",
                src=ref(registry_open, f"{source_repo}:single"),
                dest=ref(registry_open, f"{dest_repo}:s"),
                platforms=["linux/amd64", "linux/arm64"],
            ),
            task(
                "single wrong",
                ignore=True,
                src=ref(registry_open, f"{source_repo}:single"),
                dest=ref(registry_open, f"{dest_repo}:s2"),
                platforms=["linux/arm64"],
            ),
        ]
    )

    arm = run.task("arm only")
    assert arm["changed"] and arm["digest"] != image.digest and arm["blobs"]["mounted"] == 2
    index = json.loads(witness.manifest(f"{dest_repo}:arm"))
    assert [(m["digest"], m["platform"]["architecture"]) for m in index["manifests"]] == [
        (image.manifests["linux/arm64"], "arm64")
    ]
    assert witness.digest(f"{dest_repo}:arm") == arm["digest"]
    assert not run.task("arm again")["changed"]
    assert run.task("all named")["digest"] == image.digest == witness.digest(f"{dest_repo}:all")
    forced = run.task("forced")
    assert forced["changed"] and forced["blobs"] == {
        "copied": 0,
        "mounted": 0,
        "skipped": blob_count(image),
        "bytes": 0,
    }
    by_digest = run.task("by digest")
    assert by_digest["changed"] and witness.exists(f"{dest_repo}@{by_digest['digest']}")
    assert sorted(witness.list_tags(dest_repo)) == ["all", "arm", "s"]
    assert run.task("single ok")["digest"] == single.digest
    wrong = failed(run, "single wrong")
    assert "single-platform image for linux/amd64" in wrong["msg"]


# ----------------------------------------------------------------------------------------------------
# Local stores, both ways


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_oci_stores_both_ways_with_skopeo(
    transport: str,
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    repo = unique_repo_factory()
    image = image_factory(platforms=PLATFORMS[:2], layers=2, layer_size=300_000)
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{repo}:v1")
    suffix = "" if transport == "oci" else ".tar"
    ours, theirs = tmp_path / f"ours{suffix}", tmp_path / f"theirs{suffix}"
    witness.copy(f"{repo}:v1", f"{transport}:{theirs}:release")  # skopeo writes, we read
    write = {"src": ref(registry_open, f"{repo}:v1"), "dest": f"{transport}:{ours}:v1"}
    read = {"src": f"{transport}:{theirs}:release", "dest": ref(registry_open, f"{repo}-read:v1")}

    run = playbook(
        [
            task("preview", check=True, **write),
            {"name": "look", "ansible.builtin.stat": {"path": str(ours)}, "register": "look"},
            task("write", **write),
            task("write again", **write),
            task("read", **read),
            task("read again", **read),
        ],
        diff=True,
    )

    preview = run.task("preview")
    assert preview["changed"] and preview["blobs"]["copied"] == blob_count(image)
    assert not run.task("look")["stat"]["exists"]
    written = run.task("write")
    assert written["changed"] and written["digest"] == image.digest and written["blobs"] == preview["blobs"]
    assert not run.task("write again")["changed"]
    assert run.task("read")["changed"] and run.task("read")["digest"] == image.digest
    assert not run.task("read again")["changed"]
    assert witness.digest(f"{repo}-read:v1") == image.digest
    # skopeo reads what we wrote, byte for byte.
    witness.copy(f"{transport}:{ours}:v1", f"{repo}-back:v1")
    assert witness.manifest(f"{repo}-back:v1") == image.manifest
    for platform, digest in image.manifests.items():
        assert witness.digest(f"{repo}-back@{digest}") == digest, platform


def test_docker_archives_both_ways_with_skopeo(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    repo = unique_repo_factory()
    image = image_factory(platforms=PLATFORMS[:2], layers=2, layer_size=300_000)
    arm = image.platforms["linux/arm64"]
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{repo}:v1")
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    witness.copy(
        f"{repo}:v1",
        f"docker-archive:{theirs}:example.com/team/app:7",
        all=False,
        preserve_digests=False,
        extra=["--override-arch", "arm64"],
    )
    write = {
        "src": ref(registry_open, f"{repo}:v1"),
        "dest": f"docker-archive:{ours}:team/app:v1",
        "platforms": ["linux/arm64"],
    }
    read = {"src": f"docker-archive:{theirs}:example.com/team/app:7", "dest": ref(registry_open, f"{repo}-read:v1")}

    run = playbook(
        [
            task("preview", check=True, **write),
            {"name": "look", "ansible.builtin.stat": {"path": str(ours)}, "register": "look"},
            task("write", **write),
            task("write again", **write),
            task("every platform", ignore=True, **{**write, "platforms": "all"}),
            task("read", **read),
            task("read again", **{**read, "src": f"docker-archive:{theirs}"}),
        ]
    )

    assert run.task("preview")["changed"] and run.task("preview")["digest"] == arm.config.digest
    assert not run.task("look")["stat"]["exists"]
    written = run.task("write")
    assert written["changed"] and written["digest"] == arm.config.digest  # the image ID
    assert not run.task("write again")["changed"]
    refused = failed(run, "every platform")
    assert "choose one with platforms" in refused["msg"]
    with tarfile.open(ours) as archive:
        entries = json.loads(archive.extractfile("manifest.json").read())
        assert entries[0]["RepoTags"] == ["team/app:v1"]
        assert archive.extractfile(entries[0]["Config"]).read() == arm.config_bytes
        assert [m.size for m in archive.getmembers() if m.name.endswith(".tar")] == [
            m.size for m in archive.getmembers() if m.name in entries[0]["Layers"]
        ]
    # skopeo reads our archive: same config, the layers it holds are the diff IDs.
    inspected = witness.inspect(f"docker-archive:{ours}")
    assert inspected["Digest"] and inspected["Architecture"] == "arm64"
    assert witness.inspect(f"docker-archive:{ours}", raw=True, config=True) == arm.config_bytes
    config = json.loads(arm.config_bytes)
    assert sorted(layer for layer in inspected["Layers"]) == sorted(config["rootfs"]["diff_ids"])
    # we read skopeo's archive: same config, uncompressed layers, an OCI manifest; a re-run changes nothing.
    read_result = run.task("read")
    assert read_result["changed"] and not run.task("read again")["changed"]
    pushed = json.loads(witness.manifest(f"{repo}-read:v1"))
    assert pushed["config"]["digest"] == arm.config.digest
    assert [layer["digest"] for layer in pushed["layers"]] == config["rootfs"]["diff_ids"]
    assert witness.digest(f"{repo}-read:v1") == read_result["digest"]


# ----------------------------------------------------------------------------------------------------
# Failures change nothing


def test_a_corrupted_source_blob_fails_with_a_digest_error_and_writes_no_manifest(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(platforms=PLATFORMS[:2], layers=2, layer_size=1_500_000, compresslevel=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    victim = image.platforms["linux/arm64"].layers[1]
    data_path = blob_data_path(registry_open, victim.digest)
    data = bytearray(data_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    data_path.write_bytes(bytes(data))
    src = ref(registry_open, f"{unique_repo}:v1")
    layout = tmp_path / "layout"
    mark = registry_htpasswd.mark()

    run = playbook(
        [
            task(
                "to registry",
                ignore=True,
                src=src,
                dest=ref(registry_htpasswd, f"{unique_repo}:v1"),
                credentials=credentials(registry_htpasswd),
            ),
            task("to layout", ignore=True, src=src, dest=f"oci:{layout}:v1"),
        ]
    )

    for name in ("to registry", "to layout"):
        result = failed(run, name)
        assert not result["changed"], result
        assert "corrupt" in result["msg"] and victim.digest in result["msg"], result["msg"]
    assert not [c for c in calls(registry_htpasswd, mark) if c[0] == "PUT" and "/manifests/" in c[1]]
    assert not skopeo(registry_htpasswd).exists(f"{unique_repo}:v1")
    assert not (layout / "index.json").exists()
    assert not [p.name for p in (layout / "blobs" / "sha256").iterdir() if p.name.startswith(".")]


def test_bad_values_fail_with_clear_messages_and_change_nothing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory(platforms=PLATFORMS[:2], layers=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:v1")
    src = ref(registry_open, f"{unique_repo}:v1")
    dest = ref(registry_open, f"{unique_repo}-dest:v1")
    cases = {
        "empty oci path": ({"src": "oci:", "dest": dest}, "src 'oci:' names no directory"),
        "unsupported transport": (
            {"src": "dir:/tmp/image", "dest": dest},
            "uses skopeo's dir: transport, which this collection does not support",
        ),
        "bad dest": ({"src": src, "dest": "Team/App:v1"}, "dest: Invalid image reference 'Team/App:v1'"),
        "bad oci ref": ({"src": src, "dest": f"oci:{tmp_path}/x:-bad"}, "is not a valid OCI reference name"),
        "bad platform": ({"src": src, "dest": dest, "platforms": ["linux"]}, "Invalid platform 'linux'"),
        "all in a list": ({"src": src, "dest": dest, "platforms": ["all", "linux/amd64"]}, "'all' is not a platform"),
        "no platforms": ({"src": src, "dest": dest, "platforms": []}, "platforms must be 'all' or a list"),
        "missing platform": (
            {"src": src, "dest": dest, "platforms": ["linux/riscv64"]},
            "no platform linux/riscv64; it has linux/amd64, linux/arm64",
        ),
        "jobs": ({"src": src, "dest": dest, "jobs": 0}, "jobs must be from 1 to 64, got 0"),
        "missing image": ({"src": ref(registry_open, f"{unique_repo}:nope"), "dest": dest}, "does not exist"),
        "missing layout": ({"src": f"oci:{tmp_path}/none:v1", "dest": dest}, "does not exist"),
        "wrong digest": ({"src": src, "dest": f"{dest}@sha256:{'0' * 64}"}, "but the image to copy has digest"),
        "no src": ({"dest": dest}, "state is present but all of the following are missing: src"),
    }
    mark = registry_open.mark()

    run = playbook([task(name, ignore=True, **options) for name, (options, _message) in cases.items()])

    for name, (_options, message) in cases.items():
        result = failed(run, name)
        assert not result.get("changed"), (name, result)
        assert message in result["msg"], (name, result["msg"])
        assert "Traceback" not in result["msg"]
    assert not [c for c in calls(registry_open, mark) if c[0] in WRITES]
    assert not (tmp_path / "x").exists()


def test_other_transports_and_docker_hub_readings_say_what_the_src_was_taken_for(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
) -> None:
    image = image_factory(layers=1)
    skopeo(registry_open).copy(image.oci, f"{unique_repo}:1.1.0")
    dest = ref(registry_open, f"{unique_repo}-dest:v1")
    supported = (
        "The supported transports are docker:// (or no prefix) for a registry reference"
        " ([registry/]repository[:tag][@digest]), oci:DIR[:REF], oci-archive:FILE[:REF] and docker-archive:FILE[:REF]."
    )
    # Docker Hub is made unreachable, and quickly so, whatever the machine's network: HTTPS goes to a closed port.
    no_hub = {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": "127.0.0.1,localhost"}
    cases = {
        "skopeo transport": (
            {"src": "containers-storage:foo", "dest": dest},
            "src 'containers-storage:foo' uses skopeo's containers-storage: transport, which this collection does not"
            f" support. {supported} To name the Docker Hub image containers-storage:foo, write"
            " docker://containers-storage:foo.",
        ),
        "unknown transport": (
            {"src": "podman:/var/lib/images/app", "dest": dest},
            f"src 'podman:/var/lib/images/app' starts with 'podman:', which is not a transport this collection knows."
            f" {supported}",
        ),
        "bare tag": (
            {"src": "1.1.0", "dest": dest, "retries": 0},
            "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name"
            " a tag of a repository, write REGISTRY/REPOSITORY:1.1.0.",
        ),
    }
    tasks = [{**task(name, ignore=True, **options), "environment": no_hub} for name, (options, _m) in cases.items()]

    for check in (True, False):
        mark = registry_open.mark()
        run = playbook(tasks, check=check)
        for name, (_options, message) in cases.items():
            result = failed(run, name)
            assert not result.get("changed"), (name, result)
            if name == "bare tag":
                assert result["msg"].startswith("Cannot reach registry docker.io"), result["msg"]
                assert result["msg"].endswith(". " + message) and result["msg"].count(message) == 1, result["msg"]
            else:
                assert result["msg"] == message, result["msg"]
        assert not [c for c in calls(registry_open, mark) if c[0] in WRITES]
        assert not skopeo(registry_open).exists(f"{unique_repo}-dest:v1")


def test_source_quirks_schema1_is_refused_foreign_layers_are_left_out(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    # distribution refuses manifests with URLs unless told which ones to allow.
    registry = registry_factory(
        "open", config_overrides={"validation": {"manifests": {"urls": {"allow": ["^https://"]}}}}
    )
    image = image_factory(layers=1, media_types="docker", ref="base")
    document = json.loads(image.manifest)
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": "sha256:" + "f" * 64,
        "size": 123456,
        "urls": ["https://example.invalid/layer.tar.gz"],
    }
    document["layers"].insert(0, foreign)
    windows = _add_manifest(image, json.dumps(document).encode(), document["mediaType"], "windows")
    schema1 = json.dumps({"schemaVersion": 1, "name": "t/old", "tag": "v1", "fsLayers": [], "history": []}).encode()
    _add_manifest(image, schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", "old")
    mark = registry.mark()

    run = playbook(
        [
            task("foreign", src=f"oci:{image.path}:windows", dest=ref(registry, "t/win:v1")),
            task("schema1", ignore=True, src=f"oci:{image.path}:old", dest=ref(registry, "t/old:v1")),
        ]
    )

    assert run.task("foreign")["changed"] and run.task("foreign")["blobs"]["copied"] == 2
    assert skopeo(registry).digest("t/win:v1") == windows
    assert not [r for r in registry.requests_since(mark) if foreign["digest"] in r["path"] + r["query"]]
    refused = failed(run, "schema1")
    assert "schema 1" in refused["msg"] and "not supported" in refused["msg"]
    assert not skopeo(registry).exists("t/old:v1")


def _add_manifest(image: Image, raw: bytes, media_type: str, name: str) -> str:
    """Store RAW in IMAGE's layout and name it NAME in its index.json; returns its digest."""
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    image.blob_path(digest).write_bytes(raw)
    index = json.loads((image.path / "index.json").read_text())
    index["manifests"].append(
        {
            "mediaType": media_type,
            "digest": digest,
            "size": len(raw),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }
    )
    (image.path / "index.json").write_text(json.dumps(index))
    return digest


# ----------------------------------------------------------------------------------------------------
# state: absent, interrupted uploads


def test_absent_deletes_what_dest_resolves_to(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
) -> None:
    image = image_factory(layers=1)
    other = image_factory(layers=1, dest_dir=image.path, ref="other")
    add_ref(image, "alias")
    witness = skopeo(registry_open)
    witness.copy(image.oci, f"{unique_repo}:a")
    witness.copy(image.oci, f"{unique_repo}:b")
    witness.copy(other.oci, f"{unique_repo}:keep")
    registry_dest = ref(registry_open, f"{unique_repo}:a")
    layout_dest = f"oci:{image.path}:alias"

    run = playbook(
        [
            task("preview", check=True, dest=registry_dest, state="absent"),
            task("delete", dest=registry_dest, state="absent"),
            task("delete again", dest=registry_dest, state="absent"),
            task("preview layout", check=True, dest=layout_dest, state="absent"),
            task("delete layout", dest=layout_dest, state="absent"),
            task("delete layout again", dest=layout_dest, state="absent"),
        ],
        diff=True,
    )

    for prefix in ("", "layout "):
        preview, deleted = run.task(f"preview {prefix}".strip()), run.task(f"delete {prefix}".strip())
        assert preview["changed"] and preview["digest"] == image.digest
        # the real run still found it: the preview deleted nothing
        assert deleted["changed"] and deleted["digest"] == image.digest
        assert deleted["diff"] == {"before": {"digest": image.digest}, "after": {"digest": None}}
        again = run.task(f"delete {prefix}again")
        assert not again["changed"] and again["digest"] is None
    assert not witness.exists(f"{unique_repo}:a") and not witness.exists(f"{unique_repo}:b")
    assert witness.digest(f"{unique_repo}:keep") == other.digest
    index = json.loads((image.path / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["other"]
    assert not image.blob_path(image.platforms["linux/amd64"].layers[0].digest).exists()
    assert other.blob_path(other.platforms["linux/amd64"].layers[0].digest).exists()


def test_interrupted_uploads_start_again_from_a_fresh_session(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    fault_proxy: Callable[..., FaultProxy],
    playbook: Playbook,
    unique_repo_factory: Callable[[], str],
) -> None:
    # Up to 16 MiB a blob goes as one streamed PUT (POST, PUT); above, as a streamed PATCH (POST, PATCH, PUT).
    small_repo, big_repo = unique_repo_factory(), unique_repo_factory()
    small = image_factory(layers=1, layer_size=1_500_000, compresslevel=1)
    big = image_factory(layers=1, layer_size=17 * 1024 * 1024, compresslevel=1)
    witness = skopeo(registry_open)
    witness.copy(small.oci, f"{small_repo}:v1")
    witness.copy(big.oci, f"{big_repo}:v1")
    proxy = fault_proxy(registry_open)
    proxy.inject(["drop"], method="PUT", path=r"/blobs/uploads/")
    proxy.inject(["drop"], method="PATCH")

    run = playbook(
        [
            task(name, src=ref(registry_open, f"{repo}:v1"), dest=f"{proxy.host}/{repo}-copy:v1", jobs=1)
            for name, repo in (("small", small_repo), ("big", big_repo))
        ]
    )

    def uploads(repo: str) -> list[str]:
        return [r.method for r in proxy.requests if r.path.startswith(f"/v2/{repo}-copy/blobs/uploads/")]

    for name in ("small", "big"):
        assert run.task(name)["changed"] and run.task(name)["blobs"]["copied"] == 2, run.task(name)
    # the layer (largest first): its dropped attempt, then a fresh session; then the config in one PUT
    assert uploads(small_repo) == ["POST", "PUT", "POST", "PUT", "POST", "PUT"]
    assert uploads(big_repo) == ["POST", "PATCH", "POST", "PATCH", "PUT", "POST", "PUT"]
    assert proxy.faults_applied() == ["drop", "drop"]
    assert witness.digest(f"{small_repo}-copy:v1") == small.digest
    assert witness.digest(f"{big_repo}-copy:v1") == big.digest

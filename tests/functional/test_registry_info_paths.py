"""registry_info ``paths``: the flattened filesystem of images in the real registry.

Layers are built by the image factory (whiteouts, opaque directories, symlinks, binary files), recompressed
with zstd by skopeo, or pushed uncompressed; what a container would see is spelled out in each test.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
from collections.abc import Callable
from typing import Any

from support.images import OCI_MANIFEST, File, Image, Opaque, Symlink, read_blob
from support.playbook import PlaybookRun
from support.rawhttp import RawClient
from support.registry import RegistryServer
from support.skopeo import Skopeo

MODULE = "ocireg.registry.registry_info"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
Playbook = Callable[..., PlaybookRun]

BINARY = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))
LOWER = {
    "/etc/app.conf": b"version=1\n",
    "/etc/old.conf": b"old\n",
    "/opt/data/a": b"a\n",
    "/opt/data/sub/b": b"b\n",
    "/usr/lib/os-release": b'ID=ocireg\nPRETTY_NAME="ocireg test"\n',
    "/usr/bin/tool": File(BINARY, 0o755),
    "/big.txt": b"x" * 5000,
}
UPPER = {
    "/etc/old.conf": None,  # whiteout
    "/opt/data": Opaque(),  # hides a and sub/ from the lower layer
    "/opt/data/c": b"c\n",
    "/etc/app.conf": b"version=2\n",
    "/etc/os-release": Symlink("../usr/lib/os-release"),
    "/bin": Symlink("usr/bin"),
}


def task(name: str, ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, MODULE: args}
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def creds(server: RegistryServer) -> dict[str, str]:
    return {"username": server.username, "password": server.password} if server.username else {}


def ok(run: PlaybookRun, name: str) -> dict[str, Any]:
    result = run.task(name)
    assert not result.get("failed") and "exception" not in result, result.get("msg") or run.output
    assert result["changed"] is False
    return result


def failed(run: PlaybookRun, name: str) -> dict[str, Any]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    return entries[-1]["result"]


def entry_names(listing: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in listing["entries"]]


def blob_gets(server: RegistryServer, mark: int) -> list[str]:
    return [
        e["path"].rsplit("/", 1)[1]
        for e in server.requests_since(mark)
        if e["method"] == "GET" and "/blobs/" in e["path"] and e["status"] == 200
    ]


def test_paths_show_the_merged_layers_with_whiteouts_opaque_directories_and_symlinks(
    registry_token: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1, files=[LOWER, UPPER])
    skopeo(registry_token).copy(image.oci, "%s:v1" % unique_repo)
    paths = [
        "/",
        "/etc",
        "/etc/app.conf",
        "/etc/old.conf",
        "/opt/data",
        "/opt/data/sub/b",
        "/etc/os-release",
        "bin/tool",
        "/big.txt",
        "/missing/file",
    ]
    mark = registry_token.mark()

    run = playbook(
        [
            task(
                "files",
                image="%s/%s:v1" % (registry_token.host, unique_repo),
                paths=paths,
                max_file_size=4096,
                **creds(registry_token),
            )
        ]
    )

    result = ok(run, "files")
    files = result["files"]
    assert sorted(files) == sorted(paths)
    assert entry_names(files["/"]) == ["big.txt", "bin", "data", "etc", "opt", "usr"]
    assert files["/etc"]["type"] == "dir"
    assert files["/etc"]["entries"] == [
        {"name": "app.conf", "type": "file", "mode": "0644", "size": 10},
        {"name": "os-release", "type": "symlink", "mode": "0777", "size": 0, "target": "../usr/lib/os-release"},
    ]
    assert files["/etc/app.conf"] == {
        "exists": True,
        "path": "/etc/app.conf",
        "type": "file",
        "mode": "0644",
        "size": 10,
        "content": "version=2\n",
    }
    assert files["/etc/old.conf"] == {"exists": False, "path": "/etc/old.conf"}
    assert entry_names(files["/opt/data"]) == ["c"]
    assert files["/opt/data/sub/b"]["exists"] is False
    assert files["/etc/os-release"]["path"] == "/usr/lib/os-release"
    assert files["/etc/os-release"]["content"] == LOWER["/usr/lib/os-release"].decode()
    tool = files["bin/tool"]
    assert (tool["path"], tool["mode"], tool["size"]) == ("/usr/bin/tool", "0755", len(BINARY))
    assert base64.b64decode(tool["content_base64"]) == BINARY and "content" not in tool
    assert files["/big.txt"]["content_omitted"] is True and files["/big.txt"]["size"] == 5000
    assert "content" not in files["/big.txt"]
    assert any("/big.txt" in warning and "max_file_size" in warning for warning in result["warnings"])
    assert files["/missing/file"] == {"exists": False, "path": "/missing/file"}

    # Every layer once, bottom first, then the lower files layer again for the bytes the symlinks led to.
    platform = image.platforms["linux/amd64"]
    layers = [layer.digest for layer in platform.layers]
    assert blob_gets(registry_token, mark) == [platform.config.digest, *layers, layers[1]]


def test_paths_read_the_chosen_platform_of_an_index(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = image_factory(platforms=["linux/amd64", "linux/arm64"], layers=2, seed="paths-index")
    skopeo(registry_open).copy(image.oci, "%s:multi" % unique_repo)
    reference = "%s/%s:multi" % (registry_open.host, unique_repo)
    mark = registry_open.mark()

    run = playbook(
        [
            task("arm64", image=reference, platform="linux/arm64", paths=["/data"]),
            task("s390x", ignore_errors=True, image=reference, platform="linux/s390x", paths=["/data"]),
            task("missing", image=reference.replace(":multi", ":nope"), paths=["/data"]),
        ]
    )

    # The factory names each random layer's file after its seed: data/<sha256(seed)[:12]>.bin.
    expected = sorted(
        "%s.bin" % hashlib.sha256(("paths-index/linux/arm64/%d" % i).encode()).hexdigest()[:12] for i in range(2)
    )
    arm64 = ok(run, "arm64")
    assert entry_names(arm64["files"]["/data"]) == expected
    assert arm64["image"]["digest"] == image.digest
    arm64_blobs = {
        blob.digest for blob in [image.platforms["linux/arm64"].config, *image.platforms["linux/arm64"].layers]
    }
    assert set(blob_gets(registry_open, mark)) == arm64_blobs  # nothing of the amd64 image was read

    refused = failed(run, "s390x")
    assert "no manifest for platform linux/s390x" in refused["msg"]
    assert "linux/amd64" in refused["msg"] and "linux/arm64" in refused["msg"]
    missing = ok(run, "missing")
    assert (missing["exists"], missing["image"], missing["files"]) == (False, None, {})


def test_zstd_and_uncompressed_layers(
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    raw_client: Callable[..., RawClient],
    unique_repo: str,
) -> None:
    image = image_factory(layers=1, files=[LOWER, UPPER])
    skopeo(registry_htpasswd).copy(
        image.oci, "%s:zstd" % unique_repo, preserve_digests=False, extra=["--dest-compress-format", "zstd"]
    )
    push_uncompressed(raw_client(registry_htpasswd), image, unique_repo, "plain")
    base = "%s/%s" % (registry_htpasswd.host, unique_repo)
    auth = creds(registry_htpasswd)
    paths = ["/etc/app.conf", "/opt/data", "/etc/os-release"]

    run = playbook(
        [
            task("zstd", ignore_errors=True, image=base + ":zstd", paths=paths, **auth),
            task("plain", image=base + ":plain", paths=paths, **auth),
        ]
    )

    plain = ok(run, "plain")
    assert {layer["media_type"] for layer in plain["image"]["layers"]} == {OCI_LAYER_TAR}
    assert plain["files"]["/etc/app.conf"]["content"] == "version=2\n"
    assert entry_names(plain["files"]["/opt/data"]) == ["c"]
    assert plain["files"]["/etc/os-release"]["content"].startswith("ID=ocireg\n")

    # The task's Python is this one (the playbook fixture runs modules with sys.executable).
    if importlib.util.find_spec("zstandard") is not None:
        zstd = ok(run, "zstd")
        assert {layer["media_type"] for layer in zstd["image"]["layers"]} == {OCI_LAYER_ZSTD}
        assert zstd["files"] == plain["files"]
    else:
        refused = failed(run, "zstd")
        assert "compressed with zstd" in refused["msg"] and "pip install zstandard" in refused["msg"]


def push_uncompressed(client: RawClient, image: Image, repository: str, tag: str) -> None:
    """Push IMAGE with every layer stored as a plain tar (same diff_ids, so the same config)."""
    platform = image.platforms["linux/amd64"]
    client.upload_blob(repository, platform.config.digest, platform.config_bytes)
    layers = []
    for layer in platform.layers:
        data = gzip.decompress(read_blob(image, layer.digest))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.upload_blob(repository, digest, data)
        layers.append({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": platform.config.media_type,
            "digest": platform.config.digest,
            "size": platform.config.size,
        },
        "layers": layers,
    }
    client.put_manifest(repository, tag, json.dumps(manifest).encode(), OCI_MANIFEST)

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local image stores (plugins/module_utils/_image/stores.py, files.py, layout.py, docker_archive.py), on disk."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import types

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.docker_archive import (
    DockerArchiveDestination,
    DockerArchiveSource,
    gunzip,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.files import TarFiles, TarWriter, _header
from ansible_collections.ocireg.registry.plugins.module_utils._image.layout import (
    LayoutArchiveDestination,
    LayoutDirDestination,
    open_layout_archive,
    open_layout_dir,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    RegistrySource,
    noting_docker_hub,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.stores import local_file_errors
from ansible_collections.ocireg.registry.plugins.module_utils._oci.location import StoreLocation, parse_location
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, parse_reference


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    "text, expected",
    [
        ("oci:/srv/layout", StoreLocation("oci", "/srv/layout", None)),
        ("oci:/srv/layout:v1.2", StoreLocation("oci", "/srv/layout", "v1.2")),
        ("oci:/srv/layout:a:b@c/d", StoreLocation("oci", "/srv/layout", "a:b@c/d")),
        ("oci-archive:/srv/a.tar:latest", StoreLocation("oci-archive", "/srv/a.tar", "latest")),
        ("docker-archive:/srv/d.tar", StoreLocation("docker-archive", "/srv/d.tar", None)),
        ("docker-archive:/srv/d.tar:reg:5000/app:v1", StoreLocation("docker-archive", "/srv/d.tar", "reg:5000/app:v1")),
        ("docker-archive:/srv/d.tar:@2", StoreLocation("docker-archive", "/srv/d.tar", "@2")),
    ],
)
def test_local_store_names(text, expected):
    assert parse_location(text) == expected


def test_relative_and_home_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_location("oci:layout:v1").path == str(tmp_path / "layout")
    assert parse_location("oci-archive:~/a.tar").path == str(tmp_path / "home" / "a.tar")


def test_registry_references_and_the_dest_default():
    assert parse_location("alpine") == parse_reference("alpine:latest")
    assert parse_location("docker://ghcr.io/org/app:1") == parse_reference("ghcr.io/org/app:1")
    assert parse_location("127.0.0.1:5000/team/app", "dest", default_tag=None) == Reference(
        "127.0.0.1:5000", "team/app"
    )
    # A word and a colon, followed by a tag (however malformed) or by a port and a path, is a registry reference.
    assert parse_location("dirt:latest") == parse_reference("docker.io/library/dirt:latest")
    assert parse_location("registry:5000/team/app") == parse_reference("registry:5000/team/app:latest")
    # A skopeo transport name is one, as skopeo reads it: docker:// names the Docker Hub image of that name.
    assert parse_location("docker://dir:latest") == parse_reference("docker.io/library/dir:latest")
    with pytest.raises(InvalidReferenceError, match="Invalid tag '-x'"):
        parse_location("app:-x")


def test_docker_archive_references_normalise():
    assert parse_location("docker-archive:/d.tar:busybox").archive_reference() == parse_reference("busybox:latest")
    assert parse_location("docker-archive:/d.tar:@3").archive_reference() == 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("oci:", "names no directory"),
        ("oci-archive::v1", "names no file"),
        ("oci:/srv/x:", "ends with ':' and no REF"),
        ("oci:/srv/x:bad ref", "not a valid OCI reference name"),
        ("oci:/srv/x:-v1", "not a valid OCI reference name"),
        ("docker-archive:/d.tar:App:v1", "docker-archive REF must be NAME:TAG"),
        ("docker-archive:/d.tar:app@sha256:" + "a" * 64, "without a digest"),
        ("dir:/srv/image", "src 'dir:/srv/image' uses skopeo's dir: transport, which this collection does not support"),
        ("containers-storage:/var/lib/x", "containers-storage: transport, which this collection does not support"),
        ("Team/App:v1", "src: Invalid image reference"),
        ("", "src must be a registry reference"),
        (None, "src must be a registry reference"),
    ],
)
def test_bad_names_are_refused_with_the_value(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_location(text)


SUPPORTED = (
    "The supported transports are docker:// (or no prefix) for a registry reference"
    " ([registry/]repository[:tag][@digest]), oci:DIR[:REF], oci-archive:FILE[:REF] and docker-archive:FILE[:REF]."
)


@pytest.mark.parametrize(
    "text, message, hub_image",
    [
        # skopeo's transports whatever follows, with the way to name a Docker Hub image of that name where there is one
        (
            "containers-storage:foo",
            "dest 'containers-storage:foo' uses skopeo's containers-storage: transport, which this collection does not"
            " support. " + SUPPORTED,
            True,
        ),
        (
            "docker-daemon:app:1.0",
            "dest 'docker-daemon:app:1.0' uses skopeo's docker-daemon: transport, which this collection does not"
            " support. " + SUPPORTED,
            False,
        ),
        ("dir:latest", "dest 'dir:latest' uses skopeo's dir: transport", True),
        # any other word followed by a path or by more colons
        (
            "podman:/srv/images/app",
            "dest 'podman:/srv/images/app' starts with 'podman:', which is not a transport this collection knows. "
            + SUPPORTED,
            False,
        ),
        ("cache:team/app:1", "dest 'cache:team/app:1' starts with 'cache:', which is not a transport", False),
        ("oci-layout:a:b", "dest 'oci-layout:a:b' starts with 'oci-layout:', which is not a transport", False),
    ],
)
def test_other_transports_are_refused_listing_the_supported_ones(text, message, hub_image):
    with pytest.raises(InvalidInputError) as caught:
        parse_location(text, "dest")
    assert str(caught.value).startswith(message), str(caught.value)
    assert SUPPORTED in str(caught.value)
    hint = " To name the Docker Hub image %s, write docker://%s." % (text, text)
    assert str(caught.value).endswith(hint) is hub_image, str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["app:1.0", "localhost:5000/team/app", "registry:5000/app:v1", "https://ghcr.io/org/app", "[::1]:5000/app"],
)
def test_words_before_a_tag_a_port_or_a_scheme_are_not_transports(text):
    assert isinstance(parse_location(text), Reference)


@pytest.mark.parametrize(
    "text, message",
    [
        ("app:", "':' must be followed by a tag"),
        ("app:bad!", "Invalid tag 'bad!'"),
        ("localhost:web/app", "the port must be a number"),
        ("ftp://host/app", "only the 'http://' and 'https://' prefixes are allowed"),
    ],
)
def test_malformed_references_are_judged_as_references(text, message):
    with pytest.raises(InvalidReferenceError, match=message):
        parse_location(text)


def test_a_registry_source_read_as_a_docker_hub_image_says_so_once(make_registry):
    hub = make_registry("docker.io")
    hub.transport = types.SimpleNamespace(retry=None)  # what RegistrySource reads of a RegistryClient's transport
    source = RegistrySource(hub, parse_location("1.1.0"))
    note = (
        "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name a"
        " tag of a repository, write REGISTRY/REPOSITORY:1.1.0."
    )
    for read in (source.peek, source.top_manifest):
        with pytest.raises(NotFoundError) as caught:
            read()
        assert str(caught.value) == (
            "The source image docker.io/library/1.1.0:latest does not exist (registry docker.io has no manifest latest"
            " in repository library/1.1.0). " + note
        )
    hub.fail_on("head_manifest", error=RegistryError("Cannot reach registry docker.io at registry-1.docker.io"))
    with pytest.raises(RegistryError) as caught:
        with noting_docker_hub(source.reference, tag_of="registry.test/team/app"):  # as registry_tag would, around it
            source.peek()
    assert str(caught.value) == "Cannot reach registry docker.io at registry-1.docker.io. " + note
    # Named explicitly, Docker Hub is what was meant: nothing to add.
    explicit = RegistrySource(hub, parse_location("docker.io/library/1.1.0"))
    with pytest.raises(RegistryError) as caught:
        explicit.peek()
    assert str(caught.value) == "Cannot reach registry docker.io at registry-1.docker.io"


# ----------------------------------------------------------------------------------------------------
# Tar files


def test_tar_writer_writes_what_tar_and_tarfiles_read(tmp_path):
    target = tmp_path / "out.tar"
    target.write_bytes(b"old content")
    writer = TarWriter(str(target))
    long_name = "blobs/sha512/" + "f" * 128
    writer.add_directory("blobs/")
    writer.add_stream("unknown-size.bin", iter([b"a" * 700, b"b" * 600]), None)
    writer.add_bytes(long_name, b"long")
    writer.add_stream("known.bin", [b"xyz"], 3)
    assert target.read_bytes() == b"old content"  # nothing visible before close
    writer.close()

    assert not list(tmp_path.glob(".out.tar.*"))
    with tarfile.open(target) as archive:
        assert archive.getnames() == ["blobs", "unknown-size.bin", long_name, "known.bin"]
        assert archive.extractfile("unknown-size.bin").read() == b"a" * 700 + b"b" * 600
        assert archive.extractfile(long_name).read() == b"long"
    files = TarFiles(str(target))
    handle, size = files.open("./unknown-size.bin")
    assert size == 1300 and handle.read() == b"a" * 700 + b"b" * 600
    handle.close()
    assert files.read(long_name, 10) == b"long"
    assert os.path.getsize(target) % tarfile.RECORDSIZE == 0


def test_a_header_has_the_same_length_whatever_the_size():
    for name in ("short.tar", "x" * 150):
        assert len(_header(name, 0)) == len(_header(name, 2**40))


def test_an_aborted_archive_leaves_the_old_file_alone(tmp_path):
    target = tmp_path / "keep.tar"
    target.write_bytes(b"precious")
    writer = TarWriter(str(target))
    writer.add_bytes("a", b"1")
    writer.abort()
    assert target.read_bytes() == b"precious" and os.listdir(tmp_path) == ["keep.tar"]


def test_a_failed_member_can_be_rolled_back(tmp_path):
    writer = TarWriter(str(tmp_path / "a.tar"))
    writer.add_bytes("first", b"1")
    start = writer.position()
    with pytest.raises(RegistryResponseError, match="expected 10"):
        writer.add_stream("second", [b"12345"], 10)
    writer.truncate(start)
    writer.add_bytes("second", b"2")
    writer.close()
    with tarfile.open(tmp_path / "a.tar") as archive:
        assert [(m.name, archive.extractfile(m).read()) for m in archive] == [("first", b"1"), ("second", b"2")]


def test_tarfiles_follow_links_and_refuse_compressed_or_foreign_files(tmp_path):
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("./data/real.tar")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"real"))
        link = tarfile.TarInfo("layer/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../data/real.tar"
        archive.addfile(link)
        hard = tarfile.TarInfo("hard.tar")
        hard.type, hard.linkname = tarfile.LNKTYPE, "data/real.tar"
        archive.addfile(hard)
    files = TarFiles(str(path))
    assert files.read("layer/layer.tar", 10) == b"real" and files.read("hard.tar", 10) == b"real"
    assert not files.exists("data") and not files.exists("missing")
    with pytest.raises(NotFoundError, match="has no file missing"):
        files.open("missing")

    (tmp_path / "c.tar.gz").write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(UnsupportedError, match="compressed"):
        TarFiles(str(tmp_path / "c.tar.gz"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not a tar archive"):
        TarFiles(str(tmp_path / "notes.txt"))


def test_gunzip_streams_members_in_bounded_chunks():
    big = b"\0" * (5 * 1024 * 1024)
    stream = gzip.compress(big, mtime=0) + gzip.compress(b"second member", mtime=0)
    pieces = list(gunzip((stream[i : i + 1000] for i in range(0, len(stream), 1000)), "test"))
    assert b"".join(pieces) == big + b"second member"
    assert max(len(piece) for piece in pieces) <= 1024 * 1024

    with pytest.raises(RegistryResponseError, match="ends early"):
        list(gunzip([stream[:100]], "test"))
    with pytest.raises(RegistryResponseError, match="corrupt"):
        list(gunzip([stream[:20] + b"garbage" * 20], "test"))


# ----------------------------------------------------------------------------------------------------
# OCI layouts


def _tar_bytes(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def write_layout(root, ref="v1", platforms=("linux/amd64", "linux/arm64"), seed="s") -> dict:
    """A small OCI layout written by hand: gzip layers, one image per platform, an index over them."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> str:
        (blobs / sha256(data).split(":")[1]).write_bytes(data)
        return sha256(data)

    children = []
    for platform in platforms:
        layers, diff_ids = [], []
        for number in range(2):
            tar = _tar_bytes("f%d" % number, ("%s %s %d" % (seed, platform, number)).encode() * 100)
            compressed = gzip.compress(tar, mtime=0)
            layers.append({"mediaType": OCI_LAYER_TAR_GZIP, "digest": put(compressed), "size": len(compressed)})
            diff_ids.append(sha256(tar))
        os_name, architecture = platform.split("/")
        config = json.dumps(
            {"os": os_name, "architecture": architecture, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
                "layers": layers,
            },
            indent=2,
        ).encode()
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": put(manifest),
                "size": len(manifest),
                "platform": {"os": os_name, "architecture": architecture},
                "config": config,
                "diff_ids": diff_ids,
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{k: v for k, v in c.items() if k not in ("config", "diff_ids")} for c in children],
        }
    ).encode()
    top = {"mediaType": OCI_INDEX, "digest": put(index), "size": len(index)}
    if ref:
        top["annotations"] = {"org.opencontainers.image.ref.name": ref}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return {"digest": top["digest"], "children": children, "blobs": set(os.listdir(blobs))}


def test_a_layout_directory_is_written_byte_for_byte_and_named_last(tmp_path):
    image = write_layout(tmp_path / "src")
    dest_path = tmp_path / "dest"

    result = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "src"), LayoutDirDestination(str(dest_path), "v1", "d")
    )

    assert result.changed and result.digest == image["digest"] and result.stats.copied == 6
    assert set(os.listdir(dest_path / "blobs" / "sha256")) == image["blobs"]
    for name in image["blobs"]:
        assert (dest_path / "blobs/sha256" / name).read_bytes() == (tmp_path / "src/blobs/sha256" / name).read_bytes()
    index = json.loads((dest_path / "index.json").read_text())
    assert [(e["digest"], e["annotations"]) for e in index["manifests"]] == [
        (image["digest"], {"org.opencontainers.image.ref.name": "v1"})
    ]
    assert (dest_path / "oci-layout").exists()

    again = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "src"), LayoutDirDestination(str(dest_path), "v1", "d")
    )
    assert not again.changed and again.previous_digest == image["digest"]


def test_a_layout_keeps_other_names_and_deleting_collects_unused_blobs(tmp_path):
    first = write_layout(tmp_path / "one", seed="one")
    second = write_layout(tmp_path / "two", seed="two", platforms=("linux/amd64",))
    dest = tmp_path / "dest"
    transfer(open_layout_dir(str(tmp_path / "one"), None, "one"), LayoutDirDestination(str(dest), "a", "d"))
    transfer(open_layout_dir(str(tmp_path / "two"), None, "two"), LayoutDirDestination(str(dest), "b", "d"))
    transfer(open_layout_dir(str(tmp_path / "two"), None, "two"), LayoutDirDestination(str(dest), "c", "d"))
    names = {
        e["annotations"]["org.opencontainers.image.ref.name"]
        for e in json.loads((dest / "index.json").read_text())["manifests"]
    }
    assert names == {"a", "b", "c"}

    assert LayoutDirDestination(str(dest), "b", "d").delete(dry_run=True)[0] == second["digest"]
    assert len(json.loads((dest / "index.json").read_text())["manifests"]) == 3
    digest, media_type = LayoutDirDestination(str(dest), "b", "d").delete(dry_run=False)

    assert (digest, media_type) == (second["digest"], OCI_INDEX)
    index = json.loads((dest / "index.json").read_text())
    assert [e["digest"] for e in index["manifests"]] == [first["digest"]]  # "c" named the same digest: gone too
    assert set(os.listdir(dest / "blobs" / "sha256")) == first["blobs"]
    assert LayoutDirDestination(str(dest), "b", "d").delete(dry_run=False) == (None, None)


def test_a_failed_copy_into_a_layout_leaves_no_trace(tmp_path):
    image = write_layout(tmp_path / "src")
    victim = image["children"][1]
    layer = json.loads((tmp_path / "src/blobs/sha256" / victim["digest"].split(":")[1]).read_bytes())["layers"][1]
    path = tmp_path / "src/blobs/sha256" / layer["digest"].split(":")[1]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    dest = tmp_path / "dest"

    with pytest.raises(DigestMismatchError, match="blob %s in src" % layer["digest"]):
        transfer(open_layout_dir(str(tmp_path / "src"), "v1", "src"), LayoutDirDestination(str(dest), "v1", "d"))

    assert not (dest / "index.json").exists()
    assert not [name for name in os.listdir(dest / "blobs" / "sha256") if name.startswith(".")]
    assert layer["digest"].split(":")[1] not in os.listdir(dest / "blobs" / "sha256")


def test_a_layout_directory_written_by_many_threads_leaves_the_umask_alone(tmp_path, monkeypatch):
    # Blobs of a layout directory are written from several threads at once, and the umask belongs to the whole
    # process: reading it means setting it (os.umask), which two threads doing at once can leave at 0. New files get
    # the permissions the umask gives them from the kernel instead, and nothing calls os.umask.
    write_layout(tmp_path / "src", platforms=("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le"))

    def forbidden(mask):
        raise AssertionError("os.umask(%o) called while writing a layout directory" % mask)

    previous = os.umask(0o027)
    monkeypatch.setattr(os, "umask", forbidden)
    try:
        transfer(
            open_layout_dir(str(tmp_path / "src"), "v1", "src"),
            LayoutDirDestination(str(tmp_path / "dest"), "v1", "d"),
            jobs=8,
        )
    finally:
        monkeypatch.undo()
        os.umask(previous)

    for path in (tmp_path / "dest").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o750 if path.is_dir() else 0o640), path


def test_file_system_failures_are_reported_with_the_path(tmp_path):
    write_layout(tmp_path / "src")
    (tmp_path / "plain-file").write_text("x")
    target = tmp_path / "plain-file" / "layout"
    with pytest.raises(RegistryError, match="Local file operation failed on %s.*Not a directory" % tmp_path):
        with local_file_errors():
            transfer(open_layout_dir(str(tmp_path / "src"), "v1", "s"), LayoutDirDestination(str(target), "v1", "d"))


def test_a_directory_that_is_not_a_layout_is_refused(tmp_path):
    write_layout(tmp_path / "src")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty and is not an OCI image layout"):
        transfer(
            open_layout_dir(str(tmp_path / "src"), "v1", "s"), LayoutDirDestination(str(tmp_path / "home"), "v1", "d")
        )
    assert os.listdir(tmp_path / "home") == ["notes.txt"]


def test_reading_a_layout_needs_a_name_when_it_holds_several(tmp_path):
    write_layout(tmp_path / "src", ref="a", seed="a")
    with pytest.raises(NotFoundError, match="has no image named 'b'; it has: a"):
        open_layout_dir(str(tmp_path / "src"), "b", "oci:src:b")
    transfer(open_layout_dir(str(tmp_path / "src"), None, "s"), LayoutDirDestination(str(tmp_path / "src"), "c", "s"))
    with pytest.raises(InvalidInputError, match="holds 2 images; say which one"):
        open_layout_dir(str(tmp_path / "src"), None, "oci:src")


def test_an_oci_archive_holds_the_image_and_is_replaced_only_when_complete(tmp_path):
    image = write_layout(tmp_path / "src")
    archive = tmp_path / "image.tar"

    result = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "s"), LayoutArchiveDestination(str(archive), "v1", "a")
    )
    assert result.changed and result.digest == image["digest"]
    reread = open_layout_archive(str(archive), "v1", "a")
    assert reread.peek()[0] == image["digest"]
    back = transfer(reread, LayoutDirDestination(str(tmp_path / "back"), None, "b"))
    assert back.digest == image["digest"] and set(os.listdir(tmp_path / "back/blobs/sha256")) == image["blobs"]

    before = archive.stat().st_mtime_ns
    again = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "s"), LayoutArchiveDestination(str(archive), "v1", "a")
    )
    assert not again.changed and archive.stat().st_mtime_ns == before

    renamed = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "s"), LayoutArchiveDestination(str(archive), "v2", "a")
    )
    assert renamed.changed and open_layout_archive(str(archive), "v2", "a").peek()[0] == image["digest"]
    with pytest.raises(NotFoundError):
        open_layout_archive(str(archive), "v1", "a")

    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(InvalidInputError, match="exists and is not an OCI archive"):
        transfer(
            open_layout_dir(str(tmp_path / "src"), "v1", "s"),
            LayoutArchiveDestination(str(tmp_path / "notes.txt"), None, "n"),
        )
    assert (tmp_path / "notes.txt").read_text() == "not an archive"


# ----------------------------------------------------------------------------------------------------
# Docker archives


def members(path) -> dict:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar}


def test_a_docker_archive_gets_uncompressed_layers_and_the_same_config(tmp_path):
    image = write_layout(tmp_path / "src")
    arm = image["children"][1]
    archive = tmp_path / "docker.tar"
    ref = parse_reference("127.0.0.1:5000/team/app:v1")

    result = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "s"),
        DockerArchiveDestination(str(archive), ref, "d"),
        platforms=["linux/arm64"],
    )

    assert result.digest == sha256(arm["config"])  # the image ID
    with tarfile.open(archive) as tar:
        entries = json.loads(tar.extractfile("manifest.json").read())
        assert entries == [
            {
                "Config": sha256(arm["config"]).split(":")[1] + ".json",
                "RepoTags": ["127.0.0.1:5000/team/app:v1"],
                "Layers": [diff_id.split(":")[1] + ".tar" for diff_id in arm["diff_ids"]],
            }
        ]
        assert tar.extractfile(entries[0]["Config"]).read() == arm["config"]
        for layer, diff_id in zip(entries[0]["Layers"], arm["diff_ids"]):
            assert sha256(tar.extractfile(layer).read()) == diff_id

    source = DockerArchiveSource(str(archive), parse_reference("127.0.0.1:5000/team/app:v1"), "d")
    manifest = source.top_manifest()
    assert manifest.config.digest == sha256(arm["config"])
    assert [(layer.digest, layer.media_type) for layer in manifest.layers] == [
        (d, OCI_LAYER_TAR) for d in arm["diff_ids"]
    ]
    assert DockerArchiveSource(str(archive), None, "d").peek() == source.peek()  # the same archive, the same manifest

    again = transfer(
        open_layout_dir(str(tmp_path / "src"), "v1", "s"),
        DockerArchiveDestination(str(archive), ref, "d"),
        platforms=["linux/arm64"],
    )
    assert not again.changed

    via_layout = transfer(source, LayoutDirDestination(str(tmp_path / "pushed"), "x", "p"))
    rewritten = transfer(
        open_layout_dir(str(tmp_path / "pushed"), "x", "p"),
        DockerArchiveDestination(str(tmp_path / "again.tar"), ref, "d"),
    )
    assert via_layout.digest == source.peek()[0] and rewritten.digest == result.digest
    assert members(tmp_path / "again.tar") == members(archive)


def test_a_multi_platform_image_needs_one_platform_for_a_docker_archive(tmp_path):
    write_layout(tmp_path / "src")
    with pytest.raises(UnsupportedError, match="holds a single image.*linux/amd64, linux/arm64: choose one"):
        transfer(
            open_layout_dir(str(tmp_path / "src"), "v1", "s"),
            DockerArchiveDestination(str(tmp_path / "d.tar"), None, "d"),
        )
    assert not (tmp_path / "d.tar").exists()


def test_a_layer_that_does_not_match_its_diff_id_fails_and_writes_no_archive(tmp_path):
    image = write_layout(tmp_path / "src", platforms=("linux/amd64",))
    child = image["children"][0]
    config = json.loads(child["config"])
    config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
    config_bytes = json.dumps(config).encode()
    manifest_path = tmp_path / "src/blobs/sha256" / child["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_bytes())
    (tmp_path / "src/blobs/sha256" / sha256(config_bytes).split(":")[1]).write_bytes(config_bytes)
    manifest["config"].update(digest=sha256(config_bytes), size=len(config_bytes))
    raw = json.dumps(manifest).encode()
    (tmp_path / "src/blobs/sha256" / sha256(raw).split(":")[1]).write_bytes(raw)
    (tmp_path / "src/index.json").write_text(
        json.dumps(
            {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(raw), "size": len(raw)}]}
        )
    )

    with pytest.raises(DigestMismatchError, match="diff ID does not match"):
        transfer(
            open_layout_dir(str(tmp_path / "src"), None, "s"),
            DockerArchiveDestination(str(tmp_path / "d.tar"), None, "d"),
        )
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_docker_archives_with_several_images_are_read_by_tag_or_position(tmp_path):
    archive = tmp_path / "multi.tar"
    configs = []
    with tarfile.open(archive, "w") as tar:
        entries = []
        for number in range(2):
            layer = _tar_bytes("file", b"layer %d" % number)
            config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}, "n": number}).encode()
            configs.append(config)
            for name, data in (("c%d.json" % number, config), ("l%d/layer.tar" % number, layer)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            entries.append(
                {"Config": "c%d.json" % number, "RepoTags": ["app:%d" % number], "Layers": ["l%d/layer.tar" % number]}
            )
        data = json.dumps(entries).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    assert DockerArchiveSource(str(archive), parse_reference("docker.io/library/app:1"), "m").config == configs[1]
    assert DockerArchiveSource(str(archive), 0, "m").config == configs[0]
    with pytest.raises(InvalidInputError, match="holds 2 images"):
        DockerArchiveSource(str(archive), None, "m")
    with pytest.raises(NotFoundError, match="no image tagged .*app:7; it has: app:0, app:1"):
        DockerArchiveSource(str(archive), parse_reference("app:7"), "m")
    with pytest.raises(NotFoundError, match="no image @5"):
        DockerArchiveSource(str(archive), 5, "m")

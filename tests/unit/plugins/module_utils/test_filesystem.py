# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flattened image filesystem (plugins/module_utils/_ops/filesystem.py): layers, whiteouts, streams."""

from __future__ import annotations

import base64
import builtins
import gzip
import hashlib
import io
import struct
import tarfile

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.filesystem import (
    ChunkStream,
    LayerSource,
    normalize_path,
    read_paths,
    validate_paths,
)

# A layer is a list of (name, spec): spec is bytes (file), "dir", ("symlink", target), ("hardlink", target),
# ("file", bytes, mode), "fifo". Names are written to the tar exactly as given.


def tar_bytes(entries: list) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, spec in entries:
            info = tarfile.TarInfo(name)
            data = None
            if isinstance(spec, bytes):
                info.size, info.mode, data = len(spec), 0o644, spec
            elif spec == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif spec == "fifo":
                info.type, info.mode = tarfile.FIFOTYPE, 0o600
            elif spec[0] == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, spec[1], 0o777
            elif spec[0] == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, spec[1], 0o644
            elif spec[0] == "file":
                info.size, info.mode, data = len(spec[1]), spec[2], spec[1]
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def zstd_raw_frame(data: bytes) -> bytes:
    """A valid zstd frame made of raw (stored) blocks, so tests need no zstd compressor."""
    frame = bytearray(b"\x28\xb5\x2f\xfd")
    frame.append(0x00)  # frame header descriptor: no checksum, no dictionary, no content size, not single segment
    frame.append(0x58)  # window descriptor: 2**(10+11) = 2 MiB window
    block_max = 128 * 1024
    chunks = [data[i : i + block_max] for i in range(0, len(data), block_max)] or [b""]
    for index, chunk in enumerate(chunks):
        last = 1 if index == len(chunks) - 1 else 0
        header = last | (0 << 1) | (len(chunk) << 3)  # block type 0: raw
        frame += struct.pack("<I", header)[:3] + chunk
    return bytes(frame)


def source(blob: bytes, name: str = "layer", digest: str | None = None, opened: list | None = None) -> LayerSource:
    """A LayerSource whose stream verifies the digest at its end, like the registry client's BlobReader."""
    expected = digest or "sha256:" + hashlib.sha256(blob).hexdigest()

    def chunks():
        hasher = hashlib.sha256()
        for start in range(0, len(blob), 7000):
            chunk = blob[start : start + 7000]
            hasher.update(chunk)
            yield chunk
        if "sha256:" + hasher.hexdigest() != expected:
            raise DigestMismatchError("blob %s is corrupt" % expected)

    def opener() -> ChunkStream:
        if opened is not None:
            opened.append(name)
        return ChunkStream(chunks())

    return (name, opener)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def read(layers: list[list], paths: list[str], max_file_size: int = 1024 * 1024, compress=gz) -> dict:
    sources = [source(compress(tar_bytes(layer)), "layer %d" % i) for i, layer in enumerate(layers)]
    return read_paths(sources, paths, max_file_size)


def names(entry: dict) -> list[str]:
    return [child["name"] for child in entry["entries"]]


BASE = [
    ("etc", "dir"),
    ("etc/app.conf", b"version=1\n"),
    ("etc/old.conf", b"old\n"),
    ("opt", "dir"),
    ("opt/data", "dir"),
    ("opt/data/a", b"a"),
    ("opt/data/sub", "dir"),
    ("opt/data/sub/deep", b"deep"),
    ("usr", "dir"),
    ("usr/lib", "dir"),
    ("usr/lib/os-release", b"ID=test\n"),
]


def test_upper_layers_replace_files_and_whiteouts_delete_them() -> None:
    upper = [("etc", "dir"), ("etc/app.conf", b"version=2\n"), ("etc/.wh.old.conf", b"")]
    files = read([BASE, upper], ["/etc", "/etc/app.conf", "/etc/old.conf"])
    assert names(files["/etc"]) == ["app.conf"]
    assert files["/etc/app.conf"]["content"] == "version=2\n"
    assert files["/etc/app.conf"]["size"] == 10
    assert files["/etc/old.conf"] == {"exists": False, "path": "/etc/old.conf"}


def test_opaque_directory_hides_every_lower_child_but_keeps_its_own() -> None:
    # The marker comes after the layer's own new file: order inside a layer must not matter.
    upper = [("opt/data", "dir"), ("opt/data/new", b"n"), ("opt/data/.wh..wh..opq", b"")]
    files = read([BASE, upper], ["/opt/data", "/opt/data/sub/deep", "/opt/data/new"])
    assert names(files["/opt/data"]) == ["new"]
    assert files["/opt/data/sub/deep"]["exists"] is False
    assert files["/opt/data/new"]["content"] == "n"


def test_whiteout_never_hides_what_its_own_layer_adds() -> None:
    upper = [("etc/app.conf", b"mine\n"), ("etc/.wh.app.conf", b"")]
    files = read([BASE, upper], ["/etc/app.conf"])
    assert files["/etc/app.conf"]["content"] == "mine\n"


def test_whiteout_of_a_directory_removes_its_subtree_and_it_can_come_back() -> None:
    middle = [("opt/.wh.data", b"")]
    top = [("opt/data", "dir"), ("opt/data/fresh", b"f")]
    files = read([BASE, middle, top], ["/opt/data", "/opt/data/a"])
    assert names(files["/opt/data"]) == ["fresh"]
    assert files["/opt/data/a"]["exists"] is False


def test_a_file_replacing_a_directory_drops_the_subtree() -> None:
    upper = [("opt/data", b"now a file")]
    files = read([BASE, upper], ["/opt/data", "/opt/data/a"])
    assert files["/opt/data"]["type"] == "file"
    assert files["/opt/data"]["content"] == "now a file"
    assert files["/opt/data/a"]["exists"] is False


def test_directories_merge_across_layers_with_implicit_parents() -> None:
    upper = [("opt/data/sub/more", b"m"), ("srv/x/y", b"y")]  # no directory entries at all
    files = read([BASE, upper], ["/opt/data/sub", "/srv/x", "/"])
    assert names(files["/opt/data/sub"]) == ["deep", "more"]
    assert names(files["/srv/x"]) == ["y"]
    assert names(files["/"]) == ["etc", "opt", "srv", "usr"]
    assert files["/"]["path"] == "/"


def test_directory_entries_describe_children() -> None:
    layer = [
        ("d", "dir"),
        ("d/file", ("file", b"12345", 0o750)),
        ("d/link", ("symlink", "file")),
        ("d/pipe", "fifo"),
        ("d/sub", "dir"),
    ]
    files = read([layer], ["/d"])
    assert files["/d"]["type"] == "dir"
    assert files["/d"]["mode"] == "0755"
    assert files["/d"]["entries"] == [
        {"name": "file", "type": "file", "mode": "0750", "size": 5},
        {"name": "link", "type": "symlink", "mode": "0777", "size": 0, "target": "file"},
        {"name": "pipe", "type": "fifo", "mode": "0600", "size": 0},
        {"name": "sub", "type": "dir", "mode": "0755", "size": 0},
    ]


def test_member_names_are_normalised() -> None:
    layer = [("./", "dir"), ("./etc/", "dir"), ("./etc//x", b"x"), ("/abs", b"abs"), ("../escape", b"no")]
    files = read([layer], ["/etc/x", "abs", "/etc/../abs", "/"])
    assert files["/etc/x"]["content"] == "x"
    assert files["abs"]["content"] == "abs"  # keyed as given, read as /abs
    assert files["/etc/../abs"]["path"] == "/abs"
    assert names(files["/"]) == ["abs", "etc"]


def test_symlinks_are_followed_inside_the_image_and_content_is_read_from_their_layer() -> None:
    middle = [("etc/os-release", ("symlink", "../usr/lib/os-release")), ("lib", ("symlink", "usr/lib"))]
    top = [("etc/abs-link", ("symlink", "/usr/lib/os-release")), ("etc/dangling", ("symlink", "/nowhere"))]
    opened: list[str] = []
    sources = [
        source(gz(tar_bytes(layer)), "layer %d" % i, opened=opened) for i, layer in enumerate([BASE, middle, top])
    ]
    files = read_paths(sources, ["/etc/os-release", "/lib/os-release", "/etc/abs-link", "/etc/dangling", "/lib"])
    for path in ("/etc/os-release", "/lib/os-release", "/etc/abs-link"):
        assert files[path]["path"] == "/usr/lib/os-release"
        assert files[path]["content"] == "ID=test\n"
    assert files["/etc/dangling"] == {
        "exists": True,
        "path": "/etc/dangling",
        "type": "symlink",
        "mode": "0777",
        "target": "/nowhere",
    }
    assert files["/lib"]["type"] == "dir"
    assert names(files["/lib"]) == ["os-release"]
    # Three layers read once, then only the base layer again for the linked file's bytes.
    assert opened == ["layer 0", "layer 1", "layer 2", "layer 0"]


def test_symlink_loops_do_not_hang() -> None:
    layer = [("a", ("symlink", "b")), ("b", ("symlink", "a")), ("c", ("symlink", "c/x"))]
    files = read([layer], ["/a", "/c/file"])
    assert files["/a"]["type"] == "symlink"
    assert files["/c/file"]["exists"] is False


def test_hard_links_share_the_data_of_their_target() -> None:
    layer = [("bin", "dir"), ("bin/tool", b"#!/bin/sh\necho hi\n"), ("bin/alias", ("hardlink", "bin/tool"))]
    upper = [("bin/late", ("hardlink", "bin/tool")), ("bin/broken", ("hardlink", "bin/missing"))]
    files = read([layer, upper], ["/bin/alias", "/bin/late", "/bin/broken"])
    assert files["/bin/alias"]["content"] == "#!/bin/sh\necho hi\n"
    assert files["/bin/late"]["content"] == "#!/bin/sh\necho hi\n"
    assert files["/bin/late"]["type"] == "file"
    assert files["/bin/broken"]["type"] == "hardlink"
    assert files["/bin/broken"]["target"] == "/bin/missing"


def test_binary_files_come_back_as_base64_and_big_ones_without_content() -> None:
    layer = [("bin", b"\xff\xfe not utf-8"), ("nul", b"a\x00b"), ("big", b"x" * 2000), ("empty", b"")]
    files = read([layer], ["/bin", "/nul", "/big", "/empty"], max_file_size=1500)
    assert base64.b64decode(files["/bin"]["content_base64"]) == b"\xff\xfe not utf-8"
    assert "content" not in files["/bin"]
    assert base64.b64decode(files["/nul"]["content_base64"]) == b"a\x00b"
    assert files["/big"]["content_omitted"] is True
    assert files["/big"]["size"] == 2000
    assert "content" not in files["/big"] and "content_base64" not in files["/big"]
    assert files["/empty"]["content"] == ""


def test_uncompressed_layers_are_read_too() -> None:
    files = read([BASE], ["/etc/app.conf"], compress=lambda data: data)
    assert files["/etc/app.conf"]["content"] == "version=1\n"


def test_zstd_layers_are_read_when_a_decompressor_is_present() -> None:
    pytest.importorskip("zstandard")
    files = read([BASE], ["/etc/app.conf"], compress=zstd_raw_frame)
    assert files["/etc/app.conf"]["content"] == "version=1\n"


def test_zstd_layers_fail_clearly_without_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_zstd(name, *args, **kwargs):
        if name in ("zstandard", "compression"):
            raise ImportError("No module named %r" % name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_zstd)
    with pytest.raises(UnsupportedError, match=r"layer 0 is compressed with zstd.*'zstandard'.*pip install zstandard"):
        read([BASE], ["/etc/app.conf"], compress=zstd_raw_frame)


def test_every_layer_is_read_to_its_end_so_a_corrupt_blob_is_caught() -> None:
    blob = gz(tar_bytes(BASE))
    with pytest.raises(DigestMismatchError, match="corrupt"):
        read_paths([source(blob, digest="sha256:" + "0" * 64)], ["/etc/app.conf"])


def test_garbage_layers_fail_with_the_layer_named() -> None:
    with pytest.raises(RegistryResponseError, match="broken layer is not a valid"):
        read_paths([source(b"\x1f\x8b" + b"garbage" * 100, "broken layer")], ["/x"])
    with pytest.raises(RegistryResponseError, match="broken layer is not a valid"):
        read_paths([source(gz(b"not a tar at all" * 100), "broken layer")], ["/x"])


def test_chunk_stream_reads_across_chunks() -> None:
    stream = io.BufferedReader(ChunkStream([b"ab", b"", b"cde", b"f"]))
    assert stream.read(4) == b"abcd"
    assert stream.read() == b"ef"
    assert stream.read() == b""


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", "/"), ("/", "/"), ("etc", "/etc"), ("/etc/", "/etc"), ("//etc//x/../y", "/etc/y"), ("/../..", "/")],
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected


@pytest.mark.parametrize("paths", ["/etc", ["/etc", ""], ["/etc", 3], ["a\x00b"]])
def test_validate_paths_names_the_bad_value(paths: object) -> None:
    with pytest.raises(InvalidInputError, match="paths"):
        validate_paths(paths)

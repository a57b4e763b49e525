# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An image's flattened filesystem, read straight from its layer blobs (no container engine, no disk).

Layers are applied bottom to top the way the OCI image-spec says (``layer.md``, "Applying changesets"):

- an entry replaces whatever a lower layer had at its path; a directory merges with a lower directory,
  anything else replaces it with its whole subtree;
- ``DIR/.wh.NAME`` (whiteout) hides ``DIR/NAME`` and everything below it *in lower layers*;
- ``DIR/.wh..wh..opq`` (opaque whiteout) hides every lower-layer child of ``DIR``;
- a whiteout never hides what its own layer adds, whatever the order of the entries in the tar.

Only metadata is kept for the whole tree. File contents are kept only for the paths asked for (up to
``max_file_size`` bytes each); when a path resolves elsewhere through symlinks or hard links, the one
layer that holds the data is read again for it. Layers stream from the registry one at a time, gzip,
zstd or uncompressed (detected from the bytes, not just the media type, because some tools mislabel).
"""

from __future__ import annotations

import base64
import gzip
import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40  # Linux's limit
DEFAULT_MAX_FILE_SIZE = 1024 * 1024
READ_CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_TAR_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


class Node:
    """One path of the flattened tree. ``layer`` is the newest layer with an entry at or below this path."""

    __slots__ = ("kind", "mode", "size", "target", "layer", "data_layer", "member", "content", "children")

    def __init__(
        self,
        kind: str,
        mode: int = 0o755,
        *,
        layer: int = -1,
        size: int = 0,
        target: str | None = None,
        member: str | None = None,
    ):
        self.kind = kind
        self.mode = mode
        self.size = size
        self.target = target  # symlink target as written, or the path a dangling hard link names
        self.layer = layer
        # Where the file's bytes are: ``member`` of layer ``data_layer`` (a hard link's data lives elsewhere).
        self.data_layer = layer
        self.member = member
        self.content: bytes | None = None
        self.children: dict[str, Node] = {}

    def share_data_of(self, other: Node) -> None:
        """Become a regular file whose bytes are ``other``'s (a hard link)."""
        self.kind, self.size, self.data_layer, self.member, self.content = (
            "file",
            other.size,
            other.data_layer,
            other.member,
            other.content,
        )


def normalize_path(path: str) -> str:
    """``/etc/../usr//lib/`` -> ``/usr/lib``: absolute, no ``.``/``..``/``//``; ``..`` stops at the root."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _parts(path: str) -> list[str]:
    return [part for part in normalize_path(path).split("/") if part]


def _member_parts(name: str) -> list[str] | None:
    """Path components of a tar member name, or None for names that climb out of the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return parts


def validate_paths(paths: object) -> list[str]:
    """The ``paths`` option: a list of non-empty strings without NUL bytes."""
    if not isinstance(paths, list):
        raise InvalidInputError("paths must be a list of paths inside the image, got %r" % (paths,))
    for path in paths:
        if not isinstance(path, str) or not path or "\x00" in path:
            raise InvalidInputError(
                "paths must hold absolute paths inside the image such as '/etc/os-release', got %r" % (path,)
            )
    return [str(path) for path in paths]


class FlatFilesystem:
    """The merged view of an image's layers: apply them in order, then describe paths."""

    def __init__(self, wanted: Iterable[str] = (), max_file_size: int = DEFAULT_MAX_FILE_SIZE):
        self.root = Node("dir", 0o755)
        self.wanted = {normalize_path(path) for path in wanted}
        self.max_file_size = max_file_size

    # -- applying layers ------------------------------------------------------------------------

    def apply_layer(self, tar: tarfile.TarFile, layer: int) -> None:
        """Apply one layer, read from ``tar`` (opened in stream mode, members in archive order)."""
        for member in tar:
            parts = _member_parts(member.name)
            if not parts:
                continue  # the root itself, or a name escaping it (never extracted by any runtime)
            name = parts[-1]
            if name.startswith(WHITEOUT_PREFIX):
                self._whiteout(parts[:-1], name, layer)
                continue
            node = self._add(parts, member, layer)
            path = "/" + "/".join(parts)
            if node.kind == "file" and node.member == member.name and path in self.wanted:
                if node.size <= self.max_file_size:
                    node.content = _read_member(tar, member)

    def _parent(self, parts: Sequence[str], layer: int) -> Node:
        """The directory holding ``parts[-1]``, made (or turned into a directory) as needed."""
        node = self.root
        node.layer = max(node.layer, layer)
        for name in parts[:-1]:
            child = node.children.get(name)
            if child is None or child.kind != "dir":
                child = node.children[name] = Node("dir", 0o755, layer=layer)
            child.layer = max(child.layer, layer)
            node = child
        return node

    def _add(self, parts: list[str], member: tarfile.TarInfo, layer: int) -> Node:
        parent = self._parent(parts, layer)
        name = parts[-1]
        kind = _TAR_KINDS.get(member.type, "file" if member.isreg() else "other")
        mode = member.mode & 0o7777
        existing = parent.children.get(name)
        if kind == "dir":
            if existing is not None and existing.kind == "dir":
                existing.mode, existing.layer = mode, layer
                return existing
            node = parent.children[name] = Node("dir", mode, layer=layer)
            return node
        node = parent.children[name] = Node(kind, mode, layer=layer)
        if kind == "file":
            node.size, node.member = member.size, member.name
        elif kind == "symlink":
            node.target = member.linkname
        elif kind == "hardlink":
            self._link(node, member.linkname)
        return node

    def _link(self, node: Node, linkname: str) -> None:
        """A hard link shares the data of a file already in the tree (same or lower layer)."""
        target_parts = _member_parts(linkname)
        target = self._walk(target_parts) if target_parts else None
        if target is not None and target.kind == "file":
            node.share_data_of(target)
        else:
            node.target = "/" + "/".join(target_parts or [])

    def _walk(self, parts: Sequence[str]) -> Node | None:
        node: Node | None = self.root
        for name in parts:
            if node is None or node.kind != "dir":
                return None
            node = node.children.get(name)
        return node

    def _whiteout(self, directory: list[str], name: str, layer: int) -> None:
        parent = self._walk(directory)
        if parent is None or parent.kind != "dir":
            return
        if name == OPAQUE_MARKER:
            _drop_lower(parent, layer)
            return
        if name.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image's content
        hidden = name[len(WHITEOUT_PREFIX) :]
        victim = parent.children.get(hidden)
        if victim is None:
            return
        if victim.layer < layer:
            del parent.children[hidden]
        elif victim.kind == "dir":
            _drop_lower(victim, layer)

    # -- reading the result ---------------------------------------------------------------------

    def resolve(self, path: str, follow_last: bool = True) -> tuple[str, Node] | None:
        """``(resolved path, node)`` for ``path``, following symlinks like the kernel; None when missing.

        Symlinks are resolved inside the image: an absolute target starts again at the image's root.
        Loops and chains longer than 40 hops count as missing.
        """
        pending = _parts(path)
        stack: list[tuple[str, Node]] = [("", self.root)]
        hops = 0
        while pending:
            name = pending.pop(0)
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            current = stack[-1][1]
            child = current.children.get(name) if current.kind == "dir" else None
            if child is None:
                return None
            if child.kind == "symlink" and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = child.target or ""
                if target.startswith("/"):
                    stack = stack[:1]
                pending = [part for part in target.split("/") if part] + pending
                continue
            if pending and child.kind != "dir":
                return None
            stack.append((name, child))
        return "/" + "/".join(name for name, _node in stack[1:]), stack[-1][1]

    def lookup(self, path: str) -> tuple[str, Node] | None:
        """Like :meth:`resolve`, but a final symlink that leads nowhere is returned as the symlink itself."""
        return self.resolve(path) or self.resolve(path, follow_last=False)

    def missing_content(self, paths: Iterable[str]) -> dict[int, set[str]]:
        """Layer -> tar member names still to read so that every wanted file below the cap has content."""
        needed: dict[int, set[str]] = {}
        for path in paths:
            found = self.lookup(path)
            if found is None:
                continue
            node = found[1]
            if node.kind == "file" and node.content is None and node.size <= self.max_file_size and node.member:
                needed.setdefault(node.data_layer, set()).add(node.member)
        return needed

    def fill_content(self, tar: tarfile.TarFile, layer: int, members: set[str]) -> None:
        """Read ``members`` of one layer again and give their bytes to every node that shares them."""
        found: dict[str, bytes] = {}
        for member in tar:
            if member.name in members and member.isreg():
                found[member.name] = _read_member(tar, member)
                if len(found) == len(members):
                    break
        for node in self._nodes():
            if node.data_layer == layer and node.kind == "file" and node.content is None and node.member in found:
                node.content = found[node.member]

    def _nodes(self) -> Iterator[Node]:
        pending = [self.root]
        while pending:
            node = pending.pop()
            yield node
            pending.extend(node.children.values())

    def describe(self, path: str) -> dict[str, Any]:
        """What ``files[path]`` returns: a directory listing, a file with its content, or ``exists: false``."""
        found = self.lookup(path)
        if found is None:
            return {"exists": False, "path": normalize_path(path)}
        resolved, node = found
        result: dict[str, Any] = {"exists": True, "path": resolved or "/", "type": node.kind, "mode": _mode(node.mode)}
        if node.kind == "dir":
            result["entries"] = [_entry(name, child) for name, child in sorted(node.children.items())]
        elif node.kind == "file":
            result["size"] = node.size
            if node.size > self.max_file_size:
                result["content_omitted"] = True
            elif node.content is not None:
                result.update(file_content(node.content))
        elif node.kind in ("symlink", "hardlink"):
            result["target"] = node.target
        return result


def _drop_lower(directory: Node, layer: int) -> None:
    """Hide every lower-layer child of ``directory``, keeping what ``layer`` itself put there."""
    for name, child in list(directory.children.items()):
        if child.layer < layer:
            del directory.children[name]
        elif child.kind == "dir":
            _drop_lower(child, layer)


def _mode(mode: int) -> str:
    return "%04o" % (mode & 0o7777)


def _entry(name: str, node: Node) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": node.kind, "mode": _mode(node.mode), "size": node.size}
    if node.kind in ("symlink", "hardlink"):
        entry["target"] = node.target
    return entry


def file_content(data: bytes) -> dict[str, str]:
    """``{content: text}`` for UTF-8 text without NUL bytes, else ``{content_base64: ...}``."""
    if b"\x00" not in data:
        try:
            return {"content": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"content_base64": base64.b64encode(data).decode("ascii")}


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


class ChunkStream(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks (a streamed, verified blob download)."""

    def __init__(self, chunks: Iterable[bytes], close: Callable[[], None] | None = None):
        super().__init__()
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def drain(self) -> None:
        """Read to the end, so that a verifying iterator checks the digest."""
        for _chunk in self._chunks:
            pass
        self._buffer = memoryview(b"")

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None
        super().close()


def _zstd_reader(raw: BinaryIO, description: str) -> BinaryIO:
    try:
        import zstandard  # type: ignore[import-not-found]  # optional: only zstd layers need it
    except ImportError:
        zstandard = None
    if zstandard is not None:
        decompressor = zstandard.ZstdDecompressor()
        try:
            return decompressor.stream_reader(raw, read_across_frames=True)
        except TypeError:  # zstandard < 0.15 reads one frame; layers are written as one frame anyway
            return decompressor.stream_reader(raw)
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+ standard library
    except ImportError:
        raise UnsupportedError(
            "%s is compressed with zstd. Reading files from it needs the Python library 'zstandard' on the host "
            "that runs the task (pip install zstandard)" % description
        ) from None
    return zstd.ZstdFile(raw)


def open_tar(raw: BinaryIO, description: str) -> tarfile.TarFile:
    """A stream-mode tar over ``raw``, decompressing gzip or zstd as its first bytes show."""
    buffered = io.BufferedReader(raw, READ_CHUNK)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        stream: Any = gzip.GzipFile(fileobj=buffered, mode="rb")
    elif magic == ZSTD_MAGIC:
        stream = _zstd_reader(buffered, description)
    else:
        stream = buffered
    return tarfile.open(fileobj=stream, mode="r|")


def _drain(stream: Any) -> None:
    while stream.read(READ_CHUNK):
        pass


# A layer to read: (description for messages, opener returning a fresh ChunkStream of its compressed bytes).
LayerSource = tuple[str, Callable[[], ChunkStream]]


def _with_layer(source: LayerSource, action: Callable[[tarfile.TarFile], None]) -> None:
    """Open one layer, run ``action`` on its tar, then read to the end so that its digest is verified."""
    description, opener = source
    raw = opener()
    try:
        try:
            tar = open_tar(raw, description)
            action(tar)
            _drain(tar.fileobj)
        except RegistryError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise RegistryResponseError("%s is not a valid compressed tar archive (%s)" % (description, err)) from None
        except Exception as err:  # noqa: BLE001 - zstandard raises its own ZstdError, not importable here
            if type(err).__name__ != "ZstdError":
                raise
            raise RegistryResponseError("%s is not a valid zstd stream (%s)" % (description, err)) from None
        raw.drain()
    finally:
        raw.close()


def read_paths(
    layers: Sequence[LayerSource], paths: Sequence[str], max_file_size: int = DEFAULT_MAX_FILE_SIZE
) -> dict[str, dict[str, Any]]:
    """``files`` for ``paths`` (keyed as given) in the filesystem of ``layers`` (bottom first)."""
    filesystem = FlatFilesystem(paths, max_file_size)
    for index, source in enumerate(layers):
        _with_layer(source, lambda tar, index=index: filesystem.apply_layer(tar, index))
    # Paths that led elsewhere through symlinks or hard links: read the layers holding their bytes again.
    for index, members in sorted(filesystem.missing_content(paths).items()):
        _with_layer(
            layers[index], lambda tar, index=index, members=members: filesystem.fill_content(tar, index, members)
        )
    return {path: filesystem.describe(path) for path in paths}

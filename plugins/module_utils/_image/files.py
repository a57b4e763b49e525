# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files of local image stores: read from a directory or straight out of a tar archive, write a tar.

Archives are read in place: the member index is read once, and every blob is read from its offset
through a file handle of its own (so parallel reads need no lock and nothing is extracted). Archives
are written front to back into a temporary file next to the target, which replaces the target only
when everything is in it: an interrupted write never leaves a half-written archive behind.
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Callable

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BlobStream,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import DigestVerifier
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, ManifestInfo
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import is_transient

CHUNK_BYTES = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
MAX_LINK_HOPS = 16
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def blob_name(digest: str) -> str:
    """``blobs/ALGORITHM/HEX``, where an OCI layout keeps a blob."""
    algorithm, _colon, encoded = digest.partition(":")
    return "blobs/%s/%s" % (algorithm, encoded)


class _Section:
    """Read-only view of ``size`` bytes of a file from ``offset``, with a handle of its own."""

    def __init__(self, path: str, offset: int, size: int):
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._handle.seek(offset)
        self.remaining = size

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._handle.read(size)
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


class FileBlobStream(BlobStream):
    """A blob read from a local file, verified against its descriptor (size and digest) at the end."""

    def __init__(self, handle: Any, descriptor: Descriptor, where: str):
        self.handle = handle
        self.descriptor = descriptor
        self.where = where

    def chunks(self) -> Iterator[bytes]:
        verifier = DigestVerifier(
            self.descriptor.digest,
            expected_size=self.descriptor.size,
            description="blob %s in %s" % (self.descriptor.digest, self.where),
        )
        while True:
            chunk = self.handle.read(CHUNK_BYTES)
            if not chunk:
                break
            verifier.update(chunk)
            yield chunk
        verifier.verify()

    def close(self) -> None:
        self.handle.close()


class BytesBlobStream(FileBlobStream):
    """A small blob already in memory (a config), verified like any other."""

    def __init__(self, data: bytes, descriptor: Descriptor, where: str):
        super().__init__(io.BytesIO(data), descriptor, where)


class DirFiles:
    """Files under a directory, by slash-separated name."""

    def __init__(self, root: str):
        self.root = root
        self.where = root

    def _path(self, name: str) -> str:
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise InvalidInputError("Refusing to read %r outside %s" % (name, self.root))
        return os.path.join(self.root, *parts)

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def size(self, name: str) -> int | None:
        try:
            return os.path.getsize(self._path(name))
        except OSError:
            return None

    def open(self, name: str) -> tuple[BinaryIO, int]:
        path = self._path(name)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFoundError("%s has no file %s" % (self.where, name)) from None
        except OSError as err:
            raise InvalidInputError("Cannot read %s: %s" % (path, err.strerror)) from None
        return handle, os.fstat(handle.fileno()).st_size

    def read(self, name: str, limit: int) -> bytes:
        handle, size = self.open(name)
        with handle:
            if size > limit:
                raise RegistryResponseError(
                    "%s in %s is %d bytes, more than the %d expected" % (name, self.where, size, limit)
                )
            return handle.read()


class TarFiles:
    """Regular files inside an uncompressed tar archive, read in place (links followed)."""

    def __init__(self, path: str):
        self.path = path
        self.where = path
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            with tarfile.open(path, "r:") as archive:
                for member in archive:
                    self.members[_normalise(member.name)] = member
        except FileNotFoundError:
            raise NotFoundError("The archive %s does not exist" % path) from None
        except IsADirectoryError:
            raise InvalidInputError("%s is a directory, not an archive file" % path) from None
        except PermissionError:
            raise InvalidInputError("Cannot read the archive %s: permission denied" % path) from None
        except (tarfile.TarError, EOFError):
            raise _not_a_tar(path) from None

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        name = _normalise(name)
        for _hop in range(MAX_LINK_HOPS):
            member = self.members.get(name)
            if member is None:
                return None
            if member.issym():
                name = _normalise(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = _normalise(member.linkname)
            else:
                return member if member.isfile() else None
        return None

    def exists(self, name: str) -> bool:
        return self._resolve(name) is not None

    def size(self, name: str) -> int | None:
        member = self._resolve(name)
        return member.size if member is not None else None

    def open(self, name: str) -> tuple[Any, int]:
        member = self._resolve(name)
        if member is None:
            raise NotFoundError("The archive %s has no file %s" % (self.path, name))
        return _Section(self.path, member.offset_data, member.size), member.size

    def read(self, name: str, limit: int) -> bytes:
        handle, size = self.open(name)
        try:
            if size > limit:
                raise RegistryResponseError(
                    "%s in %s is %d bytes, more than the %d expected" % (name, self.path, size, limit)
                )
            return handle.read()
        finally:
            handle.close()


def _normalise(name: str) -> str:
    name = posixpath.normpath("/" + name).lstrip("/")
    return "" if name == "." else name


def _not_a_tar(path: str) -> RegistryError:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        head = b""
    if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
        return UnsupportedError(
            "The archive %s is compressed; only uncompressed tar archives are read (decompress it first)" % path
        )
    return InvalidInputError("%s is not a tar archive" % path)


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    # GNU format: a size of any magnitude fits in the fixed header (base-256), so a header written
    # with size 0 can be overwritten in place once the real size is known.
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def new_temporary_file(directory: str, prefix: str, suffix: str = "", mode: str = "wb") -> tuple[Any, str]:
    """A new file in ``directory``, open for writing, and its path; renamed into place, it is the finished file.

    Created with mode 0o666, which the kernel masks with the umask: the file gets the permissions any new file
    gets, with no chmod. Reading the umask would mean setting it (``os.umask``), and the umask belongs to the
    process: blobs are written from several threads at once, and two of them setting and restoring it at the same
    time can leave it at 0.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(directory, prefix + secrets.token_hex(8) + suffix)
        try:
            descriptor = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(descriptor, mode), path


class TarWriter:
    """Writes a tar front to back into a temporary file; :meth:`close` moves it over ``path``."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InvalidInputError("Cannot write %s: the directory %s does not exist" % (path, directory))
        self.handle, self.temp_path = new_temporary_file(directory, ".%s." % os.path.basename(path), ".tmp", "w+b")
        self.names: set[str] = set()

    def position(self) -> int:
        return self.handle.tell()

    def truncate(self, position: int) -> None:
        """Forget everything written after ``position`` (a member whose data failed half-way)."""
        self.handle.seek(position)
        self.handle.truncate()

    def add_directory(self, name: str) -> None:
        if name not in self.names:
            self.names.add(name)
            self.handle.write(_header(name, 0, tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, [data], len(data))

    def add_stream(self, name: str, chunks: Iterable[bytes], size: int | None) -> int:
        """Write a member from ``chunks``; with ``size`` None the header is fixed up afterwards."""
        start = self.handle.tell()
        self.handle.write(_header(name, size or 0))
        written = 0
        for chunk in chunks:
            self.handle.write(chunk)
            written += len(chunk)
        if size is not None and written != size:
            raise RegistryResponseError("Wrote %d bytes of %s into %s, expected %d" % (written, name, self.path, size))
        self.handle.write(b"\0" * (-written % BLOCK))
        if size is None:
            end = self.handle.tell()
            self.handle.seek(start)
            self.handle.write(_header(name, written))
            self.handle.seek(end)
        self.names.add(name)
        return written

    def close(self) -> None:
        """Finish the archive (end-of-archive blocks) and move it into place."""
        self.handle.write(b"\0" * (2 * BLOCK))
        self.handle.write(b"\0" * (-self.handle.tell() % RECORD))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp_path, self.path)

    def abort(self) -> None:
        try:
            self.handle.close()
        finally:
            if os.path.exists(self.temp_path):
                os.unlink(self.temp_path)


def open_existing_archive(
    path: str, name: str, kind: str, read: Callable[[TarFiles, str], Any]
) -> tuple[TarFiles, Any] | None:
    """The archive already at ``path`` and what ``read(files, name)`` makes of it; None when there is none.

    ``kind`` names the format for messages ("an OCI archive"): a directory or another file there is an error,
    never something to overwrite.
    """
    if not os.path.lexists(path):
        return None
    if os.path.isdir(path):
        raise InvalidInputError("%s: %s is a directory; %s is a file" % (name, path, kind))
    try:
        files = TarFiles(path)
        return files, read(files, name)
    except RegistryError:
        raise InvalidInputError(
            "%s: %s exists and is not %s; remove it or choose another file" % (name, path, kind)
        ) from None


class TarDestination(ImageDestination):
    """A destination written as one new tar beside ``path``, front to back, which replaces ``path`` on commit.

    Takes no write in parallel (``parallel_writes`` stays empty): two members written at once would interleave
    their headers and bodies. A member whose source fails half-way is cut off and written again.
    """

    def __init__(self, path: str, name: str):
        self.path = path
        self.name = name
        self.writer: TarWriter | None = None

    def prepare(self, images: list[ManifestInfo], source: ImageSource, dry_run: bool) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise InvalidInputError("Cannot write %s: the directory %s does not exist" % (self.path, directory))

    def _writer(self) -> TarWriter:
        if self.writer is None:
            self.writer = TarWriter(self.path)
            self.begin(self.writer)
        return self.writer

    def begin(self, writer: TarWriter) -> None:
        """What the archive holds first, before any blob."""

    def add_blob(
        self,
        member: str,
        descriptor: Descriptor,
        source: ImageSource,
        chunks_of: Callable[[Iterable[bytes]], Iterable[bytes]] = lambda chunks: chunks,
        size: int | None = None,
    ) -> None:
        """The blob ``descriptor`` of ``source`` as the member ``member`` (its bytes through ``chunks_of``), started
        again under the source's retry policy after a transient failure, from where the member began."""
        writer = self._writer()
        start = writer.position()

        def attempt() -> None:
            with source.open_blob(descriptor) as stream:
                writer.add_stream(member, chunks_of(stream.chunks()), size)

        source.retry.run(attempt, retry_if=is_transient, undo=lambda: writer.truncate(start))

    def finish(self) -> None:
        """Close the archive and move it into place."""
        writer = self._writer()
        writer.close()
        self.writer = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI image layouts: a directory (``oci:DIR[:REF]``) or a tar of one (``oci-archive:FILE[:REF]``).

A layout keeps every blob and manifest under ``blobs/ALGORITHM/HEX`` and names images in
``index.json`` with the ``org.opencontainers.image.ref.name`` annotation, as skopeo, buildah and
buildx write them. Manifests are stored byte for byte, so digests are kept.

Writing a directory: each blob goes to a temporary file that is renamed into place once verified, and
``index.json`` is replaced last. Writing an archive: a new archive is written next to the old one and
replaces it at the end, holding just the copied image.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.files import (
    DirFiles,
    FileBlobStream,
    TarDestination,
    TarFiles,
    TarWriter,
    blob_name,
    new_temporary_file,
    open_existing_archive,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BLOB_WRITES,
    BlobStream,
    ImageDestination,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import verify_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    ManifestInfo,
    parse_descriptor,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_INDEX
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import is_transient

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}'
INDEX_FILE = "index.json"
MAX_INDEX_BYTES = 64 * 1024 * 1024


def read_index(files: Any, where: str) -> dict[str, Any]:
    """The layout's ``index.json`` as a dict whose ``manifests`` is a list of descriptor objects."""
    if not files.exists(LAYOUT_FILE) and not files.exists(INDEX_FILE):
        raise InvalidInputError("%s is not an OCI image layout (it has no oci-layout or index.json file)" % where)
    try:
        document = json.loads(files.read(INDEX_FILE, MAX_INDEX_BYTES))
    except NotFoundError:
        raise InvalidInputError("%s is not an OCI image layout (it has no index.json)" % where) from None
    except ValueError:
        raise RegistryResponseError("The index.json of %s is not valid JSON" % where) from None
    if not isinstance(document, dict) or not isinstance(document.get("manifests", []), list):
        raise RegistryResponseError("The index.json of %s has no list of manifests" % where)
    document.setdefault("manifests", [])
    return document


def ref_name(entry: Any) -> str | None:
    annotations = entry.get("annotations") if isinstance(entry, dict) else None
    name = annotations.get(REF_NAME_ANNOTATION) if isinstance(annotations, dict) else None
    return name if isinstance(name, str) else None


def find_entry(index: dict[str, Any], ref: str | None, where: str) -> Descriptor | None:
    """The descriptor ``ref`` names (None when there is none); without ``ref``, the only image there."""
    entries = index["manifests"]
    if ref is None:
        if not entries:
            return None
        if len(entries) > 1:
            names = sorted({name for name in (ref_name(entry) for entry in entries) if name})
            raise InvalidInputError(
                "%s holds %d images; say which one with %s:NAME (names: %s)"
                % (where, len(entries), where, ", ".join(names) or "none")
            )
        return parse_descriptor(entries[0], where="index.json manifests[0]")
    matches = [position for position, entry in enumerate(entries) if ref_name(entry) == ref]
    if not matches:
        return None
    if len(matches) > 1:
        raise InvalidInputError("%s names more than one image %r in its index.json" % (where, ref))
    return parse_descriptor(entries[matches[0]], where="index.json manifests[%d]" % matches[0])


def _names(index: dict[str, Any]) -> str:
    names = sorted({name for name in (ref_name(entry) for entry in index["manifests"]) if name})
    return ", ".join(names) if names else "none"


def _read_manifest(files: Any, descriptor: Descriptor, where: str) -> ManifestInfo:
    try:
        data = files.read(blob_name(descriptor.digest), MAX_MANIFEST_BYTES)
    except NotFoundError:
        raise NotFoundError("%s lacks the manifest %s (an incomplete layout)" % (where, descriptor.digest)) from None
    verify_digest(data, descriptor.digest, description="manifest %s in %s" % (descriptor.digest, where))
    return parse_manifest(data, descriptor.media_type)


def _index_bytes(index: dict[str, Any]) -> bytes:
    return json.dumps(index, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _new_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def _entry(manifest: ManifestInfo, ref: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
    if ref is not None:
        entry["annotations"] = {REF_NAME_ANNOTATION: ref}
    return entry


def _with_entry(index: dict[str, Any], manifest: ManifestInfo, ref: str | None) -> dict[str, Any]:
    """``index`` naming ``manifest`` as ``ref`` (an entry without ref: once per digest)."""
    if ref is None:
        kept = [e for e in index["manifests"] if ref_name(e) is not None or e.get("digest") != manifest.digest]
    else:
        kept = [entry for entry in index["manifests"] if ref_name(entry) != ref]
    return dict(index, manifests=kept + [_entry(manifest, ref)])


class LayoutSource(ImageSource):
    """An image in an OCI layout directory or archive."""

    def __init__(self, files: Any, ref: str | None, name: str):
        self.files = files
        self.ref = ref
        self.name = name
        index = read_index(files, name)
        entry = find_entry(index, ref, name)
        if entry is None:
            if ref is None:
                raise NotFoundError("%s holds no image" % name)
            raise NotFoundError("%s has no image named %r; it has: %s" % (name, ref, _names(index)))
        self.entry = entry

    def peek(self) -> tuple[str, str]:
        return self.entry.digest, self.entry.media_type

    def top_manifest(self) -> ManifestInfo:
        return _read_manifest(self.files, self.entry, self.name)

    def child_manifest(self, descriptor: Descriptor) -> ManifestInfo:
        return _read_manifest(self.files, descriptor, self.name)

    def open_blob(self, descriptor: Descriptor) -> BlobStream:
        try:
            handle, _size = self.files.open(blob_name(descriptor.digest))
        except NotFoundError:
            raise NotFoundError(
                "%s lacks the blob %s (an incomplete layout)" % (self.name, descriptor.digest)
            ) from None
        return FileBlobStream(handle, descriptor, self.name)


def open_layout_dir(path: str, ref: str | None, name: str) -> LayoutSource:
    if not os.path.isdir(path):
        raise NotFoundError("The OCI layout directory %s does not exist" % path)
    return LayoutSource(DirFiles(path), ref, name)


def open_layout_archive(path: str, ref: str | None, name: str) -> LayoutSource:
    return LayoutSource(TarFiles(path), ref, name)


class LayoutDirDestination(ImageDestination):
    """An OCI layout directory; the name (an ``index.json`` entry) is written last."""

    # Blobs in parallel: each is streamed into a temporary file of its own, renamed into place once verified,
    # and touches nothing shared (not even the process umask: see _temporary_file). Manifests one at a time: the
    # top one rewrites index.json, which two writers would corrupt (and a child manifest is a small local file).
    parallel_writes = frozenset({BLOB_WRITES})

    def __init__(self, path: str, ref: str | None, name: str):
        self.path = path
        self.ref = ref
        self.name = name
        self.files = DirFiles(path)
        self._temporary: set[str] = set()

    def _index(self) -> dict[str, Any] | None:
        if not os.path.exists(os.path.join(self.path, INDEX_FILE)):
            return None
        return read_index(self.files, self.name)

    def _check_directory(self) -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InvalidInputError("%s: %s exists and is not a directory" % (self.name, self.path))
        if (
            os.path.isdir(self.path)
            and os.listdir(self.path)
            and not os.path.exists(os.path.join(self.path, LAYOUT_FILE))
        ):
            raise InvalidInputError(
                "%s: the directory %s is not empty and is not an OCI image layout (it has no oci-layout file)"
                % (self.name, self.path)
            )

    def current(self) -> str | None:
        self._check_directory()
        index = self._index()
        entry = find_entry(index, self.ref, self.name) if index is not None and self.ref is not None else None
        return entry.digest if entry is not None and self.has_manifest(entry.digest) else None

    def up_to_date(self, digest: str, current: str | None) -> bool:
        if self.ref is not None:
            return current == digest
        index = self._index()
        return (
            index is not None
            and any(ref_name(entry) is None and entry.get("digest") == digest for entry in index["manifests"])
            and self.has_manifest(digest)
        )

    def prepare(self, images: list[ManifestInfo], source: ImageSource, dry_run: bool) -> None:
        self._check_directory()

    def has_manifest(self, digest: str) -> bool:
        return self.files.exists(blob_name(digest))

    def has_blob(self, descriptor: Descriptor) -> bool:
        return self.files.size(blob_name(descriptor.digest)) == descriptor.size

    def _ensure_layout(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        layout = os.path.join(self.path, LAYOUT_FILE)
        if not os.path.exists(layout):
            self._write_file(LAYOUT_FILE, LAYOUT_CONTENT)

    def _temporary_file(self, name: str) -> tuple[Any, str]:
        """A new file, open for writing, beside where ``name`` goes (see ``new_temporary_file`` on permissions)."""
        directory = os.path.dirname(os.path.join(self.path, name))
        os.makedirs(directory, exist_ok=True)
        handle, temp_path = new_temporary_file(directory, ".tmp-")
        self._temporary.add(temp_path)
        return handle, temp_path

    def _commit_file(self, temp_path: str, name: str) -> None:
        os.replace(temp_path, os.path.join(self.path, name))
        self._temporary.discard(temp_path)

    def _write_file(self, name: str, data: bytes) -> None:
        handle, temp_path = self._temporary_file(name)
        with handle:
            handle.write(data)
        self._commit_file(temp_path, name)

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        self._ensure_layout()
        name = blob_name(descriptor.digest)
        state: dict[str, str] = {}

        def attempt() -> None:
            handle, state["temp"] = self._temporary_file(name)
            with handle, source.open_blob(descriptor) as stream:
                for chunk in stream.chunks():  # verified by the source at the end
                    handle.write(chunk)
            self._commit_file(state["temp"], name)

        def undo() -> None:
            self._remove(state.get("temp"))

        source.retry.run(attempt, retry_if=is_transient, undo=undo)

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        self._ensure_layout()
        if not self.has_manifest(manifest.digest):
            self._write_file(blob_name(manifest.digest), manifest.raw)
        if top:
            self._write_file(INDEX_FILE, _index_bytes(_with_entry(self._index() or _new_index(), manifest, self.ref)))

    def _remove(self, temp_path: str | None) -> None:
        if temp_path and os.path.exists(temp_path):
            os.unlink(temp_path)
        self._temporary.discard(temp_path or "")

    def abort(self) -> None:
        for temp_path in list(self._temporary):
            self._remove(temp_path)

    def delete(self, dry_run: bool) -> tuple[str | None, str | None]:
        self._check_directory()
        index = self._index()
        entry = find_entry(index, self.ref, self.name) if index is not None else None
        if entry is None:
            return None, None
        if not dry_run:
            remaining = [e for e in index["manifests"] if e.get("digest") != entry.digest]  # type: ignore[index]
            self._write_file(INDEX_FILE, _index_bytes(dict(index, manifests=remaining)))  # type: ignore[arg-type]
            self._collect_garbage(remaining)
        return entry.digest, entry.media_type

    def _collect_garbage(self, entries: list[Any]) -> None:
        """Remove blobs no remaining image uses; keep everything when any remaining image is unreadable."""
        reachable: set[str] = set()
        pending = []
        try:
            pending = [parse_descriptor(entry) for entry in entries]
            while pending:
                descriptor = pending.pop()
                if descriptor.digest in reachable:
                    continue
                reachable.add(descriptor.digest)
                if (
                    descriptor.media_type
                    and "manifest" not in descriptor.media_type
                    and "index" not in descriptor.media_type
                ):
                    continue
                manifest = _read_manifest(self.files, descriptor, self.name)
                pending.extend(manifest.manifests)
                pending.extend(manifest.blobs)
                if manifest.subject is not None:
                    reachable.add(manifest.subject.digest)
        except RegistryError:
            return
        blobs_root = os.path.join(self.path, "blobs")
        for algorithm in os.listdir(blobs_root) if os.path.isdir(blobs_root) else []:
            directory = os.path.join(blobs_root, algorithm)
            for encoded in os.listdir(directory) if os.path.isdir(directory) else []:
                path = os.path.join(directory, encoded)
                if (
                    not encoded.startswith(".")
                    and os.path.isfile(path)
                    and "%s:%s" % (algorithm, encoded) not in reachable
                ):
                    os.unlink(path)


class LayoutArchiveDestination(TarDestination):
    """A new OCI archive holding the copied image; it replaces ``path`` when complete."""

    def __init__(self, path: str, ref: str | None, name: str):
        super().__init__(path, name)
        self.ref = ref
        self.top: ManifestInfo | None = None

    def _existing(self) -> tuple[TarFiles, dict[str, Any]] | None:
        return open_existing_archive(self.path, self.name, "an OCI archive", read_index)

    def current(self) -> str | None:
        existing = self._existing()
        if existing is None:
            return None
        files, index = existing
        if self.ref is None and len(index["manifests"]) != 1:
            return None
        entry = find_entry(index, self.ref, self.name)
        return entry.digest if entry is not None and files.exists(blob_name(entry.digest)) else None

    def begin(self, writer: TarWriter) -> None:
        writer.add_bytes(LAYOUT_FILE, LAYOUT_CONTENT)
        writer.add_directory("blobs/")

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        name = blob_name(descriptor.digest)
        if name not in self._writer().names:
            self._writer().add_directory(name.rsplit("/", 1)[0] + "/")
            self.add_blob(name, descriptor, source, size=descriptor.size)

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        writer = self._writer()
        name = blob_name(manifest.digest)
        if name not in writer.names:
            writer.add_directory(name.rsplit("/", 1)[0] + "/")
            writer.add_bytes(name, manifest.raw)
        if top:
            self.top = manifest

    def commit(self) -> None:
        if self.writer is None or self.top is None:
            raise RegistryResponseError("Internal error: %s was committed before its manifest was written" % self.name)
        self.writer.add_bytes(INDEX_FILE, _index_bytes(_with_entry(_new_index(), self.top, self.ref)))
        self.finish()

    def delete(self, dry_run: bool) -> tuple[str | None, str | None]:
        existing = self._existing()
        if existing is None:
            return None, None
        _files, index = existing
        entry = find_entry(index, self.ref, self.name)
        if entry is None:
            return None, None
        others = [e for e in index["manifests"] if e.get("digest") != entry.digest]
        if others:
            raise UnsupportedError(
                "%s holds other images too; removing one image from an archive is not supported: remove the"
                " file with ansible.builtin.file, or write the archive anew" % self.name
            )
        if not dry_run:
            os.unlink(self.path)
        return entry.digest, entry.media_type

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``docker-archive:FILE[:REF]``: the tar ``docker save`` writes and ``docker load`` reads.

The archive holds ``manifest.json`` (``[{Config, RepoTags, Layers}]``), the image config as a file,
and every layer as an uncompressed tar. It has no registry manifest, so converting changes digests:

- Reading builds an OCI image manifest for the image: the config bytes unchanged (so the image ID,
  the config's digest, stays), and each layer as stored, uncompressed
  (``application/vnd.oci.image.layer.v1.tar``, whose digest is the layer's diff ID). The same archive
  always gives the same manifest, so pushing it again is a no-op.
- Writing stores the config bytes unchanged and each layer uncompressed (gzip layers are decompressed
  on the way and checked against the diff IDs in the config). The archive holds one image; its
  identity is the image ID, which is what the destination reports as its digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.files import (
    GZIP_MAGIC,
    ZSTD_MAGIC,
    BytesBlobStream,
    FileBlobStream,
    TarDestination,
    TarFiles,
    open_existing_archive,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import (
    BlobStream,
    ImageSource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import DigestVerifier, compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    OCI_CONFIG,
    OCI_LAYER_TAR,
    OCI_LAYER_TAR_GZIP,
    OCI_LAYER_TAR_ZSTD,
    OCI_MANIFEST,
    is_foreign_layer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, parse_reference

MANIFEST_FILE = "manifest.json"
MAX_JSON_BYTES = 16 * 1024 * 1024
UNCOMPRESSED_LAYER_TYPES = frozenset((OCI_LAYER_TAR, "application/vnd.docker.image.rootfs.diff.tar"))
GZIP_LAYER_TYPES = frozenset((OCI_LAYER_TAR_GZIP, DOCKER_LAYER))
DECOMPRESS_CHUNK = 1024 * 1024


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise RegistryResponseError("%s is not valid JSON" % what) from None


def read_entries(files: TarFiles, where: str) -> list[dict[str, Any]]:
    """``manifest.json`` of a docker archive, checked for the fields we use."""
    if not files.exists(MANIFEST_FILE):
        raise InvalidInputError("%s is not a docker archive (it has no manifest.json)" % where)
    entries = _load_json(files.read(MANIFEST_FILE, MAX_JSON_BYTES), "The manifest.json of %s" % where)
    if not isinstance(entries, list):
        raise RegistryResponseError("The manifest.json of %s is not a list of images" % where)
    for position, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("Config"), str)
            or not isinstance(entry.get("Layers"), list)
            or not all(isinstance(layer, str) for layer in entry["Layers"])
            or not isinstance(entry.get("RepoTags") or [], list)
        ):
            raise RegistryResponseError("Entry %d of the manifest.json of %s is malformed" % (position, where))
    return entries


def _same_name(tag: Any, wanted: Reference) -> bool:
    try:
        return isinstance(tag, str) and parse_reference(tag).canonical == wanted.canonical
    except InvalidInputError:
        return False


def select_entry(entries: list[dict[str, Any]], ref: Reference | int | None, where: str) -> dict[str, Any] | None:
    """The entry ``ref`` names: a tag in ``RepoTags``, a position (``@N``), or, without ref, the only one."""
    if ref is None:
        if len(entries) > 1:
            raise InvalidInputError(
                "%s holds %d images; say which one with %s:NAME:TAG or %s:@N" % (where, len(entries), where, where)
            )
        return entries[0] if entries else None
    if isinstance(ref, int):
        if ref >= len(entries):
            raise NotFoundError("%s holds %d images; there is no image @%d" % (where, len(entries), ref))
        return entries[ref]
    matches = [entry for entry in entries if any(_same_name(tag, ref) for tag in entry.get("RepoTags") or [])]
    return matches[0] if matches else None


def _tags(entries: list[dict[str, Any]]) -> str:
    tags = [tag for entry in entries for tag in entry.get("RepoTags") or []]
    return ", ".join(tags) if tags else "none"


def _diff_ids(config: bytes, where: str) -> list[str]:
    document = _load_json(config, "The image config in %s" % where)
    rootfs = document.get("rootfs") if isinstance(document, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(diff_id, str) for diff_id in diff_ids):
        raise RegistryResponseError("The image config in %s has no rootfs.diff_ids" % where)
    return diff_ids


class DockerArchiveSource(ImageSource):
    def __init__(self, path: str, ref: Reference | int | None, name: str):
        self.name = name
        self.files = TarFiles(path)
        entries = read_entries(self.files, name)
        entry = select_entry(entries, ref, name)
        if entry is None:
            if ref is None:
                raise NotFoundError("%s holds no image" % name)
            raise NotFoundError("%s has no image tagged %s; it has: %s" % (name, ref, _tags(entries)))
        self.config = self.files.read(entry["Config"], MAX_JSON_BYTES)
        self.config_digest = compute_digest(self.config)
        diff_ids = _diff_ids(self.config, name)
        if len(diff_ids) != len(entry["Layers"]):
            raise RegistryResponseError(
                "%s is inconsistent: the image has %d layers, and its config lists %d diff IDs"
                % (name, len(entry["Layers"]), len(diff_ids))
            )
        self.layer_files: dict[str, str] = {}
        layers = [self._describe_layer(member, diff_id) for member, diff_id in zip(entry["Layers"], diff_ids)]
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest, "size": len(self.config)},
            "layers": layers,
        }
        self.manifest = parse_manifest(json.dumps(document, separators=(",", ":")).encode("utf-8"), OCI_MANIFEST)

    def _describe_layer(self, member: str, diff_id: str) -> dict[str, Any]:
        handle, size = self.files.open(member)
        try:
            head = handle.read(4)
            if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
                # A compressed layer's digest is not in the config: hash the member once.
                hasher = hashlib.sha256(head)
                for chunk in iter(lambda: handle.read(DECOMPRESS_CHUNK), b""):
                    hasher.update(chunk)
                digest = "sha256:" + hasher.hexdigest()
                media_type = OCI_LAYER_TAR_GZIP if head.startswith(GZIP_MAGIC) else OCI_LAYER_TAR_ZSTD
            else:
                # Uncompressed: the digest is the diff ID, checked when the layer is read.
                digest, media_type = diff_id, OCI_LAYER_TAR
        finally:
            handle.close()
        self.layer_files[digest] = member
        return {"mediaType": media_type, "digest": digest, "size": size}

    def peek(self) -> tuple[str, str]:
        return self.manifest.digest, self.manifest.media_type

    def top_manifest(self) -> ManifestInfo:
        return self.manifest

    def child_manifest(self, descriptor: Descriptor) -> ManifestInfo:
        raise NotFoundError("%s holds a single image, not an index" % self.name)

    def open_blob(self, descriptor: Descriptor) -> BlobStream:
        if descriptor.digest == self.config_digest:
            return BytesBlobStream(self.config, descriptor, self.name)
        member = self.layer_files.get(descriptor.digest)
        if member is None:
            raise NotFoundError("%s has no blob %s" % (self.name, descriptor.digest))
        handle, _size = self.files.open(member)
        return FileBlobStream(handle, descriptor, self.name)


def gunzip(chunks: Iterable[bytes], where: str) -> Iterator[bytes]:
    """Decompress a gzip stream (one or more members) chunk by chunk, never more than 1 MiB at a time."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False
    try:
        for chunk in chunks:
            data = chunk
            while data:
                started = True
                output = decompressor.decompress(data, DECOMPRESS_CHUNK)
                if output:
                    yield output
                data = decompressor.unconsumed_tail
                if decompressor.eof:
                    data = decompressor.unused_data + data
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    started = False
                    if not data.strip(b"\0"):
                        data = b""
        tail = decompressor.flush()
        if tail:
            yield tail
    except zlib.error as err:
        raise RegistryResponseError("The gzip layer %s is corrupt: %s" % (where, err)) from None
    if started and not decompressor.eof:
        raise RegistryResponseError("The gzip layer %s ends early" % where)


def _verified(chunks: Iterable[bytes], diff_id: str, where: str) -> Iterator[bytes]:
    verifier = DigestVerifier(diff_id, description="the uncompressed layer %s" % where)
    for chunk in chunks:
        verifier.update(chunk)
        yield chunk
    try:
        verifier.verify()
    except DigestMismatchError as err:
        raise DigestMismatchError("%s; the image config's diff ID does not match its layer" % err) from None


def archive_tag(ref: Reference) -> str:
    """How ``docker save`` writes a name in RepoTags (``alpine:3.19``, ``ghcr.io/org/app:v1``)."""
    return ref.with_digest(None).familiar


class DockerArchiveDestination(TarDestination):
    """A new docker archive holding one image; it replaces ``path`` when complete."""

    single_image = True

    def __init__(self, path: str, ref: Reference | None, name: str):
        super().__init__(path, name)
        self.ref = ref
        self.image: ManifestInfo | None = None
        self.config = b""
        self.diff_ids: dict[str, str] = {}

    def _existing(self) -> tuple[TarFiles, list[dict[str, Any]]] | None:
        return open_existing_archive(self.path, self.name, "a docker archive", read_entries)

    def _existing_image(self) -> tuple[list[dict[str, Any]], dict[str, Any], str] | None:
        existing = self._existing()
        if existing is None:
            return None
        files, entries = existing
        if self.ref is None and len(entries) != 1:
            return None
        entry = select_entry(entries, self.ref, self.name)
        if entry is None or not all(files.exists(layer) for layer in entry["Layers"]):
            return None
        return entries, entry, compute_digest(files.read(entry["Config"], MAX_JSON_BYTES))

    def target(self, top: ManifestInfo) -> tuple[str, str]:
        if top.config is None:
            raise UnsupportedError("%s: the source manifest has no config" % self.name)
        return top.config.digest, DOCKER_CONFIG

    def current(self) -> str | None:
        found = self._existing_image()
        return found[2] if found is not None else None

    def up_to_date(self, digest: str, current: str | None) -> bool:
        found = self._existing_image() if current == digest else None
        # Written anew unless it is exactly what this task would write: this image, under this name only.
        return found is not None and len(found[0]) == 1

    def prepare(self, images: list[ManifestInfo], source: ImageSource, dry_run: bool) -> None:
        super().prepare(images, source, dry_run)
        image = images[0]
        for layer in image.layers:
            if is_foreign_layer(layer.media_type):
                raise UnsupportedError(
                    "%s needs every layer, and the image has a non-distributable layer %s that registries do not"
                    " hold" % (self.name, layer.digest)
                )
            if layer.media_type not in UNCOMPRESSED_LAYER_TYPES | GZIP_LAYER_TYPES:
                raise UnsupportedError(
                    "%s stores uncompressed layers, and layer %s is %s; only gzip and uncompressed layers can be"
                    " written to a docker archive" % (self.name, layer.digest, layer.media_type)
                )
        if image.config is None:
            raise UnsupportedError("%s: the source manifest has no config" % self.name)
        self.config = source.read_blob(image.config)
        diff_ids = _diff_ids(self.config, source.name)
        if len(diff_ids) != len(image.layers):
            raise RegistryResponseError(
                "The image %s has %d layers, and its config lists %d diff IDs"
                % (source.name, len(image.layers), len(diff_ids))
            )
        self.diff_ids = {layer.digest: diff_id for layer, diff_id in zip(image.layers, diff_ids)}
        self.image = image

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        writer = self._writer()
        if self.image is not None and self.image.config is not None and descriptor.digest == self.image.config.digest:
            writer.add_bytes(_config_file(descriptor.digest), self.config)
            return
        diff_id = self.diff_ids[descriptor.digest]
        name = _layer_file(diff_id)
        if name in writer.names:
            return  # two compressed blobs of the same layer: stored once
        where = "%s from %s" % (descriptor.digest, source.name)
        if descriptor.media_type in GZIP_LAYER_TYPES:
            self.add_blob(name, descriptor, source, lambda chunks: _verified(gunzip(chunks, where), diff_id, where))
        else:
            self.add_blob(name, descriptor, source, lambda chunks: _verified(chunks, diff_id, where), descriptor.size)

    def write_manifest(self, manifest: ManifestInfo, top: bool) -> None:
        pass  # a docker archive keeps no registry manifest; manifest.json is written by commit()

    def commit(self) -> None:
        if self.image is None or self.image.config is None:
            raise RegistryResponseError("Internal error: %s was committed before it was prepared" % self.name)
        writer = self._writer()
        if _config_file(self.image.config.digest) not in writer.names:
            writer.add_bytes(_config_file(self.image.config.digest), self.config)
        entry = {
            "Config": _config_file(self.image.config.digest),
            "RepoTags": [archive_tag(self.ref)] if self.ref is not None else None,
            "Layers": [_layer_file(self.diff_ids[layer.digest]) for layer in self.image.layers],
        }
        writer.add_bytes(MANIFEST_FILE, json.dumps([entry], separators=(",", ":")).encode("utf-8"))
        self.finish()

    def delete(self, dry_run: bool) -> tuple[str | None, str | None]:
        found = self._existing_image()
        if found is None:
            return None, None
        entries, _entry, config_digest = found
        if len(entries) > 1:
            raise UnsupportedError(
                "%s holds other images too; removing one image from an archive is not supported: remove the"
                " file with ansible.builtin.file, or write the archive anew" % self.name
            )
        if not dry_run:
            os.unlink(self.path)
        return config_digest, DOCKER_CONFIG


def _config_file(digest: str) -> str:
    return "%s.json" % digest.partition(":")[2]


def _layer_file(diff_id: str) -> str:
    return "%s.tar" % diff_id.partition(":")[2]

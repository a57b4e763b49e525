"""Write small, deterministic OCI image layouts in Python (no download, no skopeo).

    image = make_image(tmp_path / "layout", ref="v1", platforms=["linux/amd64", "linux/arm64"], seed=3)
    skopeo.copy(image.oci, f"{repo}:v1")   # image.digest is the index digest the registry will report

Layers are gzip tars of seeded pseudo-random bytes, streamed to disk (big layers never sit in memory).
The same arguments always give the same digests; another seed gives other digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Union

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

MEDIA_TYPES = {
    "oci": {"manifest": OCI_MANIFEST, "index": OCI_INDEX, "config": OCI_CONFIG, "layer": OCI_LAYER},
    "docker": {"manifest": DOCKER_MANIFEST, "index": DOCKER_LIST, "config": DOCKER_CONFIG, "layer": DOCKER_LAYER},
}
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class File:
    """A regular file with an explicit mode (plain `bytes` values get 0o644)."""

    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Opaque:
    """An opaque directory: hides everything lower layers put below it (`.wh..wh..opq`)."""

    mode: int = 0o755


# A `files` value: None is a whiteout (deletes the path from lower layers).
Entry = Union[bytes, File, Symlink, Dir, Opaque, None]


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str
    diff_id: str | None = None  # layers only: digest of the uncompressed tar


@dataclass
class PlatformImage:
    """One platform's image manifest."""

    platform: str
    digest: str
    size: int
    media_type: str
    manifest: bytes
    config: Blob
    config_bytes: bytes
    layers: list[Blob]


@dataclass
class Image:
    """What make_image wrote; `digest`/`manifest` are the top-level manifest (the index for several platforms)."""

    path: Path
    ref: str
    digest: str
    size: int
    media_type: str
    manifest: bytes
    platforms: dict[str, PlatformImage] = field(default_factory=dict)

    @property
    def oci(self) -> str:
        """The skopeo/containers-image reference: `oci:PATH:REF`."""
        return f"oci:{self.path}:{self.ref}"

    @property
    def is_index(self) -> bool:
        return self.media_type in (OCI_INDEX, DOCKER_LIST)

    @property
    def manifests(self) -> dict[str, str]:
        return {name: p.digest for name, p in self.platforms.items()}

    @property
    def config_digests(self) -> dict[str, str]:
        return {name: p.config.digest for name, p in self.platforms.items()}

    @property
    def layer_digests(self) -> dict[str, list[str]]:
        return {name: [layer.digest for layer in p.layers] for name, p in self.platforms.items()}

    @property
    def layer_sizes(self) -> dict[str, list[int]]:
        return {name: [layer.size for layer in p.layers] for name, p in self.platforms.items()}

    def blob_digests(self) -> set[str]:
        """Every config and layer digest (not the manifests)."""
        return {b.digest for p in self.platforms.values() for b in [p.config, *p.layers]}

    def blob_path(self, digest: str) -> Path:
        algorithm, _sep, hex_digest = digest.partition(":")
        return self.path / "blobs" / algorithm / hex_digest


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what passes through on its way to TARGET."""

    def __init__(self, target: BinaryIO | None) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sha256.update(chunk)
        self.size += len(chunk)
        if self.target is not None:
            self.target.write(chunk)
        return len(chunk)

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256.hexdigest()}"


class _SeededReader(io.RawIOBase):
    """SIZE deterministic, incompressible bytes, produced on demand."""

    def __init__(self, seed: str, size: int) -> None:
        self.rng = random.Random(seed)
        self.remaining = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        count = self.remaining if size is None or size < 0 else min(size, self.remaining)
        self.remaining -= count
        return self.rng.randbytes(count)


class Layout:
    """Blob storage of one OCI layout directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.blobs = self.path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def _commit(self, temp: Path, digest: str) -> None:
        final = self.blobs / digest.split(":", 1)[1]
        if final.exists():
            temp.unlink()
        else:
            temp.rename(final)

    def write_bytes(self, data: bytes, media_type: str) -> Blob:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        target = self.blobs / digest.split(":", 1)[1]
        if not target.exists():
            target.write_bytes(data)
        return Blob(digest=digest, size=len(data), media_type=media_type)

    def write_layer(
        self, entries: Iterator[tuple[tarfile.TarInfo, BinaryIO | None]], media_type: str, level: int
    ) -> Blob:
        """Stream a gzip tar of ENTRIES into the layout, hashing compressed and uncompressed bytes on the way."""
        temp = self.blobs / f".tmp-{os.getpid()}-{id(entries)}"
        with open(temp, "wb") as raw:
            compressed = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=level) as gz:
                uncompressed = _HashingWriter(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for info, content in entries:
                        tar.addfile(info, content)
        self._commit(temp, compressed.digest)
        return Blob(compressed.digest, compressed.size, media_type, diff_id=uncompressed.digest)


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = 946684800, 0, 0, "", ""  # 2000-01-01
    return info


def _random_layer_entries(seed: str, size: int) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
    directory = "data"
    yield _tar_info(directory, tarfile.DIRTYPE, 0o755), None
    yield _tar_info(
        f"{directory}/{hashlib.sha256(seed.encode()).hexdigest()[:12]}.bin", tarfile.REGTYPE, 0o644, size
    ), (_SeededReader(seed, size))


def _file_entries(files: Mapping[str, Entry]) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
    """Tar entries for a `files` mapping; parent directories are added before their children."""
    emitted: set[str] = set()
    for raw_path, value in files.items():
        path = raw_path.strip("/")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in emitted and not isinstance(files.get(parent), (Dir, Opaque)):
                emitted.add(parent)
                yield _tar_info(parent, tarfile.DIRTYPE, 0o755), None
        head, _sep, name = path.rpartition("/")
        prefix = f"{head}/" if head else ""
        emitted.add(path)
        if value is None:
            yield _tar_info(f"{prefix}.wh.{name}", tarfile.REGTYPE, 0o644), None
        elif isinstance(value, (Dir, Opaque)):
            yield _tar_info(path, tarfile.DIRTYPE, value.mode), None
            if isinstance(value, Opaque):
                yield _tar_info(f"{path}/.wh..wh..opq", tarfile.REGTYPE, 0o644), None
        elif isinstance(value, Symlink):
            yield _tar_info(path, tarfile.SYMTYPE, 0o777, linkname=value.target), None
        else:
            file = value if isinstance(value, File) else File(value)
            yield _tar_info(path, tarfile.REGTYPE, file.mode, len(file.data)), io.BytesIO(file.data)


def _dumps(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def parse_platform(platform: str) -> dict[str, str]:
    """`linux/arm/v7` -> {"os": "linux", "architecture": "arm", "variant": "v7"}."""
    parts = platform.split("/")
    result = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        result["variant"] = parts[2]
    return result


def _write_platform(
    layout: Layout,
    platform: str,
    *,
    layers: int,
    layer_size: int,
    files: Sequence[Mapping[str, Entry]],
    labels: Mapping[str, str] | None,
    created: str,
    seed: object,
    types: Mapping[str, str],
    annotations: Mapping[str, str] | None,
    compresslevel: int,
) -> PlatformImage:
    blobs = [
        layout.write_layer(_random_layer_entries(f"{seed}/{platform}/{i}", layer_size), types["layer"], compresslevel)
        for i in range(layers)
    ]
    blobs += [layout.write_layer(_file_entries(layer), types["layer"], compresslevel) for layer in files]
    history = [{"created": created, "created_by": f"ocireg test layer {i} ({platform})"} for i in range(layers)]
    history += [{"created": created, "created_by": f"ocireg test files layer {i}"} for i in range(len(files))]
    image_config: dict[str, Any] = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]}
    if labels:
        image_config["Labels"] = dict(labels)
    config = {
        "created": created,
        **parse_platform(platform),
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [blob.diff_id for blob in blobs]},
        "history": history,
    }
    config_bytes = _dumps(config)
    config_blob = layout.write_bytes(config_bytes, types["config"])
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types["manifest"],
        "config": {"mediaType": config_blob.media_type, "digest": config_blob.digest, "size": config_blob.size},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in blobs],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = _dumps(manifest)
    manifest_blob = layout.write_bytes(manifest_bytes, types["manifest"])
    return PlatformImage(
        platform=platform,
        digest=manifest_blob.digest,
        size=manifest_blob.size,
        media_type=types["manifest"],
        manifest=manifest_bytes,
        config=config_blob,
        config_bytes=config_bytes,
        layers=blobs,
    )


def _set_ref(path: Path, ref: str, media_type: str, digest: str, size: int) -> None:
    """Point REF at DIGEST in PATH/index.json, replacing an older entry for the same ref."""
    index_path = path / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME_ANNOTATION) != ref]
    index["manifests"].append(
        {"mediaType": media_type, "digest": digest, "size": size, "annotations": {REF_NAME_ANNOTATION: ref}}
    )
    index_path.write_text(json.dumps(index, indent=2))


def make_image(
    dest_dir: str | os.PathLike[str],
    *,
    ref: str = "latest",
    platforms: Sequence[str] | None = None,
    layers: int = 2,
    layer_size: int = 1024,
    files: Mapping[str, Entry] | Sequence[Mapping[str, Entry]] | None = None,
    labels: Mapping[str, str] | None = None,
    created: str = "2024-01-01T00:00:00Z",
    seed: object = 0,
    media_types: str = "oci",
    annotations: Mapping[str, str] | None = None,
    compresslevel: int = 6,
) -> Image:
    """Write an image into the OCI layout DEST_DIR (created or extended) under REF.

    platforms: None writes a single linux/amd64 manifest; a list (even of one) writes an index over them.
    layers/layer_size: that many layers of seeded random bytes per platform.
    files: path -> bytes | File | Symlink | Dir | Opaque | None (whiteout), as one extra top layer; a list of
        such mappings adds one layer each, in order (so later ones can whiteout earlier files).
    media_types: "oci" or "docker" (Docker v2 schema 2 manifest/list, config and layer types).
    compresslevel: gzip level; 1 makes big benchmark layers much faster to write.
    """
    layout = Layout(Path(dest_dir))
    types = MEDIA_TYPES[media_types]
    file_layers = [] if files is None else [files] if isinstance(files, Mapping) else list(files)
    options = dict(
        layers=layers,
        layer_size=layer_size,
        files=file_layers,
        labels=labels,
        created=created,
        seed=seed,
        types=types,
        compresslevel=compresslevel,
    )
    if platforms is None:
        single = _write_platform(layout, "linux/amd64", annotations=annotations, **options)
        image = Image(layout.path, ref, single.digest, single.size, single.media_type, single.manifest)
        image.platforms[single.platform] = single
    else:
        children = [_write_platform(layout, p, annotations=None, **options) for p in platforms]
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": types["index"],
            "manifests": [
                {"mediaType": c.media_type, "digest": c.digest, "size": c.size, "platform": parse_platform(c.platform)}
                for c in children
            ],
        }
        if annotations:
            index["annotations"] = dict(annotations)
        index_bytes = _dumps(index)
        blob = layout.write_bytes(index_bytes, types["index"])
        image = Image(layout.path, ref, blob.digest, blob.size, types["index"], index_bytes)
        image.platforms.update((c.platform, c) for c in children)
    _set_ref(layout.path, ref, image.media_type, image.digest, image.size)
    return image


def add_ref(image: Image, ref: str) -> Image:
    """Also name IMAGE as REF in its layout; returns the image seen through the new ref."""
    _set_ref(image.path, ref, image.media_type, image.digest, image.size)
    return replace(image, ref=ref)


def read_blob(image: Image, digest: str) -> bytes:
    return image.blob_path(digest).read_bytes()


def iter_blob(image: Image, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    with open(image.blob_path(digest), "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk

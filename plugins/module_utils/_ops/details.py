# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image details from a manifest and its config, fetched with as few requests as the API allows.

One ``GET`` per tag (the manifest; no ``HEAD`` first, since the body is needed anyway), one more for the
selected platform's manifest when the tag is an index, and one ``GET`` per *distinct* config digest for
the whole run: configs and child manifests are content-addressed, so a digest read once (in any
repository) is never read again. Lookups of the same digest from several threads share one request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import OnceCache
from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError, RegistryResponseError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    ManifestInfo,
    has_image_config,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_index
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    platform_matches,
    platform_names,
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._ops.filesystem import (
    ChunkStream,
    LayerSource,
    read_paths,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient


@dataclasses.dataclass(frozen=True)
class ResolvedImage:
    """A tag or digest resolved to its top manifest, the image manifest for the platform, and its config."""

    top: ManifestInfo
    image: ManifestInfo | None  # the top manifest itself, or the selected platform's child of an index
    selected: Descriptor | None  # the index entry that was selected (indexes only)
    config: dict | None  # the parsed image config (None for artifacts with another config type)
    # Whether the image is of the platform asked for. An index: whether it holds it (the default platform when none
    # was asked for). A single image: whether its config names it; None when no platform was asked for, or when the
    # config names none (an artifact).
    platform_matched: bool | None = None

    @property
    def own_platform(self) -> str | None:
        """A single image's platform as its config names it (``linux/arm64/v8``); None for an index or an artifact."""
        platform = None if self.top.is_index else config_platform(self.config)
        return format_platform(platform) if platform is not None else None


def config_platform(config: dict | None) -> dict | None:
    """``{os, architecture, variant}`` of an image config, or None when it does not name an os and architecture."""
    if not isinstance(config, dict):
        return None
    platform = {key: config.get(key) for key in ("os", "architecture", "variant")}
    if not all(isinstance(platform[key], str) and platform[key] for key in ("os", "architecture")):
        return None
    if not isinstance(platform["variant"], str) or not platform["variant"]:
        platform["variant"] = None
    return platform


DEFAULT_PLATFORM = "linux/amd64"


class ImageInspector:
    """Resolves images in one registry and turns them into image details; safe to share between threads.

    ``platform`` chooses the platform of an index and is the platform a single image is checked against
    (:attr:`ResolvedImage.platform_matched`). None: an index is described for :data:`DEFAULT_PLATFORM`, and a
    single image is whatever it is.
    """

    def __init__(self, client: RegistryClient, platform: str | None):
        self.client = client
        self.platform_given = platform is not None
        self.platform = platform if platform is not None else DEFAULT_PLATFORM
        self._manifests = OnceCache()  # digest -> ManifestInfo (platform manifests of indexes)
        self._configs = OnceCache()  # digest -> parsed config

    def resolve(self, repository: str, reference: str) -> ResolvedImage:
        """Fetch ``repository:reference`` (a tag or digest) and what its details need.

        Raises NotFoundError only when the repository or the reference itself is unknown; a platform
        manifest or config that an existing index or manifest names but the registry lacks is a
        RegistryResponseError, because the image is broken rather than absent. An index without the
        platform, or a single image of another platform, is no error: ``platform_matched`` says so.
        """
        fetched = self.client.get_manifest(repository, reference)
        top = parse_manifest(fetched.raw, fetched.media_type)
        try:
            return self._complete(repository, top)
        except NotFoundError as err:
            raise RegistryResponseError(
                "Image %s in %s on registry %s is incomplete: %s" % (top.digest, repository, self.client.registry, err),
                registry=self.client.registry,
                repository=repository,
            ) from None

    def _complete(self, repository: str, top: ManifestInfo) -> ResolvedImage:
        image: ManifestInfo | None = top
        selected = None
        if top.is_index:
            image = None
            try:
                selected = select_platform(top, self.platform)
            except NotFoundError:
                selected = None
            if selected is not None:
                digest = selected.digest
                child = self._manifests.get(digest, lambda: self._fetch_manifest(repository, digest))
                image = None if child.is_index else child
        config = None
        if image is not None and has_image_config(image):
            descriptor = image.config
            config = self._configs.get(descriptor.digest, lambda: self._fetch_config(repository, descriptor))
        matched = None
        if top.is_index:
            matched = selected is not None
        elif self.platform_given and config_platform(config) is not None:
            # A single image has no platform to choose: it is of the one asked for, or it is not.
            matched = platform_matches(self.platform, config_platform(config))
        return ResolvedImage(top=top, image=image, selected=selected, config=config, platform_matched=matched)

    def _fetch_manifest(self, repository: str, digest: str) -> ManifestInfo:
        fetched = self.client.get_manifest(repository, digest)
        return parse_manifest(fetched.raw, fetched.media_type)

    def _fetch_config(self, repository: str, descriptor: Descriptor) -> dict:
        raw = self.client.read_blob(repository, descriptor.digest, limit=MAX_CONFIG_BYTES)
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            config = None
        if not isinstance(config, dict):
            raise RegistryResponseError(
                "The image config %s in %s on registry %s is not a JSON object"
                % (descriptor.digest, repository, self.client.registry),
                registry=self.client.registry,
                repository=repository,
            )
        return config

    def layer_sources(self, repository: str, resolved: ResolvedImage) -> list[LayerSource]:
        """What :func:`read_paths` needs to stream the layers of the resolved image, bottom first."""
        if resolved.image is None:
            raise NotFoundError(
                "Image %s in %s has no manifest for platform %s; available platforms: %s"
                % (
                    resolved.top.digest,
                    repository,
                    self.platform,
                    platform_names(resolved.top),
                ),
                registry=self.client.registry,
                repository=repository,
            )
        if resolved.platform_matched is False:
            raise NotFoundError(
                "Image %s in %s is a single %s image, not %s; its files were not read"
                % (resolved.top.digest, repository, resolved.own_platform, self.platform),
                registry=self.client.registry,
                repository=repository,
            )
        sources = []
        for index, layer in enumerate(resolved.image.layers):
            description = "Layer %d (%s, %s) of %s" % (index + 1, layer.digest, layer.media_type, repository)
            sources.append((description, self._layer_opener(repository, layer)))
        return sources

    def _layer_opener(self, repository: str, layer: Descriptor) -> Callable[[], ChunkStream]:
        def open_layer() -> ChunkStream:
            reader = self.client.open_blob(repository, layer.digest, layer.size)
            return ChunkStream(reader.chunks(), close=reader.close)

        return open_layer

    def read_paths(
        self, repository: str, resolved: ResolvedImage, paths: Iterable[str], max_file_size: int
    ) -> dict[str, dict]:
        sources = self.layer_sources(repository, resolved)
        # read_paths() downloads every layer from its start: when one breaks off or arrives corrupt, all of it
        # runs again (fresh GETs, nothing half-read kept).
        return self.client.fetch_again_if_cut(lambda: read_paths(sources, list(paths), max_file_size), corrupt_too=True)


def image_details(name: str, tag: str | None, resolved: ResolvedImage) -> dict[str, Any]:
    """The image details that registry_info returns (its RETURN documentation).

    For an index, ``digest``/``media_type``/``platforms`` describe the index, and ``created``, ``labels``,
    ``architecture``, ``os``, ``variant``, ``layers`` and ``history`` describe the platform picked from it
    (``platform``; null when the index has no such platform). ``size`` is every byte a pull of that tag
    (for that platform) transfers: the index, the platform's manifest, its config and its layers.
    """
    top, image, config = resolved.top, resolved.image, resolved.config or {}
    size = top.size
    if image is not None:
        size = (size if image is not top else 0) + image.total_size
    image_config = config.get("config") if isinstance(config.get("config"), dict) else {}
    labels = image_config.get("Labels") if isinstance(image_config.get("Labels"), dict) else {}
    history = config.get("history") if isinstance(config.get("history"), list) else []
    selected_platform = resolved.selected.platform if resolved.selected is not None else None
    platform_source = selected_platform or {}
    platforms = top.platforms if top.is_index else []
    selected = None
    if resolved.selected is not None:
        selected = next((entry for entry in platforms if entry["digest"] == resolved.selected.digest), None)
    return {
        "name": name,
        "tag": tag,
        "digest": top.digest,
        "media_type": top.media_type,
        "size": size,
        "created": config.get("created") if isinstance(config.get("created"), str) else None,
        "labels": dict(labels),
        "architecture": _text(config.get("architecture")) or _text(platform_source.get("architecture")),
        "os": _text(config.get("os")) or _text(platform_source.get("os")),
        "variant": _text(config.get("variant")) or _text(platform_source.get("variant")),
        "layers": [
            {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type}
            for layer in (image.layers if image is not None else ())
        ],
        "history": history,
        "platforms": platforms,
        "platform": selected,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def pinned_digest(client: RegistryClient, reference: Reference, platform: str | None = None) -> str:
    """The digest to pin ``reference`` by: one ``HEAD``; with ``platform`` and an index, that platform's manifest."""
    descriptor = client.head_manifest(reference.repository, reference.manifest_reference)
    if descriptor is None:
        raise NotFoundError(
            "Image %s not found on registry %s: no such repository, tag or digest"
            % (reference.canonical, reference.registry),
            registry=reference.registry,
            repository=reference.repository,
        )
    if platform is None or not is_index(descriptor.media_type):
        return descriptor.digest
    fetched = client.get_manifest(reference.repository, descriptor.digest)
    index = parse_manifest(fetched.raw, fetched.media_type)
    if not index.is_index:
        return index.digest
    try:
        return select_platform(index, platform).digest
    except NotFoundError as err:
        raise NotFoundError("%s: %s" % (reference.canonical, err), registry=reference.registry) from None

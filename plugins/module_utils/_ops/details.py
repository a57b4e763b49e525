# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image details from a manifest and its config, fetched with as few requests as the API allows.

One ``GET`` per tag (the manifest; no ``HEAD`` first, since the body is needed anyway), one more for the
selected platform's manifest when the tag is an index, and one ``GET`` per *distinct* config digest for
the whole run: configs and child manifests are content-addressed, so a digest read once (in any
repository) is never read again. Lookups of the same digest from several threads share one request.

With ``referrers`` or a ``verify_key``, :class:`AttachmentInspector` adds an image's attachments and the verdicts on
its cosign signatures; its docstring says what that costs.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import OnceCache
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryResponseError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachments import (
    VIA_COSIGN_TAG,
    VIA_FALLBACK_TAG,
    Attachment,
    AttachmentFinder,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    ManifestInfo,
    has_image_config,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    BUNDLE_PREDICATE_TYPE_ANNOTATION,
    COSIGN_SIGN_PREDICATE_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    is_index,
    is_sigstore_bundle_media_type,
    normalize_media_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    platform_matches,
    platform_names,
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import COSIGN_SIGNATURE, artifact_type_of
from ansible_collections.ocireg.registry.plugins.module_utils._ops.filesystem import (
    ChunkStream,
    LayerSource,
    read_paths,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures import (
    verify_bundle,
    verify_simple_signing,
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


# -- attachments and signatures ---------------------------------------------------------------------------------

# Errors that make one attachment (a referrer's manifest, a signature's layer) unreadable without saying anything
# about the others: told in the result, never a failed task.
UNREADABLE_ERRORS = (NotFoundError, RegistryResponseError, DigestMismatchError)


class AttachmentInspector:
    """An image's attachments (``referrers``) and the verdicts on its cosign signatures (``signatures``), for the
    image details of registry_info; one per registry client, safe to share between threads.

    The finding is :class:`AttachmentFinder`'s (one per repository). What it costs, on top of the image itself:

    - the repository's tag list, once per repository, and no request at all when the caller has read it already
      (:meth:`know_tags`): it tells which fallback and cosign tags exist, so that a missing one costs nothing;
    - the referrers API, one ``GET`` per digest looked at where the registry serves it; where it does not, only the
      first ask for the whole registry (a 404; the others wait for that answer rather than all asking at once);
    - a fallback tag that exists: one ``GET`` of its index; a cosign tag that exists: one ``HEAD``;
    - a referrer's manifest, one ``GET``, only when its entry lacks what the details report: an entry of the
      referrers API has it all (the spec has the registry copy ``artifactType`` and the annotations), an entry of a
      fallback index lacks the annotations or the artifact type when an older writer left them out; a cosign tag's
      ``HEAD`` gives its digest, media type and size, its artifact type is its cosign kind, and its annotations are
      not read (null: cosign writes none on those manifests, each signature's are on its layer);
    - with a key: the manifest of each ``.sig`` image and of each signature bundle referrer, and each simple-signing
      layer or bundle layer in them (attestations are not signatures and are not read).

    Every manifest and layer is read at most once per task, for both purposes.
    """

    def __init__(self, client: RegistryClient, key: Any = None):
        """``key``: a :class:`signatures.PublicKey` to verify signatures with (None: no signatures)."""
        self.client = client
        self.key = key
        self._known_tags: dict[str, tuple[str, ...]] = {}
        self._finders: dict[str, AttachmentFinder] = {}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._probed = threading.Event()
        self._manifests = OnceCache()  # digest -> ManifestInfo, or the error that made it unreadable
        self._blobs = OnceCache()  # digest -> bytes of a signature layer, or the error that made it unreadable
        self._read: dict[str, ManifestInfo] = {}  # the manifests read so far
        self.dangling: list[str] = []  # referrers listed by a fallback index whose manifest is not there

    def know_tags(self, repository: str, tags: Iterable[str]) -> None:
        """Every tag of ``repository``, as the caller has read them: the finder will not read them again."""
        with self._lock:
            self._known_tags[repository] = tuple(tags)

    def details(self, repository: str, digest: str, *, referrers: bool, signatures: bool) -> dict[str, Any]:
        """``{referrers: [...]}`` and/or ``{signatures: [...]}`` for the image ``digest`` in ``repository``.

        ``referrers``: what names ``digest`` as its subject, and what names those (each with its ``subject``).
        ``signatures``: each cosign signature of ``digest`` itself, checked with the key (needs one).
        """
        finder = self._finder(repository)
        found = finder.all_of([digest]) if referrers else finder.of(digest)
        result: dict[str, Any] = {}
        if referrers:
            result["referrers"] = [self._referrer_entry(repository, a) for a in found]
        if signatures:
            # First: the manifests verification reads are then known to the referrers entries too.
            result["signatures"] = [
                entry
                for attachment in found
                if attachment.subject == digest
                for entry in self._signatures_in(repository, attachment)
            ]
        if referrers:
            result["referrers"] = [self._referrer_entry(repository, attachment) for attachment in found]
        return result

    # -- finding ------------------------------------------------------------------------------------

    def _finder(self, repository: str) -> AttachmentFinder:
        with self._lock:
            finder = self._finders.get(repository)
            if finder is None:
                finder = self._finders[repository] = AttachmentFinder(_FinderClient(self), repository)
            return finder

    def _tags(self, repository: str) -> list[str]:
        with self._lock:
            known = self._known_tags.get(repository)
        return list(known) if known is not None else self.client.list_tags(repository)

    def _referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> Any:
        # The first ask tells whether the registry serves the API at all (the client remembers a 404): the others
        # wait for it, so that a registry without the API is asked once, not once per thread.
        if not self._probed.is_set():
            with self._probe_lock:
                if not self._probed.is_set():
                    try:
                        return self.client.referrers(repository, digest, artifact_type)
                    finally:
                        self._probed.set()
        return self.client.referrers(repository, digest, artifact_type)

    # -- reading ------------------------------------------------------------------------------------

    def _manifest(self, repository: str, digest: str) -> ManifestInfo:
        """The manifest ``digest``, read once per task; raises one of :data:`UNREADABLE_ERRORS`."""
        outcome = self._manifests.get(digest, lambda: self._fetch(repository, digest))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _fetch(self, repository: str, digest: str) -> ManifestInfo | Exception:
        try:
            fetched = self.client.get_manifest(repository, digest)
            manifest = parse_manifest(fetched.raw, fetched.media_type)
        except UNREADABLE_ERRORS as err:
            return err  # remembered, so that the two uses of one manifest ask once
        with self._lock:
            self._read[digest] = manifest
        return manifest

    def _blob(self, repository: str, digest: str) -> bytes:
        """A signature layer's bytes, read once per task (layers that only differ in their annotations share them);
        raises one of :data:`UNREADABLE_ERRORS`."""

        def read() -> bytes | Exception:
            try:
                return self.client.read_blob(repository, digest)
            except UNREADABLE_ERRORS as err:
                return err

        outcome = self._blobs.get(digest, read)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _already_read(self, digest: str) -> ManifestInfo | None:
        with self._lock:
            return self._read.get(digest)

    # -- referrers ----------------------------------------------------------------------------------

    def _referrer_entry(self, repository: str, attachment: Attachment) -> dict[str, Any]:
        descriptor = attachment.descriptor
        artifact_type = descriptor.artifact_type
        annotations = dict(descriptor.annotations) if descriptor.annotations is not None else None
        if attachment.via == VIA_COSIGN_TAG:
            artifact_type = attachment.kind
            read = self._already_read(attachment.digest)
            annotations = dict(read.annotations or {}) if read is not None else None
        elif not artifact_type or (attachment.via == VIA_FALLBACK_TAG and annotations is None):
            try:
                manifest = self._manifest(repository, attachment.digest)
            except UNREADABLE_ERRORS as err:
                with self._lock:
                    self.dangling.append("%s@%s (%s)" % (repository, attachment.digest, _first_line(err)))
            else:
                artifact_type = artifact_type or artifact_type_of(manifest)
                if annotations is None:
                    annotations = dict(manifest.annotations or {})
        elif annotations is None:
            annotations = {}  # the referrers API lists every annotation: none listed, none there
        return {
            "subject": attachment.subject,
            "digest": attachment.digest,
            "media_type": descriptor.media_type,
            "artifact_type": artifact_type,
            "size": descriptor.size,
            "annotations": annotations,
            "via": attachment.via,
            "tag": attachment.tag,
        }

    # -- signatures ---------------------------------------------------------------------------------

    def _signatures_in(self, repository: str, attachment: Attachment) -> list[dict[str, Any]]:
        """The verdicts on the signatures ``attachment`` holds: each simple-signing layer of a ``.sig`` image, each
        bundle layer of a signature bundle referrer; nothing for attestations, SBOMs and other artifacts."""
        if attachment.via == VIA_COSIGN_TAG:
            if attachment.kind != COSIGN_SIGNATURE:
                return []
            return self._checked_layers(repository, attachment, _is_simple_signing, "simple-signing")
        descriptor = attachment.descriptor
        if descriptor.artifact_type and not is_sigstore_bundle_media_type(descriptor.artifact_type):
            return []
        if not _names_a_signature(descriptor.annotations):
            return []  # a bundle holding an attestation: known from its entry, without reading it
        if not descriptor.artifact_type:
            try:
                manifest = self._manifest(repository, attachment.digest)
            except UNREADABLE_ERRORS:
                return []  # nothing says it is a signature; its referrers entry tells that it is not there
            if not is_sigstore_bundle_media_type(artifact_type_of(manifest)):
                return []
        return self._checked_layers(repository, attachment, is_sigstore_bundle_media_type, "sigstore bundle")

    def _checked_layers(
        self, repository: str, attachment: Attachment, is_signature: Callable[[Any], bool], what: str
    ) -> list[dict[str, Any]]:
        try:
            manifest = self._manifest(repository, attachment.digest)
        except UNREADABLE_ERRORS as err:
            return [self._verdict(attachment, attachment.digest, False, "its manifest cannot be read: %s" % err)]
        if attachment.via != VIA_COSIGN_TAG and not _names_a_signature(manifest.annotations):
            return []  # its manifest says it holds an attestation
        layers = [layer for layer in manifest.layers if is_signature(layer.media_type)]
        if not layers:
            return [self._verdict(attachment, attachment.digest, False, "it holds no %s layer" % what)]
        verdicts = []
        for layer in layers:
            # A .sig image holds one signature per layer; a bundle referrer is one signature.
            signature = layer.digest if attachment.via == VIA_COSIGN_TAG else attachment.digest
            try:
                data = self._blob(repository, layer.digest)
            except UNREADABLE_ERRORS as err:
                verdicts.append(self._verdict(attachment, signature, False, "its layer cannot be read: %s" % err))
                continue
            if attachment.via == VIA_COSIGN_TAG:
                verdict = verify_simple_signing(data, layer.annotations, attachment.subject, self.key)
            else:
                verdict = verify_bundle(data, attachment.subject, self.key)
            verdicts.append(self._verdict(attachment, signature, verdict.verified, verdict.reason))
        return verdicts

    @staticmethod
    def _verdict(attachment: Attachment, signature: str, verified: bool, reason: str) -> dict[str, Any]:
        return {
            "digest": signature,
            "manifest": attachment.digest,
            "via": attachment.via,
            "tag": attachment.tag,
            "verified": verified,
            "reason": reason,
        }


class _FinderClient:
    """The registry client as an :class:`AttachmentFinder` of an :class:`AttachmentInspector` sees it: the tag lists
    the task has read already, and the referrers API asked first by one thread alone."""

    def __init__(self, inspector: AttachmentInspector):
        self._inspector = inspector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inspector.client, name)

    def list_tags(self, repository: str) -> list[str]:
        return self._inspector._tags(repository)

    def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> Any:
        return self._inspector._referrers(repository, digest, artifact_type)


def _is_simple_signing(media_type: Any) -> bool:
    return normalize_media_type(media_type) == SIMPLE_SIGNING_MEDIA_TYPE


def _names_a_signature(annotations: dict | None) -> bool:
    """Whether a bundle referrer's annotations allow it to be a signature: cosign names what its bundle holds with
    ``dev.sigstore.bundle.predicateType`` (an attestation's predicate, or cosign's signature one); none: it may be."""
    predicate_type = (annotations or {}).get(BUNDLE_PREDICATE_TYPE_ANNOTATION)
    return predicate_type is None or predicate_type == COSIGN_SIGN_PREDICATE_TYPE


def _first_line(error: Exception) -> str:
    return str(error).split("\n", 1)[0]

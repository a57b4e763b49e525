# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory registry for the unit tests of the task classes in plugins/module_utils/_ops.

:class:`MemoryRegistry` has the :class:`RegistryClient` methods those classes call, with the same signatures, return
types and errors (built by ``error_from_response``, as the transport builds them), and behaves as the CNCF
distribution registry does where it matters: content-addressed manifests and blobs per repository; a manifest GET
answers MANIFEST_UNKNOWN whether the repository or the manifest is missing (only the tag list says NAME_UNKNOWN); a
manifest PUT needs its blobs (or child manifests) there first; deleting a manifest by digest removes every tag on it;
deleting a tag by name answers 400 (``delete_tag`` returns False) unless ``tag_deletes`` is set; with
``deletes_enabled=False`` deleting answers 405 UNSUPPORTED, and so does the check for it (``confirm_deletes``, a
``DELETE`` of a manifest that does not exist: 404 with deletes enabled), which ``confirms_deletes=False`` makes answer
something that says neither, as some registries may. Every request is logged (:attr:`MemoryRegistry.requests`) to
count requests by kind; ``confirm_deletes`` changes nothing and is not among the :meth:`MemoryRegistry.writes`.

Referrers: by default the registry serves no referrers API, as distribution 2.8 and 3.x: ``referrers`` answers None
(logged once, as :class:`RegistryClient` asks once per registry and remembers the 404) and ``put_referrer`` answers
False (no ``OCI-Subject``). With ``referrers_api=True`` it serves the API as the distribution-spec 1.1 says: an index
of every stored manifest of the repository whose ``subject`` is the digest, each described with its artifact type and
annotations, empty (never a 404) when there are none, filtered by ``artifactType`` when asked (and saying so, unless
``filters_applied=False``); ``put_referrer`` answers True (``OCI-Subject``).

It also serves as a copy source and destination for the copy engine (``RegistrySource``/``RegistryDestination`` over
it): ``transport`` (``base_url``, ``retry``), ``open_blob``, ``put_blob`` and ``mount_blob`` (within this registry).

The helpers (``add_image``, ``add_index``, ``add_artifact``, ``store``, ``tag``...) set up content without logging;
``add_referrer``, ``add_fallback_index`` and ``add_cosign`` set up attachments (an OCI 1.1 referrer, the fallback
index listing referrers, a cosign ``.sig``/``.att``/``.sbom`` image).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
    error_from_response,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import is_digest, validate_digest
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import (
    DELETES_DISABLED,
    NO_SUCH_MANIFEST,
    FetchedManifest,
    MountResult,
    Referrers,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import RetryPolicy

HOST = "registry.test"
WRITES = frozenset(("put_manifest", "put_referrer", "delete_manifest", "delete_tag", "upload_blob", "mount_blob"))
# distribution's own wording for the error codes these tests meet
_MESSAGES = {
    "BLOB_UNKNOWN": "blob unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "blob unknown to registry",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_UNKNOWN": "repository name not known to registry",
    "UNSUPPORTED": "The operation is unsupported.",
}


def dumps(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def platform_dict(platform: str) -> dict[str, str]:
    os_name, architecture, *variant = platform.split("/")
    result = {"os": os_name, "architecture": architecture}
    if variant:
        result["variant"] = variant[0]
    return result


@dataclasses.dataclass(frozen=True)
class Request:
    kind: str  # the RegistryClient method's name
    repository: str | None = None
    reference: str | None = None  # tag or digest


@dataclasses.dataclass(frozen=True)
class Pushed:
    """What a helper stored: the manifest's digest, exact bytes and media type."""

    digest: str
    raw: bytes
    media_type: str
    config_digest: str | None = None
    platform: dict | None = None
    children: tuple[str, ...] = ()  # an index's entries, attestations included

    def entry(self) -> dict[str, Any]:
        """This manifest as an entry of an index."""
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)}
        if self.platform is not None:
            entry["platform"] = self.platform
        return entry


@dataclasses.dataclass
class _Repository:
    manifests: dict[str, tuple[bytes, str]] = dataclasses.field(default_factory=dict)  # digest -> (raw, media type)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # tag -> digest
    blobs: dict[str, bytes] = dataclasses.field(default_factory=dict)


class _BlobReader:
    """What ``RegistryClient.open_blob`` returns: the blob's bytes, in chunks."""

    def __init__(self, data: bytes):
        self.data = data

    def chunks(self, chunk_size: int = 65536) -> Iterable[bytes]:
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]

    def close(self) -> None:
        pass

    def __enter__(self) -> _BlobReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class MemoryRegistry:
    """One registry in memory, answering like :class:`RegistryClient` does. Thread-safe."""

    def __init__(
        self,
        host: str = HOST,
        *,
        deletes_enabled: bool = True,
        tag_deletes: bool = False,
        catalog: bool = True,
        confirms_deletes: bool = True,
        referrers_api: bool = False,
        filters_applied: bool = True,
    ):
        self.registry = host
        self.referrers_api = referrers_api  # True: serves GET /v2/<name>/referrers/<digest> and answers OCI-Subject
        self.filters_applied = filters_applied  # with the API: whether it filters by artifactType itself
        self._referrers_asked = False  # without the API: the client learns that once, from a 404
        self.transport = types.SimpleNamespace(base_url="https://" + host, retry=RetryPolicy(0))
        self.deletes_enabled = deletes_enabled  # False: distribution with storage.delete.enabled false
        self.confirms_deletes = confirms_deletes  # False: confirm_deletes gets an answer that says neither
        self.tag_deletes = tag_deletes  # True: DELETE /manifests/TAG answers 202 (distribution 2.x answers 400)
        self.catalog_enabled = catalog
        self.repositories: dict[str, _Repository] = {}
        self.requests: list[Request] = []
        self.hooks: list[Callable[[Request], None]] = []  # run before each request is answered; may raise
        self._lock = threading.RLock()
        self._seeds = itertools.count(1)

    # -- the request log ---------------------------------------------------------------------------

    def count(self, kind: str | None = None, reference: str | None = None) -> int:
        return sum(
            1 for request in self.requests if kind in (None, request.kind) and reference in (None, request.reference)
        )

    def kinds(self) -> Counter:
        return Counter(request.kind for request in self.requests)

    def writes(self) -> list[Request]:
        return [request for request in self.requests if request.kind in WRITES]

    def on(self, kind: str, reference: str | None, action: Callable[[], Any]) -> None:
        """Run ``action`` before answering every ``kind`` request for ``reference`` (None: any)."""

        def hook(request: Request) -> None:
            if request.kind == kind and reference in (None, request.reference):
                action()

        self.hooks.append(hook)

    def fail_on(self, kind: str, reference: str | None = None, error: RegistryError | None = None) -> None:
        def fail() -> None:
            raise error or self._error(500, "UNKNOWN", "%s %s" % (kind, reference))

        self.on(kind, reference, fail)

    def _log(self, kind: str, repository: str | None = None, reference: str | None = None) -> None:
        request = Request(kind, repository, reference)
        self.requests.append(request)
        for hook in list(self.hooks):
            hook(request)

    def _error(self, status: int, code: str, action: str, repository: str | None = None) -> RegistryError:
        body = dumps({"errors": [{"code": code, "message": _MESSAGES.get(code, code.lower()), "detail": None}]})
        return error_from_response(
            status,
            body,
            action=action,
            registry=self.registry,
            repository=repository,
            content_type="application/json",
        )

    # -- RegistryClient ----------------------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        with self._lock:
            self._log("ping")
            return {"url": "https://" + self.registry, "api_version": "registry/2.0"}

    def catalog(self) -> list[str]:
        with self._lock:
            self._log("catalog")
            if not self.catalog_enabled:  # as RegistryClient.catalog() turns the 404 around
                raise UnsupportedError(
                    "Registry %s does not offer the catalog API (/v2/_catalog); list repositories by name instead"
                    % self.registry,
                    registry=self.registry,
                )
            return sorted(self.repositories)

    def list_tags(self, repository: str) -> list[str]:
        with self._lock:
            self._log("list_tags", repository)
            return list(self._repository(repository, "list tags").tags)  # in the order they were made, not sorted

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        with self._lock:
            self._log("head_manifest", repository, reference)
            found = self._find(repository, reference)
            if found is None:
                return None
            raw, media_type = found
            return Descriptor(media_type=media_type, digest=compute_digest(raw), size=len(raw))

    def get_manifest(self, repository: str, reference: str, accept: Iterable[str] | None = None) -> FetchedManifest:
        with self._lock:
            self._log("get_manifest", repository, reference)
            action = "get manifest %s%s%s" % (repository, "@" if is_digest(reference) else ":", reference)
            found = self._find(repository, reference)
            if found is None:  # distribution says MANIFEST_UNKNOWN for a missing repository too, not NAME_UNKNOWN
                raise self._error(404, "MANIFEST_UNKNOWN", action, repository)
            raw, media_type = found
            return FetchedManifest(raw=raw, media_type=media_type, digest=compute_digest(raw))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        with self._lock:
            self._log("put_manifest", repository, reference)
            return self._put(repository, reference, raw, media_type)

    def _put(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        with self._lock:
            action = "put manifest %s:%s" % (repository, reference)
            digest = compute_digest(raw)
            if is_digest(reference) and reference != digest:
                raise self._error(400, "DIGEST_INVALID", action, repository)
            try:
                info = parse_manifest(raw, media_type)
            except RegistryError:
                raise self._error(400, "MANIFEST_INVALID", action, repository) from None
            present = self.repositories.get(repository, _Repository())
            needed = [child.digest for child in info.manifests if child.digest not in present.manifests]
            needed += [blob.digest for blob in info.blobs if blob.digest not in present.blobs]
            if needed:
                raise self._error(400, "MANIFEST_BLOB_UNKNOWN", action, repository)
            self.store(repository, raw, media_type, [] if is_digest(reference) else [reference])
            return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        validate_digest(digest)
        with self._lock:
            self._log("delete_manifest", repository, digest)
            action = "delete manifest %s@%s" % (repository, digest)
            if not self.deletes_enabled:
                raise self._deletes_disabled(action, repository)
            if self._find(repository, digest) is None:
                raise self._error(404, "MANIFEST_UNKNOWN", action, repository)
            self.remove(repository, digest)

    def confirm_deletes(self, repository: str) -> bool:
        with self._lock:
            self._log("confirm_deletes", repository, NO_SUCH_MANIFEST)
            action = "check whether deletes are allowed in %s (a DELETE of a manifest that does not exist)" % repository
            if not self.deletes_enabled and self.confirms_deletes:
                raise self._deletes_disabled(action, repository)
            return self.confirms_deletes

    def _deletes_disabled(self, action: str, repository: str) -> UnsupportedError:
        error = self._error(405, "UNSUPPORTED", action, repository)
        return UnsupportedError(  # as RegistryClient words it
            "%s. %s" % (error, DELETES_DISABLED),
            registry=self.registry,
            repository=repository,
            status=405,
            codes=error.codes,
            details=error.details,
        )

    def delete_tag(self, repository: str, tag: str) -> bool:
        with self._lock:
            self._log("delete_tag", repository, tag)
            if not (self.tag_deletes and self.deletes_enabled):
                return False  # distribution 2.x: 400 DIGEST_INVALID; deletes disabled: 405
            if tag not in self._repository(repository, "delete tag %s:%s" % (repository, tag)).tags:
                raise self._error(404, "MANIFEST_UNKNOWN", "delete tag %s:%s" % (repository, tag), repository)
            del self.repositories[repository].tags[tag]
            return True

    def head_blob(self, repository: str, digest: str) -> int | None:
        with self._lock:
            self._log("head_blob", repository, digest)
            data = self.repositories.get(repository, _Repository()).blobs.get(digest)
            return None if data is None else len(data)

    def read_blob(self, repository: str, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        with self._lock:
            self._log("read_blob", repository, digest)
            action = "get blob %s@%s" % (repository, digest)
            data = self._repository(repository, action).blobs.get(digest)
            if data is None:
                raise self._error(404, "BLOB_UNKNOWN", action, repository)
            if len(data) > limit:
                raise RegistryResponseError(
                    "Blob %s@%s on registry %s is larger than %d bytes" % (repository, digest, self.registry, limit),
                    registry=self.registry,
                    repository=repository,
                )
            return data

    def upload_blob(self, repository: str, digest: str, data: bytes | Iterable[bytes], **_options: Any) -> None:
        validate_digest(digest)
        data = data if isinstance(data, bytes) else b"".join(data)
        with self._lock:
            self._log("upload_blob", repository, digest)
            if compute_digest(data, digest.split(":", 1)[0]) != digest:
                raise self._error(400, "DIGEST_INVALID", "upload blob %s to %s" % (digest, repository), repository)
            self.blob(repository, data)

    def put_blob(self, repository: str, digest: str, chunks: Iterable[bytes], size: int, **_options: Any) -> None:
        self.upload_blob(repository, digest, b"".join(chunks))

    def open_blob(self, repository: str, digest: str, size: int | None = None) -> _BlobReader:
        with self._lock:
            self._log("open_blob", repository, digest)
            action = "get blob %s@%s" % (repository, digest)
            data = self._repository(repository, action).blobs.get(digest)
            if data is None:
                raise self._error(404, "BLOB_UNKNOWN", action, repository)
            return _BlobReader(data)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> MountResult:
        with self._lock:
            self._log("mount_blob", repository, digest)
            data = self.repositories.get(from_repository, _Repository()).blobs.get(digest)
            if data is None:
                return MountResult(False, "https://%s/v2/%s/blobs/uploads/1" % (self.registry, repository))
            self.blob(repository, data)
            return MountResult(True)

    # -- referrers ---------------------------------------------------------------------------------

    def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> Referrers | None:
        validate_digest(digest)
        with self._lock:
            if not self.referrers_api:
                if not self._referrers_asked:  # the client asks once, learns from the 404, and never again
                    self._referrers_asked = True
                    self._log("referrers", repository, digest)
                return None
            self._log("referrers", repository, digest)
            listed = [
                descriptor
                for descriptor in self.referrer_descriptors(repository, digest)
                if not (artifact_type and self.filters_applied) or descriptor.artifact_type == artifact_type
            ]
            return Referrers(tuple(listed), bool(artifact_type) and self.filters_applied)

    def put_referrer(self, repository: str, raw: bytes, media_type: str) -> bool:
        with self._lock:
            self._log("put_referrer", repository, compute_digest(raw))
            self._put(repository, compute_digest(raw), raw, media_type)
            return self.referrers_api

    def referrer_descriptors(self, repository: str, digest: str) -> list[Descriptor]:
        """What the referrers API lists for ``digest``: every manifest of ``repository`` whose subject it is (not
        logged; the registry's own index, whether it serves the API or not)."""
        found = []
        with self._lock:
            for child_digest, (raw, media_type) in self.repositories.get(repository, _Repository()).manifests.items():
                try:
                    info = parse_manifest(raw, media_type)
                except RegistryError:
                    continue
                if info.subject is None or info.subject.digest != digest:
                    continue
                artifact_type = info.artifact_type
                if artifact_type is None and not info.is_index and info.config is not None:
                    artifact_type = info.config.media_type
                found.append(
                    Descriptor(
                        media_type=media_type,
                        digest=child_digest,
                        size=len(raw),
                        annotations=dict(info.annotations) if info.annotations else None,
                        artifact_type=artifact_type,
                    )
                )
        return found

    def _repository(self, repository: str, action: str) -> _Repository:
        if repository not in self.repositories:
            raise self._error(404, "NAME_UNKNOWN", action, repository)
        return self.repositories[repository]

    def _find(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        present = self.repositories.get(repository)
        if present is None:
            return None
        digest = reference if is_digest(reference) else present.tags.get(reference)
        return present.manifests.get(digest) if digest else None

    # -- set-up and inspection (not logged) --------------------------------------------------------

    def blob(self, repository: str, data: bytes) -> str:
        with self._lock:
            digest = compute_digest(data)
            self.repositories.setdefault(repository, _Repository()).blobs[digest] = data
            return digest

    def store(self, repository: str, raw: bytes, media_type: str, tags: Iterable[str] = ()) -> str:
        """Manifest bytes as they are (unchecked: schema 1, broken JSON...), under ``tags``."""
        with self._lock:
            digest = compute_digest(raw)
            present = self.repositories.setdefault(repository, _Repository())
            present.manifests[digest] = (raw, media_type)
            for tag in tags:
                present.tags[tag] = digest
            return digest

    def tag(self, repository: str, tag: str, digest: str) -> None:
        with self._lock:
            self.repositories[repository].tags[tag] = digest

    def untag(self, repository: str, tag: str) -> None:
        with self._lock:
            del self.repositories[repository].tags[tag]

    def remove(self, repository: str, digest: str) -> None:
        """Delete a manifest and, as distribution does, every tag on it."""
        with self._lock:
            present = self.repositories[repository]
            del present.manifests[digest]
            present.tags = {tag: target for tag, target in present.tags.items() if target != digest}

    def tags_of(self, repository: str) -> dict[str, str]:
        with self._lock:
            return dict(self.repositories[repository].tags) if repository in self.repositories else {}

    def manifest_digests(self, repository: str) -> set[str]:
        with self._lock:
            return set(self.repositories[repository].manifests) if repository in self.repositories else set()

    def raw(self, repository: str, digest: str) -> bytes:
        return self.repositories[repository].manifests[digest][0]

    def add_image(
        self,
        repository: str,
        tags: Iterable[str] = (),
        *,
        created: str | None = "2024-01-01T00:00:00Z",
        platform: str = "linux/amd64",
        labels: dict[str, str] | None = None,
        media_type: str = OCI_MANIFEST,
        layers: int = 1,
    ) -> Pushed:
        """An image with a config (``created`` None: the config has no ``created``) and unique layers. Images with
        the same ``created``, ``platform`` and ``labels`` share their config."""
        docker = media_type == DOCKER_MANIFEST
        config: dict[str, Any] = {"config": {"Labels": labels or {}}, **platform_dict(platform)}
        if created is not None:
            config["created"] = created
        config_raw = dumps(config)
        seed = next(self._seeds)
        layer_blobs = [("layer %d of image %d" % (number, seed)).encode() for number in range(layers)]
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": self._blob_entry(repository, DOCKER_CONFIG if docker else OCI_CONFIG, config_raw),
            "layers": [
                self._blob_entry(repository, DOCKER_LAYER if docker else OCI_LAYER_TAR_GZIP, data)
                for data in layer_blobs
            ],
        }
        raw = dumps(manifest)
        digest = self.store(repository, raw, media_type, tags)
        return Pushed(digest, raw, media_type, compute_digest(config_raw), platform_dict(platform))

    def add_index(
        self,
        repository: str,
        images: Iterable[Pushed],
        tags: Iterable[str] = (),
        *,
        attestations: bool = False,
        media_type: str = OCI_INDEX,
    ) -> Pushed:
        """An index of ``images``; ``attestations`` adds, for each, a buildx attestation manifest (platform
        unknown/unknown) whose config says it was created in 2099, so that reading it would show."""
        entries = []
        for image in images:
            entries.append(image.entry())
            if attestations:
                attestation = self.add_image(repository, created="2099-01-01T00:00:00Z", platform="unknown/unknown")
                entry = attestation.entry()
                entry["annotations"] = {
                    "vnd.docker.reference.digest": image.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                }
                entries.append(entry)
        raw = dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
        digest = self.store(repository, raw, media_type, tags)
        return Pushed(digest, raw, media_type, children=tuple(entry["digest"] for entry in entries))

    def add_artifact(
        self, repository: str, tags: Iterable[str] = (), *, created: str | None = None, config: dict | None = None
    ) -> Pushed:
        """An OCI artifact whose config is not an image config; ``created`` goes into the manifest annotation
        ``org.opencontainers.image.created``. Its config holds a ``created`` of 1999, a trap for reading it."""
        config_raw = dumps(config if config is not None else {"created": "1999-01-01T00:00:00Z"})
        seed = next(self._seeds)
        layer = ("artifact %d" % seed).encode()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.thing.v1",
            "config": self._blob_entry(repository, "application/vnd.example.thing.config.v1+json", config_raw),
            "layers": [self._blob_entry(repository, "application/octet-stream", layer)],
        }
        if created is not None:
            manifest["annotations"] = {"org.opencontainers.image.created": created}
        raw = dumps(manifest)
        return Pushed(self.store(repository, raw, OCI_MANIFEST, tags), raw, OCI_MANIFEST, compute_digest(config_raw))

    def add_referrer(
        self,
        repository: str,
        subject: Pushed | Descriptor,
        artifact_type: str = "application/vnd.dev.sigstore.bundle.v0.3+json",
        *,
        note: str = "",
        annotations: dict[str, str] | None = None,
    ) -> Pushed:
        """An OCI 1.1 artifact naming ``subject``, stored by digest (untagged), as cosign 3 or oras push one: empty
        config, one layer of its own, ``artifactType``, annotations (a creation time and ``note`` by default)."""
        size = len(subject.raw) if isinstance(subject, Pushed) else subject.size
        layer = ("%s %s %s %d" % (artifact_type, note, subject.digest, next(self._seeds))).encode()
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": self._blob_entry(repository, OCI_EMPTY, b"{}"),
            "layers": [self._blob_entry(repository, artifact_type, layer)],
            "annotations": annotations or {"org.opencontainers.image.created": "2025-06-01T12:00:00Z", "note": note},
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": size},
        }
        raw = dumps(document)
        return Pushed(self.store(repository, raw, OCI_MANIFEST), raw, OCI_MANIFEST)

    def add_fallback_index(self, repository: str, subject: str, referrers: Iterable[Pushed]) -> Pushed:
        """The referrers fallback index of ``subject`` (tag ``sha256-<hex>``) listing ``referrers``, each with its
        artifact type and annotations, as a client keeps it on a registry without the referrers API."""
        entries = []
        for referrer in referrers:
            info = parse_manifest(referrer.raw, referrer.media_type)
            entry = referrer.entry()
            entry["artifactType"] = info.artifact_type or (info.config.media_type if info.config else None)
            if info.annotations:
                entry["annotations"] = dict(info.annotations)
            entries.append(entry)
        raw = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        tag = "%s-%s" % tuple(subject.split(":", 1))
        return Pushed(self.store(repository, raw, OCI_INDEX, [tag]), raw, OCI_INDEX)

    def add_cosign(
        self, repository: str, subject: str, suffix: str = ".sig", signatures: Iterable[str] = ("one",)
    ) -> Pushed:
        """A cosign 2 attachment image under ``sha256-<hex>.sig`` (``.att``, ``.sbom``): an image config and one
        simple-signing layer per entry of ``signatures``, each with its signature annotation, as cosign appends them.
        """
        layers = []
        for text in signatures:
            payload = ("payload %s for %s" % (text, subject)).encode()
            entry = self._blob_entry(repository, "application/vnd.dev.cosign.simplesigning.v1+json", payload)
            entry["annotations"] = {"dev.cosignproject.cosign/signature": "signature %s" % text}
            layers.append(entry)
        config = dumps(
            {
                "architecture": "",
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        )
        raw = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": self._blob_entry(repository, OCI_CONFIG, config),
                "layers": layers,
            }
        )
        tag = "%s-%s%s" % (*subject.split(":", 1), suffix)
        return Pushed(self.store(repository, raw, OCI_MANIFEST, [tag]), raw, OCI_MANIFEST)

    def _blob_entry(self, repository: str, media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.blob(repository, data), "size": len(data)}

    def copy_to(self, source: str, digest: str, destination: str, tags: Iterable[str] = ()) -> None:
        """A manifest with everything it refers to, from one repository into another (a mount, and a push)."""
        raw, media_type = self.repositories[source].manifests[digest]
        info = parse_manifest(raw, media_type)
        for child in info.manifests:
            self.copy_to(source, child.digest, destination)
        for blob in info.blobs:
            self.blob(destination, self.repositories[source].blobs[blob.digest])
        self.store(destination, raw, media_type, tags)


class MemoryClients:
    """What ``RegistryClients`` hands out, over memory registries (by host)."""

    def __init__(self, *registries: MemoryRegistry):
        self.registries = {registry.registry: registry for registry in registries}
        self.closed = 0

    def for_reference(self, reference: Any) -> MemoryRegistry:
        return self.registries[reference.registry]

    def for_registry(self, registry: str, scheme: str | None = None) -> MemoryRegistry:
        return self.registries[registry]

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def make_registry() -> Callable[..., MemoryRegistry]:
    """``make_registry(host=..., deletes_enabled=..., tag_deletes=..., catalog=..., referrers_api=...)``: a new memory
    registry."""
    return MemoryRegistry


@pytest.fixture
def make_clients() -> Callable[..., MemoryClients]:
    return MemoryClients


@pytest.fixture
def memory_registry() -> MemoryRegistry:
    """Behaves as distribution 2.x with deletes enabled: tags cannot be deleted by name."""
    return MemoryRegistry()


@pytest.fixture
def memory_clients(memory_registry: MemoryRegistry) -> MemoryClients:
    return MemoryClients(memory_registry)

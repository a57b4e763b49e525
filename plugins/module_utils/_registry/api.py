# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry HTTP API (distribution-spec v2): ping, catalog, tags, manifests, blobs, uploads, mounts.

One :class:`RegistryClient` per registry. Methods map one-to-one onto API operations and ask for the
narrowest token scope each needs: ``pull`` for reads, ``pull,push`` for writes, ``delete`` for deletes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    AuthenticationError,
    DigestMismatchError,
    InterruptedDownloadError,
    InvalidReferenceError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    RegistryResponseError,
    TooManyRequestsError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import (
    DIGEST_ALGORITHMS,
    DigestVerifier,
    compute_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    _declared_media_type,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import MANIFEST_ACCEPT, OCI_INDEX
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import validate_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import filters_applied
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import Transport

T = TypeVar("T")

# ECR's maximum. A registry with a lower cap answers PAGINATION_NUMBER_INVALID (distribution: any n above
# catalog.maxentries); we then ask without n and let it use its own page size.
PAGE_SIZE = 1000
BLOB_CHUNK_BYTES = 1024 * 1024
MONOLITHIC_UPLOAD_BYTES = 16 * 1024 * 1024
ACCEPT_HEADER = ", ".join(MANIFEST_ACCEPT)
OCTET_STREAM = {"Content-Type": "application/octet-stream"}
# What :meth:`RegistryClient.confirm_deletes` asks to delete: a digest that no content hashes to, so that the DELETE
# can only ever find nothing.
NO_SUCH_MANIFEST = "sha256:" + "0" * 64
DELETES_DISABLED = "Deleting is disabled on this registry (distribution: storage.delete.enabled)"


@dataclasses.dataclass(frozen=True)
class FetchedManifest:
    """A manifest exactly as the registry sent it; ``digest`` is computed from ``raw``."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.raw)


@dataclasses.dataclass(frozen=True)
class Referrers:
    """A referrers API answer, every page: the descriptors it lists, and whether the registry itself filtered them
    by ``artifactType`` (it says so with ``OCI-Filters-Applied``; else the caller filters)."""

    manifests: tuple[Descriptor, ...]
    filtered: bool


@dataclasses.dataclass(frozen=True)
class MountResult:
    mounted: bool
    upload_location: str | None = None  # set when the registry started a plain upload instead


def pull_scope(repository: str) -> list[str]:
    return ["repository:%s:pull" % repository]


def push_scope(repository: str) -> list[str]:
    return ["repository:%s:pull,push" % repository]


def delete_scope(repository: str) -> list[str]:
    return ["repository:%s:pull,push,delete" % repository]


CATALOG_SCOPE = ["registry:catalog:*"]


def _is_digest(reference: str) -> bool:
    return ":" in reference


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _media_type(response: Any) -> str:
    return (response.headers.get("Content-Type") or "").split(";", 1)[0].strip()


class RegistryClient:
    """Operations on one registry, through one :class:`Transport`."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.registry = transport.registry
        self._no_referrers_api = False  # learnt from a 404: this registry keeps referrers under fallback tags

    def _ask(self, method: str, repository: str, path: str, scopes: list[str], action: str, **options: Any) -> Any:
        """One request about ``repository``: ``path`` is under ``/v2/<repository>/``, or a URL the registry gave."""
        url = path if path.startswith("/") or "://" in path else "/v2/%s/%s" % (repository, path)
        return self.transport.request(method, url, scopes=scopes, action=action, repository=repository, **options)

    # -- registry -------------------------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        """Check that the host speaks the registry API v2 (authenticating if it asks)."""
        response = self.transport.request("GET", "/v2/", scopes=[], action="check the registry API (GET /v2/)")
        response.close()
        return {
            "url": self.transport.base_url,
            "api_version": response.headers.get("Docker-Distribution-API-Version", "registry/2.0"),
        }

    def catalog(self) -> list[str]:
        """Every repository name, following every page."""
        try:
            return self._paginate("/v2/_catalog", "repositories", CATALOG_SCOPE, "list repositories", None)
        except NotFoundError:
            raise UnsupportedError(
                "Registry %s does not offer the catalog API (/v2/_catalog); list repositories by name instead"
                % self.registry,
                registry=self.registry,
            ) from None

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, following every page. Raises NotFoundError when it does not exist."""
        return self._paginate("/v2/%s/tags/list" % repository, "tags", pull_scope(repository), "list tags", repository)

    def _paginate(self, path: str, key: str, scopes: list[str], action: str, repository: str | None) -> list[str]:
        names: list[str] = []
        next_path: str | None = path
        params: Any = {"n": PAGE_SIZE}
        seen: set[str] = set()
        while next_path is not None:
            try:
                response = self.transport.request(
                    "GET", next_path, scopes=scopes, action=action, repository=repository, params=params
                )
            except RegistryResponseError as err:
                if "PAGINATION_NUMBER_INVALID" in err.codes and params and params.get("n") == PAGE_SIZE:
                    params = None
                    continue
                raise
            with response:
                body = _json_object(response, action, self.registry, repository)
            page = body.get(key) or []
            if not isinstance(page, list) or not all(isinstance(name, str) for name in page):
                raise RegistryResponseError(
                    "Registry %s sent a malformed answer to '%s': '%s' is not a list of names"
                    % (self.registry, action, key),
                    registry=self.registry,
                    repository=repository,
                )
            names.extend(page)
            link = response.links.get("next", {}).get("url")
            if not link or link in seen:
                break
            seen.add(link)
            next_path, params = link, None
        return names

    # -- manifests ------------------------------------------------------------------------------

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The manifest's descriptor, or None when the repository or reference is unknown."""
        action = "check manifest %s:%s" % (repository, reference)
        headers = {"Accept": ACCEPT_HEADER}
        response = self._ask(
            "HEAD", repository, "manifests/" + reference, pull_scope(repository), action, ok=(200, 404), headers=headers
        )
        response.close()
        if response.status_code == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if _is_digest(reference):
            digest = reference
        if not digest:
            # Some registries omit the header on HEAD: fall back to reading the manifest.
            fetched = self.get_manifest(repository, reference)
            return Descriptor(media_type=fetched.media_type, digest=fetched.digest, size=fetched.size)
        return Descriptor(
            media_type=_media_type(response), digest=digest, size=int(response.headers.get("Content-Length") or 0)
        )

    def get_manifest(self, repository: str, reference: str, accept: Iterable[str] | None = None) -> FetchedManifest:
        """The manifest bytes, verified before they are handed on, so a corrupt answer is read again (within
        ``retries``) like a cut one.

        By digest, the bytes must hash to it. By tag, the digest is not known in advance: the registry's
        ``Docker-Content-Digest`` header cross-checks it. It is never trusted alone (some registries send a wrong
        one for tag requests): bytes that disagree with it are read again, and accepted once two reads agree.
        """
        action = "get manifest %s%s%s" % (repository, "@" if _is_digest(reference) else ":", reference)

        def fetch() -> tuple[Any, bytes]:
            headers = {"Accept": ", ".join(accept) if accept else ACCEPT_HEADER}
            response = self._ask(
                "GET",
                repository,
                "manifests/" + reference,
                pull_scope(repository),
                action,
                headers=headers,
                stream=True,
            )
            with response:
                return response, _read_limited(response, MAX_MANIFEST_BYTES, action, self.registry)

        if _is_digest(reference):
            return self.fetch_again_if_cut(
                lambda: self._manifest_by_digest(fetch, repository, reference), corrupt_too=True
            )
        return self._manifest_by_tag(fetch, repository, reference)

    def _manifest_by_digest(
        self, fetch: Callable[[], tuple[Any, bytes]], repository: str, digest: str
    ) -> FetchedManifest:
        response, raw = fetch()
        actual = compute_digest(raw, digest.split(":", 1)[0])
        if actual != digest:
            raise DigestMismatchError(
                "Registry %s sent a manifest for %s@%s whose content hashes to %s"
                % (self.registry, repository, digest, actual),
                registry=self.registry,
                repository=repository,
            )
        return _fetched_manifest(response, raw, actual)

    def _manifest_by_tag(self, fetch: Callable[[], tuple[Any, bytes]], repository: str, tag: str) -> FetchedManifest:
        disagreeing: list[str] = []  # digests of the reads so far whose bytes disagreed with the header

        def read() -> FetchedManifest:
            response, raw = fetch()
            digest = compute_digest(raw)
            claimed = _claimed_digest(response)
            if claimed is None or compute_digest(raw, claimed.split(":", 1)[0]) == claimed or digest in disagreeing:
                return _fetched_manifest(response, raw, digest)
            disagreeing.append(digest)
            reads = "; no two of %d reads agreed (%s)" % (len(disagreeing), ", ".join(disagreeing))
            raise DigestMismatchError(
                "Registry %s sent manifest %s:%s whose content hashes to %s, but its Docker-Content-Digest header"
                " says %s%s" % (self.registry, repository, tag, digest, claimed, reads if len(disagreeing) > 1 else ""),
                registry=self.registry,
                repository=repository,
            )

        return self.fetch_again_if_cut(read, corrupt_too=True)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store manifest bytes unchanged under a tag or digest; returns their digest."""
        self._put_manifest(repository, reference, raw, media_type)
        return compute_digest(raw)

    def put_referrer(self, repository: str, raw: bytes, media_type: str) -> bool:
        """Store a manifest that names a ``subject``, by its digest, bytes unchanged. True when the registry answered
        ``OCI-Subject``: it indexes referrers itself, and the fallback index is not the client's to keep."""
        return bool(self._put_manifest(repository, compute_digest(raw), raw, media_type).get("OCI-Subject"))

    def _put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Any:
        action = "put manifest %s:%s" % (repository, reference)
        headers = {"Content-Type": media_type}
        response = self._ask(
            "PUT",
            repository,
            "manifests/" + reference,
            push_scope(repository),
            action,
            ok=(200, 201, 202, 204),
            headers=headers,
            data=raw,
        )
        response.close()
        return response.headers

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest; this removes every tag pointing at it."""
        validate_digest(digest)
        try:
            action = "delete manifest %s@%s" % (repository, digest)
            response = self._ask(
                "DELETE", repository, "manifests/" + digest, delete_scope(repository), action, ok=(200, 202, 204)
            )
        except UnsupportedError as err:
            raise self._deletes_disabled(err, repository) from None
        response.close()

    def confirm_deletes(self, repository: str) -> bool:
        """Whether this registry deletes manifests in ``repository``, found out without deleting anything: one
        ``DELETE`` of a manifest that cannot exist (:data:`NO_SUCH_MANIFEST`).

        True: the registry looked for it (404, as distribution 2.x and 3.x answer with deletes enabled; a 2xx alike).
        Raises :class:`UnsupportedError` when it refuses deletes: 405 or the code UNSUPPORTED, as distribution answers
        with ``storage.delete.enabled: false`` (it checks that before it looks) and as the OCI distribution-spec
        allows (400 or 405). Raises too when the credentials may not delete (401, 403), when rate limited, or when the
        registry cannot be reached: deleting would fail the same way. False: any other answer (a 400 without
        UNSUPPORTED, a 5xx), which says neither; the caller then finds out by trying, in a way it can undo.
        """
        action = "check whether deletes are allowed in %s (a DELETE of a manifest that does not exist)" % repository
        try:
            response = self._ask(
                "DELETE",
                repository,
                "manifests/" + NO_SUCH_MANIFEST,
                delete_scope(repository),
                action,
                ok=(200, 202, 204, 404),
            )
        except UnsupportedError as err:
            raise self._deletes_disabled(err, repository) from None
        except (AuthenticationError, PermissionDeniedError, TooManyRequestsError, TransportError):
            raise
        except RegistryError:
            return False
        response.close()
        return True

    def _deletes_disabled(self, err: UnsupportedError, repository: str) -> UnsupportedError:
        return UnsupportedError(
            "%s. %s" % (err, DELETES_DISABLED),
            registry=self.registry,
            repository=repository,
            status=err.status,
            codes=err.codes,
            details=err.details,
        )

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Try to delete only the tag. False when the registry cannot (distribution 2.x answers 400)."""
        try:
            action = "delete tag %s:%s" % (repository, tag)
            response = self._ask("DELETE", repository, "manifests/" + tag, delete_scope(repository), action, ok=(202,))
        except RegistryError as err:
            # distribution 2.x answers 400 DIGEST_INVALID; others 405 or UNSUPPORTED.
            if err.status in (400, 405) or isinstance(err, UnsupportedError):
                return False
            raise
        response.close()
        return True

    # -- referrers ------------------------------------------------------------------------------

    def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> Referrers | None:
        """What names ``digest`` as its subject, from the referrers API, every page; None where the registry does
        not serve the API (any 404, as the distribution-spec says: the fallback tag holds them then).

        Asked once per registry: after a 404 the client remembers there is no API and answers None at once.
        """
        if self._no_referrers_api:
            return None
        action = "list the referrers of %s@%s" % (repository, digest)
        params: Any = {"artifactType": artifact_type} if artifact_type else None
        path: str | None = "referrers/" + validate_digest(digest)
        manifests: list[Descriptor] = []
        filtered = True
        seen: set[str] = set()
        while path is not None:
            headers = {"Accept": OCI_INDEX}
            response = self._ask(
                "GET", repository, path, pull_scope(repository), action, ok=(200, 404), headers=headers, params=params
            )
            with response:
                if response.status_code == 404 or not _is_index_answer(response):
                    self._no_referrers_api = not manifests
                    return None if not manifests else Referrers(tuple(manifests), filtered and bool(artifact_type))
                page = parse_manifest(_read_limited(response, MAX_MANIFEST_BYTES, action, self.registry), OCI_INDEX)
            manifests.extend(page.manifests)
            filtered = filtered and filters_applied(response.headers)
            link = response.links.get("next", {}).get("url")
            path, params = (link, None) if link and link not in seen else (None, None)
            seen.add(link or "")
        return Referrers(tuple(manifests), filtered and bool(artifact_type))

    # -- blobs ----------------------------------------------------------------------------------

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        action = "check blob %s@%s" % (repository, digest)
        response = self._ask("HEAD", repository, "blobs/" + digest, pull_scope(repository), action, ok=(200, 404))
        response.close()
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length") or 0)

    def open_blob(self, repository: str, digest: str, size: int | None = None) -> BlobReader:
        """Start a streamed blob download; read it with :meth:`BlobReader.chunks`, which verifies it."""
        validate_digest(digest)
        action = "get blob %s@%s" % (repository, digest)
        response = self._ask("GET", repository, "blobs/" + digest, pull_scope(repository), action, stream=True)
        return BlobReader(response, digest, size, self.registry, repository)

    def read_blob(self, repository: str, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small blob (a config) in memory, verified.

        Nothing has been handed on before the whole blob is in and verified, so a download that breaks off or
        arrives corrupt is simply fetched again from its start, up to ``retries`` times."""
        data = self.fetch_again_if_cut(lambda: self._read_whole_blob(repository, digest), corrupt_too=True)
        if len(data) > limit:
            raise RegistryResponseError(
                "Blob %s@%s on registry %s is larger than %d bytes" % (repository, digest, self.registry, limit),
                registry=self.registry,
                repository=repository,
            )
        return data

    def _read_whole_blob(self, repository: str, digest: str) -> bytes:
        with self.open_blob(repository, digest) as reader:
            return b"".join(reader.chunks())

    def fetch_again_if_cut(self, fetch: Callable[[], T], *, corrupt_too: bool = False) -> T:
        """Run ``fetch`` again, from fresh GETs, when a body it reads breaks off (or, with ``corrupt_too``, arrives
        corrupt), up to ``retries`` times. Only for a ``fetch`` that hands nothing on before it has read it all."""
        again: tuple[type[Exception], ...] = (
            (InterruptedDownloadError, DigestMismatchError) if corrupt_too else (InterruptedDownloadError,)
        )
        return self.transport.retry.run(fetch, retry_if=lambda err: isinstance(err, again))

    def start_upload(self, repository: str) -> str:
        action = "start a blob upload to %s" % repository
        response = self._ask("POST", repository, "blobs/uploads/", push_scope(repository), action, ok=(202,))
        response.close()
        return self._location(response, "start a blob upload", repository)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> MountResult:
        """Cross-repository mount. ``mounted=False`` means the registry wants a plain upload instead."""
        action = "mount blob %s from %s into %s" % (digest, from_repository, repository)
        scopes = pull_scope(from_repository) + push_scope(repository)
        params = {"mount": digest, "from": from_repository}
        response = self._ask("POST", repository, "blobs/uploads/", scopes, action, ok=(201, 202), params=params)
        response.close()
        if response.status_code == 201:
            return MountResult(True)
        return MountResult(False, self._location(response, "mount a blob", repository))

    def upload_blob(
        self,
        repository: str,
        digest: str,
        data: bytes | Iterable[bytes],
        *,
        size: int | None = None,
        chunk_size: int | None = None,
        location: str | None = None,
    ) -> None:
        """Upload a blob: monolithic for small bytes, else chunked PATCHes or one streamed PATCH.

        ``data`` is bytes or an iterable of byte chunks (streamed without holding the blob).
        ``chunk_size`` forces sized chunks with ``Content-Range`` for registries that need them.
        """
        validate_digest(digest)
        location = location or self.start_upload(repository)
        if isinstance(data, bytes) and (len(data) <= MONOLITHIC_UPLOAD_BYTES and not chunk_size):
            self._finish_upload(repository, digest, location, data)
            return
        chunks: Iterable[bytes] = [data] if isinstance(data, bytes) else data
        if chunk_size:
            location = self._patch_sized(repository, location, _rechunk(chunks, chunk_size))
        else:
            location = self._patch(repository, location, iter(chunks), None, size)
        self._finish_upload(repository, digest, location, b"")

    def put_blob(
        self, repository: str, digest: str, chunks: Iterable[bytes], size: int, *, location: str | None = None
    ) -> None:
        """Monolithic upload, streamed: POST (unless ``location`` is given), then one ``PUT ?digest=`` whose body
        is ``chunks``, sent with ``Content-Length: size`` so nothing is buffered. Not retried here: a failed
        attempt needs a fresh upload session and a fresh ``chunks``."""
        validate_digest(digest)
        location = location or self.start_upload(repository)
        self._finish_upload(repository, digest, location, _SizedBody(chunks, size))  # type: ignore[arg-type]

    def _patch_sized(self, repository: str, location: str, chunks: Iterable[bytes]) -> str:
        offset = 0
        for chunk in chunks:
            location = self._patch(repository, location, chunk, offset, len(chunk))
            offset += len(chunk)
        return location

    def _patch(self, repository: str, location: str, body: Any, offset: int | None, size: int | None) -> str:
        headers = {"Content-Type": "application/octet-stream"}
        if offset is not None and size:
            headers["Content-Range"] = "%d-%d" % (offset, offset + size - 1)
        if size is not None and isinstance(body, bytes):
            headers["Content-Length"] = str(size)
        action = "upload blob data to %s" % repository
        response = self._ask(
            "PATCH", repository, location, push_scope(repository), action, ok=(202, 204), headers=headers, data=body
        )
        response.close()
        return self._location(response, "upload blob data", repository)

    def _finish_upload(self, repository: str, digest: str, location: str, body: bytes) -> None:
        action = "complete the upload of blob %s to %s" % (digest, repository)
        url = _add_query(location, digest=digest)
        response = self._ask(
            "PUT", repository, url, push_scope(repository), action, ok=(201, 204), headers=OCTET_STREAM, data=body
        )
        response.close()
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise DigestMismatchError(
                "Registry %s stored blob %s as %s in %s" % (self.registry, digest, stored, repository),
                registry=self.registry,
                repository=repository,
            )

    def _location(self, response: Any, action: str, repository: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryResponseError(
                "Registry %s did not say where to upload (no Location header) when asked to %s in %s"
                % (self.registry, action, repository),
                registry=self.registry,
                repository=repository,
            )
        return self.transport.url(location) if location.startswith("/") else location


class BlobReader:
    """A streamed blob download that verifies size and digest as it is read."""

    def __init__(self, response: Any, digest: str, size: int | None, registry: str, repository: str):
        self.response = response
        self.digest = digest
        header_size = response.headers.get("Content-Length")
        self.size = size if size is not None else (int(header_size) if header_size else None)
        self.registry = registry
        self.repository = repository

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self.response.close()

    def chunks(self, chunk_size: int = BLOB_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the blob's bytes; raise at the end if they are short or do not hash to the digest."""
        verifier = DigestVerifier(self.digest)
        try:
            for chunk in self.response.raw.stream(chunk_size, decode_content=False):
                verifier.update(chunk)
                yield chunk
        except Exception as err:  # noqa: BLE001 - urllib3 raises several types for a cut connection
            raise InterruptedDownloadError(
                "Download of blob %s@%s from registry %s was interrupted after %d bytes: %s"
                % (self.repository, self.digest, self.registry, verifier.size, err.__class__.__name__),
                registry=self.registry,
                repository=self.repository,
            ) from None
        if self.size is not None and verifier.size != self.size:
            raise DigestMismatchError(
                "Blob %s@%s from registry %s is %d bytes, expected %d"
                % (self.repository, self.digest, self.registry, verifier.size, self.size),
                registry=self.registry,
                repository=self.repository,
            )
        try:
            verifier.verify()
        except DigestMismatchError as err:
            raise DigestMismatchError(
                "Blob %s from registry %s is corrupt: %s" % (self.repository, self.registry, err),
                registry=self.registry,
                repository=self.repository,
            ) from None


class _SizedBody:
    """A streamed request body of known length: requests sends it with Content-Length, not chunked."""

    def __init__(self, chunks: Iterable[bytes], size: int):
        self._chunks = chunks
        self._size = size
        self._used = False

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        if self._used:
            # Re-sending (after a 401) would promise Content-Length bytes and send none.
            raise TransportError("A streamed upload body cannot be sent twice; the upload starts again")
        self._used = True
        return iter(self._chunks)


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        buffer.extend(chunk)
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _read_limited(response: Any, limit: int, action: str, registry: str) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_content(65536):
            data.extend(chunk)
            if len(data) > limit:
                raise RegistryResponseError(
                    "Registry %s sent more than %d bytes to '%s'; that is not a manifest" % (registry, limit, action),
                    registry=registry,
                )
    except OSError as err:  # requests' errors for a cut or garbled body (ChunkedEncodingError, ...) are OSErrors
        raise InterruptedDownloadError(
            "Registry %s broke off its answer to '%s' after %d bytes: %s"
            % (registry, action, len(data), err.__class__.__name__),
            registry=registry,
        ) from None
    return bytes(data)


def _fetched_manifest(response: Any, raw: bytes, digest: str) -> FetchedManifest:
    return FetchedManifest(raw=raw, media_type=_media_type(response) or _declared_media_type(raw), digest=digest)


def _claimed_digest(response: Any) -> str | None:
    """The ``Docker-Content-Digest`` header, when it is a digest this client can compute; else None."""
    claimed = response.headers.get("Docker-Content-Digest")
    if not claimed or claimed.split(":", 1)[0] not in DIGEST_ALGORITHMS:
        return None
    try:
        return validate_digest(claimed)
    except InvalidReferenceError:
        return None


def _json_object(response: Any, action: str, registry: str, repository: str | None) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryResponseError(
            "Registry %s sent a malformed answer (not a JSON object) to '%s'" % (registry, action),
            registry=registry,
            repository=repository,
        )
    return body


def _is_index_answer(response: Any) -> bool:
    """A referrers answer is an OCI index; anything else (a proxy's page, a registry's catch-all) means no API."""
    return _media_type(response) in ("", OCI_INDEX, "application/json") and response.status_code == 200

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag state: where tags point now, what a task changes, and how to remove one tag safely.

:class:`TagUpdate` is what a ``registry_tag`` task does; the safe untag (:class:`Untagger`) serves ``registry_repo``
too. Reading costs one ``HEAD`` per tag; planning is pure; writing is ``PUT`` of manifest bytes exactly as read.
Removing a tag never deletes a manifest another tag still points at: where the registry cannot delete a tag by name
(distribution 2.x answers 400), the tag is first moved onto a small manifest of its own, and only that manifest
is deleted by digest. Before a tag is moved so, the registry is asked once, with a ``DELETE`` that changes nothing,
whether it deletes at all: where it does not, nothing is moved, and nothing is left behind.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    TagOverwriteError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.attachment_copy import CHANGING_ACTIONS
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import carry_attachments, copy_image
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import CopyProgress
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import noting_docker_hub
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_MANIFEST,
    normalize_media_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    Reference,
    is_digest,
    parse_reference,
    validate_digest,
    validate_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import wanted_types
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

PLACEHOLDER_LABEL = "org.ocireg.registry.placeholder"

# ``algorithm:hex`` with a hash algorithm's name is meant as a digest, even a malformed or unsupported one: without
# this, ``sha256:abc`` or ``md5:...`` would parse as the Docker Hub image ``library/sha256`` with tag ``abc``.
_LOOKS_LIKE_DIGEST = re.compile(r"(?:md5|sha1|sha224|sha256|sha384|sha512|sha3-[0-9]+|blake2[bs]|blake3):\S*", re.I)
_DOCKER_FAMILY = frozenset((DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))


@dataclasses.dataclass(frozen=True)
class TagChange:
    """One tag before and after a task; ``digest`` None means the tag does not exist (afterwards)."""

    tag: str
    previous_digest: str | None
    digest: str | None

    @property
    def changed(self) -> bool:
        return self.previous_digest != self.digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "changed": self.changed,
        }


def validate_tag_list(values: object) -> list[str]:
    """The tags named by a task, validated, duplicates dropped, order kept. At least one is required."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidInputError("Option tag needs at least one tag name, got %r." % (values,))
    tags: list[str] = []
    for value in values:
        tag = validate_tag(value, within="option tag")
        if tag not in tags:
            tags.append(tag)
    return tags


def parse_source(text: object, repository: Reference) -> Reference:
    """The image a task's ``source`` names, as a reference with a tag or a digest.

    A bare digest (``sha256:...``) means ``repository`` itself. A reference on the same registry as
    ``repository`` and without an explicit scheme uses ``repository``'s scheme, so an ``https://``
    repository on a loopback host does not turn into ``http`` for its source. Without tag or digest
    the tag is ``latest``, as docker does.
    """
    if not isinstance(text, str) or not text:
        raise InvalidInputError("Invalid source %r: expected a reference such as 'team/app:1.0' or a digest." % (text,))
    if is_digest(text):
        return dataclasses.replace(repository, tag=None, digest=validate_digest(text))
    if "/" not in text and "@" not in text and _LOOKS_LIKE_DIGEST.fullmatch(text):
        validate_digest(text, within="option source")  # raises, naming the value and the rule
    try:
        source = parse_reference(text)
    except InvalidInputError as err:
        raise InvalidInputError("Option source: %s" % err) from None
    if source.scheme is None and source.registry == repository.registry:
        source = dataclasses.replace(source, scheme=repository.scheme)
    return source


def same_repository(first: Reference, second: Reference) -> bool:
    return same_registry(first, second) and first.repository == second.repository


def same_registry(first: Reference, second: Reference) -> bool:
    return first.base_url == second.base_url


def read_tags(client: RegistryClient, repository: str, tags: Iterable[str]) -> dict[str, Descriptor | None]:
    """Where each tag points now (None: it does not exist). One ``HEAD`` per tag, nothing else.

    Sequential on purpose: the first request performs the auth handshake, and parallel first requests
    would each pay for a ``401`` and a token.
    """
    return {tag: client.head_manifest(repository, tag) for tag in tags}


def digests_of(current: Mapping[str, Descriptor | None]) -> dict[str, str | None]:
    return {tag: (descriptor.digest if descriptor is not None else None) for tag, descriptor in current.items()}


def plan_present(current: Mapping[str, str | None], digest: str) -> list[TagChange]:
    """Every tag ends on ``digest``."""
    return [TagChange(tag, previous, digest) for tag, previous in current.items()]


def plan_absent(current: Mapping[str, str | None]) -> list[TagChange]:
    """Every tag ends missing."""
    return [TagChange(tag, previous, None) for tag, previous in current.items()]


def missing_tags(current: Mapping[str, str | None]) -> list[str]:
    return [tag for tag, digest in current.items() if digest is None]


def overwrite_conflicts(current: Mapping[str, str | None], digest: str) -> dict[str, str]:
    """Tags that exist and point somewhere other than ``digest``."""
    return {tag: previous for tag, previous in current.items() if previous is not None and previous != digest}


def check_overwrite(name: str, current: Mapping[str, str | None], digest: str) -> None:
    """Raise :class:`TagOverwriteError` naming every tag that ``overwrite: false`` protects from moving."""
    conflicts = overwrite_conflicts(current, digest)
    if conflicts:
        listed = ", ".join("%s (now %s)" % (tag, previous) for tag, previous in conflicts.items())
        raise TagOverwriteError(
            "Not moving existing tag%s of %s to %s because overwrite is false: %s. Nothing was changed."
            % ("s" if len(conflicts) > 1 else "", name, digest, listed)
        )


def tag_diff(changes: Iterable[TagChange]) -> dict[str, dict[str, str | None]]:
    """Ansible ``diff``: tag -> digest (or None) before and after."""
    changes = list(changes)
    return {
        "before": {change.tag: change.previous_digest for change in changes},
        "after": {change.tag: change.digest for change in changes},
    }


def common_digest(digests: Iterable[str | None]) -> str | None:
    """The one digest every tag points at, else None."""
    found = set(digests)
    return found.pop() if len(found) == 1 else None


def put_tags(client: RegistryClient, repository: str, raw: bytes, media_type: str, tags: Iterable[str]) -> None:
    """``PUT`` the same manifest bytes under each tag (the bytes are never re-serialised)."""
    for tag in tags:
        client.put_manifest(repository, tag, raw, media_type)


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """A tiny image of its own that a tag is moved onto before it is deleted by digest: its config's bytes and its
    manifest (whose ``config`` descriptor names them)."""

    config: bytes
    manifest: ManifestInfo


def placeholder_for(current_media_type: str | None, nonce: str) -> Placeholder:
    """A placeholder in the media-type family of the tag's current manifest: Docker schema 2 or OCI.

    The config carries ``nonce``, so its digest, and the manifest's, are shared with nothing else:
    deleting the placeholder by digest can only ever remove the one tag moved onto it.
    """
    docker = normalize_media_type(current_media_type) in _DOCKER_FAMILY
    config_media_type = DOCKER_CONFIG if docker else OCI_CONFIG
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    config = _compact(
        {
            "architecture": "unknown",
            "os": "unknown",
            "config": {"Labels": {PLACEHOLDER_LABEL: nonce}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    )
    manifest = _compact(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_media_type, "digest": compute_digest(config), "size": len(config)},
            "layers": [],
        }
    )
    return Placeholder(config=config, manifest=parse_manifest(manifest, media_type))


def remove_tag(
    client: RegistryClient,
    repository: str,
    tag: str,
    current: Descriptor,
    nonce: str | None = None,
    try_delete_by_name: bool = True,
) -> str:
    """Remove only ``tag``; every other tag on ``current.digest`` stays. Returns how: ``"deleted"`` or ``"untagged"``.

    First ``DELETE /v2/NAME/manifests/TAG`` (only a 202 counts). Otherwise the safe untag: upload a
    unique placeholder config, ``PUT`` the placeholder manifest on the tag, then delete the placeholder by
    digest. Should that last delete fail (deletes disabled), the tag is put back on its manifest before
    the error is raised, so a failed removal leaves the tag where it was.

    ``try_delete_by_name=False`` skips the first ``DELETE`` for a caller removing many tags that already
    learnt (from an ``"untagged"``) that this registry cannot delete tags by name. Whether the registry deletes at
    all is the caller's to find out first (:class:`Untagger` does): should it not, the tag is put back, but the
    placeholder, which cannot be deleted, stays.
    """
    if try_delete_by_name and client.delete_tag(repository, tag):
        return "deleted"
    placeholder = placeholder_for(current.media_type, nonce or "untag %s %s" % (tag, secrets.token_hex(16)))
    client.upload_blob(repository, placeholder.manifest.config.digest, placeholder.config)  # type: ignore[union-attr]
    client.put_manifest(repository, tag, placeholder.manifest.raw, placeholder.manifest.media_type)
    try:
        client.delete_manifest(repository, placeholder.manifest.digest)
    except RegistryError as err:
        raise _restore_after_failed_untag(client, repository, tag, current, placeholder, err) from None
    return "untagged"


def _restore_after_failed_untag(
    client: RegistryClient,
    repository: str,
    tag: str,
    current: Descriptor,
    placeholder: Placeholder,
    cause: RegistryError,
) -> RegistryError:
    where = "%s/%s" % (client.registry, repository)
    try:
        original = client.get_manifest(repository, current.digest)
        client.put_manifest(repository, tag, original.raw, original.media_type)
    except RegistryError as restore_error:
        return type(cause)(
            "Cannot remove tag %s from %s: deleting its placeholder manifest %s failed (%s), and putting the tag"
            " back on %s failed too (%s). The tag now points at the placeholder; delete it by digest or retag it."
            % (tag, where, placeholder.manifest.digest, cause, current.digest, restore_error),
            registry=client.registry,
            repository=repository,
            status=cause.status,
        )
    return type(cause)(
        "Cannot remove tag %s from %s: the registry deletes neither tags by name nor manifests by digest (%s)."
        " The tag still points at %s; the placeholder manifest %s it was moved onto stays, untagged, as the registry"
        " would not delete it." % (tag, where, cause, current.digest, placeholder.manifest.digest),
        registry=client.registry,
        repository=repository,
        status=cause.status,
        codes=cause.codes,
        details=cause.details,
    )


class Untagger:
    """Removes tags of one repository for one task, asking the registry only what it has not learnt yet.

    It asks to delete a tag by name until the registry refuses once (distribution 2.x answers 400), and never again
    after that. Before the first tag is moved onto a placeholder, it checks once whether the registry deletes at all
    (:meth:`RegistryClient.confirm_deletes`, a ``DELETE`` that changes nothing); where it does not, the task fails
    with nothing moved and nothing left behind. Safe to share between threads.
    """

    def __init__(self, client: RegistryClient, repository: str):
        self.client = client
        self.repository = repository
        self.try_delete_by_name = True
        self._checked = False
        self._refusal: RegistryError | None = None
        self._lock = threading.Lock()

    def deletes_work(self) -> None:
        """The caller has seen a delete by digest succeed in this repository: no need to ask."""
        with self._lock:
            self._checked = True

    def check_deletes(self, current: Mapping[str, Descriptor]) -> None:
        """Raise, before anything is moved, when the registry says it does not delete; ``current`` are the tags
        about to be removed, for the message. Asks the registry the first time only."""
        with self._lock:
            if not self._checked:
                self._checked = True
                try:
                    self.client.confirm_deletes(self.repository)
                except RegistryError as err:
                    self._refusal = err
            refusal = self._refusal
        if refusal is not None:
            raise self._nothing_removed(refusal, current)

    def remove(self, tag: str, current: Descriptor) -> str:
        """Remove only ``tag`` (see :func:`remove_tag`); returns ``"deleted"`` or ``"untagged"``."""
        if self.try_delete_by_name:
            if self.client.delete_tag(self.repository, tag):
                return "deleted"
            self.try_delete_by_name = False  # this registry cannot delete a tag by name: don't ask again
        self.check_deletes({tag: current})
        return remove_tag(self.client, self.repository, tag, current, try_delete_by_name=False)

    def _nothing_removed(self, cause: RegistryError, current: Mapping[str, Descriptor]) -> RegistryError:
        where = "%s/%s" % (self.client.registry, self.repository)
        many = len(current) > 1
        return type(cause)(
            "Cannot remove tag%s %s from %s: %s. Nothing was changed: %s."
            % (
                "s" if many else "",
                ", ".join(current),
                where,
                str(cause).rstrip("."),
                "; ".join("%s still points at %s" % (tag, descriptor.digest) for tag, descriptor in current.items()),
            ),
            registry=cause.registry,
            repository=cause.repository,
            status=cause.status,
            codes=cause.codes,
            details=cause.details,
        )


def require_source(descriptor: Descriptor | None, source: Reference) -> Descriptor:
    """The source's descriptor, or a :class:`NotFoundError` that names the source."""
    if descriptor is None:
        raise NotFoundError(
            "Source %s does not exist: registry %s has no manifest %s in repository %s."
            % (source.canonical, source.registry, source.manifest_reference, source.repository),
            registry=source.registry,
            repository=source.repository,
            status=404,
        )
    return descriptor


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ----------------------------------------------------------------------------------------------------
# A registry_tag task


class TagUpdate:
    """Makes the named tags of one repository point where a task says, or removes them.

    :meth:`plan` reads (one ``HEAD`` per tag and per tag-named source) and decides; :meth:`apply` writes only the
    tags that differ. A dry run (check mode) stops after :meth:`plan`, having read what a real run reads, except the
    source manifest a real run ``GET``s for its bytes.

    With ``referrers``, a source in another repository or registry has its attachments carried too (the copy engine's
    ``referrers``), also when every tag is up to date already (:attr:`carry_pending`: :meth:`apply` then carries
    them, moving no tag), so that a signature added at the source later arrives. In a dry run :meth:`plan` lists what
    would be carried. Within one repository there is nothing to carry: the tags point at the same digest, whose
    attachments are in that repository already.
    """

    def __init__(
        self,
        clients: Any,
        repository: Reference,
        tags: list[str],
        *,
        state: str = "present",
        source: str | None = None,
        overwrite: bool = True,
        dry_run: bool = False,
        referrers: bool = False,
        referrer_types: Any = None,
    ):
        if source is not None and state == "absent":
            raise InvalidInputError(
                "Option source (%r) only applies to state=present; state=absent removes the named tags." % source
            )
        self.clients = clients
        self.repository = repository
        self.tags = tags
        self.state = state
        self.source = parse_source(source, repository) if source is not None else None
        self.overwrite = overwrite
        self.dry_run = dry_run
        self.referrers = referrers
        self.referrer_types = wanted_types(referrer_types)  # checked before any request
        self.carried: list[dict[str, Any]] = []  # what happened to each attachment (the result's referrers)
        self.warnings: list[str] = []
        self.carry_pending = False  # no tag moves, but apply() carries the attachments
        self.progress = CopyProgress()
        self.source_descriptor: Descriptor | None = None  # from the HEAD of the source, when it was made
        self.client = clients.for_reference(repository)
        self.untagger = Untagger(self.client, repository.repository)
        self.current: dict[str, Descriptor | None] = {}
        self.changes: list[TagChange] = []
        self.fetched: Any = None  # the source manifest, when it is PUT under the tags as it is
        self.removed: list[str] = []  # progress of apply(), for a failure halfway
        self.writing = False

    @property
    def name(self) -> str:
        return self.repository.name

    def plan(self) -> list[str]:
        """Read the tags and the source; returns the tags a real run writes.

        With ``state=absent`` and tags to remove, this also checks (one ``DELETE`` that changes nothing, in a dry run
        too) that the registry deletes at all, so that where it does not, the task fails here, having changed nothing.
        """
        if self.state == "absent":
            self._read_tags()
            self.changes = plan_absent(digests_of(self.current))
            pending = self.pending()
            if pending:
                self.untagger.check_deletes({tag: self.current[tag] for tag in pending})
            return pending
        desired = self._source_digest()
        self._read_tags()
        digests = digests_of(self.current)
        if desired is None:
            require_tags(self.repository, digests)
            self.changes = [TagChange(tag, digest, digest) for tag, digest in digests.items()]
            return []
        if not self.overwrite:
            check_overwrite(self.name, digests, desired)
        self.changes = plan_present(digests, desired)
        pending = self.pending()
        carries = self.referrers and not same_repository(self.source, self.repository)
        if not pending:
            if carries:
                self._plan_carrying(desired)
            return []
        if same_repository(self.source, self.repository) and not self.dry_run:
            return self._read_source_manifest()
        if self.source.digest:
            self._head_source()  # it exists, or a message naming it, before anything is written
        if carries and self.dry_run:
            self._carry(desired)
        return pending

    def pending(self) -> list[str]:
        return [change.tag for change in self.changes if change.changed]

    def apply(self, pending: list[str]) -> None:
        if self.state == "absent":
            for tag in pending:
                self.untagger.remove(tag, self.current[tag])
                self.removed.append(tag)
            return
        if not pending:
            if self.carry_pending:
                self._carry(self.changes[0].digest)
            return
        self.writing = True
        if self.fetched is not None:
            put_tags(self.client, self.repository.repository, self.fetched.raw, self.fetched.media_type, pending)
        else:
            self._promote(pending)

    @property
    def changed_so_far(self) -> bool:
        """For a failure halfway through :meth:`apply`: whether anything may have changed. A tag whose removal failed
        was put back (or the registry refused before anything moved); a write that began may have landed."""
        return bool(self.removed) or self.writing or self.progress.changed

    def result(self) -> dict[str, Any]:
        carried_changes = any(item["action"] in CHANGING_ACTIONS for item in self.carried)
        result: dict[str, Any] = {
            "changed": any(change.changed for change in self.changes) or carried_changes,
            "tags": [change.to_dict() for change in self.changes],
            "diff": tag_diff(self.changes),
        }
        if self.state == "present":
            result["digest"] = common_digest(change.digest for change in self.changes)
            if self.referrers:
                result["referrers"] = list(self.carried)
        return result

    def _source_digest(self) -> str | None:
        """The digest the tags must point at: given, or one HEAD on a tag-named source."""
        if self.source is None:
            return None
        return self.source.digest or self._head_source().digest

    def _read_tags(self) -> None:
        with noting_docker_hub(self.repository):
            self.current = read_tags(self.client, self.repository.repository, self.tags)

    def _head_source(self) -> Descriptor:
        client = self.clients.for_reference(self.source)
        with noting_docker_hub(self.source, tag_of=self.name):
            descriptor = client.head_manifest(self.source.repository, self.source.manifest_reference)
            self.source_descriptor = require_source(descriptor, self.source)
            return self.source_descriptor

    def _replan(self, digest: str) -> list[str]:
        """The source turned out to be ``digest`` when read (it moved since the HEAD): plan again for it."""
        digests = {change.tag: change.previous_digest for change in self.changes}
        if digest != self.changes[0].digest:
            if not self.overwrite:
                check_overwrite(self.name, digests, digest)
            self.changes = plan_present(digests, digest)
        return self.pending()

    def _read_source_manifest(self) -> list[str]:
        """Within the repository: GET the source once (by digest when given, so it is verified against it); its
        exact bytes are then PUT under each tag that differs."""
        with noting_docker_hub(self.source, tag_of=self.name):
            try:
                self.fetched = self.client.get_manifest(self.repository.repository, self.source.manifest_reference)
            except NotFoundError:
                require_source(None, self.source)
                raise
        return self._replan(self.fetched.digest)

    def _plan_carrying(self, digest: str) -> None:
        """Every tag is up to date: the attachments are still looked at (listed now in a dry run, else carried by
        :meth:`apply`)."""
        if self.dry_run:
            self._carry(digest)
        else:
            self.carry_pending = True

    def _carry(self, digest: str) -> None:
        """Carry (in a dry run: list) the attachments of ``digest``, which the repository holds or will hold."""
        known = self.source_descriptor
        media_type = known.media_type if known is not None and known.digest == digest else None
        with noting_docker_hub(self.source, tag_of=self.name):
            carried = carry_attachments(
                self.clients,
                dataclasses.replace(self.source, tag=None, digest=digest),
                self.repository,
                media_type=media_type,
                referrer_types=self.referrer_types,
                dry_run=self.dry_run,
                progress=self.progress,
            )
        self.carried, self.warnings = carried.referrers, carried.warnings

    def _promote(self, pending: list[str]) -> None:
        """Another repository (mount) or registry (copy): the copy engine writes the first tag (and carries the
        attachments, with ``referrers``), PUT the rest."""
        copied = copy_image(
            self.clients,
            self.source,
            self.repository.with_tag(pending[0]),
            referrers=self.referrers,
            referrer_types=self.referrer_types,
            progress=self.progress,
        )
        self.carried, self.warnings = copied.referrers, copied.warnings
        rest = [tag for tag in self._replan(copied.digest) if tag != pending[0]]
        if rest:
            fetched = self.client.get_manifest(self.repository.repository, copied.digest)
            put_tags(self.client, self.repository.repository, fetched.raw, fetched.media_type, rest)


def require_tags(repository: Reference, current: Mapping[str, str | None]) -> None:
    """Without a source, every named tag must exist already: a :class:`NotFoundError` names the missing ones."""
    missing = missing_tags(current)
    if not missing:
        return
    many = len(missing) > 1
    raise NotFoundError(
        "Tag%s %s of %s do%s not exist, and no source was given to create %s from."
        % ("s" if many else "", ", ".join(missing), repository.name, "" if many else "es", "them" if many else "it"),
        registry=repository.registry,
        repository=repository.repository,
    )

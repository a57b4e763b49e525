# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag state: where tags point now, what a task changes, and how to remove one tag safely.

Shared by ``registry_tag`` and ``registry_repo``. Reading costs one ``HEAD`` per tag; planning is pure;
writing is ``PUT`` of manifest bytes exactly as read. Removing a tag never deletes a manifest another tag
still points at: where the registry cannot delete a tag by name (distribution 2.x answers 400), the tag
is first moved onto a small manifest of its own, and only that manifest is deleted by digest.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    TagOverwriteError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor
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
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

PLACEHOLDER_LABEL = "org.ocireg.registry.placeholder"

# Algorithms a bare ``algo:hex`` source is taken to be a digest of, even when it is malformed: without
# this, ``sha256:abc`` would parse as the Docker Hub image ``library/sha256`` with tag ``abc``.
_DIGEST_PREFIXES = ("sha256:", "sha384:", "sha512:")
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
    if "/" not in text and "@" not in text and text.lower().startswith(_DIGEST_PREFIXES):
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
    """A tiny image of its own that a tag is moved onto before it is deleted by digest."""

    config: bytes
    config_media_type: str
    manifest: bytes
    media_type: str

    @property
    def config_digest(self) -> str:
        return compute_digest(self.config)

    @property
    def digest(self) -> str:
        return compute_digest(self.manifest)


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
    return Placeholder(config=config, config_media_type=config_media_type, manifest=manifest, media_type=media_type)


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
    learnt (from an ``"untagged"``) that this registry cannot delete tags by name.
    """
    if try_delete_by_name and client.delete_tag(repository, tag):
        return "deleted"
    placeholder = placeholder_for(current.media_type, nonce or "untag %s %s" % (tag, secrets.token_hex(16)))
    client.upload_blob(repository, placeholder.config_digest, placeholder.config)
    client.put_manifest(repository, tag, placeholder.manifest, placeholder.media_type)
    try:
        client.delete_manifest(repository, placeholder.digest)
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
            % (tag, where, placeholder.digest, cause, current.digest, restore_error),
            registry=client.registry,
            repository=repository,
            status=cause.status,
        )
    return type(cause)(
        "Cannot remove tag %s from %s: the registry deletes neither tags by name nor manifests by digest (%s)."
        " The tag still points at %s." % (tag, where, cause, current.digest),
        registry=client.registry,
        repository=repository,
        status=cause.status,
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

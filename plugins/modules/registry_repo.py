#!/usr/bin/python
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_repo
short_description: Enforce tag retention on a container registry repository, or empty it
version_added: 0.1.0
author:
  - ocireg.registry contributors (@ocireg)
description:
  - Deletes the tags of a repository that a retention policy lets go, or every image in the repository, on any
    registry that speaks the Docker Registry HTTP API v2 or the OCI distribution specification. No container engine is
    needed.
  - A tag is deleted only when every rule of O(retention) that is set allows it. O(retention.match) names the tags to
    consider, O(retention.keep) the tags never to delete, O(retention.keep_last) how many of the newest images to keep,
    and O(retention.older_than) how old an image must be.
  - Removing a tag never removes an image that another tag still uses. When every tag of an image goes, the image is
    deleted by digest, which removes all its tags with one request. When some tags of an image stay, the others are
    removed one by one (see O(retention) for how). An image that a remaining multi-platform index refers to is never
    deleted by digest either, even when it has no tag left.
  - A repository exists as long as it has tags, so it is never created; a repository that does not exist (or has no
    tags) is not an error, the result says RV(exists=false).
extends_documentation_fragment:
  - ocireg.registry.connection
options:
  repository:
    description:
      - The repository, as C([registry/]path), without a tag or a digest.
      - For example V(registry.example.com/team/app), or V(https://127.0.0.1:5000/team/app) to force HTTPS on a
        loopback host.
    type: str
    required: true
  state:
    description:
      - V(present) applies O(retention), if given. Without O(retention), nothing is changed and the task only reports
        the tags (RV(kept_tags)) and whether the repository exists.
      - V(absent) deletes every image that a tag of the repository points at, by digest, and so every tag. Nothing
        is left to list. A repository that does not exist is not an error, and nothing changes.
      - Deleting needs a registry that allows it (for the CNCF distribution registry, C(storage.delete.enabled)).
        Deleting frees no storage by itself; the registry's garbage collection does that later.
    type: str
    choices:
      - present
      - absent
    default: present
  retention:
    description:
      - Which tags to delete, with O(state=present). Set at least one rule. A tag is deleted only when every rule that
        is set allows it, so each rule can only protect more tags, never fewer.
      - The rules are applied in this order. O(retention.match) picks the tags to consider; O(retention.keep) takes
        the tags to protect out of those; O(retention.keep_last) keeps the newest images of what is left; and of the
        rest, O(retention.older_than) deletes only the old enough.
      - The time an image was created is the C(created) field of its image config; for an artifact whose config is
        not an image config, the C(org.opencontainers.image.created) annotation of its manifest. For a multi-platform
        index, it is the newest creation time among its platforms' images (attestation manifests, platform
        C(unknown/unknown), are not read).
      - A tag whose image shares its digest with a tag that stays is removed on its own. The registry is first asked
        to delete the tag by name. Where it cannot (the CNCF distribution registry 2.x and many others), the tag is
        moved onto a small placeholder image of its own, which is then deleted by digest, as
        M(ocireg.registry.registry_tag) does.
      - Tags of signatures and attestations (cosign's V(sha256-<digest>.sig)) are tags like any other. Protect them
        with O(retention.keep), for example V(sha256-.*).
    type: dict
    suboptions:
      keep_last:
        description:
          - Keep the tags of this many newest images among the tags that O(retention.match) considers and
            O(retention.keep) does not already protect.
          - Images are counted, not tags, so every tag of a kept image stays. Newest is by creation time; images
            whose creation time is unknown count as the oldest, and images created at the same time are ordered by
            digest so that every run agrees.
          - V(0) keeps none by count, like leaving it unset.
          - Images built reproducibly often share one fixed creation time (for example V(1970-01-01)); for those,
            use O(retention.keep) or O(retention.match) instead.
        type: int
      keep:
        description:
          - Regular expressions (Python C(re)) for tag names never to delete.
          - Each must match the whole tag name (C(re.fullmatch)); V(v1) matches the tag V(v1) but not V(v10), and
            V(v1.*) matches both. V(^) and V($) are allowed but not needed.
          - Give a YAML list. A single string is split at commas by Ansible, which breaks patterns such as
            V(v[0-9]{1,3}).
        type: list
        elements: str
      match:
        description:
          - Regular expressions (Python C(re), whole tag name as with O(retention.keep)) for the only tags to
            consider. Tags that match none of them are never deleted.
          - If not set, every tag is considered. An empty list considers none.
        type: list
        elements: str
      older_than:
        description:
          - Delete only tags whose image was created longer ago than this, counted from when the task runs.
          - A whole number and a unit, V(s) (seconds), V(m) (minutes), V(h) (hours), V(d) (days) or V(w) (weeks), for
            example V(30d), V(12h) or V(90m). Units can be combined, as in V(1w3d).
          - A tag whose image has no readable creation time is never older than anything, so it stays. The task
            warns about such tags.
        type: str
  concurrency:
    description:
      - How many requests to have in flight at once while reading tags, manifests and image configs, and while
        deleting, from 1 to 64.
    type: int
    default: 8
attributes:
  check_mode:
    support: full
    description: Reads everything a real run reads and reports exactly the tags and digests it would delete.
  diff_mode:
    support: full
    description: The repository's tag names before and after.
seealso:
  - module: ocireg.registry.registry_tag
  - module: ocireg.registry.registry_info
notes:
  - Requests are kept to what the rules need. The tags are listed once. Each tag then costs one C(HEAD); a tag whose
    age matters (considered, not kept, with O(retention.keep_last) or O(retention.older_than) set) costs one manifest
    C(GET) instead. Each distinct image config, and each platform manifest of an index, is read once.
  - Without O(retention.keep_last) and O(retention.older_than), no manifest or config is read. When no tag is both
    matched and not kept, nothing is read but the tag list.
  - Child manifests of a deleted multi-platform index are not deleted; the registry's garbage collection removes them
    (for the CNCF distribution registry, C(registry garbage-collect --delete-untagged)).
  - The decision is made when the task starts. A tag pushed while it runs is not deleted, unless it is pushed onto an
    image that the task deletes by digest.
"""

EXAMPLES = r"""
- name: Keep the ten newest main and pull-request builds; other tags, such as releases, are never deleted
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      match:
        - "main-.*"
        - "pr-[0-9]+"
      keep_last: 10
  delegate_to: localhost

- name: Delete pull-request images older than two weeks, never latest or a release
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      keep:
        - latest
        - "v[0-9]+[.][0-9]+[.][0-9]+"
      match:
        - "pr-.*"
      older_than: 2w
  delegate_to: localhost
  register: cleanup

- name: Show what a retention run would delete
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      keep_last: 5
      older_than: 30d
  check_mode: true
  diff: true
  delegate_to: localhost
  register: preview

- name: Delete every image in a repository
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/old-app
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
exists:
  description: Whether the repository had any tag before the task.
  returned: success
  type: bool
  sample: true
deleted_tags:
  description:
    - The tags the task deleted (in check mode, would delete), sorted by name.
  returned: success
  type: list
  elements: str
  sample:
    - pr-101
    - pr-102
kept_tags:
  description:
    - Every tag of the repository that remains after the task, sorted by name.
  returned: success
  type: list
  elements: str
  sample:
    - latest
    - v1.4.2
deleted_digests:
  description:
    - The manifests the task deleted (in check mode, would delete) by digest, sorted, because no remaining tag or
      index needs them.
    - A tag removed on its own (its image stays for other tags) adds nothing here.
  returned: success
  type: list
  elements: str
  sample:
    - sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
"""

import datetime
import json
import threading

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    MAX_CONFIG_BYTES,
    Descriptor,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    IMAGE_CONFIG_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    is_index,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import UTC, parse_created
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import (
    DeletionPlan,
    RetentionPolicy,
    TaggedImage,
    decide,
    plan_deletions,
    tag_set_diff,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import remove_tag

MAX_CONCURRENCY = 64
CREATED_ANNOTATION = "org.opencontainers.image.created"
# What a manifest or config that cannot be read as one leaves us with: an unknown age, not a failed task.
UNREADABLE = (UnsupportedError, RegistryResponseError)


class RepositoryManager:
    """Plans with reads only; then (outside check mode) deletes by digest and untags what the plan says."""

    def __init__(self, module):
        params = module.params
        self.module = module
        self.state = params["state"]
        self.repository = parse_repository(params["repository"])
        self.concurrency = params["concurrency"]
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InvalidInputError(
                "Option concurrency must be a whole number from 1 to %d, got %r." % (MAX_CONCURRENCY, self.concurrency)
            )
        self.policy = None
        if params["retention"] is not None:
            if self.state == "absent":
                raise InvalidInputError(
                    "Option retention only applies to state=present; state=absent deletes every image in %s."
                    % self.repository.name
                )
            self.policy = RetentionPolicy.from_options(params["retention"])
        self.clients = registry_clients(params, self.repository, pool_size=max(16, self.concurrency))
        self.client = self.clients.for_reference(self.repository)
        self.name = self.repository.repository
        self.exists = False
        self.current = {}  # tag -> Descriptor
        self.manifests = {}  # digest -> ManifestInfo, for the manifests that were read
        self.plan = DeletionPlan((), (), (), ())
        self.deleted_digests = []  # progress of apply(), for a failure halfway
        self.deleted_tags = []
        self._progress_lock = threading.Lock()
        self._try_delete_by_name = True

    def close(self):
        self.clients.close()

    # -- planning (reads only) --------------------------------------------------------------------

    def make_plan(self):
        now = datetime.datetime.now(UTC)
        tags = self._list_tags()
        self.exists = bool(tags)
        if self.state == "present" and (self.policy is None or not self.policy.candidates(tags)):
            # Nothing is to be checked, or no tag is both matched and not kept: no tag can go, nothing to read.
            self.plan = DeletionPlan((), (), (), tuple(tags))
            return self.plan
        age_tags = set()
        if self.policy is not None and self.policy.needs_age:
            age_tags = set(self.policy.candidates(tags))
        self._read_tags(tags, age_tags)
        digests = {tag: descriptor.digest for tag, descriptor in self.current.items()}
        indexes = {descriptor.digest for descriptor in self.current.values() if is_index(descriptor.media_type)}
        if self.policy is None:  # state=absent
            self.plan = plan_deletions(digests, digests, indexes=indexes)
            return self.plan
        created = self._creation_times({digests[tag] for tag in age_tags if tag in digests})
        decision = decide(
            self.policy,
            [TaggedImage(tag, digest, created.get(digest)) for tag, digest in digests.items()],
            now,
        )
        if decision.unknown_age:
            self.module.warn(
                "older_than kept %d tag(s) of %s because their images have no readable creation time: %s"
                % (len(decision.unknown_age), self.repository.name, ", ".join(decision.unknown_age))
            )
        self.plan = plan_deletions(digests, decision.doomed, indexes=indexes)
        if self.plan.delete_digests:
            protected = self._referenced_by_surviving_indexes(decision.doomed)
            if protected & set(self.plan.delete_digests):
                self.plan = plan_deletions(digests, decision.doomed, protected=protected, indexes=indexes)
        return self.plan

    def _list_tags(self):
        try:
            return sorted(set(self.client.list_tags(self.name)))
        except NotFoundError:
            return []

    def _read_tags(self, tags, age_tags):
        """One request per tag: a manifest GET where its age matters, else a HEAD. Vanished tags are left out."""
        read = map_concurrently(lambda tag: self._read_tag(tag, tag in age_tags), tags, self.concurrency)
        self.current = {tag: descriptor for tag, descriptor in zip(tags, read) if descriptor is not None}

    def _read_tag(self, tag, with_manifest):
        if not with_manifest:
            return self.client.head_manifest(self.name, tag)
        try:
            fetched = self.client.get_manifest(self.name, tag)
        except NotFoundError:
            return None
        self._remember(fetched)
        return Descriptor(media_type=fetched.media_type, digest=fetched.digest, size=fetched.size)

    def _remember(self, fetched):
        try:
            self.manifests[fetched.digest] = parse_manifest(fetched.raw, fetched.media_type)
        except UNREADABLE:
            self.manifests[fetched.digest] = None

    def _fetch_manifest(self, digest):
        """The parsed manifest DIGEST of this repository (read at most once); None when missing or unreadable."""
        if digest not in self.manifests:
            try:
                self._remember(self.client.get_manifest(self.name, digest))
            except NotFoundError:
                self.manifests[digest] = None
        return self.manifests[digest]

    def _creation_times(self, digests):
        """digest -> creation time (None: unknown) of each image or index in DIGESTS."""
        children = sorted(
            {
                child.digest
                for digest in digests
                if self.manifests.get(digest) is not None and self.manifests[digest].is_index
                for child in self.manifests[digest].manifests
                if _is_platform_image(child)
            }
        )
        map_concurrently(
            self._fetch_manifest, [digest for digest in children if digest not in self.manifests], self.concurrency
        )
        images = [self.manifests.get(digest) for digest in sorted(set(digests) | set(children))]
        configs = sorted(
            {
                image.config.digest
                for image in images
                if image is not None and not image.is_index and _has_image_config(image)
            }
        )
        created_by_config = dict(zip(configs, map_concurrently(self._read_created, configs, self.concurrency)))

        def image_created(info):
            if info is None or info.is_index:
                return None
            created = created_by_config.get(info.config.digest) if _has_image_config(info) else None
            return created or parse_created((info.annotations or {}).get(CREATED_ANNOTATION))

        result = {}
        for digest in digests:
            info = self.manifests.get(digest)
            if info is not None and info.is_index:
                known = [image_created(self.manifests.get(child.digest)) for child in info.manifests]
                known = [moment for moment in known if moment is not None]
                result[digest] = (
                    max(known) if known else parse_created((info.annotations or {}).get(CREATED_ANNOTATION))
                )
            else:
                result[digest] = image_created(info)
        return result

    def _read_created(self, config_digest):
        try:
            raw = self.client.read_blob(self.name, config_digest, limit=MAX_CONFIG_BYTES)
        except NotFoundError:
            return None
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return parse_created(config.get("created")) if isinstance(config, dict) else None

    def _referenced_by_surviving_indexes(self, doomed):
        """Digests that a remaining index refers to: deleting one of them by digest would break that index."""
        surviving = sorted(
            {
                descriptor.digest
                for tag, descriptor in self.current.items()
                if tag not in doomed and is_index(descriptor.media_type)
            }
        )
        unread = [digest for digest in surviving if self.manifests.get(digest) is None]  # or unreadable as an age
        map_concurrently(self._fetch_surviving_index, unread, self.concurrency)
        return {
            child.digest
            for digest in surviving
            if self.manifests.get(digest) is not None
            for child in self.manifests[digest].manifests
        }

    def _fetch_surviving_index(self, digest):
        # Unlike an age, this is a safety question: an index that cannot be read fails the task.
        fetched = self.client.get_manifest(self.name, digest)
        self.manifests[digest] = parse_manifest(fetched.raw, fetched.media_type)

    # -- applying ---------------------------------------------------------------------------------

    def apply(self):
        self._each(self._delete_digest, list(self.plan.delete_digests))
        self._each(self._untag, list(self.plan.untag))

    def _each(self, function, items):
        """The first item alone (it performs the auth handshake for the write scopes), the rest concurrently."""
        if not items:
            return
        function(items[0])
        map_concurrently(function, items[1:], self.concurrency)

    def _delete_digest(self, digest):
        try:
            self.client.delete_manifest(self.name, digest)
        except NotFoundError:
            pass  # already gone: the goal is reached
        tags = [tag for tag, descriptor in self.current.items() if descriptor.digest == digest]
        with self._progress_lock:
            self.deleted_digests.append(digest)
            self.deleted_tags.extend(tags)

    def _untag(self, tag):
        how = remove_tag(self.client, self.name, tag, self.current[tag], try_delete_by_name=self._try_delete_by_name)
        if how == "untagged":
            self._try_delete_by_name = False  # this registry cannot delete a tag by name: don't ask again
        with self._progress_lock:
            self.deleted_tags.append(tag)

    # -- results ----------------------------------------------------------------------------------

    def result(self):
        return {
            "changed": self.plan.changed,
            "exists": self.exists,
            "deleted_tags": list(self.plan.deleted_tags),
            "kept_tags": list(self.plan.kept_tags),
            "deleted_digests": sorted(self.plan.delete_digests),
            "diff": tag_set_diff(self.plan),
        }

    def failure(self, error):
        """fail_json arguments for an error halfway through apply(): what was already deleted, and what was not."""
        done_tags = sorted(set(self.deleted_tags))
        left = [tag for tag in self.plan.deleted_tags if tag not in set(done_tags)]
        message = "%s. Deleted before the failure: %s; not deleted: %s." % (
            str(error).rstrip("."),
            ", ".join(done_tags) or "nothing",
            ", ".join(left) or "nothing",
        )
        return {
            "msg": message,
            "changed": bool(done_tags),
            "exists": self.exists,
            "deleted_tags": done_tags,
            "kept_tags": sorted(set(self.plan.kept_tags) | set(left)),
            "deleted_digests": sorted(self.deleted_digests),
        }


def _is_platform_image(child):
    """An index entry worth reading for an age: a manifest, and not a buildx attestation (unknown/unknown)."""
    if child.media_type and child.media_type not in MANIFEST_MEDIA_TYPES:
        return False
    return (child.platform or {}).get("os") != "unknown"


def _has_image_config(info):
    # Some old pushes leave the config's mediaType out; those are image configs too.
    return info.config is not None and (
        not info.config.media_type or info.config.media_type in IMAGE_CONFIG_MEDIA_TYPES
    )


def main():
    argument_spec = {
        "repository": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "retention": {
            "type": "dict",
            "options": {
                "keep_last": {"type": "int"},
                "keep": {"type": "list", "elements": "str"},
                "match": {"type": "list", "elements": "str"},
                "older_than": {"type": "str"},
            },
        },
        "concurrency": {"type": "int", "default": 8},
    }
    module = registry_module(argument_spec, supports_check_mode=True)
    with registry_errors(module, changed=False):
        manager = RepositoryManager(module)
    try:
        with registry_errors(module, changed=False):
            manager.make_plan()
        if manager.plan.changed and not module.check_mode:
            try:
                manager.apply()
            except RegistryError as err:
                module.fail_json(**manager.failure(err))
    finally:
        manager.close()
    module.exit_json(**manager.result())


if __name__ == "__main__":
    main()

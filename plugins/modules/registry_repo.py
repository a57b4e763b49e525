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
  - Signatures, attestations and SBOMs travel with their image (O(retention.attachments)). The tags that name an
    image's digest, the referrers fallback tag V(sha256-<hex>) and cosign's V(sha256-<hex>.sig), V(.att) and
    V(.sbom), are never deleted by the rules themselves; they stay while their image stays. When an image goes, its
    attachments go first, then its referrers fallback index, then the image, so that a run that is interrupted never
    leaves a signature whose image is gone. Referrers that have no tag of their own (cosign 3 signature bundles,
    C(oras attach)), found in the fallback index or through the OCI referrers API where the registry serves it, are
    deleted by digest; attachments of attachments (a signature of an SBOM) go the same way.
  - A repository exists as long as it has tags, so it is never created; a repository that does not exist (or has no
    tags) is not an error, the result says RV(exists=false). The task warns then, since a misspelled name deletes
    nothing.
  - The result says, for each tag, whether it goes or stays and why (RV(tags)), in check mode too; with diff mode, so
    does the diff.
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
      - V(absent) deletes the images' attachments too, those without a tag of their own included, each before its
        image, as O(retention.attachments=follow) does.
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
      - Tags of signatures, attestations and SBOMs follow their image (O(retention.attachments)); the rules apply to
        the other tags.
    type: dict
    suboptions:
      attachments:
        description:
          - What the attachments of an image do, the tags that name its digest (V(sha256-<hex>), V(sha256-<hex>.sig),
            V(.att), V(.sbom)) and the referrers without a tag that its fallback index or the referrers API lists.
          - V(follow) (the default) never makes an attachment tag a candidate of the rules. It stays while its image
            stays, also when the image is only a platform of a kept index, and it goes when the image goes, before the
            image. Attachments of attachments follow the same way. A tag that O(retention.keep) matches stays anyway,
            even when its image goes.
          - V(ignore) treats attachment tags as tags like any other, as releases before this option did, and follows
            no referrer.
        type: str
        choices: [follow, ignore]
        default: follow
      orphans:
        description:
          - Also delete the attachments whose image no longer exists (orphans), such as those an earlier tool left
            behind when it deleted the image. The image is asked for by digest (the digest is in the tag name), and
            the referrers its fallback index lists go with it.
          - An attachment whose image exists without a tag (a platform image of an index, for example) is not an
            orphan and stays.
          - Needs O(retention.attachments=follow). It can be the only option of O(retention), which then deletes
            nothing but orphans.
        type: bool
        default: false
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
    description:
      - Reads everything a real run reads and reports exactly the tags, referrers and digests it would delete, and why.
  diff_mode:
    support: full
    description:
      - The repository's tag names before and after, then one line per tag with what happens to it and why (the
        C(action), C(tag), C(reason) and C(detail) of RV(tags)), and one per referrer without a tag (RV(referrers)).
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
    (for the CNCF distribution registry, C(registry garbage-collect --delete-untagged)). Their attachments are
    deleted with the index.
  - With attachments followed, a run that deletes something by digest asks once whether the registry serves the OCI
    referrers API (one C(GET); a C(404) says it does not), reads the fallback index of each image that goes, and
    each referrer it lists (to check that its manifest names that image, or it is not deleted). With
    O(retention.orphans), the image of each attachment that no tag points at costs one C(HEAD).
  - On the CNCF distribution registry 2.8, C(garbage-collect --delete-untagged) destroys referrers that only a
    fallback index names (they have no tag); run it, if at all, knowing that.
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

# keep_last and older_than alone consider every tag, latest and releases included: protect them with keep.
- name: Show what a retention run would delete
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      keep:
        - latest
        - "v[0-9]+[.][0-9]+[.][0-9]+"
      keep_last: 5
      older_than: 30d
  check_mode: true
  diff: true
  delegate_to: localhost
  register: preview

- name: Say why each of those tags would go
  ansible.builtin.debug:
    msg: "{{ item.tag }} ({{ item.reason }}): {{ item.detail }}"
  loop: "{{ preview.tags | selectattr('action', 'eq', 'deleted') | list }}"
  loop_control:
    label: "{{ item.tag }}"

- name: Delete the signatures and attestations that an earlier cleanup left without their image
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      orphans: true
  delegate_to: localhost

# With attachments ignored, the signatures of the builds that go stay, unless a pattern matches them (orphans: true
# in a later run deletes them).
- name: Delete old main builds by their tag names alone, as before attachments were followed
  ocireg.registry.registry_repo:
    repository: registry.example.com/team/app
    retention:
      match:
        - "main-.*"
      older_than: 30d
      attachments: ignore
  delegate_to: localhost

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
    - Referrers without a tag (RV(referrers)) that the task deleted are here too.
  returned: success
  type: list
  elements: str
  sample:
    - sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
tags:
  description:
    - Every tag of the repository, sorted by name, with what the task did to it (in check mode, would do) and why.
    - A tag that disappeared while the task read the repository is left out, as it is of RV(kept_tags).
  returned: success
  type: list
  elements: dict
  contains:
    tag:
      description: The tag.
      type: str
      sample: pr-101
    digest:
      description:
        - The digest the tag pointed at.
        - Null when the task did not read it, because no rule could delete the tag (see the notes on requests).
      type: str
      sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
    action:
      description: V(deleted) or V(kept).
      type: str
      choices: [deleted, kept]
      sample: deleted
    reason:
      description:
        - Why, as a code that stays the same from one release to the next.
        - For a kept tag, the rule that kept it. V(match) when it matches no pattern of O(retention.match); V(keep) when
          it matches O(retention.keep); V(keep_last) when its image is among the O(retention.keep_last) newest;
          V(older_than) when its image is not older than O(retention.older_than); V(unknown_age) when its image has
          no readable creation time, so O(retention.older_than) keeps it (the task warns); V(no_retention) with
          O(state=present) and no O(retention).
        - For a deleted tag, every rule that is set let it go (RV(tags[].detail) names each), and the code is the
          narrowest of them, the first that is set of V(older_than), V(keep_last), V(match) and V(keep). V(state=absent)
          with O(state=absent).
        - For an attachment tag (O(retention.attachments=follow)), V(attachment) when it stays with its image or goes
          with it (RV(tags[].detail) names the image and its tags), and V(orphan) when it is deleted because its image
          no longer exists (O(retention.orphans)). An attachment tag that O(retention.keep) protects has V(keep).
      type: str
      choices: [match, keep, keep_last, older_than, unknown_age, no_retention, state=absent, attachment, orphan]
      sample: older_than
    detail:
      description:
        - The same in words, naming the pattern, the count or the creation time, and for a deleted tag how it goes
          (see RV(tags[].removed_by)).
      type: str
      sample: >-
        matches the match pattern 'pr-.*'; its image was created 2024-01-01T00:00:00Z, longer ago than 30d
        (older_than); its image is deleted by digest
    removed_by:
      description:
        - How a deleted tag goes. V(digest) when its image is deleted by digest (in RV(deleted_digests)), which
          removes every tag on it, all of them deleted too. V(untag) when the tag is removed on its own and its image
          stays, because a kept tag shares it (RV(tags[].detail) names that tag) or a kept multi-platform index refers
          to it (RV(tags[].detail) names the index).
        - Null for a kept tag.
      type: str
      choices: [digest, untag]
      sample: digest
referrers:
  description:
    - The referrers without a tag of their own that the task found for the images it deletes (in check mode, would
      delete), in their fallback index or through the referrers API, sorted by subject, and what it did to them.
    - Empty when no image goes, and with O(retention.attachments=ignore).
  returned: success
  type: list
  elements: dict
  contains:
    digest:
      description: The referrer's manifest digest.
      type: str
      sample: sha256:0f4c2a7e1b9d3c5a8e6f2b4d7c9a1e3f5b8d0c2e4a6f8b1d3c5e7a9b2d4f6a8c
    subject:
      description: The digest of the image it refers to.
      type: str
      sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
    artifact_type:
      description: Its artifact type, from the index that lists it or its manifest; null when it has none.
      type: str
      sample: application/vnd.dev.sigstore.bundle.v0.3+json
    via:
      description: V(fallback_tag) when its subject's fallback index lists it, V(api) when the referrers API does.
      type: str
      choices: [fallback_tag, api]
      sample: fallback_tag
    tag:
      description: The fallback tag whose index lists it; null when found through the API.
      type: str
      sample: sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
    action:
      description:
        - V(deleted) (by digest, before its subject) or V(kept).
        - Kept when a kept index refers to it, or when its manifest cannot be read or does not name that subject.
      type: str
      choices: [deleted, kept]
      sample: deleted
    reason:
      description: V(attachment), V(orphan) or V(state=absent), as in RV(tags[].reason).
      type: str
      choices: [attachment, orphan, state=absent]
      sample: attachment
    detail:
      description: The same in words.
      type: str
      sample: >-
        the referrer listed in the fallback index sha256-6c3c...b3b of sha256:6c3c...b3b (tag pr-12), which goes: an
        attachment goes with its subject, before it; deleted by digest
"""

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import RepositoryRetention

MAX_CONCURRENCY = 64


def retention_task(module):
    """The task's options as a :class:`RepositoryRetention`; bad values raise, naming them, before any request."""
    params = module.params
    repository = parse_repository(params["repository"])
    concurrency = params["concurrency"]
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInputError(
            "Option concurrency must be a whole number from 1 to %d, got %r." % (MAX_CONCURRENCY, concurrency)
        )
    clients = registry_clients(module, repository, pool_size=max(16, concurrency))
    client = clients.for_reference(repository)
    return clients, RepositoryRetention(client, repository, params["state"], params["retention"], concurrency)


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
                "attachments": {"type": "str", "choices": ["follow", "ignore"], "default": "follow"},
                "orphans": {"type": "bool", "default": False},
            },
        },
        "concurrency": {"type": "int", "default": 8},
    }
    module = registry_module(argument_spec, supports_check_mode=True)
    with registry_errors(module, changed=False):
        clients, retention = retention_task(module)
    try:
        with registry_errors(module, changed=False):
            retention.make_plan()
            if module.check_mode:
                retention.check_deletes()
        for warning in retention.warnings:
            module.warn(warning)
        if retention.plan.changed and not module.check_mode:
            try:
                retention.apply()
            except RegistryError as err:
                module.fail_json(**retention.failure(err))
    finally:
        clients.close()
    module.exit_json(**retention.result())


if __name__ == "__main__":
    main()

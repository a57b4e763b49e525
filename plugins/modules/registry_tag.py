#!/usr/bin/python
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_tag
short_description: Make tags in a container registry point where the playbook says
version_added: 0.1.0
author:
  - ocireg.registry contributors (@ocireg)
description:
  - Points one or more tags of a repository at an image, or removes tags, on any registry that speaks the Docker
    Registry HTTP API v2 or the OCI distribution specification. No container engine is needed.
  - The image can come from the same repository (by tag or by digest), from another repository of the same registry
    (its blobs are mounted, not copied), or from another registry (it is copied first).
  - A tag that already points at the right image costs one C(HEAD) request, plus one for a source named by tag, and
    nothing is written.
  - Manifests are written exactly as they were read, so a tag gets the same digest as its source.
  - With O(referrers=true), the image's signatures, attestations, SBOMs and other attachments come along from another
    repository or registry too.
extends_documentation_fragment:
  - ocireg.registry.connection
options:
  repository:
    description:
      - The repository that holds the tags, as C([registry/]path), without a tag or a digest.
      - For example V(registry.example.com/team/app), or V(https://127.0.0.1:5000/team/app) to force HTTPS on a
        loopback host.
    type: str
    required: true
  tag:
    description:
      - One or more tag names. Each is 1 to 128 letters, digits, V(_), V(.) and V(-), and does not start with V(.)
        or V(-).
      - Names given twice count once.
      - Quote tags that look like numbers, V("1.10") rather than V(1.10), which YAML reads as the number 1.1.
    type: list
    elements: str
    required: true
    aliases:
      - tags
  state:
    description:
      - V(present) makes every tag point at O(source). Without O(source), the tags only have to exist, and the task
        fails naming those that do not.
      - V(absent) removes the named tags and nothing else. Other tags on the same image stay, and so does the image.
        A tag that does not exist is not an error.
      - Removing first asks the registry to delete the tag by name. Where the registry cannot (the CNCF distribution
        registry 2.x and many others), the tag is moved onto a small placeholder image of its own, which is then
        deleted by digest. A registry that refuses to delete a tag by name is not asked again for the other tags.
      - The registry must allow deletes (for distribution, C(storage.delete.enabled)). Before anything is removed, in
        check mode too, the task asks it with one C(DELETE) of a manifest that does not exist, which changes nothing.
        Where the registry answers that it does not delete, the task fails with C(changed=false), and no tag is moved
        and nothing is left behind.
      - A registry whose answer to that check says neither is tried. Should it then refuse to delete the placeholder,
        the tag is put back where it was and the task fails; the placeholder stays in the repository, untagged.
    type: str
    choices:
      - present
      - absent
    default: present
  source:
    description:
      - What the tags must point at, with O(state=present).
      - A reference with a tag or a digest, in this repository, another repository or another registry, for example
        V(registry.example.com/team/app:1.4.2), V(registry.example.com/team/app@sha256:...) or
        V(ghcr.io/org/app:1.4.2). Without tag or digest, the tag V(latest) is meant. With both, the digest wins.
      - A bare digest (V(sha256:...)) means an image in this O(repository).
      - From another repository of the same registry, the blobs are mounted; from another registry, they are
        copied (only those the repository lacks), then the manifest is written. Credentials for a second registry
        come from O(credentials) or the auth file.
      - On the same registry, a reference without V(http://) or V(https://) uses the scheme of O(repository).
      - A reference that names no registry is an image on Docker Hub, as for docker. V(1.1.0) is
        V(docker.io/library/1.1.0:latest), not a tag of O(repository); for that, write
        V(registry.example.com/team/app:1.1.0). When such a source cannot be read, the message says how it was read.
    type: str
  overwrite:
    description:
      - Whether a tag that exists and points at another image may be moved to O(source).
      - V(false) protects release tags. The task then fails, and changes nothing, when any of the tags already points
        elsewhere. Tags that do not exist yet are created, and tags already on O(source) are fine.
    type: bool
    default: true
  referrers:
    description:
      - Also carry the attachments of the image from O(source) when it is in another repository or registry. An
        attachment is what names the image as its subject (OCI 1.1 referrers, from the referrers API or the
        C(sha256-<hex>) fallback tag), cosign's C(sha256-<hex>.sig), C(.att) and C(.sbom) tags, and the
        attachments of those in turn. For an index, the attachments of every manifest in it come too.
      - Each is copied byte for byte after the image is complete, as M(ocireg.registry.registry_image) does with
        O(ocireg.registry.registry_image#module:referrers=true); see there for how a fallback index at the
        destination is kept.
      - When every tag is up to date already, the attachments are still checked (one C(HEAD) at O(repository) for
        each, plus the source's tag list and one referrers API probe), so that a signature added at the source later
        arrives on the next run.
      - Within one repository, nothing needs copying, as the tags point at the same digest, whose attachments are in the
        repository already. RV(referrers) is then empty.
      - Ignored with O(state=absent) and without O(source).
    type: bool
    default: false
  referrer_types:
    description:
      - Which attachments O(referrers=true) carries, by their C(artifactType) (for example
        V(application/vnd.dev.sigstore.bundle.v0.3+json) for cosign 3 signatures, V(application/spdx+json)), or
        V(cosign-signature), V(cosign-attestation) and V(cosign-sbom) for cosign's C(.sig), C(.att) and C(.sbom)
        tags.
      - By default, every attachment.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description:
      - Reads the tags and the source, and reports what a real run would change, without writing.
      - With O(state=absent), it also asks the registry whether it deletes (one C(DELETE) of a manifest that does not
        exist, which changes nothing), so that it fails where the real run would.
  diff_mode:
    support: full
    description: The tags before and after, each as tag -> digest (null when the tag does not exist).
seealso:
  - module: ocireg.registry.registry_image
  - module: ocireg.registry.registry_info
notes:
  - Tags are read one C(HEAD) request each. Registries such as Docker Hub do not count C(HEAD) requests against
    their pull limits.
"""

EXAMPLES = r"""
- name: Tag the image that is now 1.4.2 as stable and 1.4
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tag:
      - stable
      - "1.4"
    source: registry.example.com/team/app:1.4.2
  delegate_to: localhost

- name: Pin a tag to a digest of the same repository
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tag: canary
    source: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
  delegate_to: localhost

- name: Promote from staging to the production repository, never moving an existing release tag
  ocireg.registry.registry_tag:
    repository: registry.example.com/prod/app
    tag: "{{ release }}"
    source: "registry.example.com/staging/app@{{ staging_digest }}"
    overwrite: false
  delegate_to: localhost

- name: Copy a release from GHCR into the local mirror and tag it
  ocireg.registry.registry_tag:
    repository: mirror.example.com/org/app
    tag:
      - "1.4.2"
      - latest
    source: ghcr.io/org/app:1.4.2
    credentials:
      ghcr.io:
        token: "{{ ghcr_token }}"
      mirror.example.com:
        username: "{{ mirror_user }}"
        password: "{{ mirror_password }}"
  delegate_to: localhost

- name: Check that the release tags exist
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tag:
      - "1.4.2"
      - "1.4.1"
  delegate_to: localhost

- name: Promote a signed release to production, its cosign signatures and attestations with it
  ocireg.registry.registry_tag:
    repository: registry.example.com/prod/app
    tag: "{{ release }}"
    source: "registry.example.com/staging/app@{{ staging_digest }}"
    referrers: true
  delegate_to: localhost
  register: promoted

- name: Promote, carrying only cosign signatures (simple signing and sigstore bundles)
  ocireg.registry.registry_tag:
    repository: registry.example.com/prod/app
    tag: "{{ release }}"
    source: "registry.example.com/staging/app@{{ staging_digest }}"
    referrers: true
    referrer_types:
      - cosign-signature
      - application/vnd.dev.sigstore.bundle.v0.3+json
  delegate_to: localhost

- name: Remove a tag, keeping the image and its other tags
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tag: pr-1234
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
digest:
  description:
    - The digest the tags point at after the task.
    - Without O(source), the digest all the tags share, or null when they point at different images.
  returned: when O(state=present)
  type: str
  sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
tags:
  description: Each tag the task names, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    tag:
      description: The tag name.
      type: str
      returned: always
      sample: stable
    digest:
      description: The digest the tag points at after the task; null when it does not exist afterwards.
      type: str
      returned: always
      sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
    previous_digest:
      description: The digest the tag pointed at before the task; null when it did not exist.
      type: str
      returned: always
      sample: sha256:0d5dc8b0ac9b5e6a1bc4c3a5a4dc0b5f0b3b0a2d9b7e1f4f0a1e2d3c4b5a6978
    changed:
      description: Whether the task moved, created or removed this tag (in check mode, whether it would).
      type: bool
      returned: always
      sample: true
referrers:
  description:
    - With O(referrers=true), each attachment carried from O(source), or found there already, as in
      M(ocireg.registry.registry_image), whose RV(ocireg.registry.registry_image#module:referrers) it is.
    - Empty when O(source) is in O(repository) itself.
  returned: when O(referrers=true) and O(state=present)
  type: list
  elements: dict
  contains:
    subject:
      description: The digest the attachment names (the image, one of its children, or another attachment).
      type: str
      sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
    digest:
      description: The attachment's manifest digest, the same on both sides.
      type: str
      sample: sha256:0d5dc8b0ac9b5e6a1bc4c3a5a4dc0b5f0b3b0a2d9b7e1f4f0a1e2d3c4b5a6978
    artifact_type:
      description: Its C(artifactType) (else its config's media type), or the cosign kind of a cosign tag.
      type: str
      sample: cosign-signature
    via:
      description: How it was found at the source, V(api), V(fallback_tag) or V(cosign_tag).
      type: str
      sample: cosign_tag
    tag:
      description: The cosign tag it is, or the fallback tag that listed it; null from the referrers API.
      type: str
      sample: sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b.sig
    action:
      description:
        - What happened, as in M(ocireg.registry.registry_image) - V(copied), V(present), V(indexed), V(replaced),
          V(kept), V(missing), and in check mode V(would copy), V(would index), V(would replace).
      type: str
      sample: copied
"""

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import (
    TagUpdate,
    validate_tag_list,
)


def tag_update(module):
    """The task's options as a :class:`TagUpdate`; bad values raise, naming them, before any request."""
    params = module.params
    repository = parse_repository(params["repository"])
    return TagUpdate(
        registry_clients(module, repository),
        repository,
        validate_tag_list(params["tag"]),
        state=params["state"],
        source=params["source"],
        overwrite=params["overwrite"],
        dry_run=module.check_mode,
        referrers=params["referrers"],
        referrer_types=params["referrer_types"],
    )


def main():
    argument_spec = {
        "repository": {"type": "str", "required": True},
        "tag": {"type": "list", "elements": "str", "required": True, "aliases": ["tags"]},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "source": {"type": "str"},
        "overwrite": {"type": "bool", "default": True},
        "referrers": {"type": "bool", "default": False},
        "referrer_types": {"type": "list", "elements": "str"},
    }
    module = registry_module(argument_spec, supports_check_mode=True)
    with registry_errors(module, changed=False):
        update = tag_update(module)
        pending = update.plan()
    if (pending or update.carry_pending) and not module.check_mode:
        # A failure from here on reports changed when something may have changed: a write began, or a tag went.
        with registry_errors(module, changed=lambda: update.changed_so_far):
            update.apply(pending)
    for warning in update.warnings:
        module.warn(warning)
    module.exit_json(**update.result())


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_sync
short_description: Mirror many repositories and tags between registries in one task
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Keeps destination repositories in step with their sources, the way C(skopeo sync) and C(regsync) do, but
    declaratively, in one task, with check mode and diff.
  - Each entry of O(images) names a source (a repository, a tag, a digest, or a registry path prefix whose catalog is
    walked) and a destination. Filters (O(images[].match), O(images[].exclude), O(images[].semver),
    O(images[].latest)) choose the source's tags.
  - Every copy runs through the same engine as M(ocireg.registry.registry_image) - blobs the destination has are
    skipped, blobs of the same registry are mounted, the rest streamed and verified, the tag written last - and the
    whole task shares one connection pool and token cache per registry.
  - What a re-run costs. Each repository's tag list is read once per side for the whole task. A tag present on both
    sides then costs one C(HEAD) on each side; with O(existing=keep), or when it matches O(immutable), it costs
    nothing more at all. A tag the destination lacks is copied.
  - With O(prune=true), destination tags that the selected source set no longer has are removed (only those tags;
    other tags on the same image stay), with safety limits.
  - With O(on_error=continue), the default, a failing image does not stop the others; the task fails at the end,
    listing what failed in RV(failures).
extends_documentation_fragment:
  - ocireg.registry.connection
options:
  images:
    description:
      - What to mirror, and where.
      - Every entry may also set O(platforms), O(referrers), O(referrer_types), O(existing), O(immutable), O(prune),
        O(prune_limit) and O(jobs) for itself; unset, the task's value applies. O(concurrency), O(on_error),
        O(max_copies) and O(time_budget) are the task's only.
      - Every value is checked before the first request; a bad one fails the task, naming it, with nothing changed.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description:
          - A repository C([registry/]path), whose tags the filters choose from (its tag list is read).
          - A tag C(repository:tag), or a digest C(repository@sha256:...), for one image. A digest is pushed to
            O(images[].dest) by digest only, untagged.
          - With O(images[].repositories), a registry and an optional path prefix C(registry[/prefix]), whose
            catalog (C(/v2/_catalog)) is walked. Many hosted registries do not offer the catalog; the entry then
            fails, saying so.
        type: str
        required: true
      dest:
        description:
          - The destination repository, C([registry/]path); tags keep their names.
          - With O(images[].repositories), a registry and an optional path prefix C(registry[/prefix]); each source
            repository C(prefix/PATH) goes to C(dest-prefix/PATH).
        type: str
        required: true
      repositories:
        description:
          - Makes O(images[].src) a registry path prefix, and keeps the repositories under it whose path below the
            prefix matches one of these shell patterns (C(fnmatch), case-sensitive; V(*) matches across C(/)).
        type: list
        elements: str
      match:
        description:
          - Regular expressions; only tags that one of them matches as a whole are selected (V(v1) matches the tag
            C(v1) only; write V(v1.*) for a prefix). Default, every tag.
        type: list
        elements: str
      exclude:
        description:
          - Regular expressions; tags that one of them matches as a whole are not selected.
        type: list
        elements: str
      semver:
        description:
          - A semantic version range; only tags that are versions inside it are selected.
          - A tag is a version when it is C(MAJOR.MINOR.PATCH) with an optional C(-prerelease) and C(+build) as
            semver 2.0 writes them, after an optional C(v) or C(V). V(1.2) and V(latest) are not versions and never
            match.
          - The range is comparators separated by spaces, all of which must hold, such as V(>=1.2 <2), V(^1.2),
            V(~1.2.3), V(1.x), V(1.2.*), V(=1.2.3) or V(*); several are joined by C(||). Partial versions mean what
            they mean in npm (V(<2) is C(<2.0.0), V(>1.2) is C(>=1.3.0), V(1.2) is C(1.2.x)); a C(v) is accepted.
          - Pre-releases are left out, unless the range names a pre-release of the same C(MAJOR.MINOR.PATCH), as in
            npm (V(>=2.0.0-rc.1) admits C(2.0.0-rc.2), not C(2.1.0-rc.1)).
        type: str
      latest:
        description:
          - Keep only the N newest of the selected tags.
          - Newest by version when O(images[].semver) is given or every selected tag is a version; otherwise by the
            images' C(created) time, which costs a manifest and a config read per selected tag (tags without a
            readable time count as the oldest).
        type: int
      platforms:
        description: As O(platforms), for this entry.
        type: raw
      referrers:
        description: As O(referrers), for this entry.
        type: bool
      referrer_types:
        description: As O(referrer_types), for this entry.
        type: list
        elements: str
      existing:
        description: As O(existing), for this entry.
        type: str
        choices: [update, keep]
      immutable:
        description: As O(immutable), for this entry.
        type: list
        elements: str
      prune:
        description: As O(prune), for this entry.
        type: bool
      prune_limit:
        description: As O(prune_limit), for this entry.
        type: int
      jobs:
        description: As O(jobs), for this entry.
        type: int
  platforms:
    description:
      - Which platforms of multi-platform images to copy, as in M(ocireg.registry.registry_image) - V(all), or a list
        of C(os/architecture[/variant]). A subset writes a new index, whose digest differs from the source's; such
        a tag is then always copied again, as its digests never agree.
    type: raw
    default: all
  referrers:
    description:
      - Also carry each copied image's attachments (signatures, attestations, SBOMs), as in
        M(ocireg.registry.registry_image). Attachment tags (C(sha256-<hex>), C(.sig), C(.att), C(.sbom)) are then
        not selected as tags of their own, as they travel with their image.
      - Attachments are carried when an image is copied; an up-to-date tag does not look for new ones.
    type: bool
    default: false
  referrer_types:
    description:
      - Which attachments O(referrers=true) carries, as in M(ocireg.registry.registry_image). Default, all.
    type: list
    elements: str
  existing:
    description:
      - V(update) compares every tag both sides list, with a C(HEAD) on each side, and copies the ones that differ.
      - V(keep) leaves every tag the destination lists alone, without a request.
    type: str
    choices: [update, keep]
    default: update
  immutable:
    description:
      - Regular expressions (whole tag names) of tags that never move, such as release tags. Such a tag that the
        destination lists is done, without a request.
    type: list
    elements: str
  prune:
    description:
      - Delete the destination tags that the selected source tags no longer have, in each destination repository of
        an entry whose O(images[].src) is a repository or a prefix. Tags of every entry mapping to the same
        destination repository are kept. Attachment tags (C(sha256-<hex>), C(.sig), C(.att), C(.sbom)) are never
        pruned on their own.
      - Refuses, failing the task before anything is written, when a source lists no tags, or when more than
        O(prune_limit) tags of one repository would go.
      - Only the tag goes (the safe untag of M(ocireg.registry.registry_tag)); other tags on the same image stay.
      - Not done after a failure with O(on_error=stop), nor in a repository one of whose entries failed before its
        tags were known.
    type: bool
    default: false
  prune_limit:
    description:
      - The most tags O(prune) deletes in one destination repository; more, and the task refuses.
    type: int
    default: 100
  concurrency:
    description:
      - Images in flight at once (planning reads, copies), from 1 to 64.
    type: int
    default: 8
  jobs:
    description:
      - Blobs in flight at once within one image (and C(HEAD)s within one repository), from 1 to 64.
    type: int
    default: 8
  on_error:
    description:
      - V(continue) mirrors everything else when an image or entry fails; the task fails at the end, listing what
        failed.
      - V(stop) starts nothing new after the first failure; what had not started is returned as V(deferred), and
        the task fails.
    type: str
    choices: [continue, stop]
    default: continue
  max_copies:
    description:
      - Start no more than this many copies; the rest are returned as V(deferred), and the next run continues.
    type: int
  time_budget:
    description:
      - Start no copy once this long has passed since the task started (C(30s), C(10m), C(1h)); copies already
        running finish. The rest are returned as V(deferred), and the next run continues.
    type: str
notes:
  - O(username) and O(password) apply to the registry of the first entry's destination. For tasks that touch several
    registries needing credentials, use O(credentials) or an auth file.
  - Local image stores (C(oci:DIR)) and Docker Hub's C(RateLimit) headers are not handled by this module yet.
  - What failed is listed in RV(failures). C(failed) is Ansible's own boolean (ansible-core makes any C(failed) value
    one), so the list cannot be returned under that name.
attributes:
  check_mode:
    support: full
    description: Makes every read a real run makes (tag lists, C(HEAD)s, the source manifests and blob C(HEAD)s of
      each image to copy) and reports each tag's action, writing nothing.
  diff_mode:
    support: full
    description: For each destination repository, the tags the task copies or prunes, before and after (tag ->
      digest, null for none).
seealso:
  - module: ocireg.registry.registry_image
  - module: ocireg.registry.registry_tag
  - name: skopeo sync
    description: The tool this module does the job of.
    link: https://github.com/containers/skopeo/blob/main/docs/skopeo-sync.1.md
"""

EXAMPLES = r"""
- name: Mirror two upstream repositories, releases only
  ocireg.registry.registry_sync:
    images:
      - src: docker.io/library/alpine
        dest: registry.example.com/mirror/alpine
        semver: ">=3.19.0"
      - src: ghcr.io/example/tool
        dest: registry.example.com/mirror/tool
        match:
          - 'v[0-9.]+'
        latest: 5
    immutable:
      - 'v?[0-9]+\.[0-9]+\.[0-9]+'
  delegate_to: localhost

- name: Copy a whole team's repositories to the production registry, dropping what the source dropped
  ocireg.registry.registry_sync:
    images:
      - src: registry.example.com/team
        repositories:
          - '*'
        dest: prod.example.com/team
        exclude:
          - '.*-dev'
    prune: true
    prune_limit: 20
    credentials:
      prod.example.com:
        username: "{{ prod_user }}"
        password: "{{ prod_password }}"
  delegate_to: localhost
  register: mirrored

- name: Show what was copied
  ansible.builtin.debug:
    msg: "{{ mirrored.images | selectattr('action', 'equalto', 'copied') | map(attribute='tag') | list }}"

- name: Nightly re-sync in small steps, at most 50 copies or 10 minutes per run
  ocireg.registry.registry_sync:
    images:
      - src: registry.example.com/builds/app
        dest: mirror.example.com/app
        existing: keep
    max_copies: 50
    time_budget: 10m
  delegate_to: localhost

- name: Promote one pinned image, with its signatures
  ocireg.registry.registry_sync:
    images:
      - src: "registry.example.com/staging/app@{{ build_digest }}"
        dest: registry.example.com/prod/app
    referrers: true
  delegate_to: localhost
"""

RETURN = r"""
summary:
  description:
    - Counts of what the task did (in check mode, would do).
  returned: always
  type: dict
  contains:
    selected:
      description: Images the entries selected (tags, and digests), whatever happened to them.
      type: int
      sample: 120
    copied:
      description: Images copied (the tag moved, or was new).
      type: int
      sample: 3
    unchanged:
      description: Tags whose digests agreed on both sides.
      type: int
      sample: 110
    skipped:
      description: Tags present at the destination and left alone without a look (O(existing=keep), O(immutable)).
      type: int
      sample: 7
    pruned:
      description: Destination tags deleted by O(prune).
      type: int
      sample: 0
    failed:
      description: Entries in RV(failures).
      type: int
      sample: 0
    deferred:
      description: Copies not started (O(max_copies), O(time_budget), O(on_error=stop)); the next run does them.
      type: int
      sample: 0
    blobs:
      description:
        - Blobs written at the destinations, streamed or mounted, each once per destination repository (attachments'
          blobs not counted).
        - In check mode, each image's missing blobs as if it were copied alone, so a blob several images share
          counts once for each of them.
      type: int
      sample: 9
    bytes:
      description: Bytes of the streamed blobs (in check mode, counted as RV(summary.blobs) is).
      type: int
      sample: 31457280
    requests:
      description:
        - HTTP requests the task sent to the registries, authentication challenges and retries included (requests
          to a token service are not counted).
      type: int
      sample: 250
images:
  description:
    - One item per selected image and per pruned tag, in the order of O(images).
  returned: always
  type: list
  elements: dict
  contains:
    src:
      description: The source repository (the whole reference, for a digest or tag O(images[].src)).
      type: str
      sample: registry.example.com/team/app
    dest:
      description: The destination repository.
      type: str
      sample: mirror.example.com/team/app
    tag:
      description: The tag; null for an image given by digest.
      type: str
      sample: 1.4.2
    action:
      description:
        - V(copied), V(unchanged), V(skipped), V(pruned), V(failed) or V(deferred). In check mode, what a real run
          would do.
      type: str
      sample: copied
    digest:
      description:
        - The digest the tag points at after the task (would point at, in check mode); null for a pruned tag, and for
          a deferred, skipped or failed tag the destination lacked, as no request asked the source.
      type: str
      sample: sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1
    previous_digest:
      description: The digest the tag pointed at in the destination before, when a request asked; null otherwise.
      type: str
      sample: null
failures:
  description:
    - What could not be mirrored, machine-readable. Not empty means the task failed (with O(on_error=continue), after
      everything else was mirrored).
  returned: always
  type: list
  elements: dict
  contains:
    src:
      description: The source (reference, repository or prefix).
      type: str
      sample: registry.example.com/team/app:1.4.2
    dest:
      description: The destination.
      type: str
      sample: mirror.example.com/team/app:1.4.2
    error:
      description: Why, in words.
      type: str
      sample: Manifest team/app:1.4.2 not found
"""

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync import (
    SyncTask,
    parse_budget,
    parse_entries,
)

ENTRY_SUBOPTIONS = {
    "src": {"type": "str", "required": True},
    "dest": {"type": "str", "required": True},
    "repositories": {"type": "list", "elements": "str"},
    "match": {"type": "list", "elements": "str"},
    "exclude": {"type": "list", "elements": "str"},
    "semver": {"type": "str"},
    "latest": {"type": "int"},
    "platforms": {"type": "raw"},
    "referrers": {"type": "bool"},
    "referrer_types": {"type": "list", "elements": "str"},
    "existing": {"type": "str", "choices": ["update", "keep"]},
    "immutable": {"type": "list", "elements": "str"},
    "prune": {"type": "bool"},
    "prune_limit": {"type": "int"},
    "jobs": {"type": "int"},
}


def sync_task(module):
    """The task, every option checked before any request."""
    params = module.params
    entries = parse_entries(params["images"], params)
    budget = parse_budget(params["max_copies"], params["time_budget"])
    first = entries[0]
    primary = first.dest if first.dest is not None else first.dest_prefix[1]
    pool_size = max(16, min(128, params["concurrency"] * 2 + 2))
    clients = registry_clients(module, primary, pool_size=pool_size)
    task = SyncTask(
        clients,
        entries,
        concurrency=params["concurrency"],
        on_error=params["on_error"],
        budget=budget,
        dry_run=module.check_mode,
    )
    return clients, task


def main():
    argument_spec = {
        "images": {"type": "list", "elements": "dict", "required": True, "options": ENTRY_SUBOPTIONS},
        "platforms": {"type": "raw", "default": "all"},
        "referrers": {"type": "bool", "default": False},
        "referrer_types": {"type": "list", "elements": "str"},
        "existing": {"type": "str", "default": "update", "choices": ["update", "keep"]},
        "immutable": {"type": "list", "elements": "str"},
        "prune": {"type": "bool", "default": False},
        "prune_limit": {"type": "int", "default": 100},
        "concurrency": {"type": "int", "default": 8},
        "jobs": {"type": "int", "default": 8},
        "on_error": {"type": "str", "default": "continue", "choices": ["continue", "stop"]},
        "max_copies": {"type": "int"},
        "time_budget": {"type": "str"},
    }
    module = registry_module(argument_spec, supports_check_mode=True)
    with registry_errors(module, changed=False):
        clients, task = sync_task(module)
    try:
        with registry_errors(module, changed=False):
            result = task.run()
    finally:
        clients.close()
    for warning in task.warnings:
        module.warn(warning)
    if result["failures"]:
        module.fail_json(msg=task.failure_message(), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

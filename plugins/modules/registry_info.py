#!/usr/bin/python
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_info
short_description: Gather facts about a container registry, a repository or an image
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Lists the repositories of a registry, the tags of a repository, or describes one image in detail, over the registry
    HTTP API (Docker Registry v2, OCI distribution-spec), without a container engine.
  - With O(registry) or O(repository), O(details=true) also returns the image details of every tag, fetched
    O(concurrency) at a time.
  - With O(image), O(paths) lists directories or reads files inside the image's filesystem, as a container started from
    the image would see it.
  - A repository, tag or digest that does not exist is not an error; the result says RV(exists=false), and RV(missing)
    says which of them is missing.
  - Requests are kept to what the answer needs. Each tag costs one manifest C(GET) (and one more for the platform's
    manifest when the tag is a multi-platform index); each distinct image config is read once per task however many
    tags share it.
extends_documentation_fragment:
  - ocireg.registry.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is no difference to show.
options:
  registry:
    description:
      - A registry host, V(host[:port]), optionally with V(http://) or V(https://) in front, whose repositories to
        list from its catalog (C(/v2/_catalog), every page).
      - The catalog is an extension of the CNCF distribution registry, Harbor, Zot and others. Many hosted registries
        (Docker Hub, GHCR, ECR, Artifact Registry, Quay) refuse it; the task then fails and says so. Use O(repository)
        with those.
      - Exactly one of O(registry), O(repository) and O(image) is required.
    type: str
  repository:
    description:
      - A repository, V([registry/]path) without tag or digest, whose tags to list (every page).
      - Exactly one of O(registry), O(repository) and O(image) is required.
    type: str
  image:
    description:
      - One image to describe, V([registry/]path[:tag][@digest]). Without tag or digest the tag is V(latest). With a
        digest, the digest is fetched and the tag is only reported.
      - Exactly one of O(registry), O(repository) and O(image) is required.
    type: str
  repositories:
    description:
      - With O(registry), keep only the repositories whose name matches one of these shell-style patterns (Python
        C(fnmatch), case-sensitive; V(*) also matches V(/)), for example V(team/*).
    type: list
    elements: str
  tags:
    description:
      - With O(registry) or O(repository), keep only the tags that match one of these shell-style patterns, for
        example V(v1.*) or V(release-[0-9]*).
      - With O(registry), the tags of each repository are listed only when O(tags) or O(details) is set, because that
        costs a request per repository. Use V(['*']) to list every tag.
    type: list
    elements: str
  details:
    description:
      - With O(registry) or O(repository), return the image details of every (matching) tag instead of tag names.
      - O(image) always returns the details of its image.
    type: bool
    default: false
  paths:
    description:
      - With O(image), paths inside the image's filesystem to look at. Each one gives a directory listing or a file
        with its content in RV(files).
      - The filesystem is the image's layers applied in order, with whiteouts and opaque directories honoured, and
        symbolic links inside the image followed. Every layer is downloaded (streamed, never written to disk), so
        this is slow for big images.
      - For a multi-platform index, the layers are those of O(platform).
      - Layers may be gzip, zstd or uncompressed tar archives. zstd needs the Python library C(zstandard) on the host
        that runs the task (or Python 3.14 or newer).
    type: list
    elements: str
  max_file_size:
    description:
      - With O(paths), the largest file, in bytes, whose content is returned. Bigger files are described (size and
        mode) without content, and RV(files) marks them with C(content_omitted=true).
      - V(0) returns no content at all.
    type: int
    default: 1048576
  platform:
    description:
      - The platform, V(os/architecture[/variant]), to describe when an image is a multi-platform index (manifest
        list), for example V(linux/arm64). Also the platform whose filesystem O(paths) reads. Without it, V(linux/amd64)
        is picked from an index, and a single-platform image is described whatever its platform.
      - The index itself is still described (digest, media type, every platform); the platform only chooses where
        C(created), C(labels), C(architecture), C(os), C(variant), C(layers) and C(history) come from.
      - An image that does not have this platform still exists (RV(exists=true)), but RV(missing=platform) and the task
        warns, naming the platforms it has. A multi-platform index without it is described with empty platform details
        (RV(image.platform) is null). A single-platform image of another platform (only checked when O(platform) is
        set) is described as it is, so RV(image.architecture) and RV(image.os) name its real platform. With O(paths),
        the task fails in both cases rather than read the files of another platform.
      - With O(registry) or O(repository), O(platform) only chooses the platform of each index; nothing is checked or
        warned about.
    type: str
  concurrency:
    description:
      - How many requests to have in flight at once while listing tags and fetching details, from 1 to 64.
    type: int
    default: 8
notes:
  - The module never changes anything and always returns C(changed=false).
seealso:
  - module: ocireg.registry.registry_tag
  - module: ocireg.registry.registry_repo
  - plugin: ocireg.registry.registry_digest
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: List the repositories of a registry
  ocireg.registry.registry_info:
    registry: registry.example.com
  delegate_to: localhost
  register: catalog

- name: Show every tag of the team's repositories, with image details
  ocireg.registry.registry_info:
    registry: registry.example.com
    repositories:
      - team/*
    details: true
    concurrency: 16
  delegate_to: localhost
  register: audit

- name: List the release tags of one repository
  ocireg.registry.registry_info:
    repository: ghcr.io/org/app
    tags:
      - v*
  delegate_to: localhost
  register: app_tags

- name: Describe one image for the arm64 platform
  ocireg.registry.registry_info:
    image: ghcr.io/org/app:1.4.2
    platform: linux/arm64
  delegate_to: localhost
  register: app

- name: Fail early when the image to deploy is not there, for arm64
  ansible.builtin.assert:
    that: app.missing is none
    fail_msg: "ghcr.io/org/app:1.4.2 is not there for linux/arm64: its {{ app.missing }} is missing"

- name: Read a file and list a directory inside an image
  ocireg.registry.registry_info:
    image: registry.example.com/base/debian:12
    paths:
      - /etc/os-release
      - /etc/apt/sources.list.d
  delegate_to: localhost
  register: base

- name: Show the OS release of the image
  ansible.builtin.debug:
    msg: "{{ base.files['/etc/os-release'].content }}"
"""

RETURN = r"""
registry:
  description: The registry that answered.
  returned: success
  type: dict
  contains:
    url:
      description: The base URL of the registry API.
      type: str
      sample: https://registry.example.com
    api_version:
      description: The C(Docker-Distribution-API-Version) the registry announced.
      type: str
      sample: registry/2.0
exists:
  description:
    - Whether the repository (O(repository)) or the image (O(image)) exists. Always V(true) with O(registry).
    - An image that is there, but not for O(platform), exists; RV(missing) then says V(platform).
  returned: success
  type: bool
  sample: true
missing:
  description:
    - What of the request the registry does not have, or null when it has everything. Always null with O(registry).
    - V(repository) when the repository does not exist (with O(repository) or O(image)).
    - V(tag) or V(digest) when the repository exists but the image's tag or digest does not (with O(image); V(digest)
      when the reference has one). A registry that refuses to list the repository's tags (to tell the two apart) gets
      V(tag) or V(digest) too.
    - V(platform) when the image exists (RV(exists=true)) but not for O(platform) (with O(image); see O(platform)).
    - Telling a missing repository from a missing tag costs one tag list request, made only when the image is not
      there.
  returned: success
  type: str
  choices: [repository, tag, digest, platform]
  sample: tag
repositories:
  description:
    - With O(registry), the repositories that match O(repositories), sorted by name.
  returned: success and O(registry) is set
  type: list
  elements: dict
  contains:
    name:
      description: The repository name, without the registry.
      type: str
      sample: team/app
    tags:
      description:
        - The tags that match O(tags), sorted, or with O(details=true) their image details (see RV(image)).
        - Only when O(tags) or O(details) is set.
      type: list
      elements: raw
      sample: [v1.0.0, v1.1.0]
tags:
  description:
    - With O(repository), its tags that match O(tags), sorted (empty when the repository does not exist). Registries
      list tags in no particular order; sorting keeps reports stable from one run to the next.
    - With O(details=true), the image details of each tag instead (see RV(image)). A tag that cannot be described
      (for example a deprecated schema 1 manifest) has C(name), C(tag) and an C(error) message, and the task warns.
  returned: success and O(repository) is set
  type: list
  elements: raw
  sample: [latest, "1.0"]
image:
  description:
    - With O(image), the details of the image; null when it does not exist.
    - The same details describe each tag with O(details=true).
  returned: success and O(image) is set
  type: dict
  contains:
    name:
      description:
        - The repository with its registry, V(registry/path). With RV(image.digest) it makes a pinned reference.
      type: str
      sample: registry.example.com/team/app
    tag:
      description: The tag, or null for an image given only by digest.
      type: str
      sample: "1.0"
    digest:
      description: The digest of the manifest the tag points at (the index, for a multi-platform image).
      type: str
      sample: sha256:0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f
    media_type:
      description: The media type of that manifest.
      type: str
      sample: application/vnd.oci.image.manifest.v1+json
    size:
      description:
        - Bytes a pull of the image transfers, as the manifests declare them. The manifest, the config and the layers;
          for an index also the index itself, with the manifest, config and layers of the selected platform.
      type: int
      sample: 31457280
    created:
      description: When the image was built (the config's C(created)), as written there; null when not recorded.
      type: str
      sample: "2024-01-01T00:00:00Z"
    labels:
      description: The image's labels.
      type: dict
      sample: {org.opencontainers.image.source: https://github.com/org/app}
    architecture:
      description: The CPU architecture of the image, or of the selected platform of an index.
      type: str
      sample: amd64
    os:
      description: The operating system of the image, or of the selected platform of an index.
      type: str
      sample: linux
    variant:
      description: The CPU variant, when there is one (V(v8) for some arm64 images).
      type: str
      sample: v8
    layers:
      description: The layers, bottom first (of the selected platform, for an index).
      type: list
      elements: dict
      contains:
        digest:
          description: The layer's digest.
          type: str
        size:
          description: The layer's size in bytes, compressed.
          type: int
        media_type:
          description: The layer's media type.
          type: str
    history:
      description:
        - The build history from the image config, as written there (C(created), C(created_by), C(empty_layer)).
      type: list
      elements: dict
    platforms:
      description: For a multi-platform index, every platform it holds; empty for a single image.
      type: list
      elements: dict
      contains:
        os:
          description: Operating system.
          type: str
        architecture:
          description: CPU architecture.
          type: str
        variant:
          description: CPU variant, or null.
          type: str
        digest:
          description: The digest of the platform's manifest.
          type: str
        size:
          description: The size of the platform's manifest in bytes.
          type: int
    platform:
      description:
        - For an index, the entry of RV(image.platforms) that matched O(platform); the platform-specific details come
          from it. Null when the index has no such platform (the task then warns, and RV(missing=platform)), and for a
          single image.
      type: dict
files:
  description:
    - With O(paths), what each path is, keyed by the path as given.
    - A directory is C({exists, path, type=dir, mode, entries}); each entry is C({name, type, mode, size}), plus
      C(target) for a symbolic link.
    - A file is C({exists, path, type=file, mode, size}) with C(content) (UTF-8 text) or C(content_base64) (anything
      else); or C(content_omitted=true) when it is bigger than O(max_file_size).
    - Symbolic links are followed inside the image, and C(path) is where the path led. A link that leads nowhere is
      C({exists, path, type=symlink, target}). A path that is not there is C({exists=false, path}).
    - C(type) is one of V(dir), V(file), V(symlink), V(hardlink) (a hard link to a file missing from the image),
      V(char), V(block), V(fifo). C(mode) is the octal permission string, for example V('0644').
  returned: success and O(paths) is set
  type: dict
  sample:
    /etc/os-release:
      exists: true
      path: /usr/lib/os-release
      type: file
      mode: "0644"
      size: 267
      content: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n..."
"""

from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.inventory import TARGETS, Inventory, validate_options

ARGUMENT_SPEC: dict[str, Any] = {
    "registry": {"type": "str"},
    "repository": {"type": "str"},
    "image": {"type": "str"},
    "repositories": {"type": "list", "elements": "str"},
    "tags": {"type": "list", "elements": "str"},
    "details": {"type": "bool", "default": False},
    "paths": {"type": "list", "elements": "str"},
    "max_file_size": {"type": "int", "default": 1048576},
    "platform": {"type": "str"},
    "concurrency": {"type": "int", "default": 8},
}


def main() -> None:
    module = registry_module(
        ARGUMENT_SPEC,
        mutually_exclusive=[TARGETS],
        required_one_of=[TARGETS],
        supports_check_mode=True,
    )
    problems = validate_options(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems), changed=False)
    inventory = Inventory(
        module.params, lambda primary, pool_size: registry_clients(module, primary, pool_size), module.warn
    )
    with registry_errors(module, changed=False):
        result = inventory.run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

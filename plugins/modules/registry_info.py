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
  - With O(referrers=true), the details also list each image's attachments (signatures, attestations, SBOMs). With
    O(verify_key), the cosign signatures of O(image) are verified with a public key and reported as facts.
requirements:
  - cryptography (Python library, on the host that runs the task; only for O(verify_key); ansible-core itself
    requires it, so it is usually there)
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
  referrers:
    description:
      - Add each image's attachments to its details, in RV(image.referrers). With O(image), or with O(registry) or
        O(repository) and O(details=true).
      - An attachment is what names the image's digest (the index's, for a multi-platform image) as its subject,
        found where the specs and cosign put it. The OCI 1.1 referrers API (C(GET /v2/<name>/referrers/<digest>),
        every page) where the registry serves it; otherwise the fallback tag C(sha256-<hex>), an index of the
        referrers. Then cosign's tags C(sha256-<hex>.sig), C(.att) and C(.sbom). Attachments of attachments (a
        signature of an SBOM) are listed too, each with its RV(image.referrers[].subject), each digest looked at once.
      - "What it costs, on top of the details: the repository's tag list, read once per repository (a listing reads
        it anyway, so none more there). It shows which fallback and cosign tags exist, so a missing one costs
        nothing. The referrers API is asked once per digest. A registry that does not serve it (a 404, as
        distribution 2.8 and 3.x answer) is asked only once per task. A fallback index that exists costs one C(GET),
        a cosign tag that exists one C(HEAD). A referrer's own manifest is read (one C(GET)) only when its entry in a
        fallback index lacks its annotations or artifact type, as older writers left them out."
    type: bool
    default: false
  verify_key:
    description:
      - A public key to verify the cosign signatures of O(image) with, as its PEM text (the content of C(cosign.pub),
        C(-----BEGIN PUBLIC KEY-----)) or the path of a file that holds it on the host that runs the task (V(~) is
        expanded). ECDSA P-256 or P-384, RSA (2048 bits or more) or Ed25519.
      - Adds RV(image.signatures). Every signature of the image's digest is checked, with one verdict and its reason
        for each. These are cosign 2's simple-signing signatures (each layer of the C(sha256-<hex>.sig) image; the
        signature must cover the exact payload bytes, and the payload must name the image's digest). There are also
        cosign 3's sigstore bundle referrers (a DSSE envelope over an in-toto statement whose subject is the digest;
        the signature covers the DSSE pre-authentication encoding). Attestations are not signatures and are not
        checked.
      - A signature that does not verify is a fact, not an error. The task does not fail; check
        RV(image.signatures[].verified) yourself, for example that at least one is true. A key that cannot be used
        (not PEM, a private key, a certificate, a weak RSA key, an unknown file) fails the task before any request,
        saying what is wrong without repeating the key.
      - Only the signature is checked with this key. The transparency log (Rekor entries, signed timestamps) and
        certificates (keyless signing) are not checked, so a signature made keyless is reported as not verified.
      - Costs, per signature image or bundle referrer, one manifest C(GET) and one blob C(GET) per signature it holds.
      - Needs the Python library C(cryptography); it is imported only when O(verify_key) is set.
      - Only with O(image).
    type: str
notes:
  - The module never changes anything and always returns C(changed=false).
  - On the CNCF distribution registry 2.8, C(registry garbage-collect --delete-untagged) deletes referrers that only a
    fallback index names; the task then warns that a referrer listed there cannot be read.
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

- name: List the signatures, attestations and SBOMs attached to an image
  ocireg.registry.registry_info:
    image: registry.example.com/team/app:1.4.2
    referrers: true
  delegate_to: localhost
  register: attached

- name: Show what is attached, and how it was found
  ansible.builtin.debug:
    msg: "{{ attached.image.referrers | map(attribute='artifact_type') | list }}"

- name: Verify the image's cosign signatures with the team's public key
  ocireg.registry.registry_info:
    image: registry.example.com/team/app:1.4.2
    verify_key: "{{ lookup('ansible.builtin.file', 'cosign.pub') }}"
  delegate_to: localhost
  register: signed

- name: Refuse to go on unless a signature of that digest verifies
  ansible.builtin.assert:
    that: signed.image.signatures | selectattr('verified') | list | length > 0
    fail_msg: "{{ signed.image.name }}@{{ signed.image.digest }} has no signature that verifies with cosign.pub"

- name: The same, with the key in a file on the host that runs the task
  ocireg.registry.registry_info:
    image: registry.example.com/team/app@sha256:0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f
    verify_key: /etc/cosign/cosign.pub
  delegate_to: localhost
  register: pinned

- name: Every tag of a repository, with what is attached to each
  ocireg.registry.registry_info:
    repository: registry.example.com/team/app
    details: true
    referrers: true
  delegate_to: localhost
  register: attachments
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
    referrers:
      description:
        - With O(referrers=true), the image's attachments, then theirs. The order is the referrers API or fallback
          index first, then the cosign tags, for the image and then for each attachment found.
        - Empty when nothing is attached.
      returned: O(referrers=true)
      type: list
      elements: dict
      contains:
        subject:
          description: The digest the attachment names as its subject (RV(image.digest), or another attachment's).
          type: str
        digest:
          description: The digest of the attachment's manifest.
          type: str
        media_type:
          description: The media type of that manifest.
          type: str
          sample: application/vnd.oci.image.manifest.v1+json
        artifact_type:
          description:
            - The artifact type (the manifest's C(artifactType), else its config's media type). Examples are
              V(application/vnd.dev.sigstore.bundle.v0.3+json) for a cosign 3 signature or attestation, or
              V(application/spdx+json).
            - For a cosign tag, its kind, V(cosign-signature), V(cosign-attestation) or V(cosign-sbom), as
              C(referrer_types) of M(ocireg.registry.registry_image) names them.
          type: str
          sample: application/vnd.dev.sigstore.bundle.v0.3+json
        size:
          description: The size of the manifest in bytes.
          type: int
        annotations:
          description:
            - The manifest's annotations (for example C(dev.sigstore.bundle.predicateType),
              C(org.opencontainers.image.created)); empty when it has none.
            - Null for a cosign tag whose manifest was not read (only O(verify_key) reads a C(.sig) image). cosign
              writes no annotations on those manifests; each signature's annotations are on its layer.
          type: dict
        via:
          description:
            - How it was found. V(api) is the registry's referrers API. V(fallback_tag) is the index under the
              fallback tag C(sha256-<hex>) of a registry without that API. V(cosign_tag) is a cosign tag
              C(sha256-<hex>.sig), C(.att) or C(.sbom).
          type: str
          choices: [api, fallback_tag, cosign_tag]
        tag:
          description: The fallback tag or cosign tag it was found under; null for the referrers API.
          type: str
          sample: sha256-0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f.sig
      sample:
        - subject: sha256:0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f
          digest: sha256:5d2a6a3b0f3c9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d
          media_type: application/vnd.oci.image.manifest.v1+json
          artifact_type: application/vnd.dev.sigstore.bundle.v0.3+json
          size: 712
          annotations:
            dev.sigstore.bundle.content: dsse-envelope
            dev.sigstore.bundle.predicateType: https://sigstore.dev/cosign/sign/v1
            org.opencontainers.image.created: "2025-06-01T12:00:00Z"
          via: fallback_tag
          tag: sha256-0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f
        - subject: sha256:0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f
          digest: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
          media_type: application/vnd.oci.image.manifest.v1+json
          artifact_type: cosign-signature
          size: 558
          annotations: null
          via: cosign_tag
          tag: sha256-0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f.sig
    signatures:
      description:
        - With O(verify_key), each cosign signature of the image's digest, with whether it verifies with the key and
          why. Empty when the image has no signature; a task that needs one checks RV(image.signatures[].verified).
        - Simple-signing signatures (one per layer of the C(.sig) image) and sigstore bundle referrers whose bundle
          is a signature; attestations are left out.
      returned: O(verify_key) is set
      type: list
      elements: dict
      contains:
        digest:
          description:
            - The signature's digest. This is the layer of the C(.sig) image for a simple-signing signature, as
              C(cosign tree) lists it, and the referrer's manifest for a bundle.
          type: str
        manifest:
          description:
            - The manifest that holds the signature, as RV(image.referrers[].digest) names it. This is the C(.sig)
              image, or the bundle referrer (then the same as RV(image.signatures[].digest)).
          type: str
        via:
          description: How the signature was found, as in RV(image.referrers[].via).
          type: str
          choices: [api, fallback_tag, cosign_tag]
        tag:
          description: The fallback tag or cosign tag it was found under; null for the referrers API.
          type: str
        verified:
          description: Whether the signature verifies with O(verify_key) and names this image's digest.
          type: bool
        reason:
          description:
            - "Why. This names the key type and scheme when it verifies. When it does not, it says what failed, for
              example V(the signature does not verify with the key),
              V(the payload names sha256:..., not sha256:...), V(the signature is truncated or malformed: ...), or
              V(its layer cannot be read: ...)."
          type: str
      sample:
        - digest: sha256:4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e
          manifest: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
          via: cosign_tag
          tag: sha256-0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f.sig
          verified: true
          reason: verified with the key (ECDSA P-256, SHA-256)
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

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.inventory import TARGETS, Inventory, validate_options
from ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures import cryptography_import_error

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
    "referrers": {"type": "bool", "default": False},
    # A public key: nothing secret to hide (Ansible would warn about an option named *_key without no_log).
    "verify_key": {"type": "str", "no_log": False},
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
    if module.params["verify_key"] is not None:
        # Only a task that verifies imports cryptography.
        error = cryptography_import_error()
        if error is not None:
            module.fail_json(msg=missing_required_lib("cryptography"), exception=str(error), changed=False)
    with registry_errors(module, changed=False):
        # Reads verify_key first: a bad key fails the task before any request.
        inventory = Inventory(
            module.params, lambda primary, pool_size: registry_clients(module, primary, pool_size), module.warn
        )
        result = inventory.run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

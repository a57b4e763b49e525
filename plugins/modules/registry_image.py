#!/usr/bin/python
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_image
short_description: Copy images between registries and local image stores, or delete them
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Makes sure the image O(src) names is at O(dest), like C(skopeo copy), but idempotent and without a container engine.
  - O(src) and O(dest) are each a registry reference or a local image store, an OCI image layout directory, an OCI
    archive, or a docker archive (the format of C(docker save) and C(docker load)).
  - When O(dest) already holds the image, the task changes nothing and costs one request per manifest (a C(HEAD) of
    O(src) and one of O(dest)), with no blob traffic.
  - Blobs that O(dest) already has are skipped. Within one registry, blobs are mounted from the source repository
    rather than copied. Everything else is streamed from O(src) to O(dest) without being held in memory or on disk,
    and every digest is verified while streaming. A blob whose content does not match its digest fails the task.
  - Child manifests are written before the index, and the manifest O(dest) names last, so a failed or interrupted
    copy never leaves a name pointing at an incomplete image. Manifests are copied byte for byte, so digests are kept,
    except where this page says otherwise (O(platforms) subsets, docker archives).
  - With O(referrers=true), the image's signatures, attestations, SBOMs and other attachments travel with it.
  - With O(state=absent), deletes the manifest O(dest) resolves to.
extends_documentation_fragment:
  - ocireg.registry.connection
options:
  src:
    description:
      - The image to copy.
      - A registry reference C([registry/]repository[:tag][@digest]) (C(docker://) in front is accepted). Without a tag
        or digest, the tag is C(latest).
      - A reference that names no registry is an image on Docker Hub, as for docker (V(alpine) is
        V(docker.io/library/alpine:latest), and V(1.1.0) is V(docker.io/library/1.1.0:latest)). When such an O(src)
        cannot be read, the message says how it was read.
      - V(oci:DIR[:REF]), an OCI image layout directory. REF is the image's C(org.opencontainers.image.ref.name); it
        may be left out when the layout holds a single image.
      - V(oci-archive:FILE[:REF]), a tar archive of an OCI image layout.
      - V(docker-archive:FILE[:REF]), an archive written by C(docker save) or C(skopeo copy). REF is the C(NAME:TAG)
        the image has in the archive, or C(@N) for the Nth image (from 0); it may be left out when the archive holds a
        single image.
      - Paths are on the host that runs the task. Like in skopeo, a path cannot contain C(:).
      - skopeo's other transports (V(containers-storage:), V(dir:), V(docker-daemon:), V(ostree:), V(sif:),
        V(tarball:)) are not supported, whatever follows them, nor is any other V(name:) followed by a path. The task
        fails, listing the supported ones, before any request. To name a Docker Hub image that has one of those names,
        write C(docker://) in front, for example V(docker://dir:latest).
      - Required with O(state=present); ignored with O(state=absent).
    type: str
  dest:
    description:
      - Where the image must be, in the same forms as O(src).
      - A registry reference with a tag writes the image under that tag. Without a tag, the image is pushed by digest
        only, untagged, and the task returns its digest. With a digest, the copied image must have that digest.
      - V(oci:DIR[:REF]) adds the image to the layout (creating it) under REF, replacing what REF named before. Other
        images in the layout stay.
      - V(oci-archive:FILE[:REF]) and V(docker-archive:FILE[:REF]) write a new archive holding just this image, which
        replaces FILE once it is complete. FILE is left alone when it already holds this image under REF.
      - A docker archive stores uncompressed layers and no registry manifest. Writing one decompresses gzip layers
        (checking them against the diff IDs in the image config), keeps the config bytes, and writes REF (C(NAME:TAG),
        default tag C(latest)) into the archive's C(RepoTags). The image ID stays the same; the returned RV(digest) is
        the image ID, as an archive has no manifest digest. It holds one image, so for a multi-platform O(src) choose
        one platform with O(platforms).
      - Reading a docker archive (as O(src)) builds an OCI image manifest for it, with the layers as stored
        (uncompressed) and the config unchanged. Its digest differs from the digest the image had in any registry,
        and is the same every time for the same archive, so a repeated copy changes nothing.
    type: str
    required: true
  state:
    description:
      - V(present) copies the image to O(dest) unless it is there already.
      - V(absent) deletes the manifest O(dest) resolves to. In a registry this removes every tag pointing at it. In an
        OCI layout directory, every name pointing at it is removed, and blobs no remaining image uses are deleted. An
        archive holding just this image is deleted; an archive holding others too is an error.
    type: str
    choices: [present, absent]
    default: present
  platforms:
    description:
      - Which platforms of a multi-platform O(src) (an image index or manifest list) to copy.
      - V(all) copies the index as it is, with every platform.
      - A list of C(os/architecture[/variant]) (for example V(linux/amd64), V(linux/arm64/v8)) writes a new index
        holding only those platforms (and their attestations), so its digest differs from the source's. When the list
        names every platform of the index, the index is copied as it is.
      - With a single-platform O(src), the image is copied if it is one of the listed platforms, and the task fails
        otherwise.
      - Every listed platform must exist in O(src); the task fails naming the platforms there are.
    type: raw
    default: all
  jobs:
    description:
      - How many blobs are in flight at once (C(HEAD) checks, mounts and transfers).
      - Archives are written one blob at a time whatever this says.
    type: int
    default: 8
  force:
    description:
      - Copy even when O(dest) already holds the image.
      - Every manifest is written again and every blob is checked with a C(HEAD); blobs O(dest) has are still not
        transferred again. Archives are written anew.
    type: bool
    default: false
  referrers:
    description:
      - Also carry the image's attachments from O(src) to O(dest), both registries. An attachment is what names an
        image as its subject - OCI 1.1 referrers (cosign 3 signature bundles, attestations, SBOMs pushed by oras or
        buildx), found through the registry's referrers API where it serves one, else in the C(sha256-<hex>)
        fallback index - and cosign's own tags C(sha256-<hex>.sig), C(.att) and C(.sbom) (cosign 2 and older).
        Attachments of attachments (a signature of an SBOM) come too.
      - Every manifest copied byte for byte has its attachments carried - the image, and for an index every
        manifest in it. A O(platforms) subset is a new index with a new digest, which nothing signed, so only its
        platforms' manifests have theirs carried; the task warns when the source index has attachments left behind.
      - Each attachment is copied byte for byte after the image is complete - its blobs (skipped, mounted or streamed
        as the image's are), then its manifest. A cosign tag keeps its name, as the digest it names is the same at
        O(dest). A referrer is written by digest; where the destination registry does not index referrers itself
        (it answers without C(OCI-Subject) and serves no referrers API, as the CNCF distribution registry 2.x and 3.x),
        the task keeps the subject's fallback index at O(dest) as the OCI distribution specification says - adding
        to what it lists, never replacing it, never listing a manifest twice, and only once every manifest it lists
        is there.
      - When O(dest) is up to date, the attachments are still checked, so that a signature added at the source later
        arrives on the next run. That costs the source's tag list (once), one referrers API probe per registry, and
        one C(HEAD) at O(dest) per attachment (plus one C(GET) of its fallback index per image that has referrers,
        and one C(GET) of the index itself when O(src) is one).
      - A cosign tag that O(dest) has on another manifest is moved to the source's when the source's holds every
        layer of it (cosign added a signature at the source since). One that holds signatures the source's lacks
        (made at O(dest)) is left alone, with a warning, as replacing it would lose them. Attachments O(dest) has and
        the source does not are left alone.
      - Local stores (V(oci:), V(oci-archive:), V(docker-archive:)) do not hold attachments yet - the task fails,
        before any request, when O(referrers=true) names one as O(src) or O(dest).
      - Ignored with O(state=absent).
      - On the CNCF distribution registry, C(garbage-collect --delete-untagged) deletes referrers that only a fallback
        index names; a later run with O(referrers=true) puts them back.
    type: bool
    default: false
  referrer_types:
    description:
      - Which attachments O(referrers=true) carries, by their C(artifactType) (for example
        V(application/vnd.dev.sigstore.bundle.v0.3+json) for cosign 3 signatures and attestations,
        V(application/spdx+json) for an SPDX SBOM), or V(cosign-signature), V(cosign-attestation) and V(cosign-sbom)
        for cosign's C(.sig), C(.att) and C(.sbom) tags.
      - The attachments of an attachment are carried only when that attachment is.
      - By default, every attachment.
    type: list
    elements: str
notes:
  - O(username) and O(password) apply to the registry of O(dest) when it is a registry, else to the registry of O(src).
    For copies between two registries that both need credentials, use O(credentials) or an auth file.
  - Docker image manifest schema 1 images are not supported; the task fails saying so.
  - Non-distributable (foreign) layers are not copied between registries; the destination refers to them by their URLs
    as the source does.
  - Layers compressed with zstd cannot be written to a docker archive.
  - Local archives are read in place (nothing is extracted). Only uncompressed tar archives are read.
  - Blob mounts across repositories need a token that allows C(pull) on the source and C(push) on the destination
    repository; a registry that refuses a mount gets a normal upload instead.
attributes:
  check_mode:
    support: full
    description: Makes the C(HEAD) checks and reads the source's manifests, then reports what would be copied
      (RV(blobs), and with O(referrers=true) RV(referrers)) and the resulting RV(digest), writing nothing.
  diff_mode:
    support: full
    description: The digest O(dest) resolves to before and after (null when there is none).
seealso:
  - module: ocireg.registry.registry_tag
  - module: ocireg.registry.registry_info
  - name: skopeo copy
    description: The tool this module does the job of, and whose transport names it uses.
    link: https://github.com/containers/skopeo/blob/main/docs/skopeo-copy.1.md
"""

EXAMPLES = r"""
- name: Mirror an image, every platform, into a private registry
  ocireg.registry.registry_image:
    src: docker.io/library/alpine:3.20
    dest: registry.example.com/mirror/alpine:3.20
    credentials:
      registry.example.com:
        username: "{{ mirror_user }}"
        password: "{{ mirror_password }}"
  delegate_to: localhost

- name: Promote a build from staging to production, pinned by digest
  ocireg.registry.registry_image:
    src: "registry.example.com/staging/app@{{ build_digest }}"
    dest: registry.example.com/prod/app:1.4.2
  delegate_to: localhost

- name: Copy only the amd64 and arm64 images (a new index)
  ocireg.registry.registry_image:
    src: ghcr.io/example/tool:2.0
    dest: registry.example.com/tools/tool:2.0
    platforms:
      - linux/amd64
      - linux/arm64
  delegate_to: localhost
  register: copied

- name: Promote a signed image, with its cosign signatures, attestations and SBOMs
  ocireg.registry.registry_image:
    src: "registry.example.com/staging/app@{{ build_digest }}"
    dest: registry.example.com/prod/app:1.4.2
    referrers: true
  delegate_to: localhost
  register: promoted

- name: Show which attachments were copied
  ansible.builtin.debug:
    msg: "{{ promoted.referrers | selectattr('action', 'equalto', 'copied') | map(attribute='digest') | list }}"

- name: Mirror an image with its signatures only, leaving SBOMs and attestations behind
  ocireg.registry.registry_image:
    src: ghcr.io/example/tool:2.0
    dest: registry.example.com/tools/tool:2.0
    referrers: true
    referrer_types:
      - cosign-signature
      - application/vnd.dev.sigstore.bundle.v0.3+json
  delegate_to: localhost

- name: Save an image for an air-gapped site
  ocireg.registry.registry_image:
    src: registry.example.com/prod/app:1.4.2
    dest: oci-archive:/srv/transfer/app-1.4.2.tar:1.4.2
  delegate_to: localhost

- name: Load it into the registry on the other side
  ocireg.registry.registry_image:
    src: oci-archive:/srv/transfer/app-1.4.2.tar:1.4.2
    dest: registry.internal:5000/prod/app:1.4.2
  delegate_to: localhost

- name: Write an archive for docker load
  ocireg.registry.registry_image:
    src: registry.example.com/prod/app:1.4.2
    dest: docker-archive:/srv/transfer/app.tar:app:1.4.2
    platforms:
      - linux/amd64
  delegate_to: localhost

- name: Push an image that docker save wrote
  ocireg.registry.registry_image:
    src: docker-archive:/srv/transfer/legacy.tar:legacy/app:7
    dest: registry.example.com/legacy/app:7
  delegate_to: localhost

- name: Delete an image (every tag pointing at it goes too)
  ocireg.registry.registry_image:
    dest: registry.example.com/staging/app:old-build
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
digest:
  description:
    - With O(state=present), the digest of the manifest O(dest) holds after the task (in check mode, would hold).
      For a docker archive O(dest), the image ID (the config's digest), as the archive has no manifest.
    - With O(state=absent), the digest that was deleted (in check mode, would be), or V(null) when there was nothing.
  returned: always
  type: str
  sample: sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1
media_type:
  description:
    - Media type of the manifest RV(digest) names (for a docker archive O(dest), of the image config).
  returned: always
  type: str
  sample: application/vnd.oci.image.index.v1+json
blobs:
  description:
    - What happened to the image's blobs (configs and layers), or would happen in check mode. All zero when O(dest)
      was already up to date and with O(state=absent).
  returned: always
  type: dict
  contains:
    copied:
      description: Blobs streamed from O(src) to O(dest).
      type: int
      sample: 12
    mounted:
      description: Blobs mounted from the source repository of the same registry (no data moved).
      type: int
      sample: 0
    skipped:
      description: Blobs O(dest) already had.
      type: int
      sample: 1
    bytes:
      description: Bytes of the copied blobs.
      type: int
      sample: 50331648
referrers:
  description:
    - With O(referrers=true), every attachment of the manifests copied byte for byte (and of those attachments), in
      the order they were carried (subjects before their attachments), and what happened to it.
    - The blobs of attachments are not counted in RV(blobs).
  returned: when O(referrers=true) and O(state=present)
  type: list
  elements: dict
  contains:
    subject:
      description: The digest the attachment names - the image, one of its children, or another attachment.
      type: str
      sample: sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1
    digest:
      description: The attachment's manifest digest, the same at O(src) and O(dest).
      type: str
      sample: sha256:0d5dc8b0ac9b5e6a1bc4c3a5a4dc0b5f0b3b0a2d9b7e1f4f0a1e2d3c4b5a6978
    artifact_type:
      description:
        - Its C(artifactType) (else its config's media type), for example
          V(application/vnd.dev.sigstore.bundle.v0.3+json); for a cosign tag, its kind, V(cosign-signature),
          V(cosign-attestation) or V(cosign-sbom).
      type: str
      sample: cosign-signature
    via:
      description:
        - How it was found at O(src) - V(api) (the referrers API), V(fallback_tag) (the subject's C(sha256-<hex>)
          fallback index) or V(cosign_tag) (C(sha256-<hex>.sig), C(.att), C(.sbom)).
      type: str
      sample: cosign_tag
    tag:
      description: The cosign tag it is, or the fallback tag that listed it at O(src); null when found through the API.
      type: str
      sample: sha256-4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1.sig
    action:
      description:
        - V(copied) - written to O(dest) (its missing blobs, its manifest, and its cosign tag or fallback index
          entry).
        - V(present) - O(dest) had it where it belongs; nothing was written.
        - V(indexed) - O(dest) had the manifest, but the subject's fallback index did not list it; it was added there.
        - V(replaced) - O(dest) had the cosign tag on an older manifest (the source's holds all of its layers and
          more); it now points at the source's.
        - V(kept) - O(dest) has the cosign tag on a manifest with layers the source's lacks (signatures made there);
          left alone, with a warning.
        - V(missing) - O(src) lists it but has no such manifest (deleted, or garbage collected); not copied, with a
          warning.
        - In check mode V(would copy), V(would index) and V(would replace), for what a real run does.
      type: str
      sample: copied
"""

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import CopyProgress, CopyStats
from ansible_collections.ocireg.registry.plugins.module_utils._image.stores import (
    local_file_errors,
    open_destination,
    open_source,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.location import parse_location
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import platforms_option
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import wanted_types

MAX_JOBS = 64


class ImageManager:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.state = params["state"]
        self.jobs = params["jobs"]
        if self.jobs < 1 or self.jobs > MAX_JOBS:
            raise InvalidInputError("jobs must be from 1 to %d, got %d" % (MAX_JOBS, self.jobs))
        self.force = params["force"]
        self.dest = parse_location(params["dest"], "dest", default_tag=None)
        self.src = None
        self.platforms = None
        self.referrers = params["referrers"] and self.state == "present"
        self.referrer_types = wanted_types(params["referrer_types"])  # bad values fail before any request
        self.progress = CopyProgress()
        if self.state == "present":
            self.src = parse_location(params["src"], "src")
            self.platforms = platforms_option(params["platforms"])
        primary = next((location for location in (self.dest, self.src) if isinstance(location, Reference)), None)
        self.clients = registry_clients(module, primary, pool_size=max(16, 2 * self.jobs + 2))

    def _diff(self, before, after):
        return {"before": {"digest": before}, "after": {"digest": after}}

    def present(self):
        source = open_source(self.src, self.clients)
        destination = open_destination(self.dest, self.clients)
        result = transfer(
            source,
            destination,
            platforms=self.platforms,
            jobs=self.jobs,
            force=self.force,
            dry_run=self.module.check_mode,
            referrers=self.referrers,
            referrer_types=self.referrer_types,
            progress=self.progress,
        )
        for warning in result.warnings:
            self.module.warn(warning)
        returned = {
            "changed": result.changed,
            "digest": result.digest,
            "media_type": result.media_type,
            "blobs": result.stats.to_dict(),
            "diff": self._diff(result.previous_digest, result.digest),
        }
        if self.referrers:
            returned["referrers"] = result.referrers
        return returned

    def absent(self):
        destination = open_destination(self.dest, self.clients)
        digest, media_type = destination.delete(dry_run=self.module.check_mode)
        return {
            "changed": digest is not None,
            "digest": digest,
            "media_type": media_type,
            "blobs": CopyStats().to_dict(),
            "diff": self._diff(digest, None),
        }

    def run(self):
        with local_file_errors():
            return self.present() if self.state == "present" else self.absent()


def main():
    argument_spec = {
        "src": {"type": "str"},
        "dest": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "platforms": {"type": "raw", "default": "all"},
        "jobs": {"type": "int", "default": 8},
        "force": {"type": "bool", "default": False},
        "referrers": {"type": "bool", "default": False},
        "referrer_types": {"type": "list", "elements": "str"},
    }
    module = registry_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["src"])],
    )
    manager = None
    # A failure after the image was named at dest (carrying its attachments) reports changed.
    with registry_errors(module, changed=lambda: manager is not None and manager.progress.changed):
        manager = ImageManager(module)
        result = manager.run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

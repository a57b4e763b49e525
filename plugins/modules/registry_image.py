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
      (RV(blobs)) and the resulting RV(digest), writing nothing.
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
"""

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import CopyStats
from ansible_collections.ocireg.registry.plugins.module_utils._image.stores import (
    local_file_errors,
    open_destination,
    open_source,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.location import parse_location
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import platforms_option
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference

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
        )
        return {
            "changed": result.changed,
            "digest": result.digest,
            "media_type": result.media_type,
            "blobs": result.stats.to_dict(),
            "diff": self._diff(result.previous_digest, result.digest),
        }

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
    }
    module = registry_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["src"])],
    )
    with registry_errors(module, changed=False):
        result = ImageManager(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

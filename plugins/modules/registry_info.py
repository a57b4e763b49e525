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
  - A repository or tag that does not exist is not an error; the result says RV(exists=false).
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
        list), for example V(linux/arm64). Also the platform whose filesystem O(paths) reads.
      - The index itself is still described (digest, media type, every platform); the platform only chooses where
        C(created), C(labels), C(architecture), C(os), C(variant), C(layers) and C(history) come from.
    type: str
    default: linux/amd64
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

- name: Fail early when the image to deploy is not there
  ansible.builtin.assert:
    that: app.exists
    fail_msg: ghcr.io/org/app:1.4.2 has not been pushed

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
  returned: success
  type: bool
  sample: true
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
          from it. Null when the index has no such platform (the task then warns), and for a single image.
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

from fnmatch import fnmatchcase
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    registry_clients,
    registry_errors,
    registry_module,
)
from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import format_platform, parse_platform
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    Reference,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.details import ImageInspector, image_details
from ansible_collections.ocireg.registry.plugins.module_utils._ops.filesystem import validate_paths
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

MAX_CONCURRENCY = 64
# Errors that make one tag impossible to describe without saying anything about the others.
PER_TAG_ERRORS = (UnsupportedError, RegistryResponseError, DigestMismatchError)
WARNED_TAG_ERRORS = 3

ARGUMENT_SPEC: dict[str, Any] = {
    "registry": {"type": "str"},
    "repository": {"type": "str"},
    "image": {"type": "str"},
    "repositories": {"type": "list", "elements": "str"},
    "tags": {"type": "list", "elements": "str"},
    "details": {"type": "bool", "default": False},
    "paths": {"type": "list", "elements": "str"},
    "max_file_size": {"type": "int", "default": 1048576},
    "platform": {"type": "str", "default": "linux/amd64"},
    "concurrency": {"type": "int", "default": 8},
}
TARGETS = ("registry", "repository", "image")


def validate_options(params: dict[str, Any]) -> list[str]:
    """Every problem with the option values, each naming the option and the value."""
    problems = []
    target = next((name for name in TARGETS if params[name] is not None), None)
    concurrency = params["concurrency"]
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        problems.append("concurrency must be a whole number from 1 to %d, got %d" % (MAX_CONCURRENCY, concurrency))
    if params["max_file_size"] < 0:
        problems.append("max_file_size must be 0 or more bytes, got %d" % params["max_file_size"])
    if params["repositories"] is not None and target != "registry":
        problems.append("repositories filters the repositories of a registry: use it with registry, not %s" % target)
    if params["tags"] is not None and target == "image":
        problems.append("tags filters tag lists: use it with registry or repository, not image")
    if params["paths"] is not None and target != "image":
        problems.append("paths reads files inside one image: use it with image, not %s" % target)
    for option in ("repositories", "tags"):
        for pattern in params[option] or []:
            if not pattern:
                problems.append("%s must hold non-empty fnmatch patterns such as 'team/*', got %r" % (option, pattern))
    if params["paths"] is not None:
        try:
            validate_paths(params["paths"])
        except InvalidInputError as err:
            problems.append(str(err))
    try:
        parse_platform(params["platform"])
    except InvalidInputError as err:
        problems.append(str(err))
    return problems


def matches(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatchcase(name, pattern) for pattern in patterns)


class RegistryInfo:
    """Gathers the facts for one task."""

    def __init__(self, module: Any):
        self.module = module
        self.params = module.params
        self.concurrency = self.params["concurrency"]
        self.platform = format_platform(parse_platform(self.params["platform"]))
        self.tag_errors: list[str] = []
        self.vanished: list[str] = []

    def run(self) -> dict[str, Any]:
        if self.params["registry"] is not None:
            result = self.list_registry(self.params["registry"])
        elif self.params["repository"] is not None:
            result = self.list_repository(self.params["repository"])
        else:
            result = self.describe_image(self.params["image"])
        self._warn_about_tags()
        return dict(result, changed=False)

    def _clients(self, primary: Reference | str | None) -> Any:
        return registry_clients(self.params, primary, pool_size=max(16, self.concurrency))

    # -- registry ---------------------------------------------------------------------------------

    def list_registry(self, text: str) -> dict[str, Any]:
        scheme, host = parse_registry(text)
        # The catalog and every repository live on this one endpoint: one client, for the registry itself.
        clients = self._clients(host)
        client = clients.for_registry(host, scheme)
        try:
            registry = client.ping()
            names = sorted(name for name in self._catalog(client) if matches(name, self.params["repositories"]))
            repositories: list[dict[str, Any]] = [{"name": name} for name in names]
            if self.params["tags"] is not None or self.params["details"]:
                tag_lists = map_concurrently(lambda name: self._tags(client, name), names, self.concurrency)
                for entry, tags in zip(repositories, tag_lists):
                    entry["tags"] = tags if tags is not None else []
                if self.params["details"]:
                    inspector = ImageInspector(client, self.platform)
                    work = [(entry, tag) for entry in repositories for tag in entry["tags"]]
                    described = map_concurrently(
                        lambda item: self._describe_tag(inspector, host, item[0]["name"], item[1]),
                        work,
                        self.concurrency,
                    )
                    for entry in repositories:
                        entry["tags"] = []
                    for (entry, _tag), details in zip(work, described):
                        if details is not None:
                            entry["tags"].append(details)
        finally:
            clients.close()
        return {"registry": registry, "repositories": repositories, "exists": True}

    def _catalog(self, client: RegistryClient) -> list[str]:
        try:
            return client.catalog()
        except RegistryError as err:
            # 404 and 405 both mean "no catalog here", whatever error code the registry puts in the body.
            if not isinstance(err, UnsupportedError) and err.status not in (404, 405):
                raise
            message = str(err).rstrip(".")
            if "catalog" not in message:
                message = (
                    "Registry %s does not offer the catalog API (/v2/_catalog), an extension that many hosted"
                    " registries refuse (%s)" % (client.registry, message)
                )
            raise UnsupportedError(
                "%s. Give a repository instead of a registry to list its tags." % message,
                registry=client.registry,
                status=err.status,
            ) from None

    # -- repository -------------------------------------------------------------------------------

    def _tags(self, client: RegistryClient, repository: str) -> list[str] | None:
        """The matching tags of ``repository``, or None when it does not exist (or no longer does)."""
        try:
            tags = client.list_tags(repository)
        except NotFoundError:
            return None
        return sorted(tag for tag in tags if matches(tag, self.params["tags"]))

    def list_repository(self, text: str) -> dict[str, Any]:
        reference = parse_repository(text)
        clients = self._clients(reference)
        try:
            client = clients.for_reference(reference)
            registry = client.ping()
            tags = self._tags(client, reference.repository)
            if tags is None:
                return {"registry": registry, "tags": [], "exists": False}
            if not self.params["details"]:
                return {"registry": registry, "tags": tags, "exists": True}
            inspector = ImageInspector(client, self.platform)
            described = map_concurrently(
                lambda tag: self._describe_tag(inspector, reference.registry, reference.repository, tag),
                tags,
                self.concurrency,
            )
        finally:
            clients.close()
        return {"registry": registry, "tags": [entry for entry in described if entry is not None], "exists": True}

    def _describe_tag(self, inspector: ImageInspector, host: str, repository: str, tag: str) -> dict | None:
        """One tag's details; None when it vanished since the tag list was read."""
        name = "%s/%s" % (host, repository)
        try:
            resolved = inspector.resolve(repository, tag)
        except NotFoundError:
            self.vanished.append("%s:%s" % (name, tag))
            return None
        except PER_TAG_ERRORS as err:
            self.tag_errors.append("%s:%s: %s" % (name, tag, err))
            return {"name": name, "tag": tag, "error": str(err)}
        return image_details(name, tag, resolved)

    def _warn_about_tags(self) -> None:
        if self.vanished:
            self.module.warn(
                "%d tag(s) disappeared while their details were read, and are left out: %s"
                % (len(self.vanished), ", ".join(sorted(self.vanished)))
            )
        if self.tag_errors:
            shown = sorted(self.tag_errors)[:WARNED_TAG_ERRORS]
            more = len(self.tag_errors) - len(shown)
            self.module.warn(
                "%d tag(s) could not be described (see their 'error'): %s%s"
                % (len(self.tag_errors), "; ".join(shown), "; and %d more" % more if more else "")
            )

    # -- image ------------------------------------------------------------------------------------

    def describe_image(self, text: str) -> dict[str, Any]:
        reference = parse_reference(text)
        paths = self.params["paths"]
        clients = self._clients(reference)
        try:
            client = clients.for_reference(reference)
            registry = client.ping()
            inspector = ImageInspector(client, self.platform)
            try:
                resolved = inspector.resolve(reference.repository, reference.manifest_reference)
            except NotFoundError:
                result: dict[str, Any] = {"registry": registry, "image": None, "exists": False}
                if paths is not None:
                    result["files"] = {}
                return result
            details = image_details(reference.name, reference.tag, resolved)
            if resolved.top.is_index and resolved.selected is None:
                self.module.warn(
                    "%s is a multi-platform index without platform %s, so its platform details are empty; it holds: %s"
                    % (reference.canonical, self.platform, _platform_list(details["platforms"]))
                )
            result = {"registry": registry, "image": details, "exists": True}
            if paths is not None:
                result["files"] = inspector.read_paths(
                    reference.repository, resolved, paths, self.params["max_file_size"]
                )
                self._warn_about_omitted(result["files"])
        finally:
            clients.close()
        return result

    def _warn_about_omitted(self, files: dict[str, dict]) -> None:
        omitted = sorted(path for path, entry in files.items() if entry.get("content_omitted"))
        if omitted:
            self.module.warn(
                "Content left out of %s: bigger than max_file_size (%d bytes)"
                % (", ".join(omitted), self.params["max_file_size"])
            )


def _platform_list(platforms: list[dict]) -> str:
    names = []
    for entry in platforms:
        try:
            names.append(format_platform(entry))
        except InvalidInputError:
            continue
    return ", ".join(names) or "no platforms"


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
    with registry_errors(module, changed=False):
        result = RegistryInfo(module).run()
    module.exit_json(**result)


if __name__ == "__main__":
    main()

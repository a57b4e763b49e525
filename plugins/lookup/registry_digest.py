# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ocireg.registry.registry_digest`` lookup: image references -> manifest digests, for pinning."""

from __future__ import annotations

DOCUMENTATION = r"""
name: registry_digest
short_description: Resolve container image references to their manifest digests
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Asks the registry, on the controller, which manifest digest each image reference points at, so that playbooks and
    templates can pin images by digest (V(registry/app@sha256:...)) instead of by a tag that can move.
  - Costs one C(HEAD) request per reference (plus the authentication handshake), which Docker Hub does not count
    against its pull limit. With O(platform) and a multi-platform index, one C(GET) of the index more.
  - A reference that does not exist, a registry that cannot be reached, or credentials the registry rejects fail the
    lookup with a message that says which.
options:
  _terms:
    description:
      - Image references, V([registry/]path[:tag][@digest]). Without tag or digest the tag is V(latest).
      - A reference may start with V(http://) or V(https://). Without one, HTTPS is used, except for loopback hosts
        (V(localhost), V(127.0.0.0/8), V([::1])), which are reached over plain HTTP.
    type: list
    elements: str
    required: true
  platform:
    description:
      - When a reference is a multi-platform index (manifest list), return the digest of this platform's manifest,
        V(os/architecture[/variant]) such as V(linux/arm64), instead of the index's digest.
      - A reference that is a single image is returned as it is.
      - Without it, the digest of whatever the reference points at is returned, the index for a multi-platform image,
        which is what pinning usually wants.
    type: str
  username:
    description:
      - User name for the registry of the first reference.
      - Give O(password) too. For references on several registries, use O(credentials) or an auth file.
    type: str
    env:
      - name: REGISTRY_USERNAME
  password:
    description:
      - Password or access token that goes with O(username). Never logged or returned.
    type: str
    env:
      - name: REGISTRY_PASSWORD
  credentials:
    description:
      - Credentials for several registries at once, a dictionary whose keys are registry hosts (V(ghcr.io),
        V(registry.example.com:5000), V(docker.io)) and whose values hold either C(username) and C(password), or
        C(token), a bearer token sent as it is.
    type: dict
  auth_file:
    description:
      - Path of a container auth file (C(config.json) of C(docker login) or C(auth.json) of C(podman login)).
      - If not set, these files are searched in this order, and the first that has an entry for the registry is
        used E(REGISTRY_AUTH_FILE), C($XDG_RUNTIME_DIR/containers/auth.json),
        C($XDG_CONFIG_HOME/containers/auth.json) (default C(~/.config/containers/auth.json)),
        C($DOCKER_CONFIG/config.json), C(~/.docker/config.json). C(credHelpers) and C(credsStore) are honoured.
    type: path
    aliases:
      - config_path
  validate_certs:
    description:
      - Verify the registry's TLS certificate and host name.
    type: bool
    default: true
  ca_path:
    description:
      - Path of a PEM file with the CA certificates to trust for the registry.
    type: path
  client_cert:
    description:
      - Path of a PEM client certificate, for registries that require mutual TLS.
    type: path
  client_key:
    description:
      - Path of the PEM private key that goes with O(client_cert).
    type: path
  timeout:
    description:
      - Seconds to wait for each request.
    type: float
    default: 60
  retries:
    description:
      - How many times to retry a request that failed for a passing reason (connection errors, 429, 502, 503, 504),
        waiting longer each time and honouring C(Retry-After). V(0) turns retrying off.
    type: int
    default: 5
notes:
  - Lookups run on the controller, which needs the Python library C(requests).
  - Like other lookups, this one runs every time the template that uses it is rendered. Resolve a digest once with
    M(ansible.builtin.set_fact) when several tasks need it.
seealso:
  - module: ocireg.registry.registry_info
  - plugin: ocireg.registry.parse_reference
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Pin an image by digest in a template variable
  ansible.builtin.set_fact:
    app_image: "ghcr.io/org/app@{{ lookup('ocireg.registry.registry_digest', 'ghcr.io/org/app:1.4.2') }}"

- name: Resolve several references at once
  ansible.builtin.debug:
    msg: "{{ query('ocireg.registry.registry_digest', 'alpine:3.20', 'ghcr.io/org/app:1.4.2') }}"

- name: Pin the arm64 image of a multi-platform tag, with credentials from the environment
  ansible.builtin.set_fact:
    arm_digest: "{{ lookup('ocireg.registry.registry_digest', image, platform='linux/arm64') }}"
  vars:
    image: registry.example.com/team/app:2

- name: Use explicit credentials for a private registry
  ansible.builtin.set_fact:
    private_digest: >-
      {{ lookup('ocireg.registry.registry_digest', 'registry.example.com/team/app:2',
                username=registry_user, password=registry_password) }}
"""

RETURN = r"""
_raw:
  description:
    - One manifest digest per reference, in the order given, such as
      V(sha256:0b1c6b0e5a4e8f8b2a7a8b9f6f3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f).
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_index
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    parse_platform,
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, parse_reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import CredentialResolver
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import ConnectionOptions


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            references = [parse_reference(to_native(term)) for term in terms]
            platform = self.get_option("platform")
            wanted = format_platform(parse_platform(platform)) if platform is not None else None
            clients = self._clients(references[0] if references else None)
        except RegistryError as err:
            raise AnsibleLookupError(to_native(err)) from None
        try:
            return [self._digest(clients, reference, wanted) for reference in references]
        except RegistryError as err:
            raise AnsibleLookupError(to_native(err)) from None
        finally:
            clients.close()

    def _clients(self, primary: Reference | None) -> RegistryClients:
        timeout, retries = self.get_option("timeout"), self.get_option("retries")
        if timeout is None or timeout <= 0:
            raise RegistryError("timeout must be a positive number of seconds, got %s" % timeout)
        if retries is None or retries < 0:
            raise RegistryError("retries must be 0 or more, got %s" % retries)
        if self.get_option("client_key") and not self.get_option("client_cert"):
            raise RegistryError("client_key needs client_cert")
        resolver = CredentialResolver(
            username=self.get_option("username"),
            password=self.get_option("password"),
            credentials=self.get_option("credentials"),
            auth_file=self.get_option("auth_file"),
            primary_registry=primary.registry if primary is not None else None,
        )
        options = ConnectionOptions(
            validate_certs=self.get_option("validate_certs"),
            ca_path=self.get_option("ca_path"),
            client_cert=self.get_option("client_cert"),
            client_key=self.get_option("client_key"),
            timeout=float(timeout),
            retries=int(retries),
            pool_size=4,
        )
        return RegistryClients(resolver, options)

    def _digest(self, clients: RegistryClients, reference: Reference, platform: str | None) -> str:
        client = clients.for_reference(reference)
        descriptor = client.head_manifest(reference.repository, reference.manifest_reference)
        if descriptor is None:
            raise NotFoundError(
                "Image %s not found on registry %s: no such repository, tag or digest"
                % (reference.canonical, reference.registry),
                registry=reference.registry,
                repository=reference.repository,
            )
        if platform is None or not is_index(descriptor.media_type):
            return descriptor.digest
        fetched = client.get_manifest(reference.repository, descriptor.digest)
        index = parse_manifest(fetched.raw, fetched.media_type)
        if not index.is_index:
            return index.digest
        try:
            return select_platform(index, platform).digest
        except NotFoundError as err:
            raise NotFoundError("%s: %s" % (reference.canonical, err), registry=reference.registry) from None

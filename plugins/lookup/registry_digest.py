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
notes:
  - Lookups run on the controller, which needs the Python library C(requests).
  - Like other lookups, this one runs every time the template that uses it is rendered. Resolve a digest once with
    M(ansible.builtin.set_fact) when several tasks need it.
extends_documentation_fragment:
  - ocireg.registry.connection
  - ocireg.registry.connection.lookup
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
from ansible.utils.display import Display

from ansible_collections.ocireg.registry.plugins.module_utils._errors import RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    parse_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, parse_reference
from ansible_collections.ocireg.registry.plugins.module_utils._ops.details import pinned_digest
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import (
    CONNECTION_OPTIONS,
    RegistryClients,
    clients_for,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    ENVIRONMENT_VARIABLES,
    task_credentials_source,
)

display = Display()


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            references = [parse_reference(to_native(term)) for term in terms]
            platform = self.get_option("platform")
            wanted = format_platform(parse_platform(platform)) if platform is not None else None
            clients = self._clients(references[0] if references else None, given=kwargs)
        except RegistryError as err:
            raise AnsibleLookupError(to_native(err)) from None
        try:
            return [pinned_digest(clients.for_reference(reference), reference, wanted) for reference in references]
        except RegistryError as err:
            raise AnsibleLookupError(to_native(err)) from None
        finally:
            for warning in clients.warnings:
                display.warning(warning)
            clients.close()

    def _clients(self, primary: Reference | None, given: dict[str, Any]) -> RegistryClients:
        options = {name: self.get_option(name) for name in CONNECTION_OPTIONS}
        # username and password come from the lookup's keywords (``given``) or else from their environment variables.
        from_environment = [name for name in ENVIRONMENT_VARIABLES if name not in given and options.get(name)]
        return clients_for(
            options,
            primary,
            pool_size=4,
            credentials_source=task_credentials_source(from_environment, given_as="lookup"),
            primary_role="the lookup's first reference",
        )

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ocireg.registry.parse_reference`` filter."""

from __future__ import annotations

DOCUMENTATION = r"""
name: parse_reference
short_description: Split a container image reference into its normalised parts
version_added: 0.1.0
author: ocireg.registry contributors
description:
  - Parses a container image reference such as V(alpine), V(ghcr.io/org/app:1.2) or
    V(localhost:5000/team/app@sha256:...) with the rules docker uses, and returns its parts.
  - Docker Hub names are normalised the way docker does it. V(docker.io), V(index.docker.io) and
    V(registry-1.docker.io) all become the registry V(docker.io), and a one-component name gets the
    V(library/) namespace, so V(alpine) is V(docker.io/library/alpine).
  - The first component is a registry when it contains V(.) or V(:), is V(localhost), or is a bracketed
    IPv6 address such as V([::1]:5000). An optional V(http://) or V(https://) prefix is accepted; with it,
    the first component is always the registry.
  - Without a tag or digest the tag is O(default_tag) (V(latest)).
  - An invalid reference fails the task with a message that quotes the value and says what is allowed.
positional: _input
options:
  _input:
    description:
      - The image reference, V([scheme://][registry/]repository[:tag][@digest]).
    type: str
    required: true
  default_tag:
    description:
      - The tag to assume when the reference has neither a tag nor a digest.
      - Set to V('') or V(null) to leave RV(_value.tag) empty instead, for example to parse a repository name.
    type: str
    default: latest
seealso:
  - name: Docker reference grammar
    description: The grammar this filter implements.
    link: https://github.com/distribution/reference/blob/main/reference.go
"""

EXAMPLES = r"""
- name: Split an image reference
  ansible.builtin.debug:
    msg: "{{ 'alpine' | ocireg.registry.parse_reference }}"
  # msg:
  #   registry: docker.io
  #   repository: library/alpine
  #   tag: latest
  #   digest: null
  #   canonical: docker.io/library/alpine:latest
  #   familiar: alpine:latest
  #   official: true
  #   scheme: null

- name: Pin a tag to the digest a registry resolved it to
  ansible.builtin.set_fact:
    pinned: "{{ (image | ocireg.registry.parse_reference).canonical }}@{{ digest }}"
  vars:
    image: ghcr.io/org/app:1.2
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

# groupby gives (registry, references) tuples, which ansible-core 2.19 cannot store in a variable:
# map('list') and dict() turn them into a dictionary of registry -> parsed references.
- name: Group images by registry
  ansible.builtin.debug:
    msg: "{{ dict(images | map('ocireg.registry.parse_reference') | groupby('registry') | map('list')) }}"
  vars:
    images:
      - alpine:3.20
      - ghcr.io/org/app:1.2
      - localhost:5000/team/tool
      - http://registry.internal:5000/team/app
  # msg:
  #   docker.io: [{registry: docker.io, repository: library/alpine, tag: "3.20", scheme: null, ...}]
  #   ghcr.io: [{registry: ghcr.io, repository: org/app, tag: "1.2", scheme: null, ...}]
  #   localhost:5000: [{registry: localhost:5000, repository: team/tool, tag: latest, scheme: null, ...}]
  #   registry.internal:5000: [{registry: registry.internal:5000, repository: team/app, tag: latest, scheme: http, ...}]

- name: Parse a repository name without assuming a tag
  ansible.builtin.assert:
    that:
      - (repo | ocireg.registry.parse_reference(default_tag='')).tag is none
  vars:
    repo: index.docker.io/library/nginx
"""

RETURN = r"""
_value:
  description: The parts of the reference.
  type: dict
  contains:
    registry:
      description:
        - Registry host, with the port if one was given. Docker Hub is always V(docker.io).
      type: str
      sample: docker.io
    repository:
      description: Repository path on the registry, with V(library/) added for one-component Docker Hub names.
      type: str
      sample: library/alpine
    tag:
      description: The tag, O(default_tag) when neither tag nor digest was given, or V(null).
      type: str
      sample: latest
    digest:
      description: The digest (V(algorithm:encoded)), or V(null).
      type: str
      sample: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    canonical:
      description:
        - The fully qualified form, V(registry/repository[:tag][@digest]), without a scheme (see RV(_value.scheme)).
      type: str
      sample: docker.io/library/alpine:latest
    familiar:
      description: The short form docker shows, without V(docker.io/) and V(library/) on Docker Hub names.
      type: str
      sample: alpine:latest
    official:
      description: Whether the reference names a Docker Hub official image (V(docker.io/library/NAME)).
      type: bool
      sample: true
    scheme:
      description:
        - The scheme the reference starts with, V(http) or V(https), or V(null) when it has none.
        - Without one, the modules use HTTPS, except for loopback hosts (V(localhost), V(127.0.0.0/8) and V([::1])),
          which they reach over plain HTTP.
      type: str
      sample: http
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidReferenceError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import parse_reference as _parse_reference


def parse_reference(value, default_tag="latest"):
    """Filter body: ``reference | ocireg.registry.parse_reference`` -> dict of parts."""
    try:
        return _parse_reference(value, default_tag=default_tag or None).to_dict()
    except InvalidReferenceError as exc:
        # The message already names the value and the rule; the exception chain would only repeat it.
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """Registers the ``parse_reference`` filter."""

    def filters(self):
        return {"parse_reference": parse_reference}

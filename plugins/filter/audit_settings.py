# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ocireg.registry.audit_settings`` filter: check the settings of an audit before the registry is read."""

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_settings
short_description: Check the settings of an audit report before the registry is read
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Takes the settings of the filter P(ocireg.registry.audit_report#filter), its options as a dictionary, and checks
    them the way that filter does, with the same code. A duration, size, time or regular expression that does not
    parse, or an unknown rule key, fails the task with a message that names the value.
  - Reading a big registry takes a while. Run this filter before M(ocireg.registry.registry_info), as the role
    P(ocireg.registry.audit#role) does, so that a mistyped rule fails at once rather than after the whole registry
    has been read.
  - Returns the settings as the report records them in its C(settings).
positional: _input
options:
  _input:
    description:
      - The settings, a dictionary with any of the keys V(now), V(stale_after), V(required_labels), V(require_latest),
        V(latest_tag), V(rules), V(signed_repositories) and V(orphaned_attachments), each as the option of the same
        name of P(ocireg.registry.audit_report#filter) (and with the same default when left out).
    type: dict
    required: true
seealso:
  - plugin: ocireg.registry.audit_report
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Choose the settings of the report
  ansible.builtin.set_fact:
    report_settings:
      stale_after: 180d
      rules:
        - name: base images stay small
          repository: base/.*
          max_size: 200MB

- name: Check them before reading the registry, which takes a while
  ansible.builtin.debug:
    msg: "{{ report_settings | ocireg.registry.audit_settings }}"

- name: Gather every repository with image details
  ocireg.registry.registry_info:
    registry: registry.example.com
    details: true
  register: registry_facts

- name: Build the report with the same settings
  ansible.builtin.set_fact:
    report: "{{ registry_facts.repositories | ocireg.registry.audit_report(**report_settings) }}"
"""

RETURN = r"""
_value:
  description:
    - The settings as the report records them (RV(ocireg.registry.audit_report#filter:_value.settings)), rules
      normalised (durations in seconds, sizes in bytes).
  type: dict
  contains:
    stale_after:
      description: The duration that makes an image stale, as given; null when the check is off.
      type: str
    stale_after_seconds:
      description: The same in seconds.
      type: int
    required_labels:
      description: The labels every image must have.
      type: list
      elements: str
    require_latest:
      description: Whether a repository must have RV(ocireg.registry.audit_settings#filter:_value.latest_tag).
      type: bool
    latest_tag:
      description: The tag that is looked for.
      type: str
    signed_repositories:
      description: The patterns of the repositories whose images must be signed.
      type: list
      elements: str
    orphaned_attachments:
      description: Whether attachment tags whose subject is gone are reported.
      type: bool
    rules:
      description: The rules, each with every key, patterns as text, C(max_age) in seconds and C(max_size) in bytes.
      type: list
      elements: dict
"""

from ansible_collections.ocireg.registry.plugins.filter.audit_report import audit_settings


class FilterModule:
    """Registers the ``audit_settings`` filter."""

    def filters(self):
        return {"audit_settings": audit_settings}

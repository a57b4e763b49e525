# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ocireg.registry.audit_report`` filter: registry facts -> an audit report with findings."""

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_report
short_description: Turn a registry's facts into an audit report with sizes, ages and findings
version_added: 0.1.0
author: ocireg.registry contributors (@ocireg)
description:
  - Takes the RV(ocireg.registry.registry_info#module:repositories) list that M(ocireg.registry.registry_info) returns
    with O(ocireg.registry.registry_info#module:registry) and O(ocireg.registry.registry_info#module:details=true), and
    returns a report, the data the role P(ocireg.registry.audit#role) writes as JSON and renders as HTML or Markdown.
  - For every repository the report has its tags with their digest, size, creation time and age, the number of distinct
    images, and its size with blobs that several tags share counted once.
  - "Findings are what needs a look, each with a severity (V(error), V(warning) or V(info)):"
  - "V(stale): an image built longer ago than O(stale_after) (warning)."
  - "V(missing_latest): a repository with tags but none named O(latest_tag), when O(require_latest) is set (info)."
  - "V(missing_labels): an image without some of the O(required_labels) (warning)."
  - "V(empty_repository): a repository that exists but has no tags (info)."
  - "V(missing_repository): a repository of the input that the registry does not have (C(exists=false)), for example
    a misspelt name in a list of repositories read one by one (error). It is not in RV(_value.repositories)."
  - "V(unreadable_tag): a tag whose image could not be described, for example a schema 1 manifest (error)."
  - "V(rule): a violation of one of the O(rules) (the rule's severity)."
  - "V(unsigned): an image of a repository that matches O(signed_repositories) that has no signature (error)."
  - "V(orphaned_attachment): an attachment tag whose subject is not in its repository (warning), see
    O(orphaned_attachments)."
  - "Attachment tags are tags that name another digest as their subject. These are the referrers fallback index
    C(sha256-<hex>) and cosign's C(sha256-<hex>.sig), C(.att) and C(.sbom). They are not images of their own. They
    are listed in each repository's RV(_value.repositories[].attachments) with their subject, and no image finding
    (V(stale), V(missing_labels), V(missing_latest), rules) applies to them. Their blobs count in the repository's
    size, as the registry stores them."
  - "Signatures are counted when the details were read with
    O(ocireg.registry.registry_info#module:referrers=true). An image's signatures are those that name its digest
    (the index's, for a multi-platform image). Each layer of its cosign C(.sig) image is one signature, as
    C(cosign tree) counts them. Each sigstore bundle referrer (an artifact type
    V(application/vnd.dev.sigstore.bundle...)) is one signature too, unless its C(dev.sigstore.bundle.predicateType)
    annotation names an attestation rather than cosign's signature predicate. Attestations and SBOMs are no
    signatures."
  - "This is presence only: no signature is verified, so a signature made with any key, or a broken one, counts.
    To verify signatures with a key, use O(ocireg.registry.registry_info#module:verify_key) on an image, or the role
    P(ocireg.registry.promote#role) with C(promote_verify_key)."
  - Image-level findings (V(stale), V(missing_labels), rule checks on images) name the image once per repository, with
    every tag that points at it.
  - Ages are measured from the image config's C(created) time. Images without one have no age and are never stale.
  - Bad settings (a duration, size or regular expression that does not parse, an unknown rule key) fail the task with
    a message that names the value, before any repository is looked at. To check them before the registry is even
    read, give the same settings to the filter P(ocireg.registry.audit_settings#filter) first, as the role
    P(ocireg.registry.audit#role) does.
  - Sizes for people (C(size_human), and sizes in messages) count in 1024s, V(KiB), V(MiB), V(GiB), V(TiB), with one
    decimal; sizes under 1 KiB are whole bytes (V(878 bytes)).
positional: _input
options:
  _input:
    description:
      - The RV(ocireg.registry.registry_info#module:repositories) list of M(ocireg.registry.registry_info) run with
        O(ocireg.registry.registry_info#module:details=true), each V({name, tags}) with image details in C(tags).
      - For registries without a catalog, the same list built from M(ocireg.registry.registry_info) tasks with
        O(ocireg.registry.registry_info#module:repository) and O(ocireg.registry.registry_info#module:details=true),
        one per repository, each V({name, tags, exists}) with the task's RV(ocireg.registry.registry_info#module:tags)
        and RV(ocireg.registry.registry_info#module:exists). An entry with C(exists=false) is a
        V(missing_repository) finding.
    type: list
    elements: dict
    required: true
  now:
    description:
      - The time to measure ages from, an ISO 8601 / RFC 3339 time such as V(2025-01-31T12:00:00Z). A time without a
        zone is UTC.
      - Defaults to the current time. Set it to make a report reproducible.
    type: str
  stale_after:
    description:
      - An image older than this is V(stale). A duration, one or more numbers with a unit, V(s), V(m), V(h), V(d) or
        V(w), for example V(90d), V(2w) or V(1d12h).
      - V(null) or V('') turns the check off.
    type: str
    default: 90d
  required_labels:
    description:
      - Labels every image must have. An image missing any of them is a V(missing_labels) finding that lists them.
      - An empty list turns the check off.
    type: list
    elements: str
    default: [org.opencontainers.image.source, org.opencontainers.image.revision]
  require_latest:
    description:
      - Whether a repository with tags must have one named O(latest_tag).
    type: bool
    default: true
  latest_tag:
    description:
      - The tag O(require_latest) looks for.
    type: str
    default: latest
  rules:
    description:
      - Checks of your own. Each rule applies to the tags whose repository matches C(repository) and whose name matches
        C(tag), and reports a V(rule) finding for each check that fails.
      - Regular expressions are Python's and must match the whole name (C(re.fullmatch)), as in
        M(ocireg.registry.registry_repo), so V(prod/.*) selects the repositories under V(prod/) and V(v1) only the tag
        V(v1).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: What the rule is called in findings.
        type: str
        required: true
      description:
        description: Why the rule exists, shown with its findings.
        type: str
      repository:
        description: Regular expression for the repositories the rule applies to. Default, every repository.
        type: str
      tag:
        description: Regular expression for the tags the rule applies to. Default, every tag.
        type: str
      severity:
        description: The severity of the rule's findings.
        type: str
        choices: [error, warning, info]
        default: warning
      max_age:
        description: A duration (like O(stale_after)); images older than this violate the rule.
        type: str
      max_size:
        description:
          - The largest image allowed, bytes as an integer or a string with a unit, V(500MB), V(1.5GiB). Units
            V(B), V(kB), V(MB), V(GB), V(TB) count in thousands, V(KiB), V(MiB), V(GiB), V(TiB) in 1024s.
          - The size is what a pull transfers (RV(ocireg.registry.registry_info#module:image.size)).
        type: raw
      required_labels:
        description: Labels the images must have.
        type: list
        elements: str
      max_tags:
        description: The most tags (matching C(tag)) a repository may have.
        type: int
  signed_repositories:
    description:
      - Repositories whose images must be signed, as shell-style patterns over the whole name (Python
        C(fnmatchcase), case-sensitive; V(*) also matches V(/)), the way
        O(ocireg.registry.registry_info#module:repositories) matches, for example V(prod/*).
      - Each image of a matching repository without a signature is an V(unsigned) finding.
      - The details of those repositories must have been read with
        O(ocireg.registry.registry_info#module:referrers=true); without them the filter fails and says so.
    type: list
    elements: str
    default: []
  orphaned_attachments:
    description:
      - Report an V(orphaned_attachment) finding for each attachment tag whose subject digest is not in its
        repository. A subject counts as present when it is the digest of a tag, the digest of a child of an index
        that a tag points at, or the digest of another attachment (a signature of an SBOM).
      - Judged only in repositories where every tag could be described. Give the tags of the whole repository, not
        a selection, or the subjects of unselected tags look missing.
    type: bool
    default: true
seealso:
  - module: ocireg.registry.registry_info
"""

EXAMPLES = r"""
- name: Gather every repository with image details
  ocireg.registry.registry_info:
    registry: registry.example.com
    details: true
  register: registry_facts

- name: Build the report
  ansible.builtin.set_fact:
    report: >-
      {{ registry_facts.repositories | ocireg.registry.audit_report(
           stale_after='180d',
           rules=[{'name': 'prod is small', 'repository': 'prod/.*', 'max_size': '200MB'}]) }}

- name: Show the findings
  ansible.builtin.debug:
    msg: "{{ report.findings | map(attribute='message') | list }}"

- name: Fail when there is an error
  ansible.builtin.assert:
    that: report.summary.findings.error == 0
    fail_msg: "{{ report.findings | selectattr('severity', 'equalto', 'error') | map(attribute='message') | list }}"
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    generated_at:
      description: The time ages were measured from (O(now)), ISO 8601 in UTC.
      type: str
      sample: "2025-01-31T12:00:00Z"
    settings:
      description: The settings the report was made with, rules normalised (durations in seconds, sizes in bytes).
      type: dict
    summary:
      description: Totals.
      type: dict
      contains:
        repositories:
          description: Number of repositories.
          type: int
        tags:
          description: Number of tags, attachment tags left out.
          type: int
        attachments:
          description: Number of attachment tags (C(sha256-<hex>), C(.sig), C(.att), C(.sbom)).
          type: int
        images:
          description: Number of distinct image digests across the registry.
          type: int
        signed_images:
          description:
            - Number of images (one per digest and repository) with at least one signature, in the repositories whose
              attachments were read. Null when none were.
          type: int
        unsigned_images:
          description: The same for the images without a signature.
          type: int
        size:
          description: Bytes of the distinct blobs and manifests of all repositories, each counted once.
          type: int
        size_human:
          description: RV(_value.summary.size) for people, V(878 bytes), V(129.5 KiB) or V(1.2 GiB).
          type: str
        findings:
          description: Number of findings per severity, V({error, warning, info}).
          type: dict
        kinds:
          description: Number of findings per kind.
          type: dict
    repositories:
      description: One entry per repository, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Repository name.
          type: str
        size:
          description: Bytes of the repository's distinct layers and manifests (shared layers counted once).
          type: int
        size_human:
          description: Its C(size) for people, V(878 bytes), V(129.5 KiB) or V(1.2 GiB).
          type: str
        images:
          description: Number of distinct image digests.
          type: int
        signed_images:
          description: How many of them have a signature; null when the attachments were not read.
          type: int
        attachments:
          description:
            - Its attachment tags, sorted by tag, each V({tag, digest, kind, subject, subject_tags, size, size_human,
              orphaned, error}).
            - C(kind) is V(referrers-index) (the fallback tag C(sha256-<hex>)), V(cosign-signature),
              V(cosign-attestation) or V(cosign-sbom). C(subject) is the digest the tag names and C(subject_tags)
              the tags on it. C(orphaned) is true when that digest is not in the repository (see
              O(orphaned_attachments)).
          type: list
          elements: dict
        has_latest:
          description: Whether it has O(latest_tag).
          type: bool
        newest:
          description: C(created) of its newest image, or null.
          type: str
        oldest:
          description: C(created) of its oldest image, or null.
          type: str
        tags:
          description:
            - Its tags, sorted by name, attachment tags left out, each V({tag, digest, media_type, size, size_human,
              created, age_days, platforms, labels, stale, error, signatures}). C(signatures) is the number of
              signatures of its digest, null when its attachments were not read. C(size_human) is C(size) for
              people. C(age_days) is a number with two decimals, null without C(created). C(platforms) lists
              V(os/arch[/variant]) of a multi-platform image and is empty for a single image.
          type: list
          elements: dict
    findings:
      description:
        - Findings, most severe first, each V({kind, severity, repository, tags, digest, rule, check, message}).
          C(tags) and C(digest) are empty for repository-level findings; C(rule) and C(check) are set for V(rule)
          findings (C(check) is V(max_age), V(max_size), V(required_labels) or V(max_tags)).
      type: list
      elements: dict
"""

import datetime
import re
from fnmatch import fnmatchcase

from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci import timing
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    BUNDLE_PREDICATE_TYPE_ANNOTATION,
    COSIGN_SIGN_PREDICATE_TYPE,
    is_sigstore_bundle_media_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    COSIGN_SIGNATURE,
    parse_attachment_tag,
)

SEVERITIES = ("error", "warning", "info")
DEFAULT_REQUIRED_LABELS = ("org.opencontainers.image.source", "org.opencontainers.image.revision")
# The settings of a report (the filter's options besides its input), with their defaults.
DEFAULT_SETTINGS = {
    "now": None,
    "stale_after": "90d",
    "required_labels": DEFAULT_REQUIRED_LABELS,
    "require_latest": True,
    "latest_tag": "latest",
    "rules": None,
    "signed_repositories": None,
    "orphaned_attachments": True,
}
# The kind of an attachment tag: cosign's kinds, or the referrers fallback index.
REFERRERS_INDEX = "referrers-index"
_ATTACHMENT_NAMES = {
    REFERRERS_INDEX: "referrers index",
    "cosign-signature": "cosign signature",
    "cosign-attestation": "cosign attestation",
    "cosign-sbom": "cosign SBOM",
}
RULE_KEYS = {
    "name",
    "description",
    "repository",
    "tag",
    "severity",
    "max_age",
    "max_size",
    "required_labels",
    "max_tags",
}

# Sizes for people: 1024s, as the names say.
_HUMAN_UNITS = (("KiB", 1024), ("MiB", 1024**2), ("GiB", 1024**3), ("TiB", 1024**4))
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?B|B)?\s*")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "kiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


def parse_duration(value, what="duration"):
    """``90d`` / ``1d12h`` / ``45m`` -> seconds. Raises AnsibleFilterError naming WHAT and the value."""
    try:
        return int(timing.parse_duration(value, what).total_seconds())
    except InvalidInputError as err:
        raise AnsibleFilterError(str(err)) from None


def parse_size(value, what="size"):
    """``1024`` / ``'500MB'`` / ``'1.5GiB'`` -> bytes (int). Raises AnsibleFilterError naming WHAT and the value."""
    if isinstance(value, bool):
        match = None
    elif isinstance(value, int):
        if value >= 0:
            return value
        match = None
    else:
        match = _SIZE.fullmatch(str(value))
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise AnsibleFilterError(
            "%s %r is not a size: use bytes (an integer) or a number with a unit, B, kB, MB, GB, TB, KiB, MiB, GiB or "
            "TiB, for example 500MB" % (what, value)
        )
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_time(value):
    """An RFC 3339 / ISO 8601 time -> aware datetime in UTC, or None when VALUE is empty or not a time."""
    return timing.parse_time(value)


def _format_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_duration(seconds):
    """``2592000`` -> ``30d``, ``129600`` -> ``1d12h``: a limit in the form the settings take (weeks as days)."""
    parts = []
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, length)
        if count:
            parts.append("%d%s" % (count, unit))
    return "".join(parts) or "0s"


def _human_duration(seconds):
    days = seconds / 86400.0
    if days >= 2:
        return "%d days" % days
    hours = seconds / 3600.0
    if hours >= 2:
        return "%d hours" % hours
    return "%d minutes" % (seconds // 60)


def format_size(size):
    """``878`` -> ``878 bytes``, ``132608`` -> ``129.5 KiB``: the one way the report writes a size for people.

    1024s throughout, as the units KiB, MiB, GiB and TiB say, with one decimal; under 1 KiB, whole bytes.
    """
    size = int(size)
    if size < 1024:
        return "1 byte" if size == 1 else "%d bytes" % size
    larger = [unit for unit in _HUMAN_UNITS if size >= unit[1]]
    unit, factor = larger[-1]
    # 1048535 bytes is 1024.0 KiB to one decimal: that is 1.0 MiB.
    if round(size / float(factor), 1) >= 1024 and unit != _HUMAN_UNITS[-1][0]:
        unit, factor = _HUMAN_UNITS[len(larger)]
    return "%.1f %s" % (size / float(factor), unit)


def _human_size(size):
    """``132608`` -> ``132608 bytes (129.5 KiB)``: exact, and readable; ``878`` -> ``878 bytes``."""
    readable = format_size(size)
    return readable if size < 1024 else "%d bytes (%s)" % (size, readable)


def _compile(pattern, what):
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise AnsibleFilterError("%s %r is not a valid regular expression: %s" % (what, pattern, exc)) from None


def _label_list(value, what):
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("%s must be a list of label names, got %r" % (what, value))
    return [str(label) for label in value]


def normalise_rules(rules):
    """Validate RULES and return them as dicts with compiled patterns, durations in seconds and sizes in bytes."""
    if rules is None:
        return []
    if not isinstance(rules, (list, tuple)):
        raise AnsibleFilterError("rules must be a list of dictionaries, got %r" % (rules,))
    normalised = []
    for position, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict):
            raise AnsibleFilterError("rule %d must be a dictionary, got %r" % (position, rule))
        name = rule.get("name")
        if not name:
            raise AnsibleFilterError("rule %d has no name: every rule needs one" % position)
        what = "rule %r" % name
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            raise AnsibleFilterError(
                "%s has unknown keys %s; allowed: %s" % (what, ", ".join(unknown), ", ".join(sorted(RULE_KEYS)))
            )
        severity = rule.get("severity") or "warning"
        if severity not in SEVERITIES:
            raise AnsibleFilterError("%s: severity %r is not one of %s" % (what, severity, ", ".join(SEVERITIES)))
        max_tags = rule.get("max_tags")
        if max_tags is not None and (isinstance(max_tags, bool) or not str(max_tags).isdigit()):
            raise AnsibleFilterError("%s: max_tags %r is not a whole number" % (what, max_tags))
        normalised.append(
            {
                "name": str(name),
                "description": rule.get("description"),
                "severity": severity,
                "repository": _compile(rule.get("repository"), "%s: repository" % what),
                "tag": _compile(rule.get("tag"), "%s: tag" % what),
                "max_age": (
                    None if rule.get("max_age") in (None, "") else parse_duration(rule["max_age"], what + ": max_age")
                ),
                "max_size": (
                    None if rule.get("max_size") in (None, "") else parse_size(rule["max_size"], what + ": max_size")
                ),
                "required_labels": _label_list(rule.get("required_labels"), what + ": required_labels"),
                "max_tags": None if max_tags is None else int(max_tags),
            }
        )
    return normalised


def _platform_name(platform):
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(part for part in parts if part)


def _describe_tag(details, now):
    created = parse_time(details.get("created"))
    size = int(details.get("size") or 0)
    age = None if created is None else max(0.0, (now - created).total_seconds())
    return {
        "tag": details.get("tag"),
        "digest": details.get("digest"),
        "media_type": details.get("media_type"),
        "size": size,
        "size_human": format_size(size),
        "created": details.get("created"),
        "age_days": None if age is None else round(age / 86400.0, 2),
        "age_seconds": age,
        "platforms": [_platform_name(p) for p in details.get("platforms") or []],
        "labels": dict(details.get("labels") or {}),
        "layers": [
            (layer.get("digest"), int(layer.get("size") or 0)) for layer in details.get("layers") or [] if layer
        ],
        "stale": False,
        "error": details.get("error"),
        "signatures": None,
        # Kept until the report is done: the attachments read with the details (None: not read), and the digests of
        # an index's children.
        "referrers": None if details.get("referrers") is None else list(details["referrers"]),
        "children": [entry.get("digest") for entry in details.get("platforms") or [] if isinstance(entry, dict)],
    }


def _distinct_size(tags):
    """Bytes of the distinct layers plus each distinct image's manifests and config (its size minus its layers)."""
    layers = {}
    overhead = {}
    for tag in tags:
        if tag["error"] or not tag["digest"]:
            continue
        for digest, size in tag["layers"]:
            layers[digest] = size
        overhead[tag["digest"]] = max(0, tag["size"] - sum(size for _digest, size in tag["layers"]))
    return layers, overhead


def _images(repository):
    """Tags that describe an image, grouped by digest: [(digest, [tags...]), ...] in tag order."""
    groups = {}
    for tag in repository["tags"]:
        if not tag["error"] and tag["digest"]:
            groups.setdefault(tag["digest"], []).append(tag)
    return list(groups.items())


def _finding(kind, severity, repository, message, tags=(), digest=None, rule=None, check=None):
    return {
        "kind": kind,
        "severity": severity,
        "repository": repository,
        "tags": [tag["tag"] for tag in tags],
        "digest": digest,
        "rule": rule,
        "check": check,
        "message": message,
    }


def _image_name(repository, tags):
    """``dev/app:1.0 (also latest)``: an image by its first tag, naming the other tags on the same digest."""
    others = [tag["tag"] for tag in tags[1:]]
    return "%s:%s%s" % (repository, tags[0]["tag"], " (also %s)" % ", ".join(others) if others else "")


def _check_image(image_tags, max_age, max_size, required_labels):
    """The failed checks of one image: [(check, detail)], for the settings that are set."""
    first = image_tags[0]
    failed = []
    if max_age is not None and first["age_seconds"] is not None and first["age_seconds"] > max_age:
        built = "built %s ago (%s)" % (_human_duration(first["age_seconds"]), first["created"])
        failed.append(("max_age", "%s, more than %s" % (built, _format_duration(max_age))))
    if max_size is not None and first["size"] > max_size:
        failed.append(("max_size", "%s, more than %s" % (_human_size(first["size"]), _human_size(max_size))))
    missing = [label for label in required_labels if label not in first["labels"]]
    if missing:
        failed.append(("required_labels", "missing labels %s" % ", ".join(missing)))
    return failed


def _check_entry(entry):
    """An entry of the input, refused unless it is a dictionary with a name."""
    if not isinstance(entry, dict) or "name" not in entry:
        raise AnsibleFilterError("each repository must be a dictionary with a name, got %r" % (entry,))
    return entry


def _repository_report(entry, moment, latest_tag):
    """One repository of the report: its tags described, its size with shared blobs counted once, its dates."""
    raw_tags = entry.get("tags") or []
    if any(not isinstance(tag, dict) for tag in raw_tags):
        raise AnsibleFilterError(
            "repository %r lists tag names, not image details: run registry_info with details: true" % entry["name"]
        )
    described = sorted((_describe_tag(tag, moment) for tag in raw_tags), key=lambda tag: str(tag["tag"]))
    # Attachment tags (sha256-<hex>, and cosign's .sig, .att, .sbom) are not images of their own: they are listed
    # with their subject, and none of the image findings (stale, labels, rules, latest) applies to them.
    tags = [tag for tag in described if parse_attachment_tag(str(tag["tag"])) is None]
    attached = [tag for tag in described if parse_attachment_tag(str(tag["tag"])) is not None]
    layers, overhead = _distinct_size(tags)
    attachment_layers, attachment_overhead = _distinct_size(attached)
    created = sorted(tag["created"] for tag in tags if parse_time(tag["created"]) is not None)
    # What the repository stores: its images and their attachments, shared blobs once.
    stored_layers = dict(attachment_layers, **layers)
    stored_overhead = dict(attachment_overhead, **overhead)
    size = sum(stored_layers.values()) + sum(stored_overhead.values())
    repository = {
        "name": entry["name"],
        "tags": tags,
        "attachments": [_describe_attachment(tag) for tag in attached],
        "size": size,
        "size_human": format_size(size),
        "images": len(overhead),
        "signed_images": None,
        "has_latest": any(tag["tag"] == latest_tag for tag in tags),
        "newest": max(created, key=parse_time) if created else None,
        "oldest": min(created, key=parse_time) if created else None,
    }
    _count_signatures(repository, attached)
    return repository, stored_layers, stored_overhead


def _describe_attachment(tag):
    """An attachment tag as the report lists it: what it is and which digest it names as its subject."""
    subject, kind = parse_attachment_tag(str(tag["tag"]))
    return {
        "tag": tag["tag"],
        "digest": tag["digest"],
        "kind": kind or REFERRERS_INDEX,
        "subject": subject,
        "subject_tags": [],
        "size": tag["size"],
        "size_human": tag["size_human"],
        "orphaned": False,
        "error": tag["error"],
        "children": tag["children"],
        "referrers": tag["referrers"],
    }


def is_signature_referrer(referrer):
    """Whether an entry of registry_info's ``referrers`` is a signature: a cosign ``.sig`` image, or a sigstore bundle
    that is not an attestation (its ``dev.sigstore.bundle.predicateType``, when it says, is cosign's signature one)."""
    artifact_type = referrer.get("artifact_type")
    if artifact_type == COSIGN_SIGNATURE:
        return True
    if not is_sigstore_bundle_media_type(artifact_type):
        return False
    predicate_type = (referrer.get("annotations") or {}).get(BUNDLE_PREDICATE_TYPE_ANNOTATION)
    return predicate_type is None or predicate_type == COSIGN_SIGN_PREDICATE_TYPE


def _count_signatures(repository, attached):
    """Each tag's ``signatures``: the signatures naming its digest, when its attachments were read (else None).

    A ``.sig`` image holds one signature per layer, as ``cosign tree`` counts them; its layers are known when its tag
    was described with the others (else it counts once). A sigstore bundle is one signature.
    """
    sig_layers = {tag["digest"]: len(tag["layers"]) for tag in attached if tag["digest"] and not tag["error"]}
    signed = set()
    for tag in repository["tags"]:
        if tag["referrers"] is None:
            continue
        count = 0
        for referrer in tag["referrers"]:
            if referrer.get("subject") != tag["digest"] or not is_signature_referrer(referrer):
                continue
            count += max(1, sig_layers.get(referrer.get("digest"), 1)) if referrer.get("via") == "cosign_tag" else 1
        tag["signatures"] = count
        if count:
            signed.add(tag["digest"])
    if any(tag["signatures"] is not None for tag in repository["tags"]):
        repository["signed_images"] = len(signed)


def _missing_repository_finding(name):
    message = (
        "%s does not exist in the registry: check the name (and that these credentials may see it); it is left out"
        " of the report" % name
    )
    return _finding("missing_repository", "error", name, message)


def _built_in_findings(repository, stale_seconds, required, require_latest, latest_tag):
    """The findings every report has: empty repositories, unreadable tags, no latest, stale images, missing labels."""
    name, tags = repository["name"], repository["tags"]
    findings = []
    if not tags:
        attachments = len(repository["attachments"])
        besides = " besides %d attachment tag(s)" % attachments if attachments else ""
        findings.append(_finding("empty_repository", "info", name, "%s has no tags%s" % (name, besides)))
    for tag in tags:
        if tag["error"]:
            message = "%s:%s could not be described: %s" % (name, tag["tag"], tag["error"])
            findings.append(_finding("unreadable_tag", "error", name, message, tags=[tag]))
    if require_latest and tags and not repository["has_latest"]:
        findings.append(_finding("missing_latest", "info", name, "%s has no %r tag" % (name, latest_tag)))
    for digest, image_tags in _images(repository):
        label = _image_name(name, image_tags)
        for check, detail in _check_image(image_tags, stale_seconds, None, required):
            if check == "max_age":
                for tag in image_tags:
                    tag["stale"] = True
                message = "%s is stale: %s" % (label, detail)
                findings.append(_finding("stale", "warning", name, message, image_tags, digest))
            else:
                message = "%s: %s" % (label, detail)
                findings.append(_finding("missing_labels", "warning", name, message, image_tags, digest))
    return findings


def _signature_findings(repository, patterns):
    """``unsigned``: an image of a repository that must be signed (one of ``patterns``) without a signature."""
    name = repository["name"]
    matched = [pattern for pattern in patterns if fnmatchcase(name, pattern)]
    if not matched:
        return []
    findings = []
    for digest, image_tags in _images(repository):
        if any(tag["signatures"] is None for tag in image_tags):
            raise AnsibleFilterError(
                "signed_repositories names %s, but the attachments of %s:%s were not read: run registry_info with"
                " referrers: true (and details: true)" % (name, name, image_tags[0]["tag"])
            )
        if image_tags[0]["signatures"]:
            continue
        message = "%s is not signed: no cosign signature or sigstore bundle names %s (signed_repositories: %s)" % (
            _image_name(name, image_tags),
            digest,
            ", ".join(matched),
        )
        findings.append(_finding("unsigned", "error", name, message, image_tags, digest))
    return findings


def _attachment_findings(repository):
    """``orphaned_attachment``: an attachment tag whose subject is no image of the repository (nor a child of one, nor
    another attachment). Not judged when a tag could not be described: its digest, a subject maybe, is unknown."""
    name = repository["name"]
    every = repository["tags"] + repository["attachments"]
    if any(tag["error"] for tag in every):
        return []
    known = {tag["digest"] for tag in every if tag["digest"]}
    for tag in every:
        known.update(tag["children"])
        known.update(referrer.get("digest") for referrer in tag["referrers"] or [])
    findings = []
    for attachment in repository["attachments"]:
        if attachment["subject"] in known:
            continue
        attachment["orphaned"] = True
        message = (
            "%s:%s is a %s of %s, which is not in %s (no tag points at it or at an index holding it): delete it, for"
            " example with registry_repo's retention orphans: true"
            % (name, attachment["tag"], _ATTACHMENT_NAMES[attachment["kind"]], attachment["subject"], name)
        )
        findings.append(_finding("orphaned_attachment", "warning", name, message, [attachment], attachment["digest"]))
    return findings


def _link_attachments(repository):
    """Each attachment's ``subject_tags``: the tags (or attachment tags) on its subject."""
    by_digest = {}
    for tag in repository["tags"] + repository["attachments"]:
        if tag["digest"]:
            by_digest.setdefault(tag["digest"], []).append(tag["tag"])
    for attachment in repository["attachments"]:
        attachment["subject_tags"] = list(by_digest.get(attachment["subject"], []))


def _rule_findings(repository, rule):
    """The findings of one of the user's rules in one repository."""
    name, tags = repository["name"], repository["tags"]
    if rule["repository"] is not None and not rule["repository"].fullmatch(name):
        return []
    findings = []
    selected = [tag for tag in tags if rule["tag"] is None or rule["tag"].fullmatch(str(tag["tag"]))]
    if rule["max_tags"] is not None and len(selected) > rule["max_tags"]:
        message = "%s has %d tags%s, more than %d (rule %r)" % (
            name,
            len(selected),
            "" if rule["tag"] is None else " matching %r" % rule["tag"].pattern,
            rule["max_tags"],
            rule["name"],
        )
        findings.append(_finding("rule", rule["severity"], name, message, rule=rule["name"], check="max_tags"))
    selected_names = {tag["tag"] for tag in selected}
    for digest, image_tags in _images(repository):
        image_tags = [tag for tag in image_tags if tag["tag"] in selected_names]
        if not image_tags:
            continue
        label = _image_name(name, image_tags)
        for check, detail in _check_image(image_tags, rule["max_age"], rule["max_size"], rule["required_labels"]):
            message = "%s breaks rule %r: %s" % (label, rule["name"], detail)
            findings.append(_finding("rule", rule["severity"], name, message, image_tags, digest, rule["name"], check))
    return findings


def _report_time(now):
    if now in (None, ""):
        return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    moment = parse_time(now)
    if moment is None:
        raise AnsibleFilterError("now %r is not a time: use ISO 8601, for example 2025-01-31T12:00:00Z" % (now,))
    return moment


def _summary(repositories, findings, all_layers, all_overhead):
    counts = {severity: 0 for severity in SEVERITIES}
    kinds = {}
    for finding in findings:
        counts[finding["severity"]] += 1
        kinds[finding["kind"]] = kinds.get(finding["kind"], 0) + 1
    size = sum(all_layers.values()) + sum(all_overhead.values())
    counted = [repository for repository in repositories if repository["signed_images"] is not None]
    signed = {
        (repository["name"], tag["digest"]) for repository in counted for tag in repository["tags"] if tag["signatures"]
    }
    images = {(repository["name"], digest) for repository in counted for digest, _tags in _images(repository)}
    return {
        "repositories": len(repositories),
        "tags": sum(len(repository["tags"]) for repository in repositories),
        "attachments": sum(len(repository["attachments"]) for repository in repositories),
        "images": len({digest for repository in repositories for digest, _tags in _images(repository)}),
        # Images of each repository whose attachments were read, with and without a signature there.
        "signed_images": len(signed) if counted else None,
        "unsigned_images": len(images - signed) if counted else None,
        "size": size,
        "size_human": format_size(size),
        "findings": counts,
        "kinds": kinds,
    }


def _pattern_list(value, what):
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError(
            "%s must be a list of repository name patterns (such as 'prod/*'), got %r" % (what, value)
        )
    if any(not isinstance(pattern, str) or not pattern for pattern in value):
        raise AnsibleFilterError("%s: every pattern must be a non-empty string, got %r" % (what, list(value)))
    return list(value)


def _checked_settings(
    now, stale_after, required_labels, require_latest, latest_tag, rules, signed_repositories, orphaned_attachments
):
    """Every setting of a report checked and normalised: the one validation, before any repository is looked at."""
    if not isinstance(orphaned_attachments, bool):
        raise AnsibleFilterError("orphaned_attachments must be true or false, got %r" % (orphaned_attachments,))
    return {
        "signed_repositories": _pattern_list(signed_repositories, "signed_repositories"),
        "orphaned_attachments": orphaned_attachments,
        "moment": _report_time(now),
        "stale_after": stale_after or None,
        "stale_seconds": None if stale_after in (None, "") else parse_duration(stale_after, "stale_after"),
        "required_labels": _label_list(required_labels, "required_labels"),
        "require_latest": bool(require_latest),
        "latest_tag": latest_tag,
        "rules": normalise_rules(rules),
    }


def _recorded_settings(settings):
    """The settings as the report records them: patterns as text, durations in seconds, sizes in bytes."""
    return {
        "stale_after": settings["stale_after"],
        "stale_after_seconds": settings["stale_seconds"],
        "required_labels": settings["required_labels"],
        "require_latest": settings["require_latest"],
        "latest_tag": settings["latest_tag"],
        "signed_repositories": settings["signed_repositories"],
        "orphaned_attachments": settings["orphaned_attachments"],
        "rules": [
            dict(
                rule,
                repository=None if rule["repository"] is None else rule["repository"].pattern,
                tag=None if rule["tag"] is None else rule["tag"].pattern,
            )
            for rule in settings["rules"]
        ],
    }


def audit_settings(settings):
    """Filter body: ``{'stale_after': ..., 'rules': [...]} | ocireg.registry.audit_settings`` -> recorded settings.

    Checks the settings exactly as ``audit_report`` does (it is the same code), without any repository.
    """
    if not isinstance(settings, dict):
        raise AnsibleFilterError(
            "audit_settings expects a dictionary of audit_report's options (%s), got %s"
            % (", ".join(DEFAULT_SETTINGS), type(settings).__name__)
        )
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise AnsibleFilterError(
            "audit_settings: unknown settings %s; allowed: %s" % (", ".join(unknown), ", ".join(DEFAULT_SETTINGS))
        )
    return _recorded_settings(_checked_settings(**dict(DEFAULT_SETTINGS, **settings)))


def audit_report(
    repositories,
    now=DEFAULT_SETTINGS["now"],
    stale_after=DEFAULT_SETTINGS["stale_after"],
    required_labels=DEFAULT_SETTINGS["required_labels"],
    require_latest=DEFAULT_SETTINGS["require_latest"],
    latest_tag=DEFAULT_SETTINGS["latest_tag"],
    rules=DEFAULT_SETTINGS["rules"],
    signed_repositories=DEFAULT_SETTINGS["signed_repositories"],
    orphaned_attachments=DEFAULT_SETTINGS["orphaned_attachments"],
):
    """Filter body: ``registry_info.repositories | ocireg.registry.audit_report(...)`` -> report dict."""
    if not isinstance(repositories, (list, tuple)):
        raise AnsibleFilterError(
            "audit_report expects the 'repositories' list of registry_info (with details: true), got %s"
            % type(repositories).__name__
        )
    settings = _checked_settings(
        now, stale_after, required_labels, require_latest, latest_tag, rules, signed_repositories, orphaned_attachments
    )

    report_repositories, findings, all_layers, all_overhead = [], [], {}, {}
    for entry in sorted((_check_entry(entry) for entry in repositories), key=lambda item: str(item["name"])):
        if entry.get("exists", True) is False:
            findings.append(_missing_repository_finding(entry["name"]))
            continue
        repository, layers, overhead = _repository_report(entry, settings["moment"], settings["latest_tag"])
        all_layers.update(layers)
        all_overhead.update(overhead)
        report_repositories.append(repository)
        findings.extend(
            _built_in_findings(
                repository,
                settings["stale_seconds"],
                settings["required_labels"],
                settings["require_latest"],
                settings["latest_tag"],
            )
        )
        for rule in settings["rules"]:
            findings.extend(_rule_findings(repository, rule))
        findings.extend(_signature_findings(repository, settings["signed_repositories"]))
        if settings["orphaned_attachments"]:
            findings.extend(_attachment_findings(repository))
        _link_attachments(repository)

    for repository in report_repositories:
        for tag in repository["tags"]:
            del tag["layers"], tag["age_seconds"], tag["referrers"], tag["children"]
        for attachment in repository["attachments"]:
            del attachment["referrers"], attachment["children"]
    rank = {severity: position for position, severity in enumerate(SEVERITIES)}
    findings.sort(key=lambda item: (rank[item["severity"]], item["repository"], item["kind"], item["tags"]))
    return {
        "generated_at": _format_time(settings["moment"]),
        "settings": _recorded_settings(settings),
        "summary": _summary(report_repositories, findings, all_layers, all_overhead),
        "repositories": report_repositories,
        "findings": findings,
    }


class FilterModule:
    """Registers the ``audit_report`` filter."""

    def filters(self):
        return {"audit_report": audit_report}

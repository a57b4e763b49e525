# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention rules for a repository's tags: pure logic, no registry.

A tag is deleted only when every rule that is set allows it:

- ``match``: the tag name matches one of these regular expressions (default: every tag);
- ``keep``: the tag name matches none of these;
- ``keep_last``: the tag's image is not among the N newest images of the tags left by ``match`` and ``keep``;
- ``older_than``: the tag's image was created longer ago than this.

Patterns use Python ``re.fullmatch``: ``v1`` matches the tag ``v1`` only, not ``v10`` or ``dev1``; write
``v1.*`` for a prefix. ``keep_last`` counts images (distinct digests), so all tags of a kept image stay.
An image without a readable creation time sorts as the oldest for ``keep_last``, and is never old enough
for ``older_than``: an age rule only deletes what it can show is old.

What to delete is then turned into requests by :func:`plan_deletions`: a digest whose tags all go is deleted
once by digest; a tag whose digest something else still needs is removed on its own (the safe untag).

Every tag gets a :class:`Reason`: a stable code (the rule that decided, ``state=absent`` or ``no_retention``) and
a sentence; :func:`tag_outcomes` adds how a deleted tag goes, and is what ``registry_repo`` returns as ``tags``.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_index
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import OLDEST, UTC, parse_duration
from ansible_collections.ocireg.registry.plugins.module_utils._ops.image_ages import ImageAges
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import Untagger

RETENTION_RULES = ("keep_last", "keep", "match", "older_than")


def compile_patterns(values: object, option: str) -> tuple[re.Pattern, ...]:
    """Compile a list of regular expressions; the error names the option, the pattern and what is wrong."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InvalidInputError("Option %s must be a list of regular expressions, got %r." % (option, values))
    patterns = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(
                "Option %s must hold non-empty regular expressions (strings), got %r." % (option, value)
            )
        try:
            patterns.append(re.compile(value))
        except re.error as err:
            raise InvalidInputError("Invalid regular expression %r in %s: %s." % (value, option, err)) from None
    return tuple(patterns)


def parse_keep_last(value: object, option: str = "retention.keep_last") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("Option %s must be a whole number, 0 or more, got %r." % (option, value))
    return value


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """Validated retention rules; an unset rule (None) allows every deletion."""

    keep_last: int | None = None
    keep: tuple[re.Pattern, ...] = ()
    match: tuple[re.Pattern, ...] | None = None
    older_than: datetime.timedelta | None = None
    older_than_text: str | None = None  # as the task wrote it (``1w3d``), for the reasons

    @classmethod
    def from_options(cls, options: Mapping[str, Any], option: str = "retention") -> RetentionPolicy:
        """The policy from the module's ``retention`` dict. Every bad value is named in one error."""
        if not isinstance(options, Mapping):
            raise InvalidInputError(
                "Option %s must be a dictionary of %s, got %r." % (option, ", ".join(RETENTION_RULES), options)
            )
        unknown = sorted(str(key) for key in options if key not in RETENTION_RULES)
        problems = []
        if unknown:
            problems.append(
                "Option %s has unknown rule%s %s; the rules are %s."
                % (option, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(RETENTION_RULES))
            )
        if all(options.get(rule) is None for rule in RETENTION_RULES):
            problems.append(
                "Option %s sets no rule: set at least one of %s (to delete every tag, use state=absent)."
                % (option, ", ".join(RETENTION_RULES))
            )
        values: dict[str, Any] = {}
        parsers = {
            "keep_last": lambda value: parse_keep_last(value, option + ".keep_last"),
            "keep": lambda value: compile_patterns(value, option + ".keep"),
            "match": lambda value: compile_patterns(value, option + ".match"),
            "older_than": lambda value: parse_duration(value, option + ".older_than"),
        }
        for rule, parse in parsers.items():
            if options.get(rule) is None:
                continue
            try:
                values[rule] = parse(options[rule])
            except InvalidInputError as err:
                problems.append(str(err))
        if problems:
            raise InvalidInputError(" ".join(problems) + " Nothing was deleted.")
        if "older_than" in values:
            values["older_than_text"] = str(options["older_than"]).strip()
        return cls(**values)

    @property
    def needs_age(self) -> bool:
        """Whether deciding needs the images' creation times (and so their manifests and configs)."""
        return self.keep_last is not None or self.older_than is not None

    def is_considered(self, tag: str) -> bool:
        return self.match is None or any(pattern.fullmatch(tag) for pattern in self.match)

    def is_kept(self, tag: str) -> bool:
        return any(pattern.fullmatch(tag) for pattern in self.keep)

    def candidates(self, tags: Iterable[str]) -> list[str]:
        """The tags that ``match`` considers and ``keep`` does not protect: the only ones ages matter for."""
        return [tag for tag in tags if self.is_considered(tag) and not self.is_kept(tag)]

    def name_reason(self, tag: str) -> Reason | None:
        """Why ``match`` or ``keep`` keeps ``tag`` whatever its image; None for a candidate."""
        if not self.is_considered(tag):
            patterns = ", ".join(repr(pattern.pattern) for pattern in self.match or ())
            return Reason("match", "matches no pattern of match (%s)" % (patterns or "an empty list"))
        kept_by = next((pattern for pattern in self.keep if pattern.fullmatch(tag)), None)
        if kept_by is not None:
            return Reason("keep", "matches the keep pattern %r" % kept_by.pattern)
        return None

    @property
    def deciding_rule(self) -> str:
        """The code of a deletion: the first of older_than, keep_last, match and keep that is set, the narrowest rule
        that let the tag go (keep only lets a tag go by not protecting it)."""
        if self.older_than is not None:
            return "older_than"
        if self.keep_last is not None:
            return "keep_last"
        return "match" if self.match is not None else "keep"


@dataclasses.dataclass(frozen=True)
class Reason:
    """Why a tag goes or stays: ``code`` is stable (a rule's name, ``unknown_age``, ``state=absent`` or
    ``no_retention``); ``text`` says it in words, naming the pattern, the count or the time."""

    code: str
    text: str


STATE_ABSENT = Reason("state=absent", "state=absent deletes every tag")
NO_RETENTION = Reason("no_retention", "no retention is set, so nothing is deleted")


@dataclasses.dataclass(frozen=True)
class TaggedImage:
    """A tag, the digest it points at, and that image's creation time (None: unknown)."""

    tag: str
    digest: str
    created: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class RetentionDecision:
    """What the rules decided: ``reasons`` says, for every tag, why it goes or stays."""

    doomed: frozenset
    reasons: Mapping[str, Reason]
    unknown_age: tuple[str, ...] = ()  # candidates spared by older_than only because their age is unknown


def decide(
    policy: RetentionPolicy, images: Sequence[TaggedImage], now: datetime.datetime | None = None
) -> RetentionDecision:
    """Which tags the policy deletes. Deterministic: the same tags, digests and times give the same answer.

    ``keep_last`` ranks the distinct images of the candidate tags by creation time, newest first; images
    without one come last, and ties are broken by digest so that check mode and a real run agree.
    """
    now = now or datetime.datetime.now(UTC)
    reasons: dict[str, Reason] = {}
    candidates: list[TaggedImage] = []
    for image in images:
        reason = policy.name_reason(image.tag)
        if reason is not None:
            reasons[image.tag] = reason
        else:
            candidates.append(image)

    newest: set[str] = set()
    if policy.keep_last is not None and policy.keep_last > 0:
        created: dict[str, datetime.datetime | None] = {}
        for image in candidates:
            created[image.digest] = image.created
        ranked = sorted(created, key=lambda digest: (created[digest] or OLDEST, digest), reverse=True)
        newest = set(ranked[: policy.keep_last])

    cutoff = _cutoff(now, policy.older_than)
    older_than = policy.older_than_text or "older_than"
    doomed = set()
    unknown_age = []
    for image in candidates:
        when = "created %s" % _moment(image.created) if image.created is not None else "of unknown creation time"
        if image.digest in newest:
            text = "its image (%s) is among the %d newest (keep_last)" % (when, policy.keep_last)
            reasons[image.tag] = Reason("keep_last", text)
        elif policy.older_than is not None and image.created is None:
            text = "its image has no readable creation time, so it is not older than %s (older_than)" % older_than
            reasons[image.tag] = Reason("unknown_age", text)
            unknown_age.append(image.tag)
        elif policy.older_than is not None and (cutoff is None or image.created >= cutoff):
            text = "its image was %s, not longer ago than %s (older_than)" % (when, older_than)
            reasons[image.tag] = Reason("older_than", text)
        else:
            reasons[image.tag] = Reason(policy.deciding_rule, _deletion_text(policy, image, older_than))
            doomed.add(image.tag)
    return RetentionDecision(frozenset(doomed), reasons, tuple(sorted(unknown_age)))


def _deletion_text(policy: RetentionPolicy, image: TaggedImage, older_than: str) -> str:
    """Every rule that is set, and how it lets the tag go."""
    parts = []
    if policy.match is not None:
        pattern = next(pattern for pattern in policy.match if pattern.fullmatch(image.tag))
        parts.append("matches the match pattern %r" % pattern.pattern)
    if policy.keep:
        parts.append("matches no keep pattern")
    if policy.keep_last:
        parts.append("its image is not among the %d newest (keep_last)" % policy.keep_last)
    elif policy.keep_last is not None:
        parts.append("keep_last is 0, so no image is kept by count")
    if policy.older_than is not None and image.created is not None:
        parts.append("its image was created %s, longer ago than %s (older_than)" % (_moment(image.created), older_than))
    return "; ".join(parts)


def _moment(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cutoff(now: datetime.datetime, older_than: datetime.timedelta | None) -> datetime.datetime | None:
    """Images created before this are old enough; None: nothing is (the duration reaches past year 1)."""
    if older_than is None:
        return None
    try:
        return now - older_than
    except OverflowError:
        return None


@dataclasses.dataclass(frozen=True)
class DeletionPlan:
    """The requests a retention or ``state=absent`` run makes, and the tag sets before and after."""

    delete_digests: tuple[str, ...]  # each removes every tag on it, all of them doomed; indexes first
    untag: tuple[str, ...]  # removed one by one: a surviving tag or index still needs their digest
    deleted_tags: tuple[str, ...]
    kept_tags: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.deleted_tags)


def plan_deletions(
    current: Mapping[str, str],
    doomed: Iterable[str],
    protected: Set[str] = frozenset(),
    indexes: Set[str] = frozenset(),
) -> DeletionPlan:
    """Turn doomed tags into requests.

    ``current`` is tag -> digest of every tag in the repository. A digest is deleted by digest only when
    every tag on it is doomed and it is not in ``protected`` (the manifests that surviving indexes refer
    to); one ``DELETE`` then removes all its tags. Other doomed tags are untagged one at a time, leaving
    their image to the tags (or indexes) that still use it. Digests in ``indexes`` are deleted first, so an
    interrupted run never leaves an index whose children are gone.
    """
    doomed = set(doomed) & set(current)
    tags_by_digest: dict[str, list[str]] = {}
    for tag, digest in current.items():
        tags_by_digest.setdefault(digest, []).append(tag)
    delete_digests = []
    untag = []
    for digest, tags in tags_by_digest.items():
        going = [tag for tag in tags if tag in doomed]
        if not going:
            continue
        if len(going) == len(tags) and digest not in protected:
            delete_digests.append(digest)
        else:
            untag.extend(going)
    delete_digests.sort(key=lambda digest: (digest not in indexes, digest))
    return DeletionPlan(
        delete_digests=tuple(delete_digests),
        untag=tuple(sorted(untag)),
        deleted_tags=tuple(sorted(doomed)),
        kept_tags=tuple(sorted(set(current) - doomed)),
    )


def tag_outcomes(
    plan: DeletionPlan,
    digests: Mapping[str, str],
    reasons: Mapping[str, Reason],
    needed_by: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """What happens to each tag of ``plan``, sorted by tag: ``registry_repo``'s ``tags`` (its RETURN documentation).

    ``digests`` is tag -> digest of the tags that were read (a tag no rule could delete may not have been: its
    digest is None); ``reasons`` has every tag's :class:`Reason`; ``needed_by`` is digest -> the kept index tags
    that refer to it, for the tags that are untagged because an index needs their image.
    """
    deleted = set(plan.deleted_tags)
    untag = set(plan.untag)
    tags_by_digest: dict[str, list[str]] = {}
    for tag in sorted(digests):
        tags_by_digest.setdefault(digests[tag], []).append(tag)
    outcomes = []
    for tag in sorted(deleted | set(plan.kept_tags)):
        reason = reasons[tag]
        detail = reason.text
        removed_by = None
        if tag in untag:
            removed_by = "untag"
            sharing = [other for other in tags_by_digest[digests[tag]] if other not in deleted]
            indexes = (needed_by or {}).get(digests[tag], ())
            if sharing:
                detail += "; removed on its own: its image stays for the kept tag %s" % ", ".join(sharing)
            elif indexes:
                detail += "; removed on its own: its image stays for the kept index %s" % ", ".join(indexes)
            else:
                detail += "; removed on its own: a kept index refers to its image, which stays"
        elif tag in deleted:
            removed_by = "digest"
            others = [other for other in tags_by_digest[digests[tag]] if other != tag]
            detail += "; its image is deleted by digest%s" % (", with " + ", ".join(others) if others else "")
        outcomes.append(
            {
                "tag": tag,
                "digest": digests.get(tag),
                "action": "deleted" if tag in deleted else "kept",
                "reason": reason.code,
                "detail": detail,
                "removed_by": removed_by,
            }
        )
    return outcomes


def tag_set_diff(plan: DeletionPlan, outcomes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Ansible ``diff``: the repository's tag names before and after, and (``prepared``) each tag's reason."""
    diff: dict[str, Any] = {
        "before": {"tags": sorted(plan.kept_tags + plan.deleted_tags)},
        "after": {"tags": list(plan.kept_tags)},
    }
    if outcomes:
        diff["prepared"] = "".join(
            "%s %s (%s): %s\n" % (outcome["action"], outcome["tag"], outcome["reason"], outcome["detail"])
            for outcome in outcomes
        )
    return diff


# ----------------------------------------------------------------------------------------------------
# A registry_repo task


class RepositoryRetention:
    """Plans a repository's deletions with reads only; then (outside check mode) deletes by digest and untags.

    ``state`` is ``present``, where the ``retention`` options (None: no rules, nothing goes) decide, or ``absent``,
    where every tag goes. Warnings for the user collect in :attr:`warnings`.
    """

    def __init__(
        self, client: Any, repository: Reference, state: str, retention: Mapping[str, Any] | None, concurrency: int
    ):
        if retention is not None and state == "absent":
            raise InvalidInputError(
                "Option retention only applies to state=present; state=absent deletes every image in %s."
                % repository.name
            )
        self.client = client
        self.repository = repository
        self.state = state
        self.policy = RetentionPolicy.from_options(retention) if retention is not None else None
        self.concurrency = concurrency
        self.name = repository.repository
        self.ages = ImageAges(client, self.name, concurrency)
        self.exists = False
        self.current: dict[str, Descriptor] = {}
        self.plan = DeletionPlan((), (), (), ())
        self.reasons: dict[str, Reason] = {}  # tag -> why it goes or stays
        self.needed_by: dict[str, list[str]] = {}  # digest -> the kept index tags that refer to it
        self.warnings: list[str] = []
        self.deleted_digests: list[str] = []  # progress of apply(), for a failure halfway
        self.deleted_tags: list[str] = []
        self._progress_lock = threading.Lock()
        self._untagger = Untagger(client, self.name)  # learns once per task what the registry can delete

    # -- planning (reads only) --------------------------------------------------------------------

    def make_plan(self, now: datetime.datetime | None = None) -> DeletionPlan:
        tags = self._list_tags()
        self.exists = bool(tags)
        if self.state == "present" and (self.policy is None or not self.policy.candidates(tags)):
            # No tag is both matched and not kept: none can go, and nothing but the tag list needs reading.
            policy = self.policy
            self.reasons = {tag: (policy.name_reason(tag) if policy else None) or NO_RETENTION for tag in tags}
            self.plan = DeletionPlan((), (), (), tuple(tags))
            return self.plan
        age_tags = set(self.policy.candidates(tags)) if self.policy is not None and self.policy.needs_age else set()
        read = map_concurrently(lambda tag: self.ages.read_tag(tag, tag in age_tags), tags, self.concurrency)
        self.current = {tag: descriptor for tag, descriptor in zip(tags, read) if descriptor is not None}
        digests = {tag: descriptor.digest for tag, descriptor in self.current.items()}
        indexes = {descriptor.digest for descriptor in self.current.values() if is_index(descriptor.media_type)}
        if self.policy is None:  # state=absent
            self.reasons = {tag: STATE_ABSENT for tag in digests}
            self.plan = plan_deletions(digests, digests, indexes=indexes)
            return self.plan
        created = self.ages.created({digests[tag] for tag in age_tags if tag in digests})
        decision = decide(
            self.policy, [TaggedImage(tag, digest, created.get(digest)) for tag, digest in digests.items()], now
        )
        self.reasons = dict(decision.reasons)
        if decision.unknown_age:
            self.warnings.append(
                "older_than kept %d tag(s) of %s because their images have no readable creation time: %s"
                % (len(decision.unknown_age), self.repository.name, ", ".join(decision.unknown_age))
            )
        self.plan = plan_deletions(digests, decision.doomed, indexes=indexes)
        if self.plan.delete_digests:
            surviving = {digests[tag] for tag in digests if tag not in decision.doomed} & indexes
            protected = self.ages.children_of(surviving)
            if protected & set(self.plan.delete_digests):
                self.plan = plan_deletions(digests, decision.doomed, protected=protected, indexes=indexes)
                self.needed_by = self._index_tags_needing(surviving, digests, decision.doomed)
        return self.plan

    def check_deletes(self) -> None:
        """For a dry run of a plan that deletes: find out, as a real run would before its first change, whether the
        registry deletes at all (one ``DELETE`` that changes nothing), so that check mode fails where the real run
        would instead of previewing deletions it cannot make."""
        if self.plan.changed:
            self._untagger.check_deletes({tag: self.current[tag] for tag in self.plan.deleted_tags})

    def _index_tags_needing(
        self, indexes: Set[str], digests: Mapping[str, str], doomed: Set[str]
    ) -> dict[str, list[str]]:
        """digest -> the kept tags of ``indexes`` that refer to it (their manifests were read by children_of)."""
        needed_by: dict[str, list[str]] = {}
        for tag in sorted(digests):
            index = self.ages.manifests.get(digests[tag])
            if tag in doomed or digests[tag] not in indexes or index is None:
                continue
            for child in index.manifests:
                needed_by.setdefault(child.digest, []).append(tag)
        return needed_by

    def _list_tags(self) -> list[str]:
        try:
            tags = sorted(set(self.client.list_tags(self.name)))
        except NotFoundError:
            self.warnings.append(
                "Repository %s does not exist, so there is nothing to delete. If you expected tags there, check its"
                " name and the registry." % self.repository.name
            )
            return []
        if not tags:
            self.warnings.append(
                "Repository %s has no tags, so there is nothing to delete. If you expected tags there, check its"
                " name and the registry." % self.repository.name
            )
        return tags

    # -- applying ---------------------------------------------------------------------------------

    def apply(self) -> None:
        self._each(self._delete_digest, list(self.plan.delete_digests))
        self._each(self._untag, list(self.plan.untag))

    def _each(self, function: Callable[[str], None], items: list[str]) -> None:
        """The first item alone (it performs the auth handshake for the write scopes), the rest concurrently."""
        if items:
            function(items[0])
            map_concurrently(function, items[1:], self.concurrency)

    def _delete_digest(self, digest: str) -> None:
        try:
            self.client.delete_manifest(self.name, digest)
        except NotFoundError:
            pass  # already gone: the goal is reached
        tags = [tag for tag, descriptor in self.current.items() if descriptor.digest == digest]
        with self._progress_lock:
            self.deleted_digests.append(digest)
            self.deleted_tags.extend(tags)

    def _untag(self, tag: str) -> None:
        if self.deleted_digests:
            self._untagger.deletes_work()  # the registry answered a delete by digest already: no need to check
        self._untagger.remove(tag, self.current[tag])
        with self._progress_lock:
            self.deleted_tags.append(tag)

    # -- results ----------------------------------------------------------------------------------

    def outcomes(self) -> list[dict[str, Any]]:
        digests = {tag: descriptor.digest for tag, descriptor in self.current.items()}
        return tag_outcomes(self.plan, digests, self.reasons, self.needed_by)

    def result(self) -> dict[str, Any]:
        outcomes = self.outcomes()
        return {
            "changed": self.plan.changed,
            "exists": self.exists,
            "deleted_tags": list(self.plan.deleted_tags),
            "kept_tags": list(self.plan.kept_tags),
            "deleted_digests": sorted(self.plan.delete_digests),
            "tags": outcomes,
            "diff": tag_set_diff(self.plan, outcomes),
        }

    def failure(self, error: RegistryError) -> dict[str, Any]:
        """``fail_json`` arguments for an error halfway through :meth:`apply`: what was deleted, and what was not."""
        done_tags = sorted(set(self.deleted_tags))
        left = [tag for tag in self.plan.deleted_tags if tag not in set(done_tags)]
        message = "%s. Deleted before the failure: %s; not deleted: %s." % (
            str(error).rstrip("."),
            ", ".join(done_tags) or "nothing",
            ", ".join(left) or "nothing",
        )
        return {
            "msg": message,
            "changed": bool(done_tags),
            "exists": self.exists,
            "deleted_tags": done_tags,
            "kept_tags": sorted(set(self.plan.kept_tags) | set(left)),
            "deleted_digests": sorted(self.deleted_digests),
        }

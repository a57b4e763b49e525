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

Attachments (``attachments: follow``, the default; :func:`follow_attachments`): the tags that name an image's digest
(the referrers fallback tag ``sha256-<hex>``, cosign's ``sha256-<hex>.sig``, ``.att`` and ``.sbom``) are never
candidates of the rules. They stay while their subject stays, and go when it goes, with the referrers that only a
fallback index or the referrers API names (no tag of their own), and with their own attachments in turn (a loop guard
stops cycles). ``orphans: true`` also deletes the attachments whose subject no longer exists. Deleting runs in stages
(:class:`DeletionStage`), each finished before the next starts, deepest first: an image's attachments, then its
fallback index, then the image itself. So an interrupted run never leaves an attachment whose subject is gone, and the
fallback index that lists a referrer stays until that referrer is gone, which lets the next run find what is left and
finish. A ``keep`` pattern still protects an attachment tag, whatever its subject.
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
    RegistryResponseError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, ManifestInfo
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import is_index
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference, is_digest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import (
    COSIGN_ATTESTATION,
    COSIGN_SBOM,
    COSIGN_SIGNATURE,
    artifact_type_of,
    fallback_tag,
    parse_attachment_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import OLDEST, UTC, parse_duration
from ansible_collections.ocireg.registry.plugins.module_utils._ops.image_ages import ImageAges
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import Untagger

RETENTION_RULES = ("keep_last", "keep", "match", "older_than")
RETENTION_OPTIONS = RETENTION_RULES + ("attachments", "orphans")
FOLLOW = "follow"  # attachments follow their subject
IGNORE = "ignore"  # attachment tags are tags like any other (the behaviour before referrers were known)
ATTACHMENT_MODES = (FOLLOW, IGNORE)


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
    attachments: str = FOLLOW
    orphans: bool = False
    orphans_only: bool = False  # no rule is set, only orphans: nothing but orphaned attachments goes

    @classmethod
    def from_options(cls, options: Mapping[str, Any], option: str = "retention") -> RetentionPolicy:
        """The policy from the module's ``retention`` dict. Every bad value is named in one error."""
        if not isinstance(options, Mapping):
            raise InvalidInputError(
                "Option %s must be a dictionary of %s, got %r." % (option, ", ".join(RETENTION_RULES), options)
            )
        unknown = sorted(str(key) for key in options if key not in RETENTION_OPTIONS)
        problems = []
        if unknown:
            problems.append(
                "Option %s has unknown rule%s %s; the rules are %s (and the options attachments and orphans)."
                % (option, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(RETENTION_RULES))
            )
        values: dict[str, Any] = {}
        attachments = FOLLOW if options.get("attachments") is None else options["attachments"]
        orphans = False if options.get("orphans") is None else options["orphans"]
        if attachments not in ATTACHMENT_MODES:
            problems.append(
                "Option %s.attachments must be one of %s, got %r." % (option, ", ".join(ATTACHMENT_MODES), attachments)
            )
        elif not isinstance(orphans, bool):
            problems.append("Option %s.orphans must be true or false, got %r." % (option, orphans))
        elif orphans and attachments == IGNORE:
            problems.append(
                "Option %s.orphans needs %s.attachments=follow: with ignore, attachment tags are tags like any other,"
                " and none of them is an orphan." % (option, option)
            )
        else:
            values.update(attachments=attachments, orphans=orphans)
        if all(options.get(rule) is None for rule in RETENTION_RULES) and orphans is not True:
            problems.append(
                "Option %s sets no rule: set at least one of %s (to delete every tag, use state=absent; to delete"
                " only attachments whose image is gone, orphans: true)." % (option, ", ".join(RETENTION_RULES))
            )
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
        values["orphans_only"] = all(options.get(rule) is None for rule in RETENTION_RULES)
        if "older_than" in values:
            values["older_than_text"] = str(options["older_than"]).strip()
        return cls(**values)

    @property
    def needs_age(self) -> bool:
        """Whether deciding needs the images' creation times (and so their manifests and configs)."""
        return self.keep_last is not None or self.older_than is not None

    @property
    def has_rules(self) -> bool:
        """Whether a rule is set; without one (``orphans: true`` alone) no tag is a candidate."""
        return not self.orphans_only

    @property
    def follows_attachments(self) -> bool:
        return self.attachments == FOLLOW

    def is_considered(self, tag: str) -> bool:
        if not self.has_rules:
            return False
        return self.match is None or any(pattern.fullmatch(tag) for pattern in self.match)

    def is_kept(self, tag: str) -> bool:
        return any(pattern.fullmatch(tag) for pattern in self.keep)

    def candidates(self, tags: Iterable[str]) -> list[str]:
        """The tags that ``match`` considers and ``keep`` does not protect: the only ones ages matter for."""
        return [tag for tag in tags if self.is_considered(tag) and not self.is_kept(tag)]

    def name_reason(self, tag: str) -> Reason | None:
        """Why ``match`` or ``keep`` keeps ``tag`` whatever its image; None for a candidate."""
        if not self.has_rules:
            return ORPHANS_ONLY
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
ORPHANS_ONLY = Reason("no_retention", "no rule of retention is set: only attachments whose subject is gone are deleted")


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
class DeletionStage:
    """Requests that may run together: deletes by digest, then untags. A stage ends before the next one starts."""

    delete_digests: tuple[str, ...] = ()
    untag: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DeletionPlan:
    """The requests a retention or ``state=absent`` run makes, and the tag sets before and after."""

    delete_digests: tuple[str, ...]  # each removes every tag on it, all of them doomed; in the order they go
    untag: tuple[str, ...]  # removed one by one: a surviving tag or index still needs their digest
    deleted_tags: tuple[str, ...]
    kept_tags: tuple[str, ...]
    stages: tuple[DeletionStage, ...] = ()  # delete_digests and untag in the order they run (empty: one stage)

    @property
    def changed(self) -> bool:
        return bool(self.deleted_tags or self.delete_digests)

    @property
    def ordered_stages(self) -> tuple[DeletionStage, ...]:
        if self.stages:
            return self.stages
        return (DeletionStage(self.delete_digests, self.untag),) if self.changed else ()


def plan_deletions(
    current: Mapping[str, str],
    doomed: Iterable[str],
    protected: Set[str] = frozenset(),
    indexes: Set[str] = frozenset(),
    untagged: Iterable[str] = (),
    ranks: Mapping[str, int] | None = None,
) -> DeletionPlan:
    """Turn doomed tags into requests.

    ``current`` is tag -> digest of every tag in the repository. A digest is deleted by digest only when
    every tag on it is doomed and it is not in ``protected`` (the manifests that surviving indexes refer
    to); one ``DELETE`` then removes all its tags. Other doomed tags are untagged one at a time, leaving
    their image to the tags (or indexes) that still use it. ``untagged`` are manifests without a tag that go by
    digest too (referrers that only a fallback index or the referrers API names), unless protected.

    The order: ``ranks`` (digest -> rank, 0 unless given; :func:`follow_attachments` gives an attachment a lower rank
    than its subject) puts lower ranks first, each rank a stage of its own. Within a rank, digests in ``indexes`` go
    first, in a stage of their own, so an interrupted run never leaves an index whose children are gone; then the
    other digests, then the untags of that rank.
    """
    doomed = set(doomed) & set(current)
    ranks = ranks or {}
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
    delete_digests.extend(
        digest for digest in sorted(set(untagged)) if digest not in tags_by_digest and digest not in protected
    )

    def order(digest: str) -> tuple[int, bool, str]:
        return ranks.get(digest, 0), digest not in indexes, digest

    delete_digests.sort(key=order)
    stages: dict[tuple[int, int], tuple[list[str], list[str]]] = {}
    for digest in delete_digests:
        stages.setdefault((ranks.get(digest, 0), 0 if digest in indexes else 1), ([], []))[0].append(digest)
    for tag in sorted(untag):
        stages.setdefault((ranks.get(current[tag], 0), 1), ([], []))[1].append(tag)
    return DeletionPlan(
        delete_digests=tuple(delete_digests),
        untag=tuple(sorted(untag)),
        deleted_tags=tuple(sorted(doomed)),
        kept_tags=tuple(sorted(set(current) - doomed)),
        stages=tuple(DeletionStage(tuple(digests), tuple(tags)) for _key, (digests, tags) in sorted(stages.items())),
    )


# ----------------------------------------------------------------------------------------------------
# Attachments: what goes with an image (retention.attachments: follow, state=absent)

ATTACHMENT = "attachment"  # the reason code of an attachment that stays or goes with its subject
ORPHAN = "orphan"  # the reason code of an attachment deleted because its subject no longer exists
VIA_FALLBACK_TAG = "fallback_tag"
VIA_API = "api"
_KIND_NAMES = {
    COSIGN_SIGNATURE: "cosign signature",
    COSIGN_ATTESTATION: "cosign attestation",
    COSIGN_SBOM: "cosign SBOM",
    None: "referrers fallback index",
}


def attachment_tags(tags: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """tag -> (subject digest, cosign kind or None for a fallback index) of the attachment tags among ``tags``."""
    found = {}
    for tag in tags:
        parsed = parse_attachment_tag(tag)
        if parsed is not None:
            found[tag] = parsed
    return found


@dataclasses.dataclass
class AttachmentFacts:
    """What the registry has answered so far, for :func:`follow_attachments`; each question is asked once."""

    manifests: Mapping[str, ManifestInfo | None] = dataclasses.field(default_factory=dict)  # None: missing/unreadable
    missing: Set[str] = frozenset()  # of those, the ones the registry does not have (404)
    referrers: Mapping[str, Sequence[Descriptor] | None] = dataclasses.field(default_factory=dict)  # the API's answers
    exists: Mapping[str, bool] = dataclasses.field(default_factory=dict)  # subject -> found by a HEAD (orphans)

    @property
    def api_served(self) -> bool | None:
        """Whether the registry serves the referrers API (None: not asked yet)."""
        if any(answer is None for answer in self.referrers.values()):
            return False
        return True if self.referrers else None


@dataclasses.dataclass(frozen=True)
class AttachmentReads:
    """What :func:`follow_attachments` needs to know before it can decide; the caller asks, then calls it again."""

    surviving_indexes: tuple[str, ...] = ()  # their children are protected: an unreadable one fails the task
    manifests: tuple[str, ...] = ()  # fallback indexes, deleted indexes, referrers (which subject they name)
    referrers: tuple[str, ...] = ()  # subjects to ask the referrers API about
    subjects: tuple[str, ...] = ()  # subjects to HEAD by digest: does the subject of an attachment still exist?

    def __bool__(self) -> bool:
        return bool(self.surviving_indexes or self.manifests or self.referrers or self.subjects)


@dataclasses.dataclass(frozen=True)
class FoundReferrer:
    """A referrer without a tag of its own, found in a fallback index or through the referrers API."""

    digest: str
    subject: str
    via: str  # VIA_FALLBACK_TAG or VIA_API
    tag: str | None  # the fallback tag whose index lists it
    artifact_type: str | None
    deleted: bool
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        """An entry of ``registry_repo``'s ``referrers`` (its RETURN documentation)."""
        return {
            "digest": self.digest,
            "subject": self.subject,
            "artifact_type": self.artifact_type,
            "via": self.via,
            "tag": self.tag,
            "action": "deleted" if self.deleted else "kept",
            "reason": self.reason.code,
            "detail": self.reason.text,
        }


@dataclasses.dataclass(frozen=True)
class AttachmentPlan:
    """What goes once attachments follow their subjects: the input of :func:`plan_deletions`."""

    doomed: frozenset  # every tag that goes: the rules' (or state=absent's), and the attachments'
    protected: frozenset  # what surviving indexes refer to, fallback indexes of kept images included
    surviving_indexes: frozenset
    untagged: tuple[str, ...]  # referrers without a tag that go by digest
    ranks: Mapping[str, int]  # digest -> its deletion rank: an attachment's is lower than its subject's
    reasons: Mapping[str, Reason]  # for each attachment tag that follows its subject
    referrers: tuple[FoundReferrer, ...]
    reads: AttachmentReads = AttachmentReads()


@dataclasses.dataclass(frozen=True)
class _Found:
    subject: str
    via: str
    tag: str | None
    descriptor: Descriptor


def follow_attachments(
    current: Mapping[str, str],
    doomed: Iterable[str],
    attachments: Mapping[str, tuple[str, str | None]],
    indexes: Set[str] = frozenset(),
    facts: AttachmentFacts | None = None,
    *,
    orphans: bool = False,
    api: bool = True,
    absent: bool = False,
) -> AttachmentPlan:
    """Which attachments go with the images that go. Pure: what it needs to read it asks for in ``reads``.

    ``current`` is tag -> digest of every tag; ``doomed`` the tags the rules delete (with ``absent``, every tag);
    ``attachments`` the attachment tags that follow their subject (:func:`attachment_tags`, less those ``keep``
    protects), tag -> (subject, kind); ``indexes`` the digests that are indexes. ``api``: ask the referrers API too.

    A subject leaves when its manifest is deleted (every tag on it goes and no surviving index refers to it), when it
    is a platform image of an index that is deleted (and nothing else keeps it), when it is a referrer that goes, and,
    with ``orphans``, when a ``HEAD`` finds it gone. When a subject leaves, its attachment tags go, and so do the
    referrers that its fallback index lists or the referrers API names, whatever has no tag of its own (a referrer
    listed in a fallback index only when its manifest names that subject). That repeats until nothing more goes: a
    referrer's own attachments go with it, and a loop stops because each digest is taken once.

    A surviving index protects what it lists, so it is read (strictly: ``surviving_indexes``) before anything that
    depends on it, with one exception that saves nothing but strictness and order: an index that only attachment tags
    point at (a fallback index) is read as a survivor only if it still survives once its subject's fate is known; when
    its subject leaves, it goes too, and is read (``manifests``) for the referrers it lists.
    """
    follower = _Follower(current, doomed, attachments, indexes, facts or AttachmentFacts(), api)
    strict = follower.settle()
    if strict:  # nothing can be decided safely before these are read
        return _unfinished(AttachmentReads(surviving_indexes=strict))
    return follower.plan(orphans=orphans, absent=absent)


class _Follower:
    """The state of one :func:`follow_attachments`: the tags that go and the referrers found only grow, so it ends."""

    def __init__(
        self,
        current: Mapping[str, str],
        doomed: Iterable[str],
        attachments: Mapping[str, tuple[str, str | None]],
        indexes: Set[str],
        facts: AttachmentFacts,
        api: bool,
    ):
        self.current = current
        self.doomed = set(doomed) & set(current)
        self.attachments = attachments
        self.indexes = set(indexes)
        self.facts = facts
        self.api = api
        self.tagged = set(current.values())
        self.subject_key = {tag: tag.split(".", 1)[0] for tag in attachments}  # the fallback tag of its subject
        self.found: dict[str, _Found] = {}
        self.gone = {subject for subject, exists in facts.exists.items() if not exists}
        self.wanted_manifests: set[str] = set()
        self.wanted_api: set[str] = set()
        self.unnamed_subjects = any(subject not in self.tagged for subject, _kind in attachments.values())
        self.fallback_indexes = {current[tag] for tag, (_subject, kind) in attachments.items() if kind is None}
        ordinary_digests = {digest for tag, digest in current.items() if tag not in attachments}
        self.deferrable = self.indexes - ordinary_digests  # only attachment tags point at these: they may go too
        self.kept_digests: set[str] = set()
        self.surviving: set[str] = set()
        self.verified: set[str] = set()
        self.protected: set[str] = set()
        self.platforms: dict[str, str] = {}  # platform image of an index that goes -> that index
        self.leaving: set[str] = set()
        self.leaving_by_key: dict[str, str] = {}
        self.candidates: set[str] = set()
        self.edges: dict[str, set[str]] = {}  # subject -> the digests attached to it, as far as known
        self.parent: dict[str, str] = {}  # digest of an attachment -> its subject

    def settle(self) -> tuple[str, ...]:
        """Grow the tags that go and the referrers found until nothing more goes. Returns the surviving indexes that
        must be read first (strictly), or nothing."""
        while True:
            unread = self._survey()
            early = tuple(index for index in unread if index not in self.deferrable)
            if early:
                return early
            self._find_leaving()
            grew = self._doom_attachment_tags()
            grew = self._find_referrers() or grew
            if not grew:
                return unread  # the fallback indexes that survive after all: their referrers are protected

    def _survey(self) -> tuple[str, ...]:
        """What stays and what may go in this round; the surviving indexes not read yet (none matter without
        candidates), whose protection is left out until they are read."""
        self.edges = self._attachment_edges()
        self.kept_digests = {digest for tag, digest in self.current.items() if self._keeps(tag)}
        self.surviving = self.kept_digests & self.indexes
        self.verified = {digest for digest, entry in self.found.items() if _names_subject(digest, entry, self.facts)}
        self.candidates = ({self.current[tag] for tag in self.doomed} - self.kept_digests) | self.verified
        self.protected = set()
        if not self.candidates:
            return ()
        unread = tuple(sorted(index for index in self.surviving if self.facts.manifests.get(index) is None))
        for index in self.surviving.difference(unread):
            subjects = {subject for tag, (subject, _kind) in self.attachments.items() if self.current[tag] == index}
            self.protected.update(
                child.digest
                for child in self.facts.manifests[index].manifests  # type: ignore[union-attr]
                if index not in self.deferrable or not any(self._attached_below(child.digest, s) for s in subjects)
            )
        return unread

    def _keeps(self, tag: str) -> bool:
        """Whether ``tag`` keeps its digest. An attachment never keeps its own subject (or what that is attached to):
        a tag ``sha256-<hex>.sig`` on the very digest it names would otherwise hold it, and itself, forever."""
        if tag in self.doomed:
            return False
        return tag not in self.attachments or not self._attached_below(self.current[tag], self.attachments[tag][0])

    def _attachment_edges(self) -> dict[str, set[str]]:
        """subject -> what is attached to it: the digests of its attachment tags, and the entries of its fallback index
        (once read)."""
        edges: dict[str, set[str]] = {}
        for tag, (subject, kind) in self.attachments.items():
            edges.setdefault(subject, set()).add(self.current[tag])
            info = self.facts.manifests.get(self.current[tag]) if kind is None else None
            edges[subject].update(child.digest for child in (info.manifests if info is not None else ()))
        return edges

    def _attached_below(self, digest: str, subject: str) -> bool:
        """Whether ``subject`` is ``digest`` or is attached to it, directly or through other attachments. Then an
        attachment of ``subject`` must not keep ``digest``: a bogus or looping referrer would keep its own image. Each
        digest is visited once, so a loop ends."""
        seen: set[str] = set()
        todo = [digest]
        while todo:
            current = todo.pop()
            if current == subject:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(self.edges.get(current, ()))
        return False

    def _find_leaving(self) -> None:
        """The subjects that leave: deleted manifests, the platform images of an index that goes (garbage
        collection's, but their attachments go), referrers that go, and orphans' subjects that are gone."""
        going = self.candidates - self.protected
        self.platforms = {}
        if self.unnamed_subjects or self.facts.api_served:
            for index in sorted((going & self.indexes) - self.fallback_indexes):  # a fallback index lists referrers
                if index not in self.facts.manifests:
                    self.wanted_manifests.add(index)
                    continue
                info = self.facts.manifests[index]
                for child in info.manifests if info is not None else ():
                    if child.digest not in self.kept_digests and child.digest not in self.protected:
                        self.platforms.setdefault(child.digest, index)
        self.leaving = going | set(self.platforms) | self.gone
        self.leaving_by_key = {fallback_tag(digest): digest for digest in sorted(self.leaving)}

    def _doom_attachment_tags(self) -> bool:
        grew = False
        for tag in sorted(self.attachments):
            if tag not in self.doomed and self.subject_key[tag] in self.leaving_by_key:
                self.doomed.add(tag)
                grew = True
        return grew

    def _find_referrers(self) -> bool:
        """The referrers without a tag of the subjects that leave: in their fallback index, from the API."""
        grew = False
        for subject in sorted(self.leaving):
            index_tag = fallback_tag(subject)
            listed: Sequence[Descriptor] = ()
            if index_tag in self.current:
                index = self.current[index_tag]
                if index not in self.facts.manifests:
                    self.wanted_manifests.add(index)
                elif self.facts.manifests[index] is not None:
                    listed = self.facts.manifests[index].manifests  # type: ignore[union-attr]
            grew = self._take(subject, listed, VIA_FALLBACK_TAG, index_tag) or grew
            if self.api and self.facts.api_served is not False:
                if subject not in self.facts.referrers and (self.facts.api_served or not self.wanted_api):
                    self.wanted_api.add(subject)  # until the registry has said whether it serves the API, one at a time
                grew = self._take(subject, self.facts.referrers.get(subject) or (), VIA_API, None) or grew
        self.wanted_manifests.update(
            digest
            for digest, entry in self.found.items()
            if entry.via == VIA_FALLBACK_TAG and digest not in self.facts.manifests
        )
        return grew

    def _take(self, subject: str, listed: Iterable[Descriptor], via: str, tag: str | None) -> bool:
        """Remember the referrers among ``listed`` that have no tag and were not found before (each digest once)."""
        grew = False
        for child in listed:
            if child.digest not in self.tagged and child.digest not in self.found and child.digest != subject:
                self.found[child.digest] = _Found(subject, via, tag, child)
                grew = True
        return grew

    def _orphan_heads(self) -> tuple[str, ...]:
        """The subjects to ``HEAD``: those of attachment tags that nothing here accounts for."""
        heads = set()
        for tag, (subject, _kind) in sorted(self.attachments.items()):
            known = subject in self.tagged or subject in self.found or subject in self.leaving
            known = known or subject in self.protected
            if tag not in self.doomed and not known and subject not in self.facts.exists and is_digest(subject):
                heads.add(subject)
        return tuple(sorted(heads))

    def _ranks(self) -> dict[str, int]:
        """Deepest first. An attachment at depth d (its subject at d - 1; an image is at 0) has rank -2d; a fallback
        index goes right after the referrers it lists (-2d + 1) and before its subject (-2d + 2)."""
        parent: dict[str, str] = {}
        is_fallback_index: dict[str, bool] = {}
        for tag in sorted(self.doomed & set(self.attachments)):
            if self.subject_key[tag] in self.leaving_by_key and self.current[tag] != self.attachments[tag][0]:
                parent.setdefault(self.current[tag], self.leaving_by_key[self.subject_key[tag]])
                is_fallback_index.setdefault(self.current[tag], self.attachments[tag][1] is None)
        for digest, entry in self.found.items():
            parent.setdefault(digest, entry.subject)
        self.parent = parent
        return {digest: -2 * _depth(digest, parent) + (1 if is_fallback_index.get(digest) else 0) for digest in parent}

    def plan(self, orphans: bool, absent: bool) -> AttachmentPlan:
        reads = AttachmentReads(
            manifests=tuple(sorted(self.wanted_manifests)),
            referrers=tuple(sorted(self.wanted_api)),
            subjects=self._orphan_heads() if orphans else (),
        )
        ranks = self._ranks()
        context = _Context(
            self.current,
            self.doomed,
            self.kept_digests,
            self.protected,
            self.platforms,
            self.found,
            self.gone,
            self.parent,
            self.facts,
        )
        reasons = {tag: context.tag_reason(tag, *self.attachments[tag], absent=absent) for tag in self.attachments}
        deleted = self.verified - self.protected
        referrers = tuple(
            context.referrer(digest, entry, digest in deleted, absent=absent)
            for digest, entry in sorted(self.found.items(), key=lambda item: (item[1].subject, item[0]))
            if digest not in self.facts.missing
        )
        return AttachmentPlan(
            doomed=frozenset(self.doomed),
            protected=frozenset(self.protected),
            surviving_indexes=frozenset(self.surviving),
            untagged=tuple(sorted(deleted)),
            ranks=ranks,
            reasons=reasons,
            referrers=referrers,
            reads=reads,
        )


def _resting(subject: str, kind: str | None) -> Reason:
    """The reason of an attachment tag when no tag can go, and so no subject either (nothing was read)."""
    return Reason(
        ATTACHMENT, "the %s of %s: an attachment stays while its subject stays" % (_KIND_NAMES[kind], subject)
    )


def _unfinished(reads: AttachmentReads) -> AttachmentPlan:
    return AttachmentPlan(frozenset(), frozenset(), frozenset(), (), {}, {}, (), reads)


def _names_subject(digest: str, entry: _Found, facts: AttachmentFacts) -> bool:
    """Whether a referrer may go with ``entry.subject``: the API named it, or its manifest names that subject (a
    fallback index is only what some client wrote)."""
    if entry.via == VIA_API:
        return True
    info = facts.manifests.get(digest)
    return info is not None and info.subject is not None and info.subject.digest == entry.subject


def _depth(digest: str, parent: Mapping[str, str]) -> int:
    """How many subjects lie above ``digest``; a loop counts each digest once."""
    seen = {digest}
    depth = 0
    while digest in parent and parent[digest] not in seen:
        digest = parent[digest]
        seen.add(digest)
        depth += 1
    return depth


@dataclasses.dataclass
class _Context:
    """What the reasons of :func:`follow_attachments` are worded from."""

    current: Mapping[str, str]
    doomed: Set[str]
    kept_digests: Set[str]
    protected: Set[str]
    platforms: Mapping[str, str]  # platform image of an index that goes -> that index
    found: Mapping[str, _Found]
    gone: Set[str]
    parent: Mapping[str, str]
    facts: AttachmentFacts

    def describe(self, subject: str, stays: bool) -> str:
        """``subject``, and what it is: its tags (the kept ones, when it stays), or how it was reached."""
        tags = sorted(tag for tag, digest in self.current.items() if digest == subject)
        if stays:
            tags = [tag for tag in tags if tag not in self.doomed]
        if tags:
            return "%s (%s %s)" % (subject, "tags" if len(tags) > 1 else "tag", ", ".join(tags))
        if subject in self.platforms:
            index_tags = sorted(tag for tag, digest in self.current.items() if digest == self.platforms[subject])
            return "%s (in the index %s)" % (subject, ", ".join(index_tags) or self.platforms[subject])
        if subject in self.found:
            return "%s (a referrer of %s)" % (subject, self.found[subject].subject)
        return subject

    def root_is_gone(self, subject: str) -> bool:
        seen = set()
        while subject in self.parent and subject not in seen:
            seen.add(subject)
            subject = self.parent[subject]
        return subject in self.gone

    def going_text(self, subject: str) -> tuple[str, str]:
        """The code and the words for an attachment of ``subject``, which goes."""
        if subject in self.gone:
            return ORPHAN, "which no longer exists (orphans)"
        if self.root_is_gone(subject):
            return ORPHAN, "which goes: its own subject no longer exists (orphans)"
        return ATTACHMENT, "which goes: an attachment goes with its subject, before it"

    def tag_reason(self, tag: str, subject: str, kind: str | None, absent: bool) -> Reason:
        what = "the %s of" % _KIND_NAMES[kind]
        if absent:
            return Reason(STATE_ABSENT.code, "%s; %s %s" % (STATE_ABSENT.text, what, self.describe(subject, False)))
        if tag in self.doomed:
            code, words = self.going_text(subject)
            return Reason(code, "%s %s, %s" % (what, self.describe(subject, False), words))
        if subject in self.kept_digests:
            words = "which stays: an attachment stays while its subject stays"
        elif subject in self.protected:
            words = "which a kept index refers to: an attachment stays while its subject stays"
        elif self.facts.exists.get(subject):
            words = "which exists, without a tag: an attachment stays while its subject exists"
        else:
            words = (
                "which no tag of the repository points at: it stays (orphans: true deletes the attachments whose"
                " subject no longer exists)"
            )
        return Reason(ATTACHMENT, "%s %s, %s" % (what, self.describe(subject, True), words))

    def referrer(self, digest: str, entry: _Found, deleted: bool, absent: bool) -> FoundReferrer:
        if entry.via == VIA_FALLBACK_TAG:
            what = "the referrer listed in the fallback index %s of %s" % (
                entry.tag,
                self.describe(entry.subject, False),
            )
        else:
            what = "the referrer the referrers API names for %s" % self.describe(entry.subject, False)
        info = self.facts.manifests.get(digest)
        artifact_type = entry.descriptor.artifact_type or (artifact_type_of(info) if info is not None else None)
        if deleted and absent:
            reason = Reason(STATE_ABSENT.code, "%s; %s; deleted by digest" % (STATE_ABSENT.text, what))
        elif deleted:
            code, words = self.going_text(entry.subject)
            reason = Reason(code, "%s, %s; deleted by digest" % (what, words))
        elif digest in self.protected:
            reason = Reason(ATTACHMENT, "%s; it stays: a kept index refers to it" % what)
        elif info is None:
            reason = Reason(ATTACHMENT, "%s; it stays: its manifest cannot be read" % what)
        elif info.subject is None:
            reason = Reason(ATTACHMENT, "%s; it stays: its manifest names no subject" % what)
        else:
            reason = Reason(
                ATTACHMENT, "%s; it stays: its manifest names another subject, %s" % (what, info.subject.digest)
            )
        return FoundReferrer(digest, entry.subject, entry.via, entry.tag, artifact_type, deleted, reason)


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


def tag_set_diff(
    plan: DeletionPlan, outcomes: Sequence[Mapping[str, Any]] = (), referrers: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Ansible ``diff``: the repository's tag names before and after, and (``prepared``) each tag's reason, then each
    referrer's that has no tag (``registry_repo``'s ``referrers``)."""
    diff: dict[str, Any] = {
        "before": {"tags": sorted(plan.kept_tags + plan.deleted_tags)},
        "after": {"tags": list(plan.kept_tags)},
    }
    lines = [
        "%s %s (%s): %s\n" % (outcome["action"], outcome["tag"], outcome["reason"], outcome["detail"])
        for outcome in outcomes
    ]
    lines += [
        "%s referrer %s (%s): %s\n" % (entry["action"], entry["digest"], entry["reason"], entry["detail"])
        for entry in referrers
    ]
    if lines:
        diff["prepared"] = "".join(lines)
    return diff


# ----------------------------------------------------------------------------------------------------
# A registry_repo task


class RepositoryRetention:
    """Plans a repository's deletions with reads only; then (outside check mode) deletes by digest and untags.

    ``state`` is ``present``, where the ``retention`` options (None: no rules, nothing goes) decide, or ``absent``,
    where every tag goes. Attachments follow their subjects (:func:`follow_attachments`) with ``state=absent`` and
    unless ``retention.attachments`` is ``ignore``. Warnings for the user collect in :attr:`warnings`.
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
        self.referrers: tuple[FoundReferrer, ...] = ()  # referrers without a tag of their own, found on the way
        self.needed_by: dict[str, list[str]] = {}  # digest -> the kept index tags that refer to it
        self.warnings: list[str] = []
        self.deleted_digests: list[str] = []  # progress of apply(), for a failure halfway
        self.deleted_tags: list[str] = []
        self._api_answers: dict[str, tuple[Descriptor, ...] | None] = {}  # subject -> the referrers API's answer
        self._subject_exists: dict[str, bool] = {}  # subject -> found by a HEAD (orphans)
        self._progress_lock = threading.Lock()
        self._untagger = Untagger(client, self.name)  # learns once per task what the registry can delete

    @property
    def follows_attachments(self) -> bool:
        return self.state == "absent" or (self.policy is not None and self.policy.follows_attachments)

    # -- planning (reads only) --------------------------------------------------------------------

    def make_plan(self, now: datetime.datetime | None = None) -> DeletionPlan:
        tags = self._list_tags()
        self.exists = bool(tags)
        policy = self.policy
        attachments = attachment_tags(tags) if self.follows_attachments else {}
        # keep protects an attachment tag too: such a tag is an ordinary (kept) one
        following = {tag: parsed for tag, parsed in attachments.items() if policy is None or not policy.is_kept(tag)}
        ordinary = [tag for tag in tags if tag not in following]
        if self.state == "present" and (
            policy is None or not (policy.candidates(ordinary) or (policy.orphans and following))
        ):
            # No tag is both matched and not kept (and no orphan is looked for): none can go, and nothing but the tag
            # list needs reading.
            self.reasons = {tag: (policy.name_reason(tag) if policy else None) or NO_RETENTION for tag in ordinary}
            self.reasons.update({tag: _resting(*parsed) for tag, parsed in following.items()})
            self.plan = DeletionPlan((), (), (), tuple(tags))
            return self.plan
        age_tags = set(policy.candidates(ordinary)) if policy is not None and policy.needs_age else set()
        read = map_concurrently(lambda tag: self.ages.read_tag(tag, tag in age_tags), tags, self.concurrency)
        self.current = {tag: descriptor for tag, descriptor in zip(tags, read) if descriptor is not None}
        digests = {tag: descriptor.digest for tag, descriptor in self.current.items()}
        indexes = {descriptor.digest for descriptor in self.current.values() if is_index(descriptor.media_type)}
        if policy is None:  # state=absent
            doomed: Set[str] = set(digests)
            self.reasons = {tag: STATE_ABSENT for tag in digests}
        else:
            created = self.ages.created({digests[tag] for tag in age_tags if tag in digests})
            decision = decide(
                policy,
                [TaggedImage(tag, digests[tag], created.get(digests[tag])) for tag in ordinary if tag in digests],
                now,
            )
            doomed = decision.doomed
            self.reasons = dict(decision.reasons)
            if decision.unknown_age:
                self.warnings.append(
                    "older_than kept %d tag(s) of %s because their images have no readable creation time: %s"
                    % (len(decision.unknown_age), self.repository.name, ", ".join(decision.unknown_age))
                )
        followed = self._follow(digests, doomed, {tag: following[tag] for tag in following if tag in digests}, indexes)
        self.reasons.update(followed.reasons)
        self.referrers = followed.referrers
        self.plan = plan_deletions(
            digests,
            followed.doomed,
            protected=followed.protected,
            indexes=indexes,
            untagged=followed.untagged,
            ranks=followed.ranks,
        )
        if followed.protected and self.plan.untag:
            self.needed_by = self._index_tags_needing(followed.surviving_indexes, digests, followed.doomed)
        return self.plan

    def _follow(
        self,
        digests: Mapping[str, str],
        doomed: Set[str],
        following: Mapping[str, tuple[str, str | None]],
        indexes: Set[str],
    ) -> AttachmentPlan:
        """:func:`follow_attachments`, asked again after each of its reads until it needs none. Each round reads only
        what no round read before, so it ends; a round that asks only what was asked before fails the task rather than
        loop (an answer that settles nothing, such as an index that reads as nothing). Without following attachments,
        this only reads the surviving indexes (when something goes by digest), whose children must not be deleted."""
        orphans = self.policy is not None and self.policy.orphans
        asked: list[AttachmentReads] = []
        while True:
            facts = AttachmentFacts(self.ages.manifests, self.ages.missing, self._api_answers, self._subject_exists)
            followed = follow_attachments(
                digests,
                doomed,
                following,
                indexes,
                facts,
                orphans=orphans,
                api=self.follows_attachments,
                absent=self.state == "absent",
            )
            if not followed.reads:
                return followed
            if followed.reads in asked:  # answered before and asked again: reading it again would loop forever
                raise RegistryResponseError(
                    "Could not settle which attachments go with the images of %s: the registry's answers about %s"
                    " do not settle. Nothing was deleted." % (self.repository.name, followed.reads)
                )
            asked.append(followed.reads)
            self._read(followed.reads)

    def _read(self, reads: AttachmentReads) -> None:
        if reads.surviving_indexes:
            self.ages.children_of(reads.surviving_indexes)
        if reads.manifests:
            self.ages.read_manifests(reads.manifests)
        subjects = list(reads.referrers)
        answers = map_concurrently(lambda digest: self.client.referrers(self.name, digest), subjects, self.concurrency)
        for subject, answer in zip(subjects, answers):
            self._api_answers[subject] = None if answer is None else tuple(answer.manifests)
        subjects = list(reads.subjects)
        found = map_concurrently(
            lambda digest: self.client.head_manifest(self.name, digest), subjects, self.concurrency
        )
        self._subject_exists.update((subject, descriptor is not None) for subject, descriptor in zip(subjects, found))

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
        """Stage after stage (:attr:`DeletionPlan.stages`): an attachment is gone before its subject goes."""
        for stage in self.plan.ordered_stages:
            self._each(self._delete_digest, list(stage.delete_digests))
            self._each(self._untag, list(stage.untag))

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
        referrers = [referrer.to_dict() for referrer in self.referrers]
        return {
            "changed": self.plan.changed,
            "exists": self.exists,
            "deleted_tags": list(self.plan.deleted_tags),
            "kept_tags": list(self.plan.kept_tags),
            "deleted_digests": sorted(self.plan.delete_digests),
            "tags": outcomes,
            "referrers": referrers,
            "diff": tag_set_diff(self.plan, outcomes, referrers),
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

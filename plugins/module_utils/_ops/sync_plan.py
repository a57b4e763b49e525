# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``registry_sync`` decides for each tag, before and without any request: pure logic.

- :func:`parse_version` and :func:`parse_range`: semantic versions (semver 2.0) and npm-style ranges over them.
- :class:`TagFilter`: ``match``, ``exclude``, ``semver`` and ``latest`` applied to a source's tag list. It asks for
  image ages (a callable, which costs manifest and config reads) only when ``latest`` has to order by ``created``.
- :func:`triage` and :func:`compare`: per tag, from the tag lists and the ``HEAD`` digests, ``copy``, ``unchanged``
  or ``skipped``; :func:`triage` says which tags need the ``HEAD`` at all, so ``existing: keep`` and ``immutable``
  cost nothing per present tag.
- :func:`plan_prune`: destination tags the selected source set no longer has, with the safety refusals.
- :class:`CopyBudget`: ``max_copies`` and ``time_budget``, which copies may still start and which are deferred.

Semver choices. A tag is a version when it is ``MAJOR.MINOR.PATCH`` with an optional ``-prerelease`` and
``+build`` exactly as semver 2.0 writes them (no leading zeros), after an optional ``v`` or ``V``: ``1.2`` and
``latest`` are not versions and never match a range. Precedence is semver 2.0's (build metadata ignored; a
pre-release sorts before its release; numeric identifiers numerically, below alphanumeric ones). A range is one or
more comparator sets joined by ``||``; a set is comparators separated by spaces, all of which must hold:
``>=1.2 <2``, ``^1.2``, ``~1.2.3``, ``1.x``, ``1.2.*``, ``*``, ``=1.2.3``, ``1.2.3``, with npm's meaning for
partial versions (``<2`` is ``<2.0.0``, ``>1.2`` is ``>=1.3.0``, ``1.2`` is ``1.2.x``). As in npm, a pre-release
tag matches only a set that names a pre-release of the same ``MAJOR.MINOR.PATCH`` (``>=2.0.0-rc.1`` admits
``2.0.0-rc.2`` but not ``2.1.0-rc.1``); otherwise pre-releases are left out.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import is_attachment_tag
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import OLDEST, parse_time
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import compile_patterns

COPY = "copy"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
PRUNE = "prune"
DEFERRED = "deferred"
EXISTING_MODES = ("update", "keep")
DEFAULT_PRUNE_LIMIT = 100

_NUMBER = r"(?:0|[1-9][0-9]*)"
_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_PRE = r"(?P<pre>I(?:\.I)*)".replace("I", _IDENTIFIER)
_BUILD = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = re.compile(
    r"[vV]?(?P<major>N)\.(?P<minor>N)\.(?P<patch>N)".replace("N", _NUMBER) + r"(?:-" + _PRE + r")?(?:\+" + _BUILD + ")?"
)
_WILD = r"(?:0|[1-9][0-9]*|[xX*])"
_PARTIAL = re.compile(
    r"(?P<op>\^|~|>=|<=|>|<|=)?[vV]?(?P<major>W)(?:\.(?P<minor>W)(?:\.(?P<patch>W)".replace("W", _WILD)
    + r"(?:-"
    + _PRE
    + r")?(?:\+"
    + _BUILD
    + r")?)?)?"
)
RANGE_FORMS = (
    "comparators separated by spaces, all of which must hold, such as '>=1.2 <2', '^1.2', '~1.2.3', '1.x', '=1.2.3'"
    " or '*' (operators: >=, >, <=, <, =, ^, ~; a 'v' in front of a version is accepted), and sets of them joined"
    " by '||'"
)


@dataclasses.dataclass(frozen=True)
class Version:
    """A semantic version; ``key`` orders by semver 2.0 precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        identifiers = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


def parse_version(tag: object) -> Version | None:
    """The version a tag names (``v1.2.3``, ``1.2.3-rc.1+build.5``), or None when it is not semver."""
    found = _VERSION.fullmatch(tag) if isinstance(tag, str) else None
    if found is None:
        return None
    pre = tuple(found.group("pre").split(".")) if found.group("pre") else ()
    return Version(int(found.group("major")), int(found.group("minor")), int(found.group("patch")), pre)


@dataclasses.dataclass(frozen=True)
class Comparator:
    op: str  # one of >=, >, <=, <
    version: Version

    def holds(self, version: Version) -> bool:
        left, right = version.key, self.version.key
        return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[self.op]


@dataclasses.dataclass(frozen=True)
class SemverRange:
    """Comparator sets; a version matches when every comparator of one set holds (and the pre-release rule)."""

    text: str
    sets: tuple[tuple[Comparator, ...], ...]

    def matches(self, version: Version | None) -> bool:
        if version is None:
            return False
        return any(self._set_matches(comparators, version) for comparators in self.sets)

    @staticmethod
    def _set_matches(comparators: tuple[Comparator, ...], version: Version) -> bool:
        if not all(comparator.holds(version) for comparator in comparators):
            return False
        if not version.prerelease:
            return True
        # npm's rule: a pre-release matches only where the range names a pre-release of the same release.
        return any(c.version.prerelease and c.version.release == version.release for c in comparators)


def parse_range(text: object, option: str = "semver") -> SemverRange:
    """A range such as ``>=1.2 <2`` or ``^1.2 || ~2.0.1``; raises :class:`InvalidInputError` naming the value."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("Option %s must be a semver range: %s; got %r." % (option, RANGE_FORMS, text))
    sets = []
    for alternative in text.split("||"):
        words = alternative.split()
        if not words:
            raise InvalidInputError(
                "Option %s %r has an empty alternative around '||'; expected %s." % (option, text, RANGE_FORMS)
            )
        comparators: list[Comparator] = []
        for word in words:
            comparators.extend(_comparators(word, text, option))
        sets.append(tuple(comparators))
    return SemverRange(text.strip(), tuple(sets))


def _comparators(word: str, text: str, option: str) -> list[Comparator]:
    found = _PARTIAL.fullmatch(word)
    if found is None:
        raise InvalidInputError(
            "Option %s %r: %r is not a comparator; expected %s." % (option, text, word, RANGE_FORMS)
        )
    op = found.group("op") or "="
    parts = [found.group(name) for name in ("major", "minor", "patch")]
    given: list[int] = []
    for part in parts:
        if part is None or part in ("x", "X", "*"):
            break
        given.append(int(part))
    pre = tuple(found.group("pre").split(".")) if found.group("pre") and len(given) == 3 else ()
    if found.group("pre") and len(given) < 3:
        raise InvalidInputError(
            "Option %s %r: %r has a pre-release on a partial version; write all three numbers." % (option, text, word)
        )
    return _desugar(op, given, pre)


def _version(numbers: Sequence[int], pre: tuple[str, ...] = ()) -> Version:
    padded = list(numbers) + [0] * (3 - len(numbers))
    return Version(padded[0], padded[1], padded[2], pre)


def _bump(numbers: Sequence[int], position: int) -> Version:
    """The first version above every version that starts with ``numbers[:position + 1]``."""
    head = list(numbers[: position + 1])
    head[-1] += 1
    return _version(head)


def _desugar(op: str, given: list[int], pre: tuple[str, ...]) -> list[Comparator]:
    """npm's meaning of ``op`` with a full or partial version, as plain comparators."""
    if not given:  # '*', 'x', '>=*': everything; '<*', '>*': nothing
        everything = op in ("=", ">=", "<=", "^", "~")
        return [Comparator(">=" if everything else "<", _version([]))]
    low = _version(given, pre)
    if op == "^":
        first = next((i for i, number in enumerate(given) if number != 0), len(given) - 1)
        return [Comparator(">=", low), Comparator("<", _bump(given, first))]
    if op == "~":
        return [Comparator(">=", low), Comparator("<", _bump(given, min(1, len(given) - 1)))]
    partial = len(given) < 3
    if op == "=":
        if not partial:
            return [Comparator(">=", low), Comparator("<=", low)]
        return [Comparator(">=", low), Comparator("<", _bump(given, len(given) - 1))]
    if partial and op == ">":
        return [Comparator(">=", _bump(given, len(given) - 1))]
    if partial and op == "<=":
        return [Comparator("<", _bump(given, len(given) - 1))]
    return [Comparator(op, low)]


# -- selecting tags ---------------------------------------------------------------------------------

Ages = Callable[[Sequence[str]], Mapping[str, "datetime.datetime | None"]]


def parse_latest(value: object, option: str = "latest") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("Option %s must be a whole number, 1 or more, got %r." % (option, value))
    return value


@dataclasses.dataclass(frozen=True)
class TagFilter:
    """Which of a source's tags are mirrored. Unset rules select every tag."""

    match: tuple[re.Pattern, ...] | None = None
    exclude: tuple[re.Pattern, ...] = ()
    semver: SemverRange | None = None
    latest: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], where: str = "") -> TagFilter:
        """From an entry's ``match``, ``exclude``, ``semver`` and ``latest``; ``where`` prefixes option names."""
        match = options.get("match")
        exclude = options.get("exclude")
        semver = options.get("semver")
        return cls(
            match=None if match is None else compile_patterns(match, where + "match"),
            exclude=() if exclude is None else compile_patterns(exclude, where + "exclude"),
            semver=None if semver is None else parse_range(semver, where + "semver"),
            latest=parse_latest(options.get("latest"), where + "latest"),
        )

    def admits(self, tag: str) -> bool:
        """Whether ``tag`` passes ``match``, ``exclude`` and ``semver`` (``latest`` needs the whole set)."""
        if self.match is not None and not any(pattern.fullmatch(tag) for pattern in self.match):
            return False
        if any(pattern.fullmatch(tag) for pattern in self.exclude):
            return False
        return self.semver is None or self.semver.matches(parse_version(tag))

    def orders_by_created(self, tags: Sequence[str]) -> bool:
        """Whether ``latest`` must read image ages for ``tags`` (already admitted): only when it cuts, and some tag
        is not a version while no ``semver`` range is given."""
        if self.latest is None or len(tags) <= self.latest or self.semver is not None:
            return False
        return any(parse_version(tag) is None for tag in tags)

    def select(self, tags: Iterable[str], ages: Ages | None = None) -> list[str]:
        """The admitted tags, newest ``latest`` only when set, in a stable order (newest first with ``latest``,
        else as listed). ``ages`` (tag -> creation time, None unknown) is called only when :meth:`orders_by_created`
        says so; unknown ages sort as the oldest."""
        admitted = list(dict.fromkeys(tag for tag in tags if self.admits(tag)))
        if self.latest is None or len(admitted) <= self.latest:
            return admitted
        if not self.orders_by_created(admitted):
            ranked = sorted(admitted, key=lambda tag: (parse_version(tag).key, tag), reverse=True)  # type: ignore
            return ranked[: self.latest]
        if ages is None:
            raise InvalidInputError("latest needs the images' creation times to order tags that are not versions")
        created = ages(admitted)
        ranked = sorted(admitted, key=lambda tag: (parse_time(created.get(tag)) or OLDEST, tag), reverse=True)
        return ranked[: self.latest]


# -- per-tag decisions ------------------------------------------------------------------------------


@dataclasses.dataclass
class TagDecision:
    """What happens to one tag: ``action`` (:data:`COPY`, :data:`UNCHANGED`, :data:`SKIPPED`, :data:`PRUNE`,
    :data:`DEFERRED`), the source's digest when known, the destination's before, and why in words."""

    tag: str | None
    action: str
    digest: str | None = None
    previous_digest: str | None = None
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class PresencePolicy:
    """``existing`` and ``immutable``: when a tag the destination lists is taken as done without a look."""

    existing: str = "update"
    immutable: tuple[re.Pattern, ...] = ()

    @classmethod
    def from_options(cls, existing: object, immutable: object, where: str = "") -> PresencePolicy:
        if existing not in EXISTING_MODES:
            raise InvalidInputError(
                "Option %sexisting must be one of %s, got %r." % (where, ", ".join(EXISTING_MODES), existing)
            )
        patterns = () if immutable is None else compile_patterns(immutable, where + "immutable")
        return cls(str(existing), patterns)

    def settled_when_present(self, tag: str) -> str | None:
        """Why a present ``tag`` needs no look (a reason), or None when its digests must be compared."""
        if self.existing == "keep":
            return "present, existing: keep"
        if any(pattern.fullmatch(tag) for pattern in self.immutable):
            return "present, immutable"
        return None


def triage(
    selected: Sequence[str], dest_tags: Collection[str], policy: PresencePolicy
) -> tuple[list[TagDecision], list[str], list[str]]:
    """Split ``selected`` by what the destination's tag list shows: (decided without a request: ``skipped``; tags to
    compare with a ``HEAD`` on each side; tags the destination lacks, to copy). Orders are kept."""
    settled: list[TagDecision] = []
    compare_these: list[str] = []
    missing: list[str] = []
    for tag in selected:
        if tag not in dest_tags:
            missing.append(tag)
            continue
        reason = policy.settled_when_present(tag)
        if reason is None:
            compare_these.append(tag)
        else:
            settled.append(TagDecision(tag, SKIPPED, reason=reason))
    return settled, compare_these, missing


def compare(tag: str | None, source_digest: str, dest_digest: str | None) -> TagDecision:
    """A tag both sides were asked about: ``unchanged`` when the digests agree, else ``copy``."""
    if dest_digest == source_digest:
        return TagDecision(tag, UNCHANGED, source_digest, dest_digest, "same digest on both sides")
    reason = "absent at the destination" if dest_digest is None else "the destination has another digest"
    return TagDecision(tag, COPY, source_digest, dest_digest, reason)


def plan_prune(
    where: str,
    dest_tags: Iterable[str],
    kept: Collection[str],
    empty_sources: Sequence[str],
    limit: int,
) -> list[str]:
    """The destination tags to delete: listed at ``where`` and not ``kept`` (the selected source tags of every entry
    that maps there), attachment tags aside. Raises, deciding nothing, when a source listed no tags
    (``empty_sources``: a vanished or emptied source would wipe the mirror) or more than ``limit`` would go."""
    if empty_sources:
        raise RegistryError(
            "prune refused for %s: the source %s lists no tags, so every tag of the mirror would be deleted. Nothing"
            " was changed; check the source, or set prune: false for this entry." % (where, ", ".join(empty_sources))
        )
    # Attachment tags (fallback index, cosign's .sig/.att/.sbom) follow their subject: pruning never takes them alone.
    doomed = sorted(tag for tag in set(dest_tags) if tag not in kept and not is_attachment_tag(tag))
    if len(doomed) > limit:
        shown = ", ".join(doomed[:10]) + (", ..." if len(doomed) > 10 else "")
        raise RegistryError(
            "prune refused for %s: %d tags would be deleted (%s), more than prune_limit %d. Nothing was changed;"
            " raise prune_limit if that is what you want." % (where, len(doomed), shown, limit)
        )
    return doomed


def parse_prune_limit(value: object, option: str = "prune_limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("Option %s must be a whole number, 0 or more, got %r." % (option, value))
    return value


# -- max_copies and time_budget ---------------------------------------------------------------------


class CopyBudget:
    """Whether one more copy may start: fewer than ``max_copies`` started, and less than ``time_budget`` since the
    budget was made. Copies already running finish; the rest are deferred to the next run. Thread-safe."""

    def __init__(
        self,
        max_copies: int | None = None,
        time_budget: datetime.timedelta | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        bad = isinstance(max_copies, bool) or not isinstance(max_copies, int) or max_copies < 0
        if max_copies is not None and bad:
            raise InvalidInputError("Option max_copies must be a whole number, 0 or more, got %r." % (max_copies,))
        self.max_copies = max_copies
        self.seconds = None if time_budget is None else time_budget.total_seconds()
        self.clock = clock
        self.started_at = clock()
        self.started = 0
        self.exhausted_by: str | None = None
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True, counting it, when a copy may start now; False (and why, in ``exhausted_by``) when it is deferred."""
        with self._lock:
            if self.max_copies is not None and self.started >= self.max_copies:
                self.exhausted_by = self.exhausted_by or "max_copies"
                return False
            if self.seconds is not None and self.clock() - self.started_at >= self.seconds:
                self.exhausted_by = self.exhausted_by or "time_budget"
                return False
            self.started += 1
            return True

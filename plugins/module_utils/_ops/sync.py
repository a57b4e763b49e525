# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``registry_sync``'s runner: read, decide (``sync_plan.py``), then copy through the engine and prune.

Phases, each finished before the next starts, so that every refusal comes before the first write:

1. **Entries** (:func:`parse_entries`): every option of every entry is checked before any request.
2. **Expand**: a ``registry/prefix`` source with ``repositories`` walks the catalog (once per registry) and becomes
   one entry per repository it matches, mapped under ``dest``.
3. **Plan**: per entry, the source's tag list and the destination's (each read once per repository and side for the
   whole task, however many entries name it), the filters, then a ``HEAD`` on each side for the present tags whose
   digests must be compared. ``existing: keep`` and ``immutable`` settle present tags from the tag list alone.
4. **Prune plan**: per destination repository, the tags the selected source sets lack, with the refusals.
5. **Copy**: ``concurrency`` images at once through ``copy_image`` (``jobs`` blobs each), all with the task's one
   :class:`RegistryClients` (one connection pool and token cache per registry); ``max_copies`` and ``time_budget``
   defer the rest.
6. **Prune**: the safe untag of ``tagging.Untagger``, one per repository.

Check mode makes the same reads (the engine's ``dry_run`` reads the source's manifests and ``HEAD``s the blobs) and
writes nothing. With ``on_error: continue`` a failing entry or image is recorded and the rest goes on.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._concurrency import OnceCache, map_concurrently
from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._image.copy import transfer
from ansible_collections.ocireg.registry.plugins.module_utils._image.interfaces import ImageSource
from ansible_collections.ocireg.registry.plugins.module_utils._image.registry_store import (
    RegistryDestination,
    RegistrySource,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import platforms_option
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    Reference,
    parse_reference,
    parse_registry,
    parse_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import is_attachment_tag, wanted_types
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import parse_duration
from ansible_collections.ocireg.registry.plugins.module_utils._ops.image_ages import ImageAges
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync_plan import (
    COPY,
    DEFERRED,
    PRUNE,
    CopyBudget,
    PresencePolicy,
    TagDecision,
    TagFilter,
    compare,
    parse_prune_limit,
    plan_prune,
    triage,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.tagging import Untagger
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import RegistryClients

# Options an entry may set for itself; unset, the task's value applies.
ENTRY_OVERRIDES = ("platforms", "referrers", "referrer_types", "existing", "immutable", "prune", "prune_limit", "jobs")
ON_ERROR = ("continue", "stop")
MAX_CONCURRENCY = 64
MAX_JOBS = 64
# What the result calls each decision (check mode reports what a real run does, under the same names).
ACTION_NAMES = {COPY: "copied", PRUNE: "pruned"}
FAILED = "failed"
SUMMARY_ACTIONS = ("copied", "unchanged", "skipped", "pruned", "deferred")


class BlobLedger:
    """Which repositories of each destination registry hold each blob during the task, so that a blob many images
    share is transferred once: the first copy that needs it uploads (or mounts) it, the others wait for that, then
    mount it from there or find it in place. Work on one blob is serialised per registry: distribution fails
    manifests when two uploads or mounts of one blob into one repository overlap. Thread-safe; it also counts what
    the real run moved (``uploaded``, ``mounted``, ``bytes``), which the engine, handing blobs here, cannot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._holders: dict[tuple[str, str], list[str]] = {}
        self.uploaded = 0
        self.mounted = 0
        self.bytes = 0

    def _key(self, dest: LedgerDestination, digest: str) -> tuple[tuple[str, str], threading.Lock]:
        key = (dest.client.transport.base_url, digest)
        with self._lock:
            return key, self._locks.setdefault(key, threading.Lock())

    def _record(self, key: tuple[str, str], repository: str, mounted: bool, size: int) -> None:
        with self._lock:
            self._holders.setdefault(key, []).append(repository)
            if mounted:
                self.mounted += 1
            else:
                self.uploaded += 1
                self.bytes += size

    def mount(
        self, dest: LedgerDestination, descriptor: Descriptor, origin: tuple[str, str]
    ) -> tuple[bool, str | None]:
        key, lock = self._key(dest, descriptor.digest)
        with lock:
            if dest.repository in self._holders.get(key, ()):
                return True, None
            mounted, location = dest.plain_mount(descriptor, origin)
            if mounted:
                self._record(key, dest.repository, True, descriptor.size)
            return mounted, location

    def write(self, dest: LedgerDestination, descriptor: Descriptor, source: ImageSource, location: str | None) -> None:
        key, lock = self._key(dest, descriptor.digest)
        with lock:
            holders = list(self._holders.get(key, ()))
            if dest.repository in holders:
                return
            if holders:
                mounted, location = dest.plain_mount(descriptor, (key[0], holders[0]))
                if mounted:
                    self._record(key, dest.repository, True, descriptor.size)
                    return
            dest.upload(descriptor, source, location)
            self._record(key, dest.repository, False, descriptor.size)


class LedgerDestination(RegistryDestination):
    """The engine's registry destination, with blob mounts and uploads going through the task's :class:`BlobLedger`."""

    def __init__(self, client: Any, reference: Reference, ledger: BlobLedger, current: str | None = None):
        super().__init__(client, reference)
        self.ledger = ledger
        self.known_current = current  # what the tag list and the planning HEAD showed: no second HEAD for it

    def current(self) -> str | None:
        return self.known_current

    def mount_blob(self, descriptor: Descriptor, origin: tuple[str, str]) -> tuple[bool, str | None]:
        return self.ledger.mount(self, descriptor, origin)

    def write_blob(self, descriptor: Descriptor, source: ImageSource, location: str | None = None) -> None:
        self.ledger.write(self, descriptor, source, location)

    def plain_mount(self, descriptor: Descriptor, origin: tuple[str, str]) -> tuple[bool, str | None]:
        return super().mount_blob(descriptor, origin)

    def upload(self, descriptor: Descriptor, source: ImageSource, location: str | None) -> None:
        super().write_blob(descriptor, source, location)


@dataclasses.dataclass(frozen=True)
class EntryOptions:
    platforms: list[str] | None
    referrers: bool
    referrer_types: tuple[str, ...] | None
    presence: PresencePolicy
    prune: bool
    prune_limit: int
    jobs: int


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ``images`` entry, checked. ``src`` is a repository (tag and digest None), a tag or a digest; ``dest`` a
    repository. A prefix entry has ``repositories`` patterns and ``src``/``dest`` prefixes (registry, path)."""

    where: str  # images[N], for messages
    src: Reference | None
    dest: Reference | None
    filter: TagFilter
    options: EntryOptions
    repositories: tuple[str, ...] = ()
    src_prefix: tuple[str | None, str, str] | None = None  # (scheme, registry, path)
    dest_prefix: tuple[str | None, str, str] | None = None

    @property
    def whole_repository(self) -> bool:
        return self.src is not None and self.src.tag is None and self.src.digest is None


def _check_count(value: Any, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError("Option %s must be a whole number from %d to %d, got %r." % (option, low, high, value))
    return value


def entry_options(values: Mapping[str, Any], where: str) -> EntryOptions:
    """The per-entry options (the entry's value, else the task's), checked; ``where`` prefixes names."""
    return EntryOptions(
        platforms=platforms_option(values["platforms"]),
        referrers=bool(values["referrers"]),
        referrer_types=wanted_types(values["referrer_types"]),
        presence=PresencePolicy.from_options(values["existing"], values["immutable"], where),
        prune=bool(values["prune"]),
        prune_limit=parse_prune_limit(values["prune_limit"], where + "prune_limit"),
        jobs=_check_count(values["jobs"], where + "jobs", 1, MAX_JOBS),
    )


def _prefix(text: Any, option: str) -> tuple[str | None, str, str]:
    """``registry[/path]`` -> (scheme, registry, path); the path is checked as a repository name would be."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("Option %s must be a registry with an optional path prefix, got %r." % (option, text))
    value = text.strip().rstrip("/")
    scheme_part, _sep, rest = value.rpartition("://")
    host, _slash, path = rest.partition("/")
    scheme, registry = parse_registry((scheme_part + "://" if scheme_part else "") + host)
    if path:
        parse_repository("%s/%s" % (registry, path))  # raises, naming the value, when the path is not a name
    return scheme, registry, path


def parse_entry(raw: Any, position: int, task: Mapping[str, Any]) -> Entry:
    """One ``images`` entry: every value checked, naming it, before any request."""
    where = "images[%d]." % position
    if not isinstance(raw, Mapping):
        raise InvalidInputError("Option images[%d] must be a dictionary with src and dest, got %r." % (position, raw))
    merged = {name: task[name] if raw.get(name) is None else raw[name] for name in ENTRY_OVERRIDES}
    options = entry_options(merged, where)
    chosen = TagFilter.from_options(raw, where)
    patterns = raw.get("repositories")
    if patterns is not None:
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise InvalidInputError(
                "Option %srepositories must be a list of fnmatch patterns such as 'team/*', got %r." % (where, patterns)
            )
        return Entry(
            where[:-1],
            None,
            None,
            chosen,
            options,
            tuple(patterns),
            _prefix(raw.get("src"), where + "src"),
            _prefix(raw.get("dest"), where + "dest"),
        )
    src = parse_reference(raw.get("src"), default_tag=None)
    dest = parse_repository(raw.get("dest"))
    if src.tag is not None and src.digest is not None:
        raise InvalidInputError(
            "Option %ssrc %r names both a tag and a digest: give one, or the repository alone." % (where, raw["src"])
        )
    return Entry(where[:-1], src, dest, chosen, options)


def parse_entries(images: Any, task: Mapping[str, Any]) -> list[Entry]:
    if not isinstance(images, list) or not images:
        raise InvalidInputError("Option images must be a non-empty list of entries with src and dest, got %r." % images)
    return [parse_entry(raw, position, task) for position, raw in enumerate(images)]


def parse_budget(max_copies: Any, time_budget: Any) -> CopyBudget:
    duration = None if time_budget is None else parse_duration(time_budget, "time_budget")
    return CopyBudget(max_copies, duration)


@dataclasses.dataclass
class Planned:
    """One entry after phase 3: its decisions so far, and the tags it selected (kept from pruning)."""

    entry: Entry
    decisions: list[TagDecision]
    selected: list[str]
    listed_none: bool = False  # the source listed no tags at all


class SyncTask:
    """One ``registry_sync`` run over checked entries; :meth:`run` returns the module's result."""

    def __init__(
        self,
        clients: RegistryClients,
        entries: Sequence[Entry],
        *,
        concurrency: int,
        on_error: str,
        budget: CopyBudget,
        dry_run: bool,
    ):
        self.clients = clients
        self.entries = list(entries)
        self.concurrency = _check_count(concurrency, "concurrency", 1, MAX_CONCURRENCY)
        if on_error not in ON_ERROR:
            raise InvalidInputError("Option on_error must be one of %s, got %r." % (", ".join(ON_ERROR), on_error))
        self.on_error = on_error
        self.budget = budget
        self.dry_run = dry_run
        self.tag_lists = OnceCache()
        self.catalogs = OnceCache()
        self.ledger = BlobLedger()
        self.failed: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.stats = {"blobs": 0, "bytes": 0}
        self.stopped = False
        self.warnings: list[str] = []
        self.unplanned: set[str] = set()  # destination repositories an entry of which could not be planned
        self.lock = threading.Lock()

    # -- reads -------------------------------------------------------------------------------------

    def tags_of(self, repository: Reference, missing_ok: bool) -> list[str]:
        """A repository's tag list, read once for the task. A destination that does not exist yet has none."""

        def read() -> list[str]:
            try:
                return self.clients.for_reference(repository).list_tags(repository.repository)
            except NotFoundError:
                if missing_ok:
                    return []
                raise

        return list(self.tag_lists.get(repository.name, read))

    def _fail(self, src: str, dest: str, err: RegistryError) -> None:
        with self.lock:
            if self.on_error == "stop":
                self.stopped = True
            self.failed.append({"src": src, "dest": dest, "error": str(err)})

    def _guard(self, src: str, dest: str, work: Callable[[], Any]) -> Any:
        """``work()``, or None when it failed: the failure is recorded, and with ``on_error: stop`` no new work
        starts after it (what runs finishes; what did not start is deferred)."""
        try:
            return work()
        except RegistryError as err:
            self._fail(src, dest, err)
            return None

    # -- phase 2: catalog walks ----------------------------------------------------------------------

    def expand(self) -> list[Entry]:
        expanded: list[Entry] = []
        for entry in self.entries:
            if not entry.repositories:
                expanded.append(entry)
                continue
            src, dest = _prefix_text(entry.src_prefix), _prefix_text(entry.dest_prefix)
            found = self._guard(src, dest, lambda entry=entry: self._walk(entry))
            if found == []:
                self.warnings.append(
                    "%s: no repository of %s matches %s" % (entry.where, src, ", ".join(entry.repositories))
                )
            expanded.extend(found or [])
        return expanded

    def _walk(self, entry: Entry) -> list[Entry]:
        """One entry per repository under the source prefix that a pattern matches (on its path under the prefix),
        mapped to the same path under the destination prefix."""
        scheme, registry, path = entry.src_prefix  # type: ignore[misc]
        dest_scheme, dest_registry, dest_path = entry.dest_prefix  # type: ignore[misc]
        names = self.catalogs.get((scheme, registry), lambda: self.clients.for_registry(registry, scheme).catalog())
        lead = path + "/" if path else ""
        walked = []
        for name in sorted(set(names)):
            relative = name[len(lead) :]
            if not name.startswith(lead) or not any(fnmatch.fnmatchcase(relative, p) for p in entry.repositories):
                continue
            src = Reference(registry, name, scheme=scheme)
            dest = Reference(
                dest_registry, "%s/%s" % (dest_path, relative) if dest_path else relative, scheme=dest_scheme
            )
            walked.append(dataclasses.replace(entry, src=src, dest=dest, repositories=()))
        return walked

    # -- phase 3: what each entry needs --------------------------------------------------------------

    def _plan(self, entry: Entry) -> Planned | None:
        if self.stopped:
            return None
        planned = self._guard(entry.src.name, entry.dest.name, lambda: self._decide(entry))  # type: ignore[union-attr]
        if planned is None:
            self.unplanned.add(entry.dest.name)  # type: ignore[union-attr]
        return planned

    def _decide(self, entry: Entry) -> Planned:
        src, dest, options = entry.src, entry.dest, entry.options
        dest_tags = set(self.tags_of(dest, missing_ok=True))  # type: ignore[arg-type]
        if src.digest is not None:  # type: ignore[union-attr]
            present = self.clients.for_reference(dest).head_manifest(dest.repository, src.digest)  # type: ignore
            return Planned(entry, [compare(None, src.digest, present.digest if present else None)], [])  # type: ignore
        listed = [src.tag] if src.tag is not None else self.tags_of(src, missing_ok=False)  # type: ignore
        candidates = [tag for tag in listed if not (options.referrers and is_attachment_tag(tag))]
        selected = entry.filter.select(candidates, lambda tags: self._ages(src, tags, options.jobs))  # type: ignore
        settled, to_compare, missing = triage(selected, dest_tags, options.presence)
        compared = map_concurrently(lambda tag: self._compare(src, dest, tag), to_compare, options.jobs)  # type: ignore
        absent = [TagDecision(tag, COPY, reason="absent at the destination") for tag in missing]
        order = {tag: position for position, tag in enumerate(selected)}
        decisions = sorted(settled + compared + absent, key=lambda decision: order[decision.tag])
        return Planned(entry, decisions, selected, listed_none=not listed)

    def _compare(self, src: Reference, dest: Reference, tag: str) -> TagDecision:
        source = self.clients.for_reference(src).head_manifest(src.repository, tag)
        if source is None:
            raise NotFoundError("%s:%s is gone from the source since its tag list was read" % (src.name, tag))
        current = self.clients.for_reference(dest).head_manifest(dest.repository, tag)
        return compare(tag, source.digest, current.digest if current else None)

    def _ages(self, src: Reference, tags: Sequence[str], jobs: int) -> dict[str, Any]:
        """Creation times for ``latest`` over tags that are not versions: a manifest GET per tag, then configs."""
        ages = ImageAges(self.clients.for_reference(src), src.repository, jobs)
        descriptors = map_concurrently(lambda tag: ages.read_tag(tag, True), list(tags), jobs)
        digests = {tag: d.digest for tag, d in zip(tags, descriptors) if d is not None}
        created = ages.created(set(digests.values()))
        return {tag: created.get(digest) for tag, digest in digests.items()}

    # -- phase 4: what prune takes -------------------------------------------------------------------

    def plan_prunes(self, planned: Sequence[Planned]) -> list[tuple[Reference, list[str]]]:
        """Per destination repository that an entry prunes: the tags that go. Raises (nothing written yet) on a
        refusal. A repository one of whose entries could not be planned is left alone: its selection is unknown."""
        by_dest: dict[str, list[Planned]] = {}
        for item in planned:
            by_dest.setdefault(item.entry.dest.name, []).append(item)  # type: ignore[union-attr]
        prunes = []
        for name, items in by_dest.items():
            pruning = [item for item in items if item.entry.options.prune and item.entry.whole_repository]
            if not pruning or name in self.unplanned:
                continue
            dest = pruning[0].entry.dest
            kept = {tag for item in items for tag in item.selected}
            empty = [item.entry.src.name for item in pruning if item.listed_none]  # type: ignore[union-attr]
            limit = min(item.entry.options.prune_limit for item in pruning)
            doomed = plan_prune(name, self.tags_of(dest, missing_ok=True), kept, empty, limit)  # type: ignore
            if doomed:
                prunes.append((dest, doomed))
        return prunes  # type: ignore[return-value]

    # -- phase 5: copies -----------------------------------------------------------------------------

    def _copy(self, item: tuple[Entry, TagDecision]) -> None:
        entry, decision = item
        if self.stopped or not self.budget.take():
            decision.action = DEFERRED
            decision.reason = "on_error: stop" if self.stopped else self.budget.exhausted_by or ""
            return
        src = entry.src.with_tag(decision.tag) if decision.tag else entry.src  # type: ignore[union-attr]
        dest = entry.dest.with_tag(decision.tag)  # type: ignore[union-attr]
        options = entry.options
        result = self._guard(
            src.canonical,  # type: ignore[union-attr]
            dest.canonical,
            lambda: transfer(
                RegistrySource(self.clients.for_reference(src), src),  # type: ignore[arg-type]
                LedgerDestination(self.clients.for_reference(dest), dest, self.ledger, decision.previous_digest),
                platforms=options.platforms,
                jobs=options.jobs,
                dry_run=self.dry_run,
                referrers=options.referrers,
                referrer_types=options.referrer_types,
            ),
        )
        if result is None:
            decision.action, decision.reason = FAILED, self.failed[-1]["error"]
            return
        decision.digest, decision.previous_digest = result.digest, result.previous_digest
        decision.action = COPY if result.changed else "unchanged"
        with self.lock:
            # The engine counts a blob handed to the ledger as copied; in a real run, the ledger knows better.
            self.stats["blobs"] += result.stats.mounted + result.stats.copied if self.dry_run else 0
            self.stats["bytes"] += result.stats.bytes if self.dry_run else 0
            self.warnings.extend(result.warnings)

    # -- phase 6: prune ------------------------------------------------------------------------------

    def _prune(self, item: tuple[Reference, list[str]]) -> list[TagDecision]:
        dest, doomed = item
        client = self.clients.for_reference(dest)
        heads = map_concurrently(lambda tag: client.head_manifest(dest.repository, tag), doomed, self.concurrency)
        current: dict[str, Descriptor] = {tag: found for tag, found in zip(doomed, heads) if found is not None}
        untagger = Untagger(client, dest.repository)
        if self.dry_run:
            untagger.check_deletes(current)  # a refusal the real run would meet shows in check mode too
        decisions = []
        for tag, descriptor in current.items():
            remove = functools.partial(untagger.remove, tag, descriptor)
            if self.dry_run or self._guard("%s:%s" % (dest.name, tag), dest.name, remove):
                decisions.append(TagDecision(tag, PRUNE, None, descriptor.digest, "not in the selected source set"))
        return decisions

    def run(self) -> dict[str, Any]:
        planned = [item for item in map_concurrently(self._plan, self.expand(), self.concurrency) if item]
        prunes = self.plan_prunes(planned)
        copies = [(item.entry, decision) for item in planned for decision in item.decisions if decision.action == COPY]
        map_concurrently(self._copy, copies, self.concurrency)
        pruned: list[tuple[Reference, list[TagDecision]]] = []
        for dest, doomed in prunes:
            if not self.stopped:
                done = self._guard(dest.name, dest.name, lambda dest=dest, doomed=doomed: self._prune((dest, doomed)))
                pruned.append((dest, done or []))
        return self.result(planned, pruned)

    # -- the result ----------------------------------------------------------------------------------

    def result(self, planned: Sequence[Planned], pruned: Sequence[tuple[Reference, list[TagDecision]]]) -> dict:
        """``changed``, ``summary``, ``images``, ``failures`` and ``diff``, as the module returns them. (The contract's
        name for the list, ``failed``, is Ansible's own key: ansible-core turns it into a boolean.)"""
        images = [
            _record(item.entry.src, item.entry.dest, decision)  # type: ignore[arg-type]
            for item in planned
            for decision in item.decisions
        ]
        selected = len(images)
        images += [_record(dest, dest, decision) for dest, decisions in pruned for decision in decisions]
        counts = {action: sum(1 for image in images if image["action"] == action) for action in SUMMARY_ACTIONS}
        summary = dict(counts, selected=selected, failed=len(self.failed), requests=self.clients.request_count)
        summary.update(self.stats)
        summary["blobs"] += self.ledger.uploaded + self.ledger.mounted
        summary["bytes"] += self.ledger.bytes
        before: dict[str, dict[str, str | None]] = {}
        after: dict[str, dict[str, str | None]] = {}
        for image in images:
            if image["action"] in ("copied", "pruned"):
                key = image["tag"] or image["digest"]
                before.setdefault(image["dest"], {})[key] = image["previous_digest"]
                after.setdefault(image["dest"], {})[key] = image["digest"]
        return {
            "changed": counts["copied"] + counts["pruned"] > 0,
            "summary": summary,
            "images": images,
            "failures": list(self.failed),
            "diff": {"before": before, "after": after},
        }

    def failure_message(self) -> str:
        shown = "; ".join("%s -> %s: %s" % (item["src"], item["dest"], item["error"]) for item in self.failed[:5])
        more = " (and %d more, listed in failures)" % (len(self.failed) - 5) if len(self.failed) > 5 else ""
        stop = " on_error is stop: what had not started is deferred." if self.on_error == "stop" else ""
        return "%d of the images could not be mirrored: %s%s.%s" % (len(self.failed), shown, more, stop)


def _record(src: Reference, dest: Reference, decision: TagDecision) -> dict[str, Any]:
    digest = decision.digest
    if decision.tag is None and src.digest is not None:
        digest = digest or src.digest
    return {
        "src": src.name if src.digest is None and src.tag is None else src.canonical,
        "dest": dest.name,
        "tag": decision.tag,
        "action": ACTION_NAMES.get(decision.action, decision.action),
        "digest": digest,
        "previous_digest": decision.previous_digest,
    }


def _prefix_text(prefix: tuple[str | None, str, str] | None) -> str:
    scheme, registry, path = prefix or (None, "", "")
    text = "%s/%s" % (registry, path) if path else registry
    return "%s://%s" % (scheme, text) if scheme else text

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention rules without a registry (plugins/module_utils/_ops/retention.py, _oci/timing.py), and which attachments
go with the images that go (follow_attachments), given what the registry answered."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import (
    Descriptor,
    ManifestInfo,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from ansible_collections.ocireg.registry.plugins.module_utils._oci.referrers import fallback_tag
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import parse_duration, parse_time
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import (
    AttachmentFacts,
    AttachmentReads,
    DeletionPlan,
    DeletionStage,
    Reason,
    RetentionPolicy,
    TaggedImage,
    attachment_tags,
    compile_patterns,
    decide,
    follow_attachments,
    plan_deletions,
    tag_outcomes,
    tag_set_diff,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
A, B, C, D, E = ("sha256:" + letter * 64 for letter in "abcde")


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


# -- durations --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("45s", datetime.timedelta(seconds=45)),
        ("90m", datetime.timedelta(minutes=90)),
        ("12h", datetime.timedelta(hours=12)),
        ("30d", datetime.timedelta(days=30)),
        ("2w", datetime.timedelta(weeks=2)),
        ("0d", datetime.timedelta(0)),
        ("1w3d12h", datetime.timedelta(days=10, hours=12)),
        (" 7d ", datetime.timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["3x", "-1d", "1.5d", "30", "d", "", "  ", "30 d", "30D", "1d-2h", "P30D", None, 30])
def test_a_bad_duration_is_named_with_the_allowed_form(bad: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_duration(bad)
    message = str(caught.value)
    assert repr(bad) in message
    assert "retention.older_than" in message
    assert "'30d'" in message and "w (weeks)" in message


def test_a_duration_too_long_for_python_is_an_error_not_a_crash() -> None:
    with pytest.raises(InvalidInputError, match="'99999999999w'.*too long"):
        parse_duration("99999999999w")


# -- patterns ---------------------------------------------------------------------------------------------------


def test_patterns_compile_and_a_single_string_is_one_pattern() -> None:
    assert [p.pattern for p in compile_patterns(["v1.*", "latest"], "retention.keep")] == ["v1.*", "latest"]
    assert [p.pattern for p in compile_patterns("v[0-9]{1,3}", "retention.keep")] == ["v[0-9]{1,3}"]
    assert compile_patterns([], "retention.match") == ()


@pytest.mark.parametrize("bad", ["(", "[a-", "*x", "a{2,1}"])
def test_a_bad_regex_is_named_with_the_reason(bad: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        compile_patterns(["fine", bad], "retention.match")
    message = str(caught.value)
    assert repr(bad) in message and "retention.match" in message
    assert "position" in message  # re's own explanation of what is wrong


@pytest.mark.parametrize("bad", [[""], [None], [3], {"a": 1}, 5])
def test_patterns_must_be_non_empty_strings(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="retention.keep"):
        compile_patterns(bad, "retention.keep")


# -- creation times ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-02T03:04:05Z", datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789Z", datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05.5+02:00", datetime.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)),
        ("2024-01-02T03:04:05-0130", datetime.datetime(2024, 1, 2, 4, 34, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no offset: UTC
        ("0001-01-01T00:00:00Z", datetime.datetime(1, 1, 1, tzinfo=UTC)),  # ko and other reproducible builds
        ("1970-01-01T00:00:00Z", datetime.datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_creation_times_are_read_as_utc(text: str, expected: datetime.datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "bad", [None, "", "yesterday", "2024-13-01T00:00:00Z", "2024-01-01", 1704067200, "0001-01-01T00:00:00+01:00"]
)
def test_unreadable_creation_times_are_unknown(bad: Any) -> None:
    assert parse_time(bad) is None


# -- the policy from module options -----------------------------------------------------------------------------


def test_policy_from_options() -> None:
    policy = RetentionPolicy.from_options({"keep_last": 3, "keep": ["latest"], "match": None, "older_than": "2w"})
    assert policy.keep_last == 3
    assert [p.pattern for p in policy.keep] == ["latest"]
    assert policy.match is None
    assert policy.older_than == datetime.timedelta(weeks=2)
    assert policy.needs_age
    assert not RetentionPolicy.from_options({"match": ["pr-.*"]}).needs_age


def test_policy_reports_every_bad_value_at_once() -> None:
    with pytest.raises(InvalidInputError) as caught:
        RetentionPolicy.from_options({"keep_last": -1, "keep": ["("], "match": ["ok"], "older_than": "3x"})
    message = str(caught.value)
    for text in ("retention.keep_last", "-1", "'('", "'3x'", "Nothing was deleted"):
        assert text in message


@pytest.mark.parametrize("bad", [True, False, -1, "3", 2.5])
def test_keep_last_is_a_whole_number_not_a_bool(bad: Any) -> None:
    with pytest.raises(
        InvalidInputError, match="retention.keep_last must be a whole number, 0 or more, got %s" % re.escape(repr(bad))
    ):
        RetentionPolicy.from_options({"keep_last": bad})


def test_a_policy_needs_a_rule() -> None:
    with pytest.raises(InvalidInputError, match="sets no rule.*state=absent"):
        RetentionPolicy.from_options({"keep_last": None, "keep": None, "match": None, "older_than": None})
    with pytest.raises(InvalidInputError, match="unknown rule keep_latest"):
        RetentionPolicy.from_options({"keep_latest": 3})


def test_patterns_match_whole_tag_names() -> None:
    policy = RetentionPolicy.from_options({"match": ["v1", "pr-[0-9]+"], "keep": ["pr-1"]})
    assert policy.candidates(["v1", "v10", "dev1", "pr-1", "pr-12", "pr-12-fix"]) == ["v1", "pr-12"]


# -- the decision (table-driven) --------------------------------------------------------------------------------

# Repository used by most rows: tag -> (digest, age in days or None for unknown).
REPO = {
    "latest": (E, 1),
    "v1": (A, 400),
    "v2": (B, 200),
    "v3": (C, 100),
    "v3-alias": (C, 100),
    "pr-1": (D, 40),
    "pr-2": (E, 1),
    "undated": ("sha256:" + "f" * 64, None),
}


def images(repo: dict[str, tuple[str, float | None]]) -> list[TaggedImage]:
    return [TaggedImage(tag, digest, None if age is None else days_ago(age)) for tag, (digest, age) in repo.items()]


DECISIONS = [
    # (case, options, deleted tags); a deleted tag's reason is the first rule set of older_than, keep_last, match, keep
    ("match only deletes every matched tag", {"match": ["pr-.*"]}, {"pr-1", "pr-2"}),
    ("keep only deletes everything else", {"keep": ["latest", "v.*"]}, {"pr-1", "pr-2", "undated"}),
    ("keep wins over match", {"match": ["pr-.*", "v.*"], "keep": ["v3.*", "pr-2"]}, {"pr-1", "v1", "v2"}),
    ("an empty match considers nothing", {"match": [], "keep_last": 0}, set()),
    # keep_last counts images: E (latest, pr-2) and D (pr-1) are the newest two; v3 and v3-alias go together.
    ("keep_last 2 keeps two images", {"keep_last": 2}, {"v1", "v2", "v3", "v3-alias", "undated"}),
    ("keep_last 0 keeps none by count", {"keep_last": 0}, set(REPO)),
    ("keep_last larger than the repository", {"keep_last": 50}, set()),
    ("undated sorts oldest for keep_last", {"keep_last": 5}, {"undated"}),
    # keep_last counts among the candidates only: latest is kept by keep and takes no slot, so E stays
    # through latest and pr-2 stays as the newest candidate.
    (
        "keep takes no keep_last slot",
        {"keep": ["latest"], "keep_last": 1},
        {"v1", "v2", "v3", "v3-alias", "pr-1", "undated"},
    ),
    ("match then keep_last", {"match": ["v[0-9]+"], "keep_last": 1}, {"v1", "v2"}),
    ("older_than", {"older_than": "30d"}, {"v1", "v2", "v3", "v3-alias", "pr-1"}),
    ("older_than never deletes an unknown age", {"older_than": "0s"}, set(REPO) - {"undated"}),
    ("older_than and keep_last must both allow", {"keep_last": 2, "older_than": "150d"}, {"v1", "v2"}),
    (
        "all four rules",
        {"match": ["v.*", "pr-.*"], "keep": ["v1"], "keep_last": 1, "older_than": "30d"},
        {"v2", "v3", "v3-alias", "pr-1"},
    ),
    ("a duration reaching past year 1 deletes nothing", {"older_than": "520000w"}, set()),
]


@pytest.mark.parametrize("case, options, deleted", DECISIONS, ids=[row[0] for row in DECISIONS])
def test_decide(case: str, options: dict[str, Any], deleted: set[str]) -> None:
    decision = decide(RetentionPolicy.from_options(options), images(REPO), NOW)
    assert set(decision.doomed) == deleted, case
    assert set(decision.reasons) == set(REPO)
    deciding = next(rule for rule in ("older_than", "keep_last", "match", "keep") if options.get(rule) is not None)
    for tag in deleted:
        assert decision.reasons[tag].code == deciding, (tag, decision.reasons[tag])


REASONS = [
    # (case, options, tag -> reason code of every tag)
    (
        "match only",
        {"match": ["pr-.*"]},
        dict.fromkeys(REPO, "match"),  # kept: matches no pattern; deleted: matches one
    ),
    ("keep only", {"keep": ["v.*"]}, dict.fromkeys(REPO, "keep")),
    (
        "keep_last",
        {"keep": ["latest"], "keep_last": 1},
        dict(dict.fromkeys(REPO, "keep_last"), latest="keep"),
    ),
    (
        "older_than",
        {"match": ["v.*", "pr-.*", "undated"], "older_than": "30d"},
        dict(dict.fromkeys(REPO, "older_than"), latest="match", undated="unknown_age"),
    ),
]


@pytest.mark.parametrize("case, options, codes", REASONS, ids=[row[0] for row in REASONS])
def test_every_tag_has_the_code_of_the_rule_that_decided(case: str, options: dict[str, Any], codes: dict) -> None:
    decision = decide(RetentionPolicy.from_options(options), images(REPO), NOW)
    assert {tag: reason.code for tag, reason in decision.reasons.items()} == codes, case


def test_decide_explains_why_a_tag_stays() -> None:
    policy = RetentionPolicy.from_options(
        {"match": ["v.*", "undated"], "keep": ["v1"], "keep_last": 1, "older_than": "150d"}
    )
    decision = decide(policy, images(REPO), NOW)
    assert decision.doomed == {"v2"}
    assert decision.reasons == {
        "latest": Reason("match", "matches no pattern of match ('v.*', 'undated')"),
        "pr-1": Reason("match", "matches no pattern of match ('v.*', 'undated')"),
        "pr-2": Reason("match", "matches no pattern of match ('v.*', 'undated')"),
        "v1": Reason("keep", "matches the keep pattern 'v1'"),
        "v3": Reason("keep_last", "its image (created 2025-02-21T12:00:00Z) is among the 1 newest (keep_last)"),
        "v3-alias": Reason("keep_last", "its image (created 2025-02-21T12:00:00Z) is among the 1 newest (keep_last)"),
        "v2": Reason(
            "older_than",
            "matches the match pattern 'v.*'; matches no keep pattern; its image is not among the 1 newest"
            " (keep_last); its image was created 2024-11-13T12:00:00Z, longer ago than 150d (older_than)",
        ),
        "undated": Reason(
            "unknown_age", "its image has no readable creation time, so it is not older than 150d (older_than)"
        ),
    }
    assert decision.unknown_age == ("undated",)


def test_reasons_of_single_rules_in_words() -> None:
    def reasons(options: dict[str, Any]) -> dict[str, Reason]:
        return decide(RetentionPolicy.from_options(options), images(REPO), NOW).reasons

    assert reasons({"keep": ["v.*", "latest"]})["pr-1"] == Reason("keep", "matches no keep pattern")
    assert reasons({"match": ["pr-.*"]})["pr-1"] == Reason("match", "matches the match pattern 'pr-.*'")
    assert reasons({"keep_last": 0})["v1"] == Reason("keep_last", "keep_last is 0, so no image is kept by count")
    assert reasons({"older_than": "1w3d"})["pr-2"] == Reason(
        "older_than", "its image was created 2025-05-31T12:00:00Z, not longer ago than 1w3d (older_than)"
    )
    assert reasons({"keep_last": 50})["undated"] == Reason(
        "keep_last", "its image (of unknown creation time) is among the 50 newest (keep_last)"
    )


def test_older_than_is_strict_at_the_cutoff() -> None:
    policy = RetentionPolicy.from_options({"older_than": "30d"})
    edge = [TaggedImage("edge", A, days_ago(30)), TaggedImage("past", B, days_ago(30) - datetime.timedelta(seconds=1))]
    assert decide(policy, edge, NOW).doomed == {"past"}


def test_keep_last_ties_are_broken_by_digest_the_same_way_every_time() -> None:
    same_time = days_ago(10)
    tagged = [TaggedImage("x", A, same_time), TaggedImage("y", C, same_time), TaggedImage("z", B, same_time)]
    policy = RetentionPolicy.from_options({"keep_last": 1})
    first = decide(policy, tagged, NOW).doomed
    assert first == decide(policy, list(reversed(tagged)), NOW).doomed == {"x", "z"}  # C sorts last, ranks first


def test_decide_uses_the_current_time_by_default() -> None:
    policy = RetentionPolicy.from_options({"older_than": "1h"})
    now = datetime.datetime.now(UTC)
    tagged = [TaggedImage("old", A, now - datetime.timedelta(hours=2)), TaggedImage("new", B, now)]
    assert decide(policy, tagged).doomed == {"old"}


# -- from decisions to requests ---------------------------------------------------------------------------------

PLANS = [
    # (case, current tag -> digest, doomed, protected, indexes, delete_digests, untag)
    ("nothing doomed", {"a": A, "b": B}, set(), set(), set(), (), ()),
    ("every tag of a digest: one delete", {"a": A, "a2": A, "b": B}, {"a", "a2"}, set(), set(), (A,), ()),
    ("a survivor shares the digest: untag", {"a": A, "a2": A, "b": B}, {"a"}, set(), set(), (), ("a",)),
    ("protected by a surviving index: untag", {"child": A, "multi": B}, {"child"}, {A}, {B}, (), ("child",)),
    ("indexes are deleted first", {"a": A, "i": C, "b": B}, {"a", "b", "i"}, set(), {C}, (C, A, B), ()),
    ("a doomed tag that vanished is ignored", {"a": A}, {"a", "gone"}, set(), set(), (A,), ()),
]


@pytest.mark.parametrize(
    "case, current, doomed, protected, indexes, delete_digests, untag", PLANS, ids=[row[0] for row in PLANS]
)
def test_plan_deletions(
    case: str,
    current: dict[str, str],
    doomed: set[str],
    protected: set[str],
    indexes: set[str],
    delete_digests: tuple[str, ...],
    untag: tuple[str, ...],
) -> None:
    plan = plan_deletions(current, doomed, protected=protected, indexes=indexes)
    assert plan.delete_digests == delete_digests, case
    assert plan.untag == untag, case
    assert plan.deleted_tags == tuple(sorted(set(doomed) & set(current)))
    assert plan.kept_tags == tuple(sorted(set(current) - set(doomed)))
    assert plan.changed is bool(plan.deleted_tags)


def test_every_doomed_tag_is_removed_exactly_once() -> None:
    current = {"a": A, "a2": A, "b": B, "b2": B, "c": C}
    plan = plan_deletions(current, {"a", "a2", "b", "c"})
    removed_by_digest = [tag for tag, digest in current.items() if digest in plan.delete_digests]
    assert sorted(removed_by_digest + list(plan.untag)) == ["a", "a2", "b", "c"]
    assert set(plan.delete_digests) == {A, C}


def test_tag_set_diff() -> None:
    plan = DeletionPlan(delete_digests=(A,), untag=("b",), deleted_tags=("a", "b"), kept_tags=("c",))
    assert tag_set_diff(plan) == {"before": {"tags": ["a", "b", "c"]}, "after": {"tags": ["c"]}}
    outcomes = [
        {"tag": "a", "action": "deleted", "reason": "match", "detail": "matches the match pattern 'a'"},
        {"tag": "c", "action": "kept", "reason": "keep", "detail": "matches the keep pattern 'c'"},
    ]
    assert tag_set_diff(plan, outcomes) == {
        "before": {"tags": ["a", "b", "c"]},
        "after": {"tags": ["c"]},
        "prepared": "deleted a (match): matches the match pattern 'a'\nkept c (keep): matches the keep pattern 'c'\n",
    }


def test_tag_outcomes_say_how_each_deleted_tag_goes() -> None:
    # a, a2: one image, both doomed (deleted by digest); b doomed, its image shared with kept b-keep (untagged);
    # child doomed, its image in the kept index multi (untagged); d kept; e kept by name, never read (no digest)
    current = {"a": A, "a2": A, "b": B, "b-keep": B, "child": C, "multi": D}
    doomed = {"a", "a2", "b", "child"}
    plan = plan_deletions(current, doomed, protected={C}, indexes={D})
    reasons = {tag: Reason("older_than", "old") for tag in doomed}
    reasons.update({"b-keep": Reason("keep", "kept by name"), "multi": Reason("older_than", "young")})
    plan = DeletionPlan(plan.delete_digests, plan.untag, plan.deleted_tags, plan.kept_tags + ("e",))
    reasons["e"] = Reason("match", "unmatched")

    outcomes = tag_outcomes(plan, current, reasons, needed_by={C: ["multi"]})

    def entry(tag: str, action: str, reason: str, detail: str, removed_by: str | None) -> dict[str, Any]:
        return {
            "tag": tag,
            "digest": current.get(tag),
            "action": action,
            "reason": reason,
            "detail": detail,
            "removed_by": removed_by,
        }

    assert outcomes == [
        entry("a", "deleted", "older_than", "old; its image is deleted by digest, with a2", "digest"),
        entry("a2", "deleted", "older_than", "old; its image is deleted by digest, with a", "digest"),
        entry(
            "b", "deleted", "older_than", "old; removed on its own: its image stays for the kept tag b-keep", "untag"
        ),
        entry("b-keep", "kept", "keep", "kept by name", None),
        entry(
            "child",
            "deleted",
            "older_than",
            "old; removed on its own: its image stays for the kept index multi",
            "untag",
        ),
        entry("e", "kept", "match", "unmatched", None),
        entry("multi", "kept", "older_than", "young", None),
    ]
    assert outcomes[5]["digest"] is None
    # without knowing which index needs it, the reason still says why the image stays
    unnamed = tag_outcomes(plan, current, reasons)
    assert unnamed[4]["detail"] == "old; removed on its own: a kept index refers to its image, which stays"


# -- attachments: options ---------------------------------------------------------------------------------------


def test_attachments_follow_by_default_and_orphans_are_off() -> None:
    policy = RetentionPolicy.from_options({"keep_last": 1, "attachments": None, "orphans": None})
    assert (policy.attachments, policy.orphans, policy.follows_attachments, policy.has_rules) == (
        "follow",
        False,
        True,
        True,
    )
    ignoring = RetentionPolicy.from_options({"keep_last": 1, "attachments": "ignore"})
    assert ignoring.follows_attachments is False


@pytest.mark.parametrize(
    "options, texts",
    [
        ({"keep_last": 1, "attachments": "keep"}, ["retention.attachments", "follow, ignore", "'keep'"]),
        ({"keep_last": 1, "orphans": "yes"}, ["retention.orphans", "'yes'"]),
        ({"keep_last": 1, "attachments": "ignore", "orphans": True}, ["orphans needs retention.attachments=follow"]),
        ({"orphans": False}, ["sets no rule", "orphans: true"]),
        ({"attachments": "follow"}, ["sets no rule"]),
    ],
)
def test_bad_attachment_options_are_named(options: dict[str, Any], texts: list[str]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        RetentionPolicy.from_options(options)
    for text in texts:
        assert text in str(caught.value)
    assert str(caught.value).endswith("Nothing was deleted.")


def test_orphans_alone_is_a_policy_that_makes_no_tag_a_candidate() -> None:
    policy = RetentionPolicy.from_options({"orphans": True})
    assert (policy.has_rules, policy.orphans) == (False, True)
    assert policy.candidates(["v1", "latest"]) == []
    assert decide(policy, images(REPO), NOW).doomed == frozenset()
    assert policy.name_reason("v1") == Reason(
        "no_retention", "no rule of retention is set: only attachments whose subject is gone are deleted"
    )


# -- attachments: what goes with an image (follow_attachments) --------------------------------------------------

EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + "44" * 32, "size": 2}
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def manifest_of(document: dict[str, Any]) -> ManifestInfo:
    return parse_manifest(json.dumps(document).encode(), document["mediaType"])


def referrer_of(subject: str, name: str, artifact_type: str = BUNDLE) -> ManifestInfo:
    """A referrer manifest of SUBJECT (an OCI 1.1 artifact naming it), unique by NAME."""
    return manifest_of(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": EMPTY,
            "layers": [],
            "annotations": {"name": name},
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
        }
    )


def index_of(*children: ManifestInfo | str) -> ManifestInfo:
    """An index listing CHILDREN (manifests, with their artifact type, or bare digests)."""
    entries = []
    for child in children:
        if isinstance(child, str):
            entries.append({"mediaType": OCI_MANIFEST, "digest": child, "size": 100})
        else:
            entry = {"mediaType": child.media_type, "digest": child.digest, "size": child.size}
            if child.artifact_type:
                entry["artifactType"] = child.artifact_type
            entries.append(entry)
    return manifest_of({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def digest_of(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def sig(subject: str, suffix: str = ".sig") -> str:
    return fallback_tag(subject) + suffix


def follow(current, doomed, facts=None, **options):
    """follow_attachments with every attachment tag of CURRENT following its subject."""
    return follow_attachments(
        current, doomed, attachment_tags(current), options.pop("indexes", set()), facts, **options
    )


def settle(current, doomed, facts: AttachmentFacts, answer, **options):
    """follow_attachments asked again after each of its reads, as RepositoryRetention does; ANSWER(reads) fills FACTS.
    Returns the final plan and every read it asked for, in order."""
    asked: list[AttachmentReads] = []
    while True:
        plan = follow(current, doomed, facts, **options)
        if not plan.reads:
            return plan, asked
        # a question asked again was not answered (or cannot be): fail here rather than loop forever
        assert plan.reads not in asked, "asked again: %r" % (plan.reads,)
        asked.append(plan.reads)
        answer(plan.reads)


def test_attachment_tags_are_found_by_name() -> None:
    subject = digest_of("image")
    assert attachment_tags(["v1", sig(subject), sig(subject, ".att"), fallback_tag(subject), "sha256-abc.sig"]) == {
        sig(subject): (subject, "cosign-signature"),
        sig(subject, ".att"): (subject, "cosign-attestation"),
        fallback_tag(subject): (subject, None),
    }


def test_the_attachments_of_a_kept_image_stay_and_nothing_is_read() -> None:
    image = digest_of("image")
    current = {"v1": image, sig(image): digest_of("sig"), fallback_tag(image): digest_of("fallback")}
    plan = follow(current, set(), indexes={digest_of("fallback")})
    assert (plan.doomed, plan.untagged, plan.reads) == (frozenset(), (), AttachmentReads())
    assert plan.reasons[sig(image)] == Reason(
        "attachment",
        "the cosign signature of %s (tag v1), which stays: an attachment stays while its subject stays" % image,
    )
    assert plan.reasons[fallback_tag(image)].text.startswith("the referrers fallback index of %s (tag v1)" % image)


def test_the_attachments_of_an_image_that_goes_go_first_then_its_fallback_index_then_the_image() -> None:
    image, kept = digest_of("old image"), digest_of("kept image")
    bundle, attestation = referrer_of(image, "bundle"), referrer_of(image, "attestation", "application/x-att")
    fallback = index_of(bundle, attestation)
    kept_bundle = referrer_of(kept, "kept bundle")
    kept_fallback = index_of(kept_bundle)
    current = {
        "old": image,
        sig(image): digest_of("sig"),
        sig(image, ".att"): digest_of("att"),
        fallback_tag(image): fallback.digest,
        "new": kept,
        sig(kept): digest_of("kept sig"),
        fallback_tag(kept): kept_fallback.digest,
    }
    indexes = {fallback.digest, kept_fallback.digest}
    store = {m.digest: m for m in (bundle, attestation, fallback, kept_bundle, kept_fallback)}
    facts = AttachmentFacts(manifests={})

    def answer(reads: AttachmentReads) -> None:
        for digest in reads.surviving_indexes + reads.manifests:
            facts.manifests[digest] = store.get(digest)
        for subject in reads.referrers:
            facts.referrers[subject] = None  # no referrers API

    plan, asked = settle(current, {"old"}, facts, answer, indexes=indexes)

    # first the kept fallback index (its referrers are protected), then the fallback index of the image that goes and
    # the API question (once), then the referrers it lists (does each name that image?)
    assert asked == [
        AttachmentReads(surviving_indexes=(kept_fallback.digest,)),
        AttachmentReads(manifests=(fallback.digest,), referrers=(image,)),
        AttachmentReads(manifests=tuple(sorted([bundle.digest, attestation.digest]))),
    ]
    assert plan.doomed == {"old", sig(image), sig(image, ".att"), fallback_tag(image)}
    assert plan.untagged == tuple(sorted([bundle.digest, attestation.digest]))
    assert plan.protected == {kept_bundle.digest}
    assert plan.ranks == {
        bundle.digest: -2,
        attestation.digest: -2,
        digest_of("sig"): -2,
        digest_of("att"): -2,
        fallback.digest: -1,
    }
    assert plan.reasons[sig(image)] == Reason(
        "attachment",
        "the cosign signature of %s (tag old), which goes: an attachment goes with its subject, before it" % image,
    )
    assert plan.reasons[sig(kept)].code == "attachment" and "which stays" in plan.reasons[sig(kept)].text
    assert [r.to_dict() for r in plan.referrers] == [
        {
            "digest": digest,
            "subject": image,
            "artifact_type": artifact_type,
            "via": "fallback_tag",
            "tag": fallback_tag(image),
            "action": "deleted",
            "reason": "attachment",
            "detail": "the referrer listed in the fallback index %s of %s (tag old), which goes: an attachment goes"
            " with its subject, before it; deleted by digest" % (fallback_tag(image), image),
        }
        for digest, artifact_type in sorted([(bundle.digest, BUNDLE), (attestation.digest, "application/x-att")])
    ]

    deletions = plan_deletions(current, plan.doomed, plan.protected, indexes, untagged=plan.untagged, ranks=plan.ranks)
    assert deletions.stages == (
        DeletionStage(tuple(sorted([bundle.digest, attestation.digest, digest_of("sig"), digest_of("att")]))),
        DeletionStage((fallback.digest,)),
        DeletionStage((image,)),
    )
    assert deletions.delete_digests == tuple(d for stage in deletions.stages for d in stage.delete_digests)
    assert deletions.kept_tags == ("new", fallback_tag(kept), sig(kept))


def test_a_kept_fallback_index_keeps_its_referrers_even_when_a_rule_lets_their_tag_go() -> None:
    # the referrer of a kept image has a tag of its own that a rule deletes: it is untagged, never deleted by digest
    kept = digest_of("kept")
    bundle = referrer_of(kept, "bundle")
    fallback = index_of(bundle)
    current = {"v1": kept, fallback_tag(kept): fallback.digest, "bundle-copy": bundle.digest}
    facts = AttachmentFacts(manifests={fallback.digest: fallback}, referrers={kept: None})
    plan = follow(current, {"bundle-copy"}, facts, indexes={fallback.digest})
    assert plan.reads == AttachmentReads()
    assert plan.protected == {bundle.digest}
    deletions = plan_deletions(current, plan.doomed, plan.protected, {fallback.digest}, ranks=plan.ranks)
    assert (deletions.delete_digests, deletions.untag) == ((), ("bundle-copy",))


def test_a_referrer_whose_manifest_names_another_subject_or_is_gone_is_not_deleted() -> None:
    image, other = digest_of("image"), digest_of("other")
    stray, vanished = referrer_of(other, "stray"), referrer_of(image, "vanished")
    fallback = index_of(stray, vanished)
    current = {"old": image, fallback_tag(image): fallback.digest}
    facts = AttachmentFacts(
        manifests={fallback.digest: fallback, stray.digest: stray, vanished.digest: None},
        missing={vanished.digest},
        referrers={image: None},
    )
    plan = follow(current, {"old"}, facts, indexes={fallback.digest})
    assert plan.reads == AttachmentReads()
    assert plan.untagged == ()
    assert [(r.digest, r.to_dict()["action"]) for r in plan.referrers] == [(stray.digest, "kept")]  # vanished: gone
    assert plan.referrers[0].reason.text.endswith("it stays: its manifest names another subject, %s" % other)


def test_referrers_of_referrers_go_deepest_first_and_a_loop_ends() -> None:
    image = digest_of("image")
    sbom = referrer_of(image, "sbom", "application/spdx+json")
    sbom_signature = referrer_of(sbom.digest, "signature of the sbom")
    fallback, sbom_fallback = index_of(sbom), index_of(sbom_signature, image)  # a bogus entry: the image itself
    current = {
        "old": image,
        fallback_tag(image): fallback.digest,
        fallback_tag(sbom.digest): sbom_fallback.digest,
        sig(sbom.digest): digest_of("cosign sig of the sbom"),
        sig(digest_of("cosign sig of the sbom")): digest_of("cosign sig of the sbom"),  # a tag naming its own digest
    }
    store = {m.digest: m for m in (sbom, sbom_signature, fallback, sbom_fallback)}
    facts = AttachmentFacts(manifests={})

    def answer(reads: AttachmentReads) -> None:
        facts.manifests.update({digest: store.get(digest) for digest in reads.surviving_indexes + reads.manifests})
        facts.referrers.update(dict.fromkeys(reads.referrers))

    plan, asked = settle(current, {"old"}, facts, answer, indexes={fallback.digest, sbom_fallback.digest})

    # the bogus entry does not hold the image: an attachment never keeps its own subject; and it all ends
    assert len(asked) == 4
    assert plan.doomed == set(current)
    assert plan.untagged == tuple(sorted([sbom.digest, sbom_signature.digest]))
    assert plan.ranks == {
        fallback.digest: -1,
        sbom.digest: -2,
        sbom_fallback.digest: -3,
        sbom_signature.digest: -4,
        digest_of("cosign sig of the sbom"): -4,
    }
    assert plan.reasons[sig(sbom.digest)].text.startswith(
        "the cosign signature of %s (a referrer of %s), which goes" % (sbom.digest, image)
    )


def test_the_attachments_of_the_platform_images_of_an_index_that_goes_go_with_it() -> None:
    amd64, arm64, shared = digest_of("amd64"), digest_of("arm64"), digest_of("shared")
    multi, other = index_of(amd64, arm64, shared), index_of(shared)
    current = {
        "multi": multi.digest,
        "other": other.digest,
        sig(amd64): digest_of("sig amd64"),
        sig(arm64): digest_of("sig arm64"),
        sig(shared): digest_of("sig shared"),
    }
    facts = AttachmentFacts(manifests={multi.digest: multi, other.digest: other}, referrers={multi.digest: None})
    plan = follow(current, {"multi"}, facts, indexes={multi.digest, other.digest})
    assert plan.reads == AttachmentReads()
    assert plan.doomed == {"multi", sig(amd64), sig(arm64)}  # shared stays in the index other
    assert plan.reasons[sig(amd64)].text.startswith(
        "the cosign signature of %s (in the index multi), which goes" % amd64
    )
    assert plan.reasons[sig(shared)].text.startswith(
        "the cosign signature of %s, which a kept index refers to" % shared
    )
    assert plan.ranks[digest_of("sig amd64")] == -2


def test_orphans_are_looked_for_only_when_asked_and_go_with_their_referrers() -> None:
    gone, untagged, tagged = digest_of("gone"), digest_of("untagged but there"), digest_of("tagged")
    bundle = referrer_of(gone, "bundle of a deleted image")
    fallback = index_of(bundle)
    current = {
        "v1": tagged,
        sig(tagged): digest_of("sig tagged"),
        sig(gone): digest_of("sig gone"),
        fallback_tag(gone): fallback.digest,
        sig(untagged): digest_of("sig untagged"),
        "sha512-" + "a" * 64 + ".sig": digest_of("sig of a cut digest"),  # its subject's digest is not whole: no HEAD
    }
    indexes = {fallback.digest}

    without = follow(current, set(), indexes=indexes)
    assert (without.doomed, without.reads) == (frozenset(), AttachmentReads())
    assert without.reasons[sig(gone)].text.endswith(
        "which no tag of the repository points at: it stays (orphans: true deletes the attachments whose subject no"
        " longer exists)"
    )

    store = {m.digest: m for m in (fallback, bundle)}
    facts = AttachmentFacts(manifests={})

    def answer(reads: AttachmentReads) -> None:
        facts.exists.update({subject: subject != gone for subject in reads.subjects})
        facts.manifests.update({digest: store.get(digest) for digest in reads.manifests})
        facts.referrers.update(dict.fromkeys(reads.referrers))

    plan, asked = settle(current, set(), facts, answer, indexes=indexes, orphans=True)
    assert asked[0] == AttachmentReads(subjects=tuple(sorted([gone, untagged])))  # HEADs, never of a tagged image
    assert plan.doomed == {sig(gone), fallback_tag(gone)}
    assert plan.untagged == (bundle.digest,)
    assert {tag: plan.reasons[tag].code for tag in plan.doomed} == {sig(gone): "orphan", fallback_tag(gone): "orphan"}
    assert plan.reasons[sig(gone)].text == "the cosign signature of %s, which no longer exists (orphans)" % gone
    assert plan.reasons[sig(untagged)].text.endswith(
        "which exists, without a tag: an attachment stays while its subject exists"
    )
    assert [(r.digest, r.reason.code) for r in plan.referrers] == [(bundle.digest, "orphan")]
    assert plan.ranks == {bundle.digest: -2, digest_of("sig gone"): -2, fallback.digest: -1}


def test_the_referrers_api_is_asked_once_before_it_is_known_then_for_every_subject_that_goes() -> None:
    first, second = sorted([digest_of("one"), digest_of("two")])  # subjects are taken in digest order
    current = {"a": first, "b": second}
    api_bundle = Descriptor(OCI_MANIFEST, digest_of("api bundle"), 100, artifact_type=BUNDLE)
    facts = AttachmentFacts()
    assert follow(current, {"a", "b"}, facts).reads == AttachmentReads(referrers=(first,))
    facts = AttachmentFacts(referrers={first: ()})  # served (an empty answer is an answer)
    assert follow(current, {"a", "b"}, facts).reads == AttachmentReads(referrers=(second,))
    facts = AttachmentFacts(referrers={first: (), second: (api_bundle,)})
    plan = follow(current, {"a", "b"}, facts)
    assert plan.reads == AttachmentReads(referrers=(api_bundle.digest,))  # its own referrers, in turn
    facts.referrers[api_bundle.digest] = ()
    plan = follow(current, {"a", "b"}, facts)
    assert (plan.reads, plan.untagged, plan.ranks) == (AttachmentReads(), (api_bundle.digest,), {api_bundle.digest: -2})
    assert plan.referrers[0].to_dict()["via"] == "api" and plan.referrers[0].tag is None
    assert plan.referrers[0].reason.text == (
        "the referrer the referrers API names for %s (tag b), which goes: an attachment goes with its subject, before"
        " it; deleted by digest" % second
    )
    # without the API (api=False, as with attachments: ignore) nothing is asked
    assert follow(current, {"a", "b"}, AttachmentFacts(), api=False).reads == AttachmentReads()


def test_state_absent_takes_every_attachment_in_order_with_its_reason() -> None:
    image = digest_of("image")
    bundle = referrer_of(image, "bundle")
    fallback = index_of(bundle)
    current = {"v1": image, sig(image): digest_of("sig"), fallback_tag(image): fallback.digest}
    facts = AttachmentFacts(manifests={fallback.digest: fallback, bundle.digest: bundle}, referrers={image: None})
    plan = follow(current, set(current), facts, indexes={fallback.digest}, absent=True)
    assert plan.reads == AttachmentReads() and plan.untagged == (bundle.digest,)
    assert {reason.code for reason in plan.reasons.values()} == {"state=absent"}
    assert (
        plan.reasons[sig(image)].text == "state=absent deletes every tag; the cosign signature of %s (tag v1)" % image
    )
    assert plan.referrers[0].reason.code == "state=absent"
    stages = plan_deletions(current, plan.doomed, indexes={fallback.digest}, untagged=plan.untagged, ranks=plan.ranks)
    assert [stage.delete_digests for stage in stages.stages] == [
        tuple(sorted([bundle.digest, digest_of("sig")])),
        (fallback.digest,),
        (image,),
    ]


def test_plan_deletions_stages_put_indexes_first_within_a_rank_and_untags_last() -> None:
    current = {"i": C, "a": A, "a-keep": A, "b": B, "sig": D}
    plan = plan_deletions(current, {"i", "a", "b", "sig"}, indexes={C}, ranks={D: -2})
    assert plan.stages == (DeletionStage((D,)), DeletionStage((C,)), DeletionStage((B,), ("a",)))
    assert plan.delete_digests == (D, C, B)
    # a plan made by hand runs as one stage
    assert DeletionPlan((A,), ("b",), ("a", "b"), ()).ordered_stages == (DeletionStage((A,), ("b",)),)
    assert DeletionPlan((), (), (), ("a",)).ordered_stages == ()
    # an untagged digest goes unless protected, and never twice
    assert plan_deletions({"a": A}, {"a"}, protected={E}, untagged=[A, B, E]).delete_digests == (A, B)

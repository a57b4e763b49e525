# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention rules without a registry (plugins/module_utils/_ops/retention.py, _oci/timing.py)."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.timing import parse_duration, parse_time
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import (
    DeletionPlan,
    Reason,
    RetentionPolicy,
    TaggedImage,
    compile_patterns,
    decide,
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

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registry_sync's planning (plugins/module_utils/_ops/sync_plan.py): semver, filters, per-tag decisions, prune
refusals and the copy budget. Pure logic, no registry."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync_plan import (
    COPY,
    SKIPPED,
    UNCHANGED,
    CopyBudget,
    PresencePolicy,
    TagFilter,
    compare,
    parse_range,
    parse_version,
    plan_prune,
    triage,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
TAGS = ("1.0.0", "v1.2.0", "1.2.5", "1.3.0-rc.1", "1.3.0", "2.0.0-beta", "2.0.0", "1.2", "latest", "v2.1.0+build.7")


def matching(text: str, tags: tuple[str, ...] = TAGS) -> list[str]:
    semver = parse_range(text)
    return [tag for tag in tags if semver.matches(parse_version(tag))]


@pytest.mark.parametrize(
    "tag, parsed",
    [
        ("1.2.3", (1, 2, 3, ())),
        ("v1.2.3", (1, 2, 3, ())),
        ("V0.0.0-alpha.1+exp.sha.5114f85", (0, 0, 0, ("alpha", "1"))),
        ("1.2", None),
        ("01.2.3", None),
        ("1.2.3-01", None),
        ("latest", None),
        ("1.2.3.4", None),
        ("vv1.2.3", None),
    ],
)
def test_versions_are_strict_semver_with_an_optional_v(tag, parsed):
    version = parse_version(tag)
    if parsed is None:
        assert version is None
    else:
        assert (version.major, version.minor, version.patch, version.prerelease) == parsed


def test_precedence_is_semver_2():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    shuffled = sorted(ordered, key=lambda tag: tag[::-1])
    assert sorted(shuffled, key=lambda tag: parse_version(tag).key) == ordered


@pytest.mark.parametrize(
    "text, expected",
    [
        (">=1.2 <2", ["v1.2.0", "1.2.5", "1.3.0"]),
        ("^1.2", ["v1.2.0", "1.2.5", "1.3.0"]),
        ("~1.2.3", ["1.2.5"]),
        ("~1.2", ["v1.2.0", "1.2.5"]),
        ("1.x", ["1.0.0", "v1.2.0", "1.2.5", "1.3.0"]),
        ("1.2.*", ["v1.2.0", "1.2.5"]),
        ("1.2", ["v1.2.0", "1.2.5"]),
        ("=1.2.5", ["1.2.5"]),
        ("v1.2.5", ["1.2.5"]),
        (">1.2", ["1.3.0", "2.0.0", "v2.1.0+build.7"]),
        ("<=1.2", ["1.0.0", "v1.2.0", "1.2.5"]),
        ("*", ["1.0.0", "v1.2.0", "1.2.5", "1.3.0", "2.0.0", "v2.1.0+build.7"]),
        ("^1.0.0 || >=2.1.0", ["1.0.0", "v1.2.0", "1.2.5", "1.3.0", "v2.1.0+build.7"]),
        (">=1.3.0-rc.0 <2", ["1.3.0-rc.1", "1.3.0"]),
        (">=2.0.0-alpha", ["2.0.0-beta", "2.0.0", "v2.1.0+build.7"]),
    ],
)
def test_ranges(text, expected):
    assert matching(text) == expected


def test_caret_on_zero_versions_is_npm_s():
    tags = ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0"]
    assert matching("^0.0.3", tags) == ["0.0.3"]
    assert matching("^0.2.3", tags) == ["0.2.3", "0.2.9"]
    assert matching("^0", tags) == ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0"]


def test_pre_releases_stay_out_unless_the_range_names_one_of_the_same_release():
    assert matching("<2", ["2.0.0-rc.1", "1.9.0"]) == ["1.9.0"]
    assert matching(">=2.0.0-rc.1", ["2.0.0-rc.2", "2.1.0-rc.1", "2.1.0"]) == ["2.0.0-rc.2", "2.1.0"]


@pytest.mark.parametrize("text", ["", "  ", "1.2.3 ||", ">>1", "~>1.2", "1.2 - 2.3", "abc", "^1.2-rc.1", 12, None])
def test_bad_ranges_name_the_value_and_the_forms(text):
    with pytest.raises(InvalidInputError) as caught:
        parse_range(text, "images[0].semver")
    message = str(caught.value)
    assert "images[0].semver" in message
    assert "'>=1.2 <2'" in message or "partial version" in message
    if isinstance(text, str) and text.strip():
        assert repr(text) in message


def test_match_and_exclude_are_whole_names():
    chosen = TagFilter.from_options({"match": ["v1.*", "stable"], "exclude": [".*-rc.*"]})
    tags = ["v1.0", "v10", "xv1.0", "stable", "stable2", "v1.1-rc1", "v1"]
    assert chosen.select(tags) == ["v1.0", "v10", "stable", "v1"]


def test_no_rule_selects_every_tag_once():
    assert TagFilter.from_options({}).select(["b", "a", "b"]) == ["b", "a"]


def test_latest_by_semver_never_reads_ages():
    def ages(_tags):
        raise AssertionError("ages read although the tags are versions")

    chosen = TagFilter.from_options({"latest": 2})
    assert chosen.select(["1.0.0", "v1.10.0", "1.9.0", "1.10.0-rc.1"], ages) == ["v1.10.0", "1.10.0-rc.1"]
    ranged = TagFilter.from_options({"semver": ">=1", "latest": 2})
    assert ranged.select(["1.0.0", "latest", "v1.10.0", "1.9.0", "1.10.0-rc.1"], ages) == ["v1.10.0", "1.9.0"]


def test_latest_by_created_asks_only_for_the_admitted_tags_and_only_when_it_cuts():
    asked = []
    created = {"a": datetime.datetime(2024, 1, 1), "b": datetime.datetime(2025, 1, 1), "c": None}

    def ages(tags):
        asked.append(list(tags))
        return {tag: created[tag] for tag in tags}

    chosen = TagFilter.from_options({"latest": 2, "exclude": ["d"]})
    assert chosen.select(["a", "b", "c", "d"], ages) == ["b", "a"]
    assert asked == [["a", "b", "c"]]
    assert TagFilter.from_options({"latest": 5}).select(["a", "b"], ages) == ["a", "b"]
    assert len(asked) == 1


@pytest.mark.parametrize(
    "options, named",
    [
        ({"latest": 0}, "latest"),
        ({"latest": True}, "latest"),
        ({"match": ["("]}, "match"),
        ({"exclude": [""]}, "exclude"),
        ({"semver": "1.2.3.4"}, "semver"),
    ],
)
def test_bad_filters_name_the_option(options, named):
    with pytest.raises(InvalidInputError, match="images\\[2\\]." + named):
        TagFilter.from_options(options, "images[2].")


def test_triage_costs_nothing_for_keep_and_immutable():
    selected = ["1.0.0", "1.1.0", "edge", "new"]
    present = {"1.0.0", "1.1.0", "edge", "old"}
    settled, heads, missing = triage(selected, present, PresencePolicy.from_options("update", [r"1\..*"]))
    assert [(d.tag, d.action) for d in settled] == [("1.0.0", SKIPPED), ("1.1.0", SKIPPED)]
    assert heads == ["edge"]
    assert missing == ["new"]
    settled, heads, missing = triage(selected, present, PresencePolicy.from_options("keep", None))
    assert [d.tag for d in settled] == ["1.0.0", "1.1.0", "edge"] and heads == [] and missing == ["new"]


def test_bad_existing_names_the_value():
    with pytest.raises(InvalidInputError, match="existing must be one of update, keep, got 'sometimes'"):
        PresencePolicy.from_options("sometimes", None)


def test_compare():
    assert compare("t", A, A).action == UNCHANGED
    moved = compare("t", A, B)
    assert (moved.action, moved.digest, moved.previous_digest) == (COPY, A, B)
    assert compare("t", A, None).action == COPY


def test_prune_deletes_what_the_selection_lacks_but_not_attachment_tags():
    dest = ["1.0", "1.1", "old", "sha256-" + "a" * 64, "sha256-" + "a" * 64 + ".sig"]
    assert plan_prune("r/app", dest, {"1.0", "1.1"}, [], 100) == ["old"]


def test_prune_refuses_an_empty_source():
    with pytest.raises(RegistryError, match="lists no tags.*Nothing was changed"):
        plan_prune("r/app", ["1.0"], set(), ["src/app"], 100)


def test_prune_refuses_more_than_the_limit_and_allows_exactly_it():
    dest = ["t%d" % n for n in range(5)]
    assert len(plan_prune("r/app", dest, set(), [], 5)) == 5
    with pytest.raises(RegistryError, match="5 tags would be deleted.*more than prune_limit 4"):
        plan_prune("r/app", dest, set(), [], 4)


def test_budget_max_copies():
    budget = CopyBudget(max_copies=2)
    assert [budget.take() for _attempt in range(4)] == [True, True, False, False]
    assert budget.exhausted_by == "max_copies"


def test_budget_time():
    now = [100.0]
    budget = CopyBudget(time_budget=datetime.timedelta(seconds=10), clock=lambda: now[0])
    assert budget.take()
    now[0] = 109.9
    assert budget.take()
    now[0] = 110.0
    assert not budget.take()
    assert budget.exhausted_by == "time_budget"


def test_budget_rejects_bad_max_copies():
    with pytest.raises(InvalidInputError, match="max_copies.*-1"):
        CopyBudget(max_copies=-1)

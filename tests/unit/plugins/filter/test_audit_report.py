# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ocireg.registry.audit_report filter (plugins/filter/audit_report.py): sizes, ages, findings and rules."""

from __future__ import annotations

import copy
import datetime

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.filter import audit_report as plugin
from ansible_collections.ocireg.registry.plugins.filter import audit_settings as settings_plugin

NOW = "2025-01-31T00:00:00Z"
OCI = "org.opencontainers.image."
FULL_LABELS = {OCI + "source": "https://git.example.com/app", OCI + "revision": "abc123"}


def digest(char: str) -> str:
    return "sha256:" + char * 64


def details(
    tag: str,
    image: str,
    *,
    created: str | None = "2025-01-01T00:00:00Z",
    labels: dict | None = None,
    layers: tuple = (("1", 1000), ("2", 2000)),
    overhead: int = 500,
    platforms: list | None = None,
) -> dict:
    """One tag's image details, shaped like registry_info's."""
    layer_list = [
        {"digest": digest(d), "size": size, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip"}
        for d, size in layers
    ]
    return {
        "name": "registry.example.com/x",
        "tag": tag,
        "digest": digest(image),
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size": sum(size for _d, size in layers) + overhead,
        "created": created,
        "labels": dict(FULL_LABELS if labels is None else labels),
        "architecture": "amd64",
        "os": "linux",
        "layers": layer_list,
        "history": [],
        "platforms": platforms or [],
    }


def sample() -> list[dict]:
    return [
        {
            "name": "team/app",
            "tags": [
                details("latest", "a", created="2025-01-30T00:00:00Z"),
                details("1.0", "b", created="2024-06-01T00:00:00Z", layers=(("1", 1000), ("3", 4000))),
                details("1.1", "a", created="2025-01-30T00:00:00Z"),
            ],
        },
        {
            "name": "team/tool",
            "tags": [
                details(
                    "2.0",
                    "c",
                    labels={},
                    layers=(("4", 10000),),
                    platforms=[
                        {"os": "linux", "architecture": "amd64", "variant": None, "digest": digest("d"), "size": 400},
                        {"os": "linux", "architecture": "arm64", "variant": "v8", "digest": digest("e"), "size": 400},
                    ],
                )
            ],
        },
        {"name": "empty/repo", "tags": []},
        {
            "name": "old/schema1",
            "tags": [{"name": "registry.example.com/old/schema1", "tag": "v1", "error": "schema 1 is not supported"}],
        },
    ]


def report(repositories=None, **options):
    options.setdefault("now", NOW)
    return plugin.audit_report(sample() if repositories is None else repositories, **options)


def kinds(result) -> list[tuple[str, str, str, list[str]]]:
    return [(f["severity"], f["kind"], f["repository"], f["tags"]) for f in result["findings"]]


def test_filter_module_registers_audit_report():
    filters = plugin.FilterModule().filters()
    assert list(filters) == ["audit_report"]
    assert filters["audit_report"] is plugin.audit_report


def test_filter_module_registers_audit_settings_with_the_reports_own_checks():
    filters = settings_plugin.FilterModule().filters()
    assert list(filters) == ["audit_settings"]
    assert filters["audit_settings"] is plugin.audit_settings


# -- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("1d12h", 36 * 3600), ("2w", 14 * 86400), ("45s", 45), ("90m", 5400), (" 12h ", 43200)],
)
def test_durations(text, seconds):
    assert plugin.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["90", "d", "-1d", "1.5d", "", "ninety days", True, None, "1y"])
def test_bad_durations_name_the_value(bad):
    with pytest.raises(AnsibleFilterError, match=r"stale_after .* is not a duration"):
        plugin.parse_duration(bad, "stale_after")


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("1024", 1024), ("500MB", 500_000_000), ("1.5GiB", 1610612736), ("10 kB", 10_000), ("64KiB", 65536)],
)
def test_sizes(value, size):
    assert plugin.parse_size(value) == size


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (878, "878 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (132608, "129.5 KiB"),
        (1048535, "1.0 MiB"),
        (1048576, "1.0 MiB"),
        (1610612736, "1.5 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),
    ],
)
def test_sizes_for_people_count_in_1024s_and_small_ones_in_whole_bytes(size, text):
    assert plugin.format_size(size) == text


@pytest.mark.parametrize("bad", ["1XB", -1, True, "abc", "", "5 MiBs"])
def test_bad_sizes_name_the_value(bad):
    with pytest.raises(AnsibleFilterError, match=r"max_size .* is not a size"):
        plugin.parse_size(bad, "max_size")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        (
            "2024-01-01T00:00:00.123456789Z",
            datetime.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=datetime.timezone.utc),
        ),
        ("2024-01-01T02:00:00+02:00", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        ("2024-01-01T00:00:00", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        ("2023-12-31T19:00:00-0500", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
    ],
)
def test_times(text, expected):
    assert plugin.parse_time(text) == expected


@pytest.mark.parametrize("bad", [None, "", "yesterday", "2024-13-01T00:00:00Z", "0001-01-01"])
def test_unreadable_times_are_none(bad):
    assert plugin.parse_time(bad) is None


# -- the report ---------------------------------------------------------------------------------------------------


def test_repositories_tags_sizes_and_ages():
    result = report()
    assert result["generated_at"] == NOW
    assert [r["name"] for r in result["repositories"]] == ["empty/repo", "old/schema1", "team/app", "team/tool"]
    app = result["repositories"][2]
    assert [t["tag"] for t in app["tags"]] == ["1.0", "1.1", "latest"]
    assert app["images"] == 2
    # Layers 1, 2 and 3 once each, plus each image's manifests and config once: shared blobs are not counted twice.
    assert app["size"] == 1000 + 2000 + 4000 + 500 + 500
    assert app["has_latest"] is True
    assert (app["newest"], app["oldest"]) == ("2025-01-30T00:00:00Z", "2024-06-01T00:00:00Z")
    by_tag = {t["tag"]: t for t in app["tags"]}
    assert by_tag["latest"]["age_days"] == 1.0
    assert by_tag["1.0"]["age_days"] == 244.0
    assert by_tag["1.0"]["size"] == 5500
    assert by_tag["1.0"]["stale"] is True and by_tag["latest"]["stale"] is False
    assert set(by_tag["1.0"]) == {
        "tag", "digest", "media_type", "size", "size_human", "created", "age_days", "platforms", "labels", "stale",
        "error", "signatures",
    }  # fmt: skip
    assert by_tag["1.0"]["signatures"] is None, "not read: the details have no referrers"
    assert (by_tag["1.0"]["size_human"], app["size_human"]) == ("5.4 KiB", "7.8 KiB")
    tool = result["repositories"][3]
    assert tool["tags"][0]["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert tool["has_latest"] is False
    summary = result["summary"]
    assert summary["repositories"] == 4
    assert summary["tags"] == 5
    assert summary["images"] == 3
    assert summary["size"] == 1000 + 2000 + 4000 + 10000 + 3 * 500
    assert summary["size_human"] == "18.1 KiB"


def test_small_sizes_are_whole_bytes_in_the_report_and_in_its_messages():
    repos = [{"name": "r", "tags": [details("latest", "a", layers=(("1", 300), ("2", 78)), overhead=500)]}]
    result = report(repos, rules=[{"name": "tiny", "max_size": 512}])
    tag = result["repositories"][0]["tags"][0]
    assert (tag["size"], tag["size_human"]) == (878, "878 bytes")
    assert result["repositories"][0]["size_human"] == result["summary"]["size_human"] == "878 bytes"
    (finding,) = [f for f in result["findings"] if f["kind"] == "rule"]
    assert finding["message"] == "r:latest breaks rule 'tiny': 878 bytes, more than 512 bytes"


def test_a_size_reads_the_same_in_the_report_and_in_the_findings():
    result = report(rules=[{"name": "small", "max_size": "6kB"}], stale_after=None, required_labels=[])
    (finding,) = [f for f in result["findings"] if f["kind"] == "rule"]
    tool = result["repositories"][3]["tags"][0]
    assert "%d bytes (%s)" % (tool["size"], tool["size_human"]) in finding["message"]


def test_default_findings():
    result = report()
    assert kinds(result) == [
        ("error", "unreadable_tag", "old/schema1", ["v1"]),
        ("warning", "stale", "team/app", ["1.0"]),
        ("warning", "missing_labels", "team/tool", ["2.0"]),
        ("info", "empty_repository", "empty/repo", []),
        ("info", "missing_latest", "old/schema1", []),
        ("info", "missing_latest", "team/tool", []),
    ]
    stale = result["findings"][1]
    assert stale["digest"] == digest("b")
    assert stale["message"] == ("team/app:1.0 is stale: built 244 days ago (2024-06-01T00:00:00Z), more than 90d")
    labels = result["findings"][2]
    assert labels["message"] == (
        "team/tool:2.0: missing labels org.opencontainers.image.source, org.opencontainers.image.revision"
    )
    assert result["summary"]["findings"] == {"error": 1, "warning": 2, "info": 3}
    assert result["summary"]["kinds"] == {
        "unreadable_tag": 1, "stale": 1, "missing_labels": 1, "empty_repository": 1, "missing_latest": 2
    }  # fmt: skip


def test_an_image_is_named_once_with_all_its_tags():
    result = report(stale_after="1h", required_labels=[OCI + "version"], require_latest=False)
    app = [f for f in result["findings"] if f["repository"] == "team/app"]
    assert [(f["kind"], f["tags"]) for f in app] == [
        ("missing_labels", ["1.0"]),
        ("missing_labels", ["1.1", "latest"]),
        ("stale", ["1.0"]),
        ("stale", ["1.1", "latest"]),
    ]
    assert app[3]["message"].startswith("team/app:1.1 (also latest) is stale: built 24 hours ago")


def test_checks_can_be_turned_off():
    result = report(stale_after="", required_labels=[], require_latest=False)
    assert kinds(result) == [
        ("error", "unreadable_tag", "old/schema1", ["v1"]),
        ("info", "empty_repository", "empty/repo", []),
    ]
    assert result["settings"]["stale_after"] is None
    assert not any(tag["stale"] for repo in result["repositories"] for tag in repo["tags"])


def test_images_without_a_creation_time_have_no_age_and_are_never_stale():
    repos = [{"name": "r", "tags": [details("latest", "a", created=None)]}]
    result = report(repos, stale_after="1s")
    assert result["repositories"][0]["tags"][0]["age_days"] is None
    assert kinds(result) == []


def test_another_latest_tag():
    result = report(latest_tag="1.0")
    assert [f["repository"] for f in result["findings"] if f["kind"] == "missing_latest"] == [
        "old/schema1",
        "team/tool",
    ]
    assert report(latest_tag="stable")["repositories"][2]["has_latest"] is False


def test_now_defaults_to_the_current_time():
    result = plugin.audit_report([{"name": "r", "tags": [details("latest", "a", created="2000-01-01T00:00:00Z")]}])
    generated = plugin.parse_time(result["generated_at"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - generated).total_seconds()) < 60
    assert result["repositories"][0]["tags"][0]["age_days"] > 9000


def test_the_input_is_not_modified():
    repos = sample()
    before = copy.deepcopy(repos)
    report(repos, rules=[{"name": "r", "max_size": 1}])
    assert repos == before


# -- rules --------------------------------------------------------------------------------------------------------


def rule_findings(rules, **options):
    options.setdefault("stale_after", None)
    options.setdefault("required_labels", [])
    options.setdefault("require_latest", False)
    result = report(rules=rules, **options)
    return [f for f in result["findings"] if f["kind"] == "rule"]


def test_rule_checks():
    rules = [
        {"name": "fresh", "repository": "team/.*", "max_age": "30d"},
        {"name": "small", "max_size": "6kB", "severity": "error"},
        {"name": "versioned", "repository": "team/app", "tag": "1[.].*", "required_labels": [OCI + "version"]},
        {"name": "few tags", "max_tags": 2, "severity": "info", "description": "keep it tidy"},
    ]
    found = rule_findings(rules)
    assert [(f["severity"], f["rule"], f["check"], f["repository"], f["tags"]) for f in found] == [
        ("error", "small", "max_size", "team/tool", ["2.0"]),
        ("warning", "fresh", "max_age", "team/app", ["1.0"]),
        ("warning", "versioned", "required_labels", "team/app", ["1.0"]),
        ("warning", "versioned", "required_labels", "team/app", ["1.1"]),
        ("info", "few tags", "max_tags", "team/app", []),
    ]
    assert found[0]["message"] == (
        "team/tool:2.0 breaks rule 'small': 10500 bytes (10.3 KiB), more than 6000 bytes (5.9 KiB)"
    )
    assert found[1]["message"] == (
        "team/app:1.0 breaks rule 'fresh': built 244 days ago (2024-06-01T00:00:00Z), more than 30d"
    )
    assert (
        found[2]["message"] == "team/app:1.0 breaks rule 'versioned': missing labels org.opencontainers.image.version"
    )
    assert found[4]["message"] == "team/app has 3 tags, more than 2 (rule 'few tags')"


@pytest.mark.parametrize(
    ("max_age", "limit"), [("30d", "30d"), ("1d12h", "1d12h"), ("2w", "14d"), ("36h", "1d12h"), ("90m", "1h30m")]
)
def test_a_max_age_finding_names_the_limit_as_the_stale_finding_does(max_age, limit):
    (found,) = rule_findings([{"name": "fresh", "repository": "team/app", "tag": "1[.]0", "max_age": max_age}])
    assert found["message"].endswith("built 244 days ago (2024-06-01T00:00:00Z), more than %s" % limit)
    stale = [f for f in report(stale_after=max_age)["findings"] if f["kind"] == "stale" and f["tags"] == ["1.0"]]
    assert stale[0]["message"].endswith("built 244 days ago (2024-06-01T00:00:00Z), more than %s" % limit)


def test_rule_patterns_match_whole_names():
    assert rule_findings([{"name": "r", "repository": "team", "max_size": 1}]) == []
    assert rule_findings([{"name": "r", "repository": "team/app", "tag": "1", "max_size": 1}]) == []
    found = rule_findings([{"name": "r", "repository": "team/app", "tag": "1[.]0", "max_size": 1}])
    assert [f["tags"] for f in found] == [["1.0"]]


def test_max_tags_counts_the_tags_the_rule_selects():
    found = rule_findings([{"name": "r", "tag": "1[.].*", "max_tags": 1}])
    assert [f["message"] for f in found] == ["team/app has 2 tags matching '1[.].*', more than 1 (rule 'r')"]


def test_rules_are_reported_in_settings():
    result = report(rules=[{"name": "r", "repository": "a/.*", "max_age": "1w", "max_size": "1KiB"}])
    assert result["settings"]["rules"] == [
        {
            "name": "r",
            "description": None,
            "severity": "warning",
            "repository": "a/.*",
            "tag": None,
            "max_age": 604800,
            "max_size": 1024,
            "required_labels": [],
            "max_tags": None,
        }
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"repository": "x"}], r"rule 1 has no name"),
        ([{"name": "r", "colour": "red"}], r"rule 'r' has unknown keys colour; allowed: description, max_age"),
        ([{"name": "r", "repository": "("}], r"rule 'r': repository '\(' is not a valid regular expression"),
        ([{"name": "r", "tag": "[a-"}], r"rule 'r': tag '\[a-' is not a valid regular expression"),
        ([{"name": "r", "severity": "fatal"}], r"rule 'r': severity 'fatal' is not one of error, warning, info"),
        ([{"name": "r", "max_age": "30 days"}], r"rule 'r': max_age '30 days' is not a duration"),
        ([{"name": "r", "max_size": "big"}], r"rule 'r': max_size 'big' is not a size"),
        ([{"name": "r", "max_tags": "many"}], r"rule 'r': max_tags 'many' is not a whole number"),
        ([{"name": "r", "required_labels": "a,b"}], r"rule 'r': required_labels must be a list"),
        (["not a dict"], r"rule 1 must be a dictionary"),
        ({"name": "r"}, r"rules must be a list"),
    ],
)
def test_bad_rules_fail_naming_the_problem(rules, message):
    with pytest.raises(AnsibleFilterError, match=message):
        report(rules=rules)
    # audit_settings, which the role runs before the first request, fails the same way.
    with pytest.raises(AnsibleFilterError, match=message):
        plugin.audit_settings({"rules": rules})


@pytest.mark.parametrize(
    ("repositories", "options", "message"),
    [
        ({"repositories": []}, {}, r"expects the 'repositories' list of registry_info"),
        (
            [{"name": "r", "tags": ["latest"]}],
            {},
            r"lists tag names, not image details: run registry_info with details",
        ),
        ([{"tags": []}], {}, r"each repository must be a dictionary with a name"),
        ([], {"now": "tomorrow"}, r"now 'tomorrow' is not a time"),
        ([], {"stale_after": "3 months"}, r"stale_after '3 months' is not a duration"),
        ([], {"required_labels": "a"}, r"required_labels must be a list of label names"),
    ],
)
def test_bad_input_fails_naming_it(repositories, options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        report(repositories, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"now": "tomorrow"},
        {"stale_after": "3 months"},
        {"required_labels": "a"},
        {"rules": [{"name": "r", "max_size": "big"}]},
        {"rules": [{"name": "r", "tag": "v[0-"}]},
        {"rules": [{"name": "r", "max_age": "1y"}]},
    ],
)
def test_settings_are_checked_before_any_repository_is_looked_at(options):
    # Input the report cannot read: a setting that fails is found first, so no repository is ever looked at.
    unreadable = [{"name": "r", "tags": ["latest"]}]
    with pytest.raises(AnsibleFilterError) as from_report:
        report(unreadable, **options)
    with pytest.raises(AnsibleFilterError) as from_settings:
        plugin.audit_settings(dict(options))
    assert "not image details" not in str(from_report.value)
    assert str(from_settings.value) == str(from_report.value)


def test_audit_settings_returns_the_settings_the_report_records():
    options = {
        "now": NOW,
        "stale_after": "2w",
        "required_labels": [OCI + "version"],
        "require_latest": False,
        "latest_tag": "stable",
        "rules": [{"name": "r", "repository": "a/.*", "max_age": "1d12h", "max_size": "1KiB"}],
    }
    checked = plugin.audit_settings(options)
    assert checked == report(**options)["settings"]
    assert checked["stale_after_seconds"] == 14 * 86400
    assert checked["rules"][0]["max_age"] == 36 * 3600
    # Left out, a setting has the report's default.
    assert plugin.audit_settings({}) == plugin.audit_report([])["settings"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stale": "90d"}, r"audit_settings: unknown settings stale; allowed: now, stale_after, required_labels"),
        ([{"name": "r"}], r"audit_settings expects a dictionary of audit_report's options \(now, stale_after"),
    ],
)
def test_audit_settings_refuses_what_is_not_a_setting(settings, message):
    with pytest.raises(AnsibleFilterError, match=message):
        plugin.audit_settings(settings)


# -- repositories read one by one ---------------------------------------------------------------------------------


def test_a_repository_that_does_not_exist_is_a_finding_and_not_in_the_report():
    read_one_by_one = [
        {"name": "team/app", "tags": sample()[0]["tags"], "exists": True},
        {"name": "team/gone", "tags": [], "exists": False},
        {"name": "team/empty", "tags": [], "exists": True},
    ]
    result = report(read_one_by_one, stale_after=None, required_labels=[])
    assert [r["name"] for r in result["repositories"]] == ["team/app", "team/empty"]
    assert result["summary"]["repositories"] == 2
    assert kinds(result) == [
        ("error", "missing_repository", "team/gone", []),
        ("info", "empty_repository", "team/empty", []),
    ]
    missing = result["findings"][0]
    assert missing["message"].startswith("team/gone does not exist in the registry")
    assert (missing["digest"], missing["rule"], missing["check"]) == (None, None, None)
    assert result["summary"]["kinds"] == {"missing_repository": 1, "empty_repository": 1}
    # But for that finding, the report is the one the catalog's listing of the same repositories gives.
    catalog = [{"name": "team/app", "tags": sample()[0]["tags"]}, {"name": "team/empty", "tags": []}]
    from_catalog = report(catalog, stale_after=None, required_labels=[])
    assert result["repositories"] == from_catalog["repositories"]
    assert result["findings"][1:] == from_catalog["findings"]
    assert {key: value for key, value in result["summary"].items() if key not in ("findings", "kinds")} == {
        key: value for key, value in from_catalog["summary"].items() if key not in ("findings", "kinds")
    }

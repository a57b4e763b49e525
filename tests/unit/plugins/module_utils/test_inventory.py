# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option checks and filters of registry_info (plugins/module_utils/_ops/inventory.py), and its documentation."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    NotFoundError,
    PermissionDeniedError,
    error_from_response,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops import inventory
from ansible_collections.ocireg.registry.plugins.modules import registry_info

DEFAULTS: dict[str, Any] = {
    "registry": None,
    "repository": None,
    "image": None,
    "repositories": None,
    "tags": None,
    "details": False,
    "paths": None,
    "max_file_size": 1048576,
    "platform": None,  # as Ansible hands it over when the task does not set it
    "concurrency": 8,
    "referrers": False,
    "verify_key": None,
}


def problems(**params: Any) -> list[str]:
    return inventory.validate_options(dict(DEFAULTS, **params))


@pytest.mark.parametrize(
    "params",
    [
        {"registry": "r.example.com"},
        {"registry": "r.example.com", "repositories": ["team/*"], "tags": ["v*"], "details": True},
        {"repository": "r.example.com/app", "tags": ["*"], "concurrency": 1},
        {"repository": "r.example.com/app", "details": True, "concurrency": 64},
        {"image": "r.example.com/app:1", "paths": ["/etc", "relative/path"], "max_file_size": 0},
        {"image": "r.example.com/app:1", "platform": "linux/arm64/v8", "details": True},
        {"image": "r.example.com/app:1", "referrers": True, "verify_key": "-----BEGIN PUBLIC KEY-----..."},
        {"repository": "r.example.com/app", "referrers": True, "details": True},
        {"registry": "r.example.com", "referrers": True, "details": True, "tags": ["v*"]},
    ],
)
def test_good_combinations_pass(params: dict[str, Any]) -> None:
    assert problems(**params) == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"repository": "r/a", "concurrency": 0}, ["concurrency", "from 1 to 64", "got 0"]),
        ({"repository": "r/a", "concurrency": -3}, ["concurrency", "got -3"]),
        ({"repository": "r/a", "concurrency": 65}, ["concurrency", "got 65"]),
        ({"image": "r/a", "paths": ["/x"], "max_file_size": -1}, ["max_file_size", "got -1"]),
        ({"repository": "r/a", "repositories": ["x*"]}, ["repositories", "with registry, not repository"]),
        ({"image": "r/a", "repositories": ["x*"]}, ["repositories", "not image"]),
        ({"image": "r/a", "tags": ["v*"]}, ["tags", "not image"]),
        ({"registry": "r", "paths": ["/etc"]}, ["paths", "with image, not registry"]),
        ({"repository": "r/a", "paths": ["/etc"]}, ["paths", "with image, not repository"]),
        ({"registry": "r", "repositories": ["ok", ""]}, ["repositories", "non-empty", "''"]),
        ({"registry": "r", "tags": [""]}, ["tags", "non-empty"]),
        ({"image": "r/a", "paths": ["/etc", ""]}, ["paths", "''"]),
        ({"image": "r/a", "paths": ["a\x00b"]}, ["paths", "a\\x00b"]),
        ({"image": "r/a", "platform": "linux"}, ["Invalid platform 'linux'", "os/architecture"]),
        ({"image": "r/a", "platform": "linux/amd64/v1/x"}, ["Invalid platform"]),
        ({"image": "r/a", "platform": "Linux AMD64"}, ["Invalid platform 'Linux AMD64'"]),
        ({"repository": "r/a", "referrers": True}, ["referrers", "with image, or with repository and details=true"]),
        ({"registry": "r", "referrers": True, "tags": ["*"]}, ["referrers", "with registry and details=true"]),
        ({"repository": "r/a", "verify_key": "k", "details": True}, ["verify_key", "with image, not repository"]),
        ({"registry": "r", "verify_key": "k"}, ["verify_key", "with image, not registry"]),
    ],
)
def test_bad_values_are_named(params: dict[str, Any], words: list[str]) -> None:
    found = problems(**params)
    assert len(found) == 1, found
    for word in words:
        assert word in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(repository="r/a", concurrency=0, paths=["/x"], platform="nope")
    assert len(found) == 3
    assert any("concurrency" in p for p in found)
    assert any("paths" in p for p in found)
    assert any("platform" in p for p in found)


@pytest.mark.parametrize(
    ("name", "patterns", "expected"),
    [
        ("team/app", None, True),
        ("team/app", ["team/*"], True),
        ("team/sub/app", ["team/*"], True),  # fnmatch's * crosses '/'
        ("team/app", ["other/*", "*/app"], True),
        ("Team/app", ["team/*"], False),  # case-sensitive everywhere, as registries are
        ("v1.2", ["v1.?"], True),
        ("v1.10", ["v1.?"], False),
        ("release-7", ["release-[0-9]*"], True),
        ("latest", [], False),
    ],
)
def test_matches(name: str, patterns: list[str] | None, expected: bool) -> None:
    assert inventory.matches(name, patterns) is expected


def test_argument_spec_matches_the_documentation() -> None:
    import yaml

    documented = yaml.safe_load(registry_info.DOCUMENTATION)["options"]
    assert set(documented) == set(registry_info.ARGUMENT_SPEC)
    for name, spec in registry_info.ARGUMENT_SPEC.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("default") == spec.get("default"), name
        assert documented[name].get("elements") == spec.get("elements"), name


# -- Inventory.run, on the in-memory registry of conftest.py ----------------------------------------------------

NAME = "team/app"
REGISTRY = {"url": "https://registry.test", "api_version": "registry/2.0"}


class Gathered:
    """One registry_info task: its result, its warnings, and what it asked make_clients for."""

    def __init__(self, clients: Any, **params: Any):
        self.warnings: list[str] = []
        self.made: list[tuple[Any, int]] = []

        def make_clients(primary: Any, pool_size: int) -> Any:
            self.made.append((primary, pool_size))
            return clients

        self.result = inventory.Inventory(dict(DEFAULTS, **params), make_clients, self.warnings.append).run()


def test_a_repository_lists_its_matching_tags_sorted(memory_registry, memory_clients) -> None:
    memory_registry.add_image(NAME, ["v2", "latest", "v10", "v1"])

    gathered = Gathered(memory_clients, repository="registry.test/team/app", tags=["v*"], concurrency=20)

    assert gathered.result == {
        "registry": REGISTRY,
        "tags": ["v1", "v10", "v2"],
        "exists": True,
        "missing": None,
        "changed": False,
    }
    assert memory_registry.kinds() == {"ping": 1, "list_tags": 1}
    assert [(str(primary), size) for primary, size in gathered.made] == [("registry.test/team/app", 20)]
    assert (memory_clients.closed, gathered.warnings) == (1, [])


def test_a_missing_repository_does_not_exist(memory_registry, memory_clients) -> None:
    for details in (False, True):
        gathered = Gathered(memory_clients, repository="registry.test/team/nothing", details=details)
        assert gathered.result == {
            "registry": REGISTRY,
            "tags": [],
            "exists": False,
            "missing": "repository",
            "changed": False,
        }


def test_repository_details_leave_vanished_tags_out_and_carry_the_errors_of_undescribable_ones(
    memory_registry, memory_clients
) -> None:
    image = memory_registry.add_image(NAME, ["v1", "gone"], labels={"team": "a"}, created="2024-05-06T07:08:09Z")
    arm64 = memory_registry.add_image(NAME, platform="linux/arm64")
    index = memory_registry.add_index(NAME, [image, arm64], ["multi"], attestations=True)
    memory_registry.store(NAME, b"not json", "application/vnd.oci.image.manifest.v1+json", ["broken"])
    memory_registry.store(
        NAME,
        b'{"schemaVersion": 1, "fsLayers": []}',
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ["old"],
    )
    lost = memory_registry.add_image(NAME, platform="linux/amd64", created=None)
    memory_registry.add_index(NAME, [lost], ["incomplete"])
    memory_registry.remove(NAME, lost.digest)
    bad = memory_registry.add_image(NAME, ["bad-config"], created="2020-01-01T00:00:00Z")
    memory_registry.repositories[NAME].blobs[bad.config_digest] = b"[1, 2]"
    memory_registry.on("get_manifest", "gone", lambda: memory_registry.untag(NAME, "gone"))

    gathered = Gathered(memory_clients, repository="registry.test/team/app", details=True)

    tags = gathered.result["tags"]
    assert [entry["tag"] for entry in tags] == ["bad-config", "broken", "incomplete", "multi", "old", "v1"]
    by_tag = {entry["tag"]: entry for entry in tags}
    for tag in ("bad-config", "broken", "incomplete", "old"):
        assert set(by_tag[tag]) == {"name", "tag", "error"}
        assert by_tag[tag]["name"] == "registry.test/team/app"
    assert "is not a JSON object" in by_tag["bad-config"]["error"]
    assert "not valid JSON" in by_tag["broken"]["error"]
    assert "is incomplete" in by_tag["incomplete"]["error"]
    assert "schema 1" in by_tag["old"]["error"]
    v1 = by_tag["v1"]
    assert (v1["digest"], v1["created"], v1["labels"], v1["architecture"]) == (
        image.digest,
        "2024-05-06T07:08:09Z",
        {"team": "a"},
        "amd64",
    )
    multi = by_tag["multi"]
    assert (multi["digest"], multi["platform"]["digest"], multi["labels"]) == (
        index.digest,
        image.digest,
        {"team": "a"},
    )
    assert gathered.result["exists"] is True
    assert gathered.warnings[0] == (
        "1 tag(s) disappeared while their details were read, and are left out: registry.test/team/app:gone"
    )
    assert gathered.warnings[1].startswith("4 tag(s) could not be described (see their 'error'): ")
    assert gathered.warnings[1].endswith("; and 1 more")
    assert "registry.test/team/app:bad-config: " in gathered.warnings[1]
    assert len(gathered.warnings) == 2
    assert memory_registry.count("read_blob", image.config_digest) == 1  # shared by v1 and multi: read once


def test_an_image_with_a_platform(memory_registry, memory_clients) -> None:
    amd64 = memory_registry.add_image(NAME, labels={"arch": "amd64"})
    arm64 = memory_registry.add_image(NAME, labels={"arch": "arm64"}, platform="linux/arm64/v8")
    index = memory_registry.add_index(NAME, [amd64, arm64], ["multi"], attestations=True)

    gathered = Gathered(memory_clients, image="registry.test/team/app:multi", platform="linux/arm64/v8")
    by_digest = Gathered(memory_clients, image="registry.test/team/app@" + amd64.digest, platform="linux/arm64/v8")

    image = gathered.result["image"]
    assert (gathered.result["exists"], gathered.result["missing"], gathered.result["registry"]) == (
        True,
        None,
        REGISTRY,
    )
    assert (image["name"], image["tag"], image["digest"]) == ("registry.test/team/app", "multi", index.digest)
    assert (image["architecture"], image["variant"], image["labels"]) == ("arm64", "v8", {"arch": "arm64"})
    assert image["platform"]["digest"] == arm64.digest
    assert [entry["digest"] for entry in image["platforms"]] == list(index.children)
    assert (by_digest.result["image"]["tag"], by_digest.result["image"]["labels"]) == (None, {"arch": "amd64"})
    assert gathered.warnings == []
    # amd64's own manifest, a single image, is not linux/arm64/v8: it is described as it is, and flagged
    assert (by_digest.result["exists"], by_digest.result["missing"]) == (True, "platform")
    assert (
        len(by_digest.warnings) == 1
        and "single-platform linux/amd64 image, not linux/arm64/v8" in by_digest.warnings[0]
    )


def test_an_index_without_the_platform_is_described_with_a_warning(memory_registry, memory_clients) -> None:
    amd64 = memory_registry.add_image(NAME)
    arm64 = memory_registry.add_image(NAME, platform="linux/arm64/v8")
    memory_registry.add_index(NAME, [amd64, arm64], ["multi"])

    gathered = Gathered(memory_clients, image="registry.test/team/app:multi", platform="linux/s390x")

    assert (gathered.result["exists"], gathered.result["image"]["platform"]) == (True, None)
    assert gathered.result["missing"] == "platform"
    assert gathered.warnings == [
        "registry.test/team/app:multi is a multi-platform index without platform linux/s390x, so its platform details"
        " are empty; it holds: linux/amd64, linux/arm64/v8"
    ]


def test_the_platform_warning_leaves_attestations_out(memory_registry, memory_clients) -> None:
    amd64 = memory_registry.add_image(NAME)
    arm64 = memory_registry.add_image(NAME, platform="linux/arm64/v8")
    memory_registry.add_index(NAME, [amd64, arm64], ["multi"], attestations=True)

    gathered = Gathered(memory_clients, image="registry.test/team/app:multi", platform="linux/s390x")

    assert gathered.warnings[0].endswith("it holds: linux/amd64, linux/arm64/v8")


def test_a_missing_image_says_whether_the_repository_the_tag_or_the_digest_is_missing(memory_registry, memory_clients):
    pushed = memory_registry.add_image(NAME, ["v1"])
    other = "sha256:" + "0" * 64
    cases = {
        "registry.test/team/app:v2": "tag",
        "registry.test/team/app@" + other: "digest",
        "registry.test/team/app:v1@" + other: "digest",  # the digest is what is fetched
        "registry.test/team/nothing:v1": "repository",
        "registry.test/team/nothing@" + pushed.digest: "repository",
    }
    for image, missing in cases.items():
        memory_registry.requests.clear()
        assert Gathered(memory_clients, image=image).result == {
            "registry": REGISTRY,
            "image": None,
            "exists": False,
            "missing": missing,
            "changed": False,
        }, image
        # distribution's MANIFEST_UNKNOWN does not tell: one tag list does, and only because the image is missing
        assert memory_registry.kinds() == {"ping": 1, "get_manifest": 1, "list_tags": 1}, image
    assert Gathered(memory_clients, image="registry.test/team/app:v2", paths=["/etc"]).result["files"] == {}

    memory_registry.requests.clear()
    found = Gathered(memory_clients, image="registry.test/team/app:v1").result
    assert (found["exists"], found["missing"]) == (True, None)
    assert memory_registry.count("list_tags") == 0  # an image that is there costs no tag list


def test_a_registry_that_says_name_unknown_needs_no_tag_list(memory_registry, memory_clients) -> None:
    unknown = error_from_response(
        404,
        b'{"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}',
        action="get manifest",
        registry="registry.test",
        content_type="application/json",
    )
    memory_registry.fail_on("get_manifest", error=unknown)

    assert Gathered(memory_clients, image="registry.test/team/nothing:v1").result["missing"] == "repository"
    assert memory_registry.count("list_tags") == 0


def test_a_refused_tag_list_leaves_the_reference_as_what_is_missing(memory_registry, memory_clients) -> None:
    memory_registry.add_image(NAME, ["v1"])
    memory_registry.fail_on("list_tags", error=PermissionDeniedError("denied", registry="registry.test", status=403))

    gathered = Gathered(memory_clients, image="registry.test/team/app:v2")

    assert (gathered.result["exists"], gathered.result["missing"]) == (False, "tag")


def test_a_single_image_of_another_platform_exists_but_its_platform_is_missing(memory_registry, memory_clients) -> None:
    memory_registry.add_image(NAME, ["amd64"], labels={"arch": "amd64"})
    memory_registry.add_image(NAME, ["arm64"], platform="linux/arm64")
    memory_registry.add_artifact(NAME, ["chart"])
    reference = "registry.test/team/app:"

    asked_arm64 = Gathered(memory_clients, image=reference + "amd64", platform="linux/arm64")
    assert (asked_arm64.result["exists"], asked_arm64.result["missing"]) == (True, "platform")
    image = asked_arm64.result["image"]
    assert (image["os"], image["architecture"], image["labels"], image["platform"]) == (
        "linux",
        "amd64",
        {"arch": "amd64"},
        None,
    )
    assert asked_arm64.warnings == [
        "registry.test/team/app:amd64 is a single-platform linux/amd64 image, not linux/arm64 (platform): its details"
        " are those of linux/amd64"
    ]
    # the same image asked for as what it is, or without a platform, is no news; nor is an arm64 image without one,
    # though an index would be described for linux/amd64
    for tag, platform in (("amd64", "linux/amd64"), ("amd64", "linux/amd64/v1"), ("amd64", None), ("arm64", None)):
        gathered = Gathered(memory_clients, image=reference + tag, platform=platform)
        assert (gathered.result["missing"], gathered.warnings) == (None, []), (tag, platform)
    matched = Gathered(memory_clients, image=reference + "arm64", platform="linux/arm64/v8")  # v8 is arm64's default
    assert (matched.result["missing"], matched.warnings) == (None, [])
    # an artifact names no platform: nothing to compare
    chart = Gathered(memory_clients, image=reference + "chart", platform="linux/arm64")
    assert (chart.result["exists"], chart.result["missing"], chart.warnings) == (True, None, [])


def test_paths_of_a_single_image_of_another_platform_are_not_read(memory_registry, memory_clients) -> None:
    pushed = memory_registry.add_image(NAME, ["amd64"])
    memory_registry.requests.clear()

    with pytest.raises(NotFoundError, match="is a single linux/amd64 image, not linux/arm64; its files were not read"):
        Gathered(memory_clients, image="registry.test/team/app:amd64", platform="linux/arm64", paths=["/etc"])
    assert memory_registry.count("read_blob") == 1  # its config, to know its platform; no layer
    assert memory_registry.count("read_blob", pushed.config_digest) == 1


def registry_with_repositories(registry: Any) -> None:
    registry.add_image(NAME, ["v2", "latest", "v1"])
    registry.add_image("team/web", ["v1", "edge"])
    registry.add_image("other/x", ["v1"])
    registry.requests.clear()


def test_a_registry_lists_the_matching_repositories_and_their_matching_tags(memory_registry, memory_clients) -> None:
    registry_with_repositories(memory_registry)

    names = Gathered(memory_clients, registry="registry.test", repositories=["team/*"])
    tagged = Gathered(memory_clients, registry="registry.test", repositories=["team/*"], tags=["v*"])

    assert names.result == {
        "registry": REGISTRY,
        "repositories": [{"name": "team/app"}, {"name": "team/web"}],
        "exists": True,
        "missing": None,
        "changed": False,
    }
    assert tagged.result["repositories"] == [
        {"name": "team/app", "tags": ["v1", "v2"]},
        {"name": "team/web", "tags": ["v1"]},
    ]
    assert memory_registry.kinds() == {"ping": 2, "catalog": 2, "list_tags": 2}
    assert names.made == [("registry.test", 16)]


def test_registry_details_describe_every_matching_tag(memory_registry, memory_clients) -> None:
    registry_with_repositories(memory_registry)
    amd64 = memory_registry.add_image("team/web")
    arm64 = memory_registry.add_image("team/web", platform="linux/arm64/v8", labels={"arch": "arm64"})
    memory_registry.add_index("team/web", [amd64, arm64], ["multi"])
    memory_registry.on("get_manifest", "edge", lambda: memory_registry.untag("team/web", "edge"))

    gathered = Gathered(memory_clients, registry="registry.test", details=True, platform="linux/arm64")

    listed = {entry["name"]: [tag["tag"] for tag in entry["tags"]] for entry in gathered.result["repositories"]}
    assert listed == {"other/x": ["v1"], "team/app": ["latest", "v1", "v2"], "team/web": ["multi", "v1"]}
    multi = gathered.result["repositories"][2]["tags"][0]
    assert (multi["platform"]["digest"], multi["variant"], multi["labels"]) == (arm64.digest, "v8", {"arch": "arm64"})
    assert gathered.result["repositories"][0]["tags"][0]["name"] == "registry.test/other/x"
    assert gathered.warnings == [
        "1 tag(s) disappeared while their details were read, and are left out: registry.test/team/web:edge"
    ]


def test_a_repository_gone_between_the_catalog_and_its_tag_list_has_no_tags(memory_registry, memory_clients) -> None:
    registry_with_repositories(memory_registry)
    memory_registry.on("list_tags", None, lambda: memory_registry.repositories.pop("other/x", None))

    gathered = Gathered(memory_clients, registry="registry.test", tags=["*"], concurrency=1)

    assert gathered.result["repositories"][0] == {"name": "other/x", "tags": []}


def test_a_registry_without_a_catalog_says_to_give_a_repository(make_registry, make_clients) -> None:
    from ansible_collections.ocireg.registry.plugins.module_utils._errors import UnsupportedError

    clients = make_clients(make_registry(catalog=False))
    with pytest.raises(UnsupportedError, match="does not offer the catalog API .* Give a repository instead"):
        Gathered(clients, registry="registry.test")
    assert clients.closed == 1

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Option checks and filters of registry_info (plugins/module_utils/_ops/inventory.py), and its documentation."""

from __future__ import annotations

from typing import Any

import pytest

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
    "platform": "linux/amd64",
    "concurrency": 8,
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

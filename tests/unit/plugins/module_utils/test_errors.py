# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed registry errors (plugins/module_utils/_errors.py): codes and statuses to classes and messages."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    AuthenticationError,
    DigestMismatchError,
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    RegistryResponseError,
    TooManyRequestsError,
    UnsupportedError,
    error_from_response,
    parse_error_codes,
)

REGISTRY = "registry.example.com"
REPO = "team/app"


def body(*errors: tuple[str, str]) -> bytes:
    return json.dumps(
        {"errors": [{"code": code, "message": message, "detail": {}} for code, message in errors]}
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (404, "BLOB_UNKNOWN", NotFoundError),
        (404, "MANIFEST_UNKNOWN", NotFoundError),
        (404, "NAME_UNKNOWN", NotFoundError),
        (400, "NAME_INVALID", InvalidReferenceError),
        (400, "TAG_INVALID", InvalidReferenceError),
        (400, "DIGEST_INVALID", DigestMismatchError),
        (400, "MANIFEST_INVALID", RegistryResponseError),
        (400, "MANIFEST_BLOB_UNKNOWN", RegistryResponseError),
        (400, "SIZE_INVALID", RegistryResponseError),
        (400, "PAGINATION_NUMBER_INVALID", RegistryResponseError),
        (401, "UNAUTHORIZED", AuthenticationError),
        (403, "DENIED", PermissionDeniedError),
        (405, "UNSUPPORTED", UnsupportedError),
        (429, "TOOMANYREQUESTS", TooManyRequestsError),
    ],
)
def test_registry_codes_pick_the_class(status: int, code: str, cls: type[RegistryError]) -> None:
    err = error_from_response(status, body((code, "")), action="do it", registry=REGISTRY, repository=REPO)
    assert err.__class__ is cls
    assert (err.status, err.codes, err.registry, err.repository) == (status, [code], REGISTRY, REPO)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, UnsupportedError),
        (429, TooManyRequestsError),
        (400, RegistryResponseError),
        (500, RegistryResponseError),
        (503, RegistryResponseError),
    ],
)
@pytest.mark.parametrize("raw", [b"", b"<html>Not Found</html>", b"{}", b'{"errors": "nope"}', None])
def test_without_codes_the_status_picks_the_class(status: int, cls: type[RegistryError], raw: bytes | None) -> None:
    err = error_from_response(status, raw, action="do it", registry=REGISTRY)
    assert err.__class__ is cls and err.codes == [] and err.status == status


def test_the_message_says_what_failed_where_and_why() -> None:
    err = error_from_response(
        404,
        body(("MANIFEST_UNKNOWN", "manifest unknown"), ("NAME_UNKNOWN", "")),
        action="get manifest team/app:v1",
        registry=REGISTRY,
        repository=REPO,
    )
    assert str(err) == (
        "Failed to get manifest team/app:v1 on registry registry.example.com, repository team/app: HTTP 404"
        " MANIFEST_UNKNOWN (manifest unknown); NAME_UNKNOWN (repository name not known to the registry)"
    )
    assert err.codes == ["MANIFEST_UNKNOWN", "NAME_UNKNOWN"] and err.message == str(err)


def test_the_registry_message_is_preferred_to_the_generic_explanation() -> None:
    err = error_from_response(
        403,
        body(("DENIED", "requested access to the resource is denied by policy X")),
        action="push",
        registry=REGISTRY,
    )
    assert str(err) == (
        "Failed to push on registry registry.example.com: HTTP 403 DENIED (requested access to the resource is"
        " denied by policy X)"
    )


def test_the_first_code_decides_the_class() -> None:
    raw = body(("DENIED", ""), ("NAME_UNKNOWN", ""))
    assert error_from_response(404, raw, action="x", registry=REGISTRY).__class__ is PermissionDeniedError


def test_an_unknown_code_is_named_without_explanation() -> None:
    err = error_from_response(500, body(("QUOTA_EXCEEDED", "")), action="push", registry=REGISTRY)
    assert err.__class__ is RegistryResponseError
    assert str(err).endswith("HTTP 500 QUOTA_EXCEEDED") and err.codes == ["QUOTA_EXCEEDED"]
    err = error_from_response(500, body(("QUOTA_EXCEEDED", "over quota")), action="push", registry=REGISTRY)
    assert str(err).endswith("HTTP 500 QUOTA_EXCEEDED (over quota)")


def test_an_unknown_code_falls_back_to_the_status_class() -> None:
    err = error_from_response(429, body(("UNAVAILABLE", "slow down")), action="pull", registry=REGISTRY)
    assert err.__class__ is TooManyRequestsError


def test_the_body_may_be_text() -> None:
    err = error_from_response(404, body(("BLOB_UNKNOWN", "")).decode(), action="x", registry=REGISTRY)
    assert err.__class__ is NotFoundError and "blob unknown to the registry" in str(err)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        (b"", []),
        (b"not json", []),
        (b"\xff\xfe", []),
        (b"[]", []),
        (b'{"errors": {}}', []),
        (b'{"errors": [1, "x", {"message": "no code"}, {"code": 5}]}', []),
        (b'{"errors": [{"code": "DENIED"}]}', [("DENIED", "")]),
        (b'{"errors": [{"code": "DENIED", "message": 3}]}', [("DENIED", "")]),
        (b'{"errors": [{"code": "A", "message": "a"}, {"code": "B", "message": "b"}]}', [("A", "a"), ("B", "b")]),
    ],
)
def test_parse_error_codes_tolerates_any_body(raw: bytes | None, expected: list[tuple[str, str]]) -> None:
    assert parse_error_codes(raw) == expected


def test_error_classes() -> None:
    assert issubclass(InvalidReferenceError, InvalidInputError) and issubclass(InvalidInputError, ValueError)
    for cls in (AuthenticationError, NotFoundError, UnsupportedError, DigestMismatchError, RegistryResponseError):
        assert issubclass(cls, RegistryError)
    err = RegistryError("plain message", registry=REGISTRY, status=500)
    assert str(err) == "plain message" and err.codes == [] and err.repository is None

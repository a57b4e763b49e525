# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed registry errors (plugins/module_utils/_errors.py): codes and statuses to classes and messages, the
registry's details and plain-text bodies in those messages, cut short and with every secret masked."""

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
    parse_errors,
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
    assert str(err) == "plain message" and err.codes == [] and err.details == [] and err.repository is None


# -- the registry's detail in the message --------------------------------------------------------------------

PASSWORD = "S3cret-Pa55word"  # noqa: S105 - a test value
TOKEN = "eyJhbGciOiJSUzI1NiJ9.payload.signature"  # noqa: S105 - a test value
DIGEST = "sha256:" + "ab" * 32


def detailed(*entries: dict) -> bytes:
    """An error body from whole entries: {"code": ..., "message": ..., "detail": ...}."""
    return json.dumps({"errors": list(entries)}).encode()


def registry_part(err: RegistryError) -> str:
    """What follows "HTTP <status> " in the message: the part the registry's answer made."""
    return str(err).split(": HTTP %d " % err.status, 1)[1]


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        (DIGEST, DIGEST),
        ("  a string\n  on two lines ", "a string on two lines"),
        ({"Tag": "nope"}, '{"Tag":"nope"}'),
        ({"b": {"y": 1, "x": [1, 2]}, "a": None}, '{"a":null,"b":{"x":[1,2],"y":1}}'),
        (
            [{"Type": "repository", "Name": "t/app", "Action": "pull"}],
            '[{"Action":"pull","Name":"t/app","Type":"repository"}]',
        ),
        (7, "7"),
        (True, "true"),
    ],
)
def test_the_detail_follows_the_explanation(detail: object, shown: str) -> None:
    raw = detailed({"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": detail})
    err = error_from_response(400, raw, action="put manifest team/app:v1", registry=REGISTRY, repository=REPO)
    assert str(err) == (
        "Failed to put manifest team/app:v1 on registry registry.example.com, repository team/app: HTTP 400"
        " MANIFEST_BLOB_UNKNOWN (blob unknown to registry: %s)" % shown
    )
    assert err.codes == ["MANIFEST_BLOB_UNKNOWN"] and err.details == [shown]


def test_distribution_3_says_what_is_wrong_with_a_manifest_list() -> None:
    """distribution 3.x's answer to a Docker manifest list without mediaType (2.8.2 sends the detail {})."""
    raw = (
        b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"mediaType in manifest list'
        b" should be 'application/vnd.docker.distribution.manifest.list.v2+json' not ''\"}]}"
    )
    err = error_from_response(400, raw, action="put manifest team/app:v1", registry=REGISTRY, repository=REPO)
    assert err.__class__ is RegistryResponseError
    assert registry_part(err) == (
        "MANIFEST_INVALID (manifest invalid: mediaType in manifest list should be"
        " 'application/vnd.docker.distribution.manifest.list.v2+json' not '')"
    )


def test_each_code_has_its_own_detail_and_codes_without_one_say_none() -> None:
    raw = detailed(
        {"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": {"Offset": 2}},
        {"code": "MANIFEST_BLOB_UNKNOWN", "message": "", "detail": DIGEST},
        {"code": "NAME_UNKNOWN", "message": "repository name not known to registry"},
        {"code": "QUOTA_EXCEEDED", "detail": "over 10 GB"},
    )
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    assert registry_part(err) == (
        'MANIFEST_INVALID (manifest invalid: {"Offset":2});'
        " MANIFEST_BLOB_UNKNOWN (manifest references a blob the registry does not have: %s);"
        " NAME_UNKNOWN (repository name not known to registry); QUOTA_EXCEEDED (over 10 GB)" % DIGEST
    )
    assert err.codes == ["MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "NAME_UNKNOWN", "QUOTA_EXCEEDED"]
    assert err.details == ['{"Offset":2}', DIGEST, "", "over 10 GB"]


@pytest.mark.parametrize("detail", [None, "", "   ", {}, []])
def test_an_empty_detail_says_nothing(detail: object) -> None:
    raw = detailed({"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": detail})
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    assert registry_part(err) == "MANIFEST_INVALID (manifest invalid)" and err.details == [""]


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ("manifest invalid", "manifest invalid"),
        ("Manifest invalid.", "manifest  INVALID"),
        ("", "manifest invalid"),  # no message: the detail repeats our own explanation
    ],
)
def test_a_detail_that_repeats_the_message_is_not_repeated(message: str, detail: str) -> None:
    raw = detailed({"code": "MANIFEST_INVALID", "message": message, "detail": detail})
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    assert registry_part(err) == "MANIFEST_INVALID (%s)" % (message or "manifest invalid")
    assert err.details == [""]


def test_a_detail_only_holding_the_message_is_still_shown() -> None:
    raw = detailed({"code": "DENIED", "message": "denied", "detail": "denied by policy no-push-on-friday"})
    err = error_from_response(403, raw, action="push", registry=REGISTRY)
    assert registry_part(err) == "DENIED (denied: denied by policy no-push-on-friday)"


@pytest.mark.parametrize(
    ("detail", "cls"),
    [(DIGEST, NotFoundError), ({"Tag": "v1"}, NotFoundError), (["x"], NotFoundError), ("x", NotFoundError)],
)
def test_a_detail_does_not_change_the_class(detail: object, cls: type[RegistryError]) -> None:
    raw = detailed({"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": detail})
    assert error_from_response(404, raw, action="x", registry=REGISTRY).__class__ is cls
    raw = detailed({"code": "DIGEST_INVALID", "message": "", "detail": detail})
    assert error_from_response(400, raw, action="x", registry=REGISTRY).__class__ is DigestMismatchError


def test_a_long_detail_is_cut_and_says_so() -> None:
    detail = "".join("%04d " % number for number in range(200))  # 1000 characters, numbered to see the cut
    raw = detailed({"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": detail})
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    shown = detail.strip()[:300] + "... (%d more characters cut)" % (len(detail.strip()) - 300)
    assert registry_part(err) == "MANIFEST_INVALID (manifest invalid: %s)" % shown
    assert err.details == [shown]


def test_a_long_object_detail_and_a_long_message_are_cut() -> None:
    raw = detailed({"code": "MANIFEST_INVALID", "message": "m" * 500, "detail": {"key": "v" * 500}})
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    assert registry_part(err) == "MANIFEST_INVALID (%s: %s)" % (
        "m" * 300 + "... (200 more characters cut)",
        ('{"key":"' + "v" * 292) + "... (210 more characters cut)",
    )


def test_the_whole_registry_text_is_cut_too() -> None:
    raw = detailed(*[{"code": "MANIFEST_BLOB_UNKNOWN", "message": "", "detail": "d" * 300} for _index in range(50)])
    err = error_from_response(400, raw, action="push", registry=REGISTRY)
    part = registry_part(err)
    assert part.startswith("MANIFEST_BLOB_UNKNOWN (manifest references a blob the registry does not have: ddd")
    assert len(part) < 850 and part.endswith(" more characters cut)")
    assert len(err.codes) == len(err.details) == 50


# -- secrets --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"code": "DENIED", "message": "denied", "detail": "your password %s is wrong" % PASSWORD},
        {"code": "DENIED", "message": "denied", "detail": {"Authorization": "Bearer " + TOKEN}},
        {"code": "DENIED", "message": "denied", "detail": {TOKEN: "as a key"}},
        {"code": "DENIED", "message": "denied", "detail": [["deep", {"in": [PASSWORD]}]]},
        {"code": "DENIED", "message": "denied for %s" % PASSWORD, "detail": "x"},
        {"code": "DENIED_%s" % PASSWORD, "message": "denied"},
    ],
)
def test_a_secret_the_registry_echoes_is_masked(entry: dict) -> None:
    raw = detailed(entry)
    err = error_from_response(403, raw, action="push", registry=REGISTRY, secrets=[PASSWORD, TOKEN, None, ""])
    assert PASSWORD not in str(err) and TOKEN not in str(err) and "********" in str(err)
    assert not any(PASSWORD in detail or TOKEN in detail for detail in err.details)
    unmasked = error_from_response(403, raw, action="push", registry=REGISTRY)
    assert PASSWORD in str(unmasked) or TOKEN in str(unmasked)  # the test would see a leak


def test_a_secret_json_would_escape_is_masked_in_an_object_detail() -> None:
    secret = 'pä"ss\\wörd'
    raw = detailed({"code": "DENIED", "message": "denied", "detail": {"echo": secret, "again": "x%sx" % secret}})
    err = error_from_response(403, raw, action="push", registry=REGISTRY, secrets=[secret])
    assert registry_part(err) == 'DENIED (denied: {"again":"x********x","echo":"********"})'


def test_a_secret_holding_another_is_masked_whole() -> None:
    raw = detailed({"code": "DENIED", "message": "denied", "detail": "sent Basic " + TOKEN})
    err = error_from_response(403, raw, action="push", registry=REGISTRY, secrets=["payload", "Basic " + TOKEN])
    assert registry_part(err) == "DENIED (denied: sent ********)"


@pytest.mark.parametrize("start", range(290, 301))
def test_a_secret_astride_the_cut_does_not_leak_half(start: int) -> None:
    detail = "x" * start + PASSWORD + "y" * 100
    raw = detailed({"code": "DENIED", "message": "denied", "detail": detail})
    err = error_from_response(403, raw, action="push", registry=REGISTRY, secrets=[PASSWORD])
    assert "more characters cut" in str(err)
    for size in range(2, len(PASSWORD) + 1):
        assert PASSWORD[:size] not in str(err), "the first %d characters of the password show" % size


def test_a_secret_with_whitespace_is_masked_before_the_whitespace_is_folded() -> None:
    secret = "two  spaces\tand a tab"
    raw = detailed({"code": "DENIED", "message": "denied", "detail": "got %s, and two spaces and a tab" % secret})
    err = error_from_response(403, raw, action="push", registry=REGISTRY, secrets=[secret, "spaces and"])
    assert registry_part(err) == "DENIED (denied: got ********, and two ******** a tab)"


# -- bodies that are not the JSON error format ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "excerpt"),
    [
        (b"404 page not found\n", "text/plain; charset=utf-8", "404 page not found"),
        (b"upstream connect error\r\n  or disconnect", "text/plain", "upstream connect error or disconnect"),
        ("Rate limit exceeded", "TEXT/PLAIN", "Rate limit exceeded"),
        (b'{"message": "quota exceeded", "limit": 10}', "application/json", '{"limit":10,"message":"quota exceeded"}'),
        (b'{"title": "Forbidden", "status": 403}', "application/problem+json", '{"status":403,"title":"Forbidden"}'),
        (b"not json after all", "application/json", "not json after all"),
        (b'{"errors": "not a list"}', "application/json", '{"errors":"not a list"}'),
    ],
)
def test_a_plain_text_or_json_body_is_quoted(raw: bytes | str, content_type: str, excerpt: str) -> None:
    err = error_from_response(502, raw, action="pull", registry=REGISTRY, content_type=content_type)
    assert str(err) == (
        "Failed to pull on registry registry.example.com: HTTP 502 (the registry answered: %s)" % excerpt
    )
    assert err.__class__ is RegistryResponseError and err.codes == [] and err.details == []


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html"),
        (b"<html><body>Bad Gateway</body></html>", "text/html; charset=utf-8"),
        (b"<!DOCTYPE html><html>oops</html>", "text/plain"),  # mislabelled markup
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "text/xml"),
        (b"<Error><Code>AccessDenied</Code></Error>", "application/xml"),
        (b"\x1f\x8b\x08\x00binary", "text/plain"),  # control characters: not text
        (b"caf\xe9 latin-1", "text/plain"),  # not UTF-8
        (b"some text", None),  # no type: could be anything
        (b"some text", "application/octet-stream"),
        (b"\x89PNG\r\n", "image/png"),
        (b"{}", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b"   \n ", "text/plain"),
        (b"", "text/plain"),
    ],
)
def test_markup_binary_and_unlabelled_bodies_give_just_the_status(raw: bytes, content_type: str | None) -> None:
    err = error_from_response(502, raw, action="pull", registry=REGISTRY, content_type=content_type)
    assert str(err) == "Failed to pull on registry registry.example.com: HTTP 502"


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthenticationError), (404, NotFoundError), (500, RegistryResponseError)]
)
def test_a_quoted_body_does_not_change_the_class(status: int, cls: type[RegistryError]) -> None:
    err = error_from_response(status, b"nope", action="pull", registry=REGISTRY, content_type="text/plain")
    assert err.__class__ is cls and str(err).endswith("HTTP %d (the registry answered: nope)" % status)


def test_a_long_text_body_is_cut_and_a_secret_in_it_masked() -> None:
    text = "z" * 295 + PASSWORD + "\n" + "w" * 5000
    err = error_from_response(
        500, text.encode(), action="pull", registry=REGISTRY, content_type="text/plain", secrets=[PASSWORD]
    )
    assert str(err).endswith(": HTTP 500 (the registry answered: %s*****... (5004 more characters cut))" % ("z" * 295))
    raw = json.dumps({"echo": {"authorization": "Bearer " + TOKEN}}).encode()
    err = error_from_response(
        400, raw, action="pull", registry=REGISTRY, content_type="application/json", secrets=[TOKEN]
    )
    assert str(err).endswith('(the registry answered: {"echo":{"authorization":"Bearer ********"}})')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"errors": [{"code": "A", "message": "a", "detail": {"k": [1]}}]}', [("A", "a", {"k": [1]})]),
        (b'{"errors": [{"code": "A", "detail": "d"}, {"code": "B"}]}', [("A", "", "d"), ("B", "", None)]),
        (b"not json", []),
    ],
)
def test_parse_errors_keeps_the_detail(raw: bytes, expected: list) -> None:
    assert parse_errors(raw) == expected


def nested(depth: int) -> str:
    return "[" * depth + '"%s"' % PASSWORD + "]" * depth


@pytest.mark.parametrize("depth", [21, 500])
def test_a_detail_nested_deep_is_shown_to_a_depth(depth: int) -> None:
    raw = ('{"errors":[{"code":"MANIFEST_INVALID","detail":%s}]}' % nested(depth)).encode()
    err = error_from_response(400, raw, action="push", registry=REGISTRY, secrets=[PASSWORD])
    assert err.codes == ["MANIFEST_INVALID"] and err.details == ["[" * 20 + '"..."' + "]" * 20]


@pytest.mark.parametrize("depth", [500, 5000, 30000])
def test_a_body_nested_deeper_than_json_allows_does_not_exhaust_the_stack(depth: int) -> None:
    raw = ('{"errors":[{"code":"MANIFEST_INVALID","detail":%s}]}' % nested(depth)).encode()
    err = error_from_response(400, raw, action="push", registry=REGISTRY, content_type="application/json")
    assert err.__class__ is RegistryResponseError and "HTTP 400 " in str(err)
    err = error_from_response(502, nested(depth).encode(), action="pull", registry=REGISTRY, content_type="text/plain")
    assert str(err).endswith(
        "HTTP 502 (the registry answered: %s... (%d more characters cut))"
        % ("[" * 300, depth - 300 + len(PASSWORD) + 2 + depth)
    )

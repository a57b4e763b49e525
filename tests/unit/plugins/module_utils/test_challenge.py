# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WWW-Authenticate parsing and token scopes (plugins/module_utils/_registry/challenge.py)."""

from __future__ import annotations

import random

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._registry.challenge import (
    Challenge,
    Scope,
    format_scope,
    merge_scopes,
    parse_scope,
    parse_www_authenticate,
)

HUB = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:samalba/my-app:pull,push"'
)

# header -> [(scheme, params, token68), ...]
HEADERS = [
    (
        HUB,
        [
            (
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:samalba/my-app:pull,push",
                },
                None,
            )
        ],
    ),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"}, None)]),
    ("Basic", [("basic", {}, None)]),
    ("  Bearer  ", [("bearer", {}, None)]),
    # case-insensitive scheme and parameter names; values keep their case
    (
        'BEARER Realm="https://Auth.Example/Token", SERVICE="Reg"',
        [("bearer", {"realm": "https://Auth.Example/Token", "service": "Reg"}, None)],
    ),
    # several challenges in one header
    (
        'Basic realm="basic-realm", Bearer realm="https://auth/token",service="svc"',
        [
            ("basic", {"realm": "basic-realm"}, None),
            ("bearer", {"realm": "https://auth/token", "service": "svc"}, None),
        ],
    ),
    (
        'Bearer realm="a",scope="repository:x:pull", Basic realm="b"',
        [("bearer", {"realm": "a", "scope": "repository:x:pull"}, None), ("basic", {"realm": "b"}, None)],
    ),
    ("Basic, Bearer", [("basic", {}, None), ("bearer", {}, None)]),
    # commas and spaces inside quoted strings
    (
        'Bearer scope="repository:a:pull,push repository:b:pull"',
        [("bearer", {"scope": "repository:a:pull,push repository:b:pull"}, None)],
    ),
    ('Basic realm="a, b, c=d"', [("basic", {"realm": "a, b, c=d"}, None)]),
    # quoted-pair escapes
    (r'Basic realm="say \"hi\" \\ bye"', [("basic", {"realm": 'say "hi" \\ bye'}, None)]),
    (r'Basic realm="\a\b"', [("basic", {"realm": "ab"}, None)]),
    # empty quoted string
    ('Basic realm=""', [("basic", {"realm": ""}, None)]),
    # optional whitespace around '=' and extra commas
    ('Bearer realm = "x" ,, , service= y,', [("bearer", {"realm": "x", "service": "y"}, None)]),
    # unquoted values, including URLs registries send unquoted
    (
        "Bearer realm=https://auth.example/token,service=registry",
        [("bearer", {"realm": "https://auth.example/token", "service": "registry"}, None)],
    ),
    # parameters separated only by whitespace (non-compliant but seen in the wild)
    ('Bearer realm="x" service="y"', [("bearer", {"realm": "x", "service": "y"}, None)]),
    # a repeated parameter keeps the last value (docker does the same)
    ('Bearer realm="first",realm="second"', [("bearer", {"realm": "second"}, None)]),
    # token68
    ("Negotiate abc123==", [("negotiate", {}, "abc123==")]),
    ("Negotiate abc/+._~-", [("negotiate", {}, "abc/+._~-")]),
    ("Negotiate abc, Basic realm=x", [("negotiate", {}, "abc"), ("basic", {"realm": "x"}, None)]),
    # unterminated quoted string drops only that parameter
    ('Bearer service="svc",realm="https://auth', [("bearer", {"service": "svc"}, None)]),
    # garbage before a challenge is skipped up to the next comma
    ('"junk, with comma", Basic realm="x"', [("basic", {"realm": "x"}, None)]),
    ('@@@, Basic realm="x"', [("basic", {"realm": "x"}, None)]),
    # parameters with no challenge are not a challenge
    ('realm="x"', []),
    ("", []),
    ("   ,  ,", []),
    ("=====", []),
    ('"""', []),
]


@pytest.mark.parametrize(("header", "expected"), HEADERS, ids=[row[0][:50] or "empty" for row in HEADERS])
def test_parse_www_authenticate(header, expected):
    challenges = parse_www_authenticate(header)
    assert [(c.scheme, c.params, c.token68) for c in challenges] == expected


def test_challenge_get_is_case_insensitive():
    (challenge,) = parse_www_authenticate(HUB)
    assert challenge.get("Realm") == "https://auth.docker.io/token"
    assert challenge.get("SCOPE") == "repository:samalba/my-app:pull,push"
    assert challenge.get("missing") is None
    assert challenge.get("missing", "dflt") == "dflt"
    assert challenge == Challenge("bearer", dict(challenge.params))


def test_bytes_are_decoded_as_latin_1():
    assert parse_www_authenticate(b'Basic realm="caf\xe9"') == [Challenge("basic", {"realm": "café"})]


def test_several_header_lines_are_concatenated_in_order():
    challenges = parse_www_authenticate(['Basic realm="a"', 'Bearer realm="b"', "Negotiate"])
    assert [c.scheme for c in challenges] == ["basic", "bearer", "negotiate"]


@pytest.mark.parametrize("header", [None, 5, 1.5, {"realm": "x"}, object()])
def test_non_text_gives_no_challenges(header):
    assert parse_www_authenticate(header) == []


def test_random_garbage_never_raises():
    alphabet = 'BasicBearer realm="=,\\ \t\r\n\x00é/:;@[]{}()<>?!' + "abcxyz0123456789"
    rng = random.Random(7235)
    for _attempt in range(3000):
        header = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 60)))
        challenges = parse_www_authenticate(header)
        for challenge in challenges:
            assert challenge.scheme == challenge.scheme.lower()
            assert all(name == name.lower() for name in challenge.params)


def test_garbage_after_a_valid_challenge_keeps_the_challenge():
    challenges = parse_www_authenticate('Bearer realm="x",service="y", ]]] ,"open')
    assert challenges[0] == Challenge("bearer", {"realm": "x", "service": "y"})


# ----------------------------------------------------------------------------------------------------
# scopes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:team/app:pull", Scope("repository", "team/app", ("pull",))),
        ("repository:team/app:pull,push", Scope("repository", "team/app", ("pull", "push"))),
        ("repository:team/app:push,pull,push", Scope("repository", "team/app", ("push", "pull"))),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        # a name may hold ':' (host:port), so the actions are after the last ':'
        ("repository:localhost:5000/app:pull", Scope("repository", "localhost:5000/app", ("pull",))),
        ("repository(plugin):vieux/sshfs:pull", Scope("repository(plugin)", "vieux/sshfs", ("pull",))),
        ("repository:a:pull,,push,", Scope("repository", "a", ("pull", "push"))),
    ],
)
def test_parse_scope(text, expected):
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text", ["", "repository", "repository:a", ":a:pull", "repository::pull", "repository:a:", "repository:a:,"]
)
def test_parse_scope_errors_name_the_value(text):
    with pytest.raises(InvalidInputError) as info:
        parse_scope(text)
    assert str(info.value).startswith("Invalid scope %r: expected 'type:name:action[,action]'" % text)


@pytest.mark.parametrize("value", [None, 3, "repository:a:pull repository:b:pull"])
def test_parse_scope_rejects_non_strings_and_lists(value):
    with pytest.raises(InvalidInputError, match=r"Invalid scope .*without spaces"):
        parse_scope(value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("repository", "team/app", "pull"), "repository:team/app:pull"),
        (("repository", "team/app", "pull,push"), "repository:team/app:pull,push"),
        (("repository", "team/app", ["pull", "push"]), "repository:team/app:pull,push"),
        (("repository", "team/app", ("push", "pull", "push")), "repository:team/app:push,pull"),
        (("registry", "catalog", "*"), "registry:catalog:*"),
    ],
)
def test_format_scope(args, expected):
    assert format_scope(*args) == expected
    assert str(parse_scope(expected)) == expected


@pytest.mark.parametrize(
    "args", [("", "a", "pull"), ("repository", "", "pull"), ("repository", "a", []), ("repository", "a", "")]
)
def test_format_scope_requires_all_parts(args):
    with pytest.raises(InvalidInputError, match=r"Cannot build a scope"):
        format_scope(*args)


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ([], []),
        (["repository:a:pull"], ["repository:a:pull"]),
        (["repository:a:pull", "repository:a:push"], ["repository:a:pull,push"]),
        (["repository:a:push", "repository:a:pull"], ["repository:a:push,pull"]),
        (["repository:a:pull", "repository:a:pull"], ["repository:a:pull"]),
        (
            ["repository:a:pull", "repository:b:pull", "repository:a:push"],
            ["repository:a:pull,push", "repository:b:pull"],
        ),
        (
            ["repository:src:pull", "repository:dst:pull,push", "repository:dst:pull"],
            ["repository:src:pull", "repository:dst:pull,push"],
        ),
        # different resource types with the same name stay apart
        (["repository:a:pull", "repository(plugin):a:pull"], ["repository:a:pull", "repository(plugin):a:pull"]),
        (["registry:catalog:*", "repository:a:pull"], ["registry:catalog:*", "repository:a:pull"]),
        # space-separated lists (as some challenges carry) are split first
        (
            ["repository:a:pull repository:b:pull", "repository:a:delete"],
            ["repository:a:pull,delete", "repository:b:pull"],
        ),
        # unparsable entries are kept once, verbatim, where they first appeared
        (["odd", "repository:a:pull", "odd", "repository:a:push"], ["odd", "repository:a:pull,push"]),
        (
            ["repository:localhost:5000/a:pull", "repository:localhost:5000/a:push"],
            ["repository:localhost:5000/a:pull,push"],
        ),
    ],
)
def test_merge_scopes(scopes, expected):
    assert merge_scopes(scopes) == expected


def test_merge_scopes_accepts_any_iterable_and_ignores_non_strings():
    assert merge_scopes(s for s in ["repository:a:pull", None, "repository:a:push"]) == ["repository:a:pull,push"]

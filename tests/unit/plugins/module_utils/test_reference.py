# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference grammar and normalisation (plugins/module_utils/_oci/reference.py)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError, InvalidReferenceError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import (
    DEFAULT_REGISTRY,
    HUB_API_HOST,
    Reference,
    base_url_for,
    is_digest,
    is_loopback,
    parse_reference,
    parse_registry,
    parse_repository,
    validate_digest,
    validate_tag,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
OTHER_SHA256 = "sha256:" + "f" * 64
SHA512 = "sha512:" + "0123456789abcdef" * 8

# input -> (registry, repository, tag, digest, scheme, canonical, familiar, official, base_url)
NORMALISATION = [
    (
        "alpine",
        ("docker.io", "library/alpine", "latest", None, None),
        ("docker.io/library/alpine:latest", "alpine:latest", True, "https://registry-1.docker.io"),
    ),
    (
        "library/alpine",
        ("docker.io", "library/alpine", "latest", None, None),
        ("docker.io/library/alpine:latest", "alpine:latest", True, "https://registry-1.docker.io"),
    ),
    (
        "docker.io/alpine",
        ("docker.io", "library/alpine", "latest", None, None),
        ("docker.io/library/alpine:latest", "alpine:latest", True, "https://registry-1.docker.io"),
    ),
    (
        "index.docker.io/library/alpine:3",
        ("docker.io", "library/alpine", "3", None, None),
        ("docker.io/library/alpine:3", "alpine:3", True, "https://registry-1.docker.io"),
    ),
    (
        "registry-1.docker.io/alpine:3.20",
        ("docker.io", "library/alpine", "3.20", None, None),
        ("docker.io/library/alpine:3.20", "alpine:3.20", True, "https://registry-1.docker.io"),
    ),
    (
        "user/app",
        ("docker.io", "user/app", "latest", None, None),
        ("docker.io/user/app:latest", "user/app:latest", False, "https://registry-1.docker.io"),
    ),
    (
        "docker.io/user/app:1",
        ("docker.io", "user/app", "1", None, None),
        ("docker.io/user/app:1", "user/app:1", False, "https://registry-1.docker.io"),
    ),
    (
        # library/ is only dropped from the familiar form when one component follows it, as docker does.
        "docker.io/library/foo/bar:1",
        ("docker.io", "library/foo/bar", "1", None, None),
        ("docker.io/library/foo/bar:1", "library/foo/bar:1", False, "https://registry-1.docker.io"),
    ),
    (
        "alpine@" + SHA256,
        ("docker.io", "library/alpine", None, SHA256, None),
        ("docker.io/library/alpine@" + SHA256, "alpine@" + SHA256, True, "https://registry-1.docker.io"),
    ),
    (
        "ghcr.io/org/app:1.2@" + SHA256,
        ("ghcr.io", "org/app", "1.2", SHA256, None),
        ("ghcr.io/org/app:1.2@" + SHA256, "ghcr.io/org/app:1.2@" + SHA256, False, "https://ghcr.io"),
    ),
    (
        "GHCR.IO/org/app",
        ("ghcr.io", "org/app", "latest", None, None),
        ("ghcr.io/org/app:latest", "ghcr.io/org/app:latest", False, "https://ghcr.io"),
    ),
    (
        "quay.io/org/app@" + SHA512,
        ("quay.io", "org/app", None, SHA512, None),
        ("quay.io/org/app@" + SHA512, "quay.io/org/app@" + SHA512, False, "https://quay.io"),
    ),
    (
        "localhost:5000/a/b",
        ("localhost:5000", "a/b", "latest", None, None),
        ("localhost:5000/a/b:latest", "localhost:5000/a/b:latest", False, "http://localhost:5000"),
    ),
    (
        "localhost/app",
        ("localhost", "app", "latest", None, None),
        ("localhost/app:latest", "localhost/app:latest", False, "http://localhost"),
    ),
    (
        "127.0.0.1:5000/x",
        ("127.0.0.1:5000", "x", "latest", None, None),
        ("127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest", False, "http://127.0.0.1:5000"),
    ),
    (
        "127.8.9.10/x:v1",
        ("127.8.9.10", "x", "v1", None, None),
        ("127.8.9.10/x:v1", "127.8.9.10/x:v1", False, "http://127.8.9.10"),
    ),
    (
        "[::1]:5000/x",
        ("[::1]:5000", "x", "latest", None, None),
        ("[::1]:5000/x:latest", "[::1]:5000/x:latest", False, "http://[::1]:5000"),
    ),
    (
        "[0:0:0:0:0:0:0:1]/x:tag",
        ("[::1]", "x", "tag", None, None),
        ("[::1]/x:tag", "[::1]/x:tag", False, "http://[::1]"),
    ),
    (
        "[2001:db8::10]:443/team/app",
        ("[2001:db8::10]:443", "team/app", "latest", None, None),
        (
            "[2001:db8::10]:443/team/app:latest",
            "[2001:db8::10]:443/team/app:latest",
            False,
            "https://[2001:db8::10]:443",
        ),
    ),
    (
        "http://registry.internal:5000/team/app:1",
        ("registry.internal:5000", "team/app", "1", None, "http"),
        (
            "registry.internal:5000/team/app:1",
            "registry.internal:5000/team/app:1",
            False,
            "http://registry.internal:5000",
        ),
    ),
    (
        "https://localhost:5443/app",
        ("localhost:5443", "app", "latest", None, "https"),
        ("localhost:5443/app:latest", "localhost:5443/app:latest", False, "https://localhost:5443"),
    ),
    (
        # With an explicit scheme the first component is the registry even without '.' or ':'.
        "http://registry/app",
        ("registry", "app", "latest", None, "http"),
        ("registry/app:latest", "registry/app:latest", False, "http://registry"),
    ),
    (
        "HTTPS://ghcr.io/org/app",
        ("ghcr.io", "org/app", "latest", None, "https"),
        ("ghcr.io/org/app:latest", "ghcr.io/org/app:latest", False, "https://ghcr.io"),
    ),
    (
        # Host with a port and no dot is a registry; without a port it would be a Hub namespace.
        "myregistry:5000/app",
        ("myregistry:5000", "app", "latest", None, None),
        ("myregistry:5000/app:latest", "myregistry:5000/app:latest", False, "https://myregistry:5000"),
    ),
    (
        "myregistry/app",
        ("docker.io", "myregistry/app", "latest", None, None),
        ("docker.io/myregistry/app:latest", "myregistry/app:latest", False, "https://registry-1.docker.io"),
    ),
    (
        "registry.example.com:05000/a/b/c:t_1.x-2",
        ("registry.example.com:5000", "a/b/c", "t_1.x-2", None, None),
        (
            "registry.example.com:5000/a/b/c:t_1.x-2",
            "registry.example.com:5000/a/b/c:t_1.x-2",
            False,
            "https://registry.example.com:5000",
        ),
    ),
    (
        "a.b/c_d/e__f/g-h/i---j/k.l:_tag",
        ("a.b", "c_d/e__f/g-h/i---j/k.l", "_tag", None, None),
        ("a.b/c_d/e__f/g-h/i---j/k.l:_tag", "a.b/c_d/e__f/g-h/i---j/k.l:_tag", False, "https://a.b"),
    ),
    (
        # Like docker, a lone "host:port" is a Hub repository with a tag.
        "localhost:5000",
        ("docker.io", "library/localhost", "5000", None, None),
        ("docker.io/library/localhost:5000", "localhost:5000", True, "https://registry-1.docker.io"),
    ),
]


@pytest.mark.parametrize(("text", "parts", "forms"), NORMALISATION, ids=[row[0] for row in NORMALISATION])
def test_normalisation(text, parts, forms):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.scheme) == parts
    canonical, familiar, official, base_url = forms
    assert ref.canonical == canonical
    assert str(ref) == canonical
    assert ref.familiar == familiar
    assert ref.official is official
    assert ref.base_url == base_url
    assert ref.name == "%s/%s" % (parts[0], parts[1])


@pytest.mark.parametrize(("text", "parts", "forms"), NORMALISATION, ids=[row[0] for row in NORMALISATION])
def test_canonical_and_familiar_forms_parse_back_to_the_same_reference(text, parts, forms):
    ref = parse_reference(text)
    if ref.scheme and not ("." in ref.registry or ":" in ref.registry):
        pytest.skip("a dotless host is only a registry after an explicit scheme, which canonical omits")
    expected = dataclasses.replace(ref, scheme=None)
    assert parse_reference(ref.canonical) == expected
    assert parse_reference(ref.familiar) == expected


def test_a_dotless_host_needs_its_scheme_to_stay_a_registry():
    ref = parse_reference("http://registry/app")
    assert ref.registry == "registry"
    assert parse_reference(ref.canonical).registry == "docker.io"


def test_api_host_is_registry_1_for_docker_hub_only():
    assert parse_reference("alpine").api_host == HUB_API_HOST == "registry-1.docker.io"
    assert parse_reference("ghcr.io/a/b").api_host == "ghcr.io"
    assert parse_reference("localhost:5000/a").api_host == "localhost:5000"
    assert DEFAULT_REGISTRY == "docker.io"


def test_to_dict_has_the_filter_keys():
    assert parse_reference("alpine").to_dict() == {
        "registry": "docker.io",
        "repository": "library/alpine",
        "tag": "latest",
        "digest": None,
        "canonical": "docker.io/library/alpine:latest",
        "familiar": "alpine:latest",
        "official": True,
        "scheme": None,
    }
    assert parse_reference("ghcr.io/org/app@" + SHA256).to_dict() == {
        "registry": "ghcr.io",
        "repository": "org/app",
        "tag": None,
        "digest": SHA256,
        "canonical": "ghcr.io/org/app@" + SHA256,
        "familiar": "ghcr.io/org/app@" + SHA256,
        "official": False,
        "scheme": None,
    }


# ----------------------------------------------------------------------------------------------------
# default tag


def test_default_tag_only_when_neither_tag_nor_digest():
    assert parse_reference("alpine").tag == "latest"
    assert parse_reference("alpine", default_tag="stable").tag == "stable"
    assert parse_reference("alpine:3", default_tag="stable").tag == "3"
    assert parse_reference("alpine@" + SHA256).tag is None
    assert parse_reference("alpine:3@" + SHA256).tag == "3"


def test_default_tag_none_keeps_tag_none():
    ref = parse_reference("ghcr.io/org/app", default_tag=None)
    assert ref.tag is None
    assert ref.digest is None
    assert ref.canonical == "ghcr.io/org/app"
    assert ref.manifest_reference is None


def test_invalid_default_tag_is_rejected():
    with pytest.raises(InvalidReferenceError, match=r"Invalid tag '-x'"):
        parse_reference("alpine", default_tag="-x")


# ----------------------------------------------------------------------------------------------------
# errors: every message quotes the value and says what is allowed

REFERENCE_ERRORS = [
    ("", "the value is empty"),
    ("al pine", "must not contain whitespace"),
    (" alpine", "must not contain whitespace"),
    ("alpine\n", "must not contain whitespace"),
    ("\t", "must not contain whitespace"),
    ("User/App", "must be lowercase"),
    ("ghcr.io/Org/app", "must be lowercase"),
    ("Alpine:3", "must be lowercase"),
    ("a//b", "empty part"),
    ("ghcr.io/org/", "empty part"),
    ("/alpine", "empty part"),
    ("a--/b", "'a--' is not a valid repository part"),
    ("-alpine", "'-alpine' is not a valid repository part"),
    ("a..b", "'a..b' is not a valid repository part"),
    ("a___b", "'a___b' is not a valid repository part"),
    ("café", "'café' is not a valid repository part"),
    ("host/a:b:c", "'a:b' is not a valid repository part"),
    ("alpine@", "'@' must be followed by a digest"),
    ("alpine:3@", "'@' must be followed by a digest"),
    ("alpine@" + SHA256 + "@" + SHA256, "only one '@digest'"),
    ("alpine:", "':' must be followed by a tag"),
    (":3", "the repository name is missing"),
    ("@" + SHA256, "the repository name is missing"),
    ("ghcr.io/", "a repository must follow the registry 'ghcr.io'"),
    ("localhost:99999/a", "port must be a number from 1 to 65535"),
    ("localhost:0/a", "port must be a number from 1 to 65535"),
    ("localhost:/a", "port must be a number from 1 to 65535"),
    ("localhost:http/a", "port must be a number from 1 to 65535"),
    ("[::1]:70000/a", "port must be a number from 1 to 65535"),
    ("::1/a", "must be in brackets"),
    ("[::1/a", "no closing ']'"),
    ("[not-v6]/a", "is not an IPv6 address"),
    ("[::1]x/a", "only ':port' may follow"),
    ("[::1]:5000", "a repository must follow the registry"),
    ("-bad.example.com/a", "a registry is a host name"),
    ("bad_host.example.com/a", "a registry is a host name"),
    ("ftp://ghcr.io/a", "only the 'http://' and 'https://' prefixes"),
    ("http://alpine", "after 'http://' give a registry host and a repository"),
    ("https://", "after 'https://' give a registry host and a repository"),
    ("alpine:bad!", "a tag is 1 to 128 characters"),
    ("alpine:.hidden", "must not start with '.' or '-'"),
    ("alpine:" + "x" * 129, "this one has 129 characters"),
    ("alpine@sha256:abc", "exactly 64 lowercase hex digits"),
    ("alpine@sha256:" + "A" * 64, "lowercase hex"),
    ("alpine@md5", "'algorithm:encoded'"),
    ("ghcr.io/" + "a" * 250, "at most 255 are allowed"),
]


def _quoted(text):
    return repr(text) if len(text) <= 200 else repr(text[:200])


@pytest.mark.parametrize(("text", "fragment"), REFERENCE_ERRORS, ids=[repr(row[0])[:60] for row in REFERENCE_ERRORS])
def test_invalid_reference_message_names_value_and_rule(text, fragment):
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    message = str(info.value)
    assert _quoted(text) in message
    assert fragment in message
    assert message.startswith("Invalid ")
    assert message.endswith(".")


@pytest.mark.parametrize("value", [None, 5, 1.5, ["alpine"], {"image": "alpine"}, b"alpine"])
def test_non_string_reference_is_rejected(value):
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(value)
    assert "Invalid image reference %r (%s): expected a string" % (value, type(value).__name__) in str(info.value)


def test_invalid_reference_error_is_an_invalid_input_error_and_a_value_error():
    with pytest.raises(InvalidInputError):
        parse_reference("UPPER")
    with pytest.raises(ValueError):
        parse_reference("UPPER")


def test_long_value_is_shortened_in_the_message():
    text = "a" * 5000 + "!"
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    message = str(info.value)
    assert "(5001 characters)" in message
    assert len(message) < 1000


@pytest.mark.parametrize(
    "text",
    [
        # 26 characters take seconds with the '[-]*' form, and each extra one doubles the time.
        "a" * 26 + "!",
        "ghcr.io/team/" + "a" * 26 + "!",
        "a-" * 20 + "!",
        "a" * 60 + "." + "b" * 60 + "--!",
    ],
)
def test_pathological_input_fails_fast(text):
    # docker's '[-]*' separator backtracks exponentially on such input; ours must stay linear.
    started = time.monotonic()
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)
    assert time.monotonic() - started < 0.5


def test_error_for_a_bad_digest_names_the_digest_and_the_reference():
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("ghcr.io/a@sha256:abc")
    assert str(info.value).startswith("Invalid digest 'sha256:abc' in image reference 'ghcr.io/a@sha256:abc': ")


def test_error_for_a_bad_port_names_the_registry_and_the_reference():
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("localhost:99999/a")
    assert str(info.value) == (
        "Invalid registry 'localhost:99999' in image reference 'localhost:99999/a': "
        "the port must be a number from 1 to 65535."
    )


# ----------------------------------------------------------------------------------------------------
# tags and digests


@pytest.mark.parametrize("tag", ["latest", "3", "_", "A", "v1.2.3-rc.1_build", "x" * 128, "1.0", "__", "a-", "a."])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag
    assert parse_reference("alpine:" + tag).tag == tag


@pytest.mark.parametrize("tag", ["", ".a", "-a", "a b", "bad tag!", "x" * 129, "a/b", "a:b", "a@b", "é", "a\n"])
def test_invalid_tags(tag):
    with pytest.raises(InvalidReferenceError) as info:
        validate_tag(tag)
    assert str(info.value).startswith("Invalid tag %r: a tag is 1 to 128 characters" % tag)


def test_tag_message_matches_the_documented_wording():
    with pytest.raises(InvalidReferenceError) as info:
        validate_tag("bad tag!")
    assert str(info.value) == (
        "Invalid tag 'bad tag!': a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', "
        "and must not start with '.' or '-'."
    )


@pytest.mark.parametrize("tag", [None, 1, 1.0, True])
def test_non_string_tag(tag):
    with pytest.raises(InvalidReferenceError, match=r"a tag must be a string"):
        validate_tag(tag)


@pytest.mark.parametrize(
    "digest",
    [
        SHA256,
        SHA512,
        "sha384:" + "a" * 96,
    ],
)
def test_valid_digests(digest):
    assert validate_digest(digest) == digest
    assert is_digest(digest)


@pytest.mark.parametrize(
    ("digest", "fragment"),
    [
        ("", "'algorithm:encoded'"),
        ("sha256", "'algorithm:encoded'"),
        ("sha256:", "'algorithm:encoded'"),
        (":" + "a" * 64, "'algorithm:encoded'"),
        ("sha256:" + "a" * 63, "exactly 64 lowercase hex digits (0-9, a-f), not 63 characters"),
        ("sha256:" + "a" * 65, "not 65 characters"),
        ("sha256:" + "A" * 64, "exactly 64 lowercase hex digits"),
        ("sha256:" + "g" * 64, "exactly 64 lowercase hex digits"),
        ("sha512:" + "a" * 64, "exactly 128 lowercase hex digits"),
        ("SHA256:" + "a" * 64, "the algorithm 'SHA256' must be lowercase"),
        ("sha_:" + "a" * 64, "the algorithm 'sha_'"),
        ("sha384:" + "a" * 64, "exactly 96 lowercase hex digits"),
        # The OCI grammar allows other algorithms; registries support none of them, so neither do we.
        ("md5:" + "a" * 32, "the algorithm 'md5' is not supported; registries support sha256, sha384 and sha512"),
        ("sha1:" + "a" * 40, "the algorithm 'sha1' is not supported; registries support sha256, sha384 and sha512"),
        ("blake3:" + "a" * 64, "the algorithm 'blake3' is not supported"),
        ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "'multihash+base58' is not supported"),
        ("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "'sha256+b64u' is not supported"),
    ],
)
def test_invalid_digests(digest, fragment):
    with pytest.raises(InvalidReferenceError) as info:
        validate_digest(digest)
    assert str(info.value).startswith("Invalid digest %r: " % digest)
    assert fragment in str(info.value)
    assert not is_digest(digest)


@pytest.mark.parametrize("value", [None, 5, b"sha256:" + b"a" * 64])
def test_non_string_digest(value):
    with pytest.raises(InvalidReferenceError, match=r"a digest must be a string"):
        validate_digest(value)
    assert not is_digest(value)


def test_a_bare_digest_also_parses_as_a_reference_so_callers_check_is_digest_first():
    assert is_digest(SHA256)
    ref = parse_reference(SHA256)
    assert (ref.repository, ref.tag) == ("library/sha256", SHA256.split(":")[1])


# ----------------------------------------------------------------------------------------------------
# repositories


@pytest.mark.parametrize(
    ("text", "registry", "repository", "scheme"),
    [
        ("alpine", "docker.io", "library/alpine", None),
        ("index.docker.io/user/app", "docker.io", "user/app", None),
        ("ghcr.io/org/app", "ghcr.io", "org/app", None),
        ("localhost:5000/a/b", "localhost:5000", "a/b", None),
        ("[::1]:5000/a", "[::1]:5000", "a", None),
        ("http://registry/team/app", "registry", "team/app", "http"),
    ],
)
def test_parse_repository(text, registry, repository, scheme):
    ref = parse_repository(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.scheme) == (registry, repository, None, None, scheme)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("alpine:3", "a repository must not include a tag (':3'); give tags separately."),
        ("ghcr.io/org/app:1.2", "a repository must not include a tag (':1.2')"),
        ("alpine@" + SHA256, "a repository must not include a digest ('@%s')" % SHA256),
        ("ghcr.io/a:1@" + SHA256, "must not include a digest"),
        ("localhost:5000", "add its path: 'localhost:5000/NAME'"),
        ("registry.example.com:5000", "add its path: 'registry.example.com:5000/NAME'"),
        ("Team/App", "must be lowercase"),
        ("", "the value is empty"),
    ],
)
def test_parse_repository_errors_name_the_value(text, fragment):
    with pytest.raises(InvalidReferenceError) as info:
        parse_repository(text)
    message = str(info.value)
    assert message.startswith("Invalid repository %r: " % text)
    assert fragment in message


def test_port_hint_only_for_a_host_like_name():
    with pytest.raises(InvalidReferenceError) as info:
        parse_repository("alpine:3")
    assert "add its path" not in str(info.value)


# ----------------------------------------------------------------------------------------------------
# registries, loopback, base URLs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000", (None, "127.0.0.1:5000")),
        ("https://ghcr.io", ("https", "ghcr.io")),
        ("https://ghcr.io/", ("https", "ghcr.io")),
        ("http://Registry.Example.com:8080", ("http", "registry.example.com:8080")),
        ("docker.io", (None, "docker.io")),
        ("index.docker.io", (None, "docker.io")),
        ("registry-1.docker.io", (None, "docker.io")),
        ("https://index.docker.io", ("https", "docker.io")),
        ("registry", (None, "registry")),
        ("localhost", (None, "localhost")),
        ("[::1]:5000", (None, "[::1]:5000")),
        ("[::1]", (None, "[::1]")),
    ],
)
def test_parse_registry(text, expected):
    assert parse_registry(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the value is empty"),
        ("ghcr.io/org", "without a path"),
        ("https://ghcr.io/v2/", "without a path"),
        ("http://", "no host follows the scheme"),
        ("host:65536", "port must be a number from 1 to 65535"),
        ("::1", "must be in brackets"),
        ("ftp://ghcr.io", "only the 'http://' and 'https://' prefixes"),
        ("ghcr .io", "must not contain whitespace"),
        ("under_score.example", "a registry is a host name"),
    ],
)
def test_parse_registry_errors(text, fragment):
    with pytest.raises(InvalidReferenceError) as info:
        parse_registry(text)
    message = str(info.value)
    assert message.startswith("Invalid registry ")
    assert repr(text) in message
    assert fragment in message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST:5000", True),
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.255.255.254:1", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("[::ffff:127.0.0.1]:5000", True),
        ("128.0.0.1", False),
        ("10.0.0.1:5000", False),
        ("[2001:db8::1]:5000", False),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("docker.io", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("127.0.0.1:5000", None, "http://127.0.0.1:5000"),
        ("localhost", None, "http://localhost"),
        ("[::1]:5000", None, "http://[::1]:5000"),
        ("ghcr.io", None, "https://ghcr.io"),
        ("docker.io", None, "https://registry-1.docker.io"),
        ("127.0.0.1:5443", "https", "https://127.0.0.1:5443"),
        ("registry.internal:5000", "http", "http://registry.internal:5000"),
    ],
)
def test_base_url_for(host, scheme, expected):
    assert base_url_for(host, scheme) == expected


def test_base_url_for_rejects_other_schemes():
    with pytest.raises(InvalidReferenceError, match=r"Invalid scheme 'ftp': use 'http' or 'https'"):
        base_url_for("ghcr.io", "ftp")


# ----------------------------------------------------------------------------------------------------
# the Reference value


def test_reference_is_immutable_and_hashable():
    ref = parse_reference("alpine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "3"  # type: ignore[misc]
    assert ref == parse_reference("docker.io/library/alpine:latest")
    assert len({ref, parse_reference("index.docker.io/alpine"), parse_reference("alpine:3")}) == 2


def test_direct_construction_validates_and_normalises():
    ref = Reference("index.docker.io", "alpine", "3")
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/alpine", "3")
    assert Reference("GHCR.io", "org/app").registry == "ghcr.io"
    with pytest.raises(InvalidReferenceError, match=r"Invalid tag 'a b'"):
        Reference("ghcr.io", "org/app", "a b")
    with pytest.raises(InvalidReferenceError, match=r"Invalid digest 'sha256:1'"):
        Reference("ghcr.io", "org/app", None, "sha256:1")
    with pytest.raises(InvalidReferenceError, match=r"Invalid repository 'Org/App'.*lowercase"):
        Reference("ghcr.io", "Org/App")
    with pytest.raises(InvalidReferenceError, match=r"Invalid registry 'ghcr.io:0'"):
        Reference("ghcr.io:0", "org/app")
    with pytest.raises(InvalidReferenceError, match=r"Invalid scheme 'ftp'"):
        Reference("ghcr.io", "org/app", scheme="ftp")


def test_with_tag_and_with_digest_keep_the_other_part_like_docker():
    ref = parse_reference("ghcr.io/org/app:1")
    pinned = ref.with_digest(SHA256)
    assert pinned.canonical == "ghcr.io/org/app:1@" + SHA256
    assert pinned.manifest_reference == SHA256
    retagged = pinned.with_tag("2")
    assert retagged.canonical == "ghcr.io/org/app:2@" + SHA256
    assert retagged.with_digest(None).canonical == "ghcr.io/org/app:2"
    assert retagged.with_tag(None).canonical == "ghcr.io/org/app@" + SHA256
    assert ref.canonical == "ghcr.io/org/app:1"  # the original is untouched
    assert ref.manifest_reference == "1"


def test_with_tag_and_with_digest_validate():
    ref = parse_reference("alpine")
    with pytest.raises(InvalidReferenceError, match=r"Invalid tag '-bad'"):
        ref.with_tag("-bad")
    with pytest.raises(InvalidReferenceError, match=r"Invalid digest 'sha256:bad'"):
        ref.with_digest("sha256:bad")


def test_scheme_is_kept_through_with_tag_but_not_in_canonical():
    ref = parse_reference("http://registry.internal/app:1").with_tag("2")
    assert ref.scheme == "http"
    assert ref.base_url == "http://registry.internal"
    assert ref.canonical == "registry.internal/app:2"


# -- how a reference was read: Docker Hub when no registry is named ----------------------------------------------


@pytest.mark.parametrize(
    "text, implied, bare_tag",
    [
        ("1.1.0", True, True),
        ("stable", True, True),
        ("alpine:3.19", True, False),  # a tag of its own: not a bare tag
        ("team/app", True, False),
        ("library/alpine", True, False),
        ("alpine@" + SHA256, True, False),
        ("docker.io/library/1.1.0", False, False),  # names Docker Hub itself
        ("index.docker.io/team/app", False, False),
        ("registry-1.docker.io/library/alpine", False, False),
        ("localhost/app", False, False),
        ("127.0.0.1:5000/team/app", False, False),
        ("http://registry/app", False, False),
        ("[::1]:5000/app", False, False),
    ],
)
def test_a_reference_knows_whether_its_registry_was_implied(text, implied, bare_tag):
    reference = parse_reference(text)
    assert (reference.registry_implied, reference.looks_like_bare_tag) == (implied, bare_tag)
    name = text.partition("@")[0]
    if name.rfind(":") <= name.rfind("/"):  # no tag: a repository too, read by the same rule, never a bare tag
        assert (parse_repository(name).registry_implied, parse_repository(name).looks_like_bare_tag) == (implied, False)


def test_the_note_says_how_the_text_was_read_and_hints_for_a_bare_tag():
    assert parse_reference("1.1.0").docker_hub_note("127.0.0.1:5000/team/app") == (
        "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name a"
        " tag of 127.0.0.1:5000/team/app, write 127.0.0.1:5000/team/app:1.1.0."
    )
    assert parse_reference("1.1.0").docker_hub_note() == (
        "'1.1.0' names no registry, so it was read as the Docker Hub image docker.io/library/1.1.0:latest; to name a"
        " tag of a repository, write REGISTRY/REPOSITORY:1.1.0."
    )
    assert parse_reference("team/app:1.0").docker_hub_note("x.io/y") == (
        "'team/app:1.0' names no registry, so it was read as the Docker Hub image docker.io/team/app:1.0."
    )
    assert parse_repository("app").docker_hub_note() == (
        "'app' names no registry, so it was read as the Docker Hub image docker.io/library/app."
    )
    for named in ("docker.io/library/1.1.0", "localhost:5000/app"):
        assert parse_reference(named).docker_hub_note("x.io/y") == parse_reference(named).docker_hub_reading() == ""
    # Built directly, a reference has no text to have been read from.
    assert Reference("docker.io", "alpine", "latest").docker_hub_note() == ""


def test_how_a_reference_was_written_is_not_part_of_what_it_is():
    bare, written_out = parse_reference("1.1.0"), parse_reference("docker.io/library/1.1.0:latest")
    assert bare == written_out and hash(bare) == hash(written_out) and repr(bare) == repr(written_out)
    assert bare.registry_implied and not written_out.registry_implied
    # The same image, given another tag, is still one whose registry was implied.
    assert bare.with_tag("2.0").registry_implied and not bare.with_tag("2.0").looks_like_bare_tag

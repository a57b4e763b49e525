# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media types, digests, manifest parsing and platforms (plugins/module_utils/_oci/)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryResponseError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.digest import (
    DigestVerifier,
    compute_digest,
    verify_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.manifest import Descriptor, parse_manifest
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_MANIFEST,
    DOCKER_SCHEMA1_SIGNED_MANIFEST,
    MANIFEST_ACCEPT,
    MANIFEST_ACCEPT_HEADER,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_NONDISTRIBUTABLE_TAR,
    OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
    OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
    OCI_LAYER_TAR_GZIP,
    OCI_LAYER_TAR_ZSTD,
    OCI_MANIFEST,
    is_foreign_layer,
    is_image_manifest,
    is_index,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.platform import (
    format_platform,
    parse_platform,
    platform_matches,
    select_platform,
)

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_SHA512 = (
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
ABC_SHA256 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def digest_of(char: str) -> str:
    return "sha256:" + char * 64


CONFIG = {"mediaType": OCI_CONFIG, "digest": digest_of("c"), "size": 1469}
LAYER_1 = {"mediaType": OCI_LAYER_TAR_GZIP, "digest": digest_of("1"), "size": 3000000}
LAYER_2 = {"mediaType": OCI_LAYER_TAR_ZSTD, "digest": digest_of("2"), "size": 42, "annotations": {"a": "b"}}

# Deliberately unusual formatting: a re-serialised document would hash differently.
OCI_MANIFEST_BYTES = (
    b'{\n   "schemaVersion" : 2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\n'
    b'"config":' + json.dumps(CONFIG).encode() + b',\t"layers": [' + json.dumps(LAYER_1).encode() + b" , "
    b""
    + json.dumps(LAYER_2).encode()
    + b'],"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}\n'
)


def index_bytes(children, media_type=OCI_INDEX):
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": children}, indent=2).encode()


def child(char, os_name, architecture, variant=None, size=500, media_type=OCI_MANIFEST, annotations=None):
    platform = {"os": os_name, "architecture": architecture}
    if variant:
        platform["variant"] = variant
    entry = {"mediaType": media_type, "digest": digest_of(char), "size": size, "platform": platform}
    if annotations:
        entry["annotations"] = annotations
    return entry


INDEX_CHILDREN = [
    child("a", "linux", "amd64", size=1000),
    child("b", "linux", "arm64", "v8", size=1001),
    child("d", "linux", "arm", "v7", size=1002),
    child("e", "linux", "arm", "v6", size=1003),
    child("f", "windows", "amd64", size=1004),
    child("9", "unknown", "unknown", size=840, annotations={"vnd.docker.reference.type": "attestation-manifest"}),
]


# ----------------------------------------------------------------------------------------------------
# media types


def test_media_type_constants():
    assert OCI_INDEX == "application/vnd.oci.image.index.v1+json"
    assert OCI_MANIFEST == "application/vnd.oci.image.manifest.v1+json"
    assert OCI_LAYER_TAR_ZSTD == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    assert DOCKER_MANIFEST == "application/vnd.docker.distribution.manifest.v2+json"
    assert DOCKER_MANIFEST_LIST == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert DOCKER_CONFIG == "application/vnd.docker.container.image.v1+json"
    assert DOCKER_LAYER == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert DOCKER_FOREIGN_LAYER == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    assert DOCKER_SCHEMA1_MANIFEST == "application/vnd.docker.distribution.manifest.v1+json"
    assert DOCKER_SCHEMA1_SIGNED_MANIFEST == "application/vnd.docker.distribution.manifest.v1+prettyjws"


def test_accept_order_puts_indexes_first():
    assert MANIFEST_ACCEPT == [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]
    assert MANIFEST_ACCEPT_HEADER == ", ".join(MANIFEST_ACCEPT)


@pytest.mark.parametrize(
    ("media_type", "index", "image", "foreign"),
    [
        (OCI_INDEX, True, False, False),
        (DOCKER_MANIFEST_LIST, True, False, False),
        (OCI_MANIFEST, False, True, False),
        (DOCKER_MANIFEST, False, True, False),
        (OCI_MANIFEST + "; charset=utf-8", False, True, False),
        ("Application/VND.OCI.Image.Index.v1+JSON", True, False, False),
        (DOCKER_FOREIGN_LAYER, False, False, True),
        (OCI_LAYER_NONDISTRIBUTABLE_TAR, False, False, True),
        (OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP, False, False, True),
        (OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD, False, False, True),
        (DOCKER_LAYER, False, False, False),
        (OCI_LAYER_TAR_GZIP, False, False, False),
        (DOCKER_SCHEMA1_SIGNED_MANIFEST, False, False, False),
        ("application/json", False, False, False),
        ("", False, False, False),
        (None, False, False, False),
    ],
)
def test_media_type_predicates(media_type, index, image, foreign):
    assert is_index(media_type) is index
    assert is_image_manifest(media_type) is image
    assert is_foreign_layer(media_type) is foreign


# ----------------------------------------------------------------------------------------------------
# digests


@pytest.mark.parametrize(
    ("data", "algorithm", "expected"),
    [
        (b"", "sha256", EMPTY_SHA256),
        (b"", "sha512", EMPTY_SHA512),
        (b"abc", "sha256", ABC_SHA256),
        (bytearray(b"abc"), "sha256", ABC_SHA256),
        (memoryview(b"abc"), "sha256", ABC_SHA256),
    ],
)
def test_compute_digest_known_vectors(data, algorithm, expected):
    assert compute_digest(data, algorithm) == expected


def test_compute_digest_defaults_to_sha256():
    assert compute_digest(b"abc") == ABC_SHA256


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA256", "blake3"])
def test_compute_digest_rejects_other_algorithms(algorithm):
    with pytest.raises(
        UnsupportedError, match=r"Digest algorithm %r is not supported: use one of sha256, sha384, sha512" % algorithm
    ):
        compute_digest(b"abc", algorithm)


def test_verify_digest_accepts_matching_data():
    assert verify_digest(b"abc", ABC_SHA256) == ABC_SHA256
    assert verify_digest(b"", EMPTY_SHA512) == EMPTY_SHA512


def test_verify_digest_mismatch_names_both_digests():
    with pytest.raises(DigestMismatchError) as info:
        verify_digest(b"abd", ABC_SHA256, description="blob %s from ghcr.io/org/app" % ABC_SHA256)
    message = str(info.value)
    actual = "sha256:" + hashlib.sha256(b"abd").hexdigest()
    assert message == (
        "Digest mismatch of blob %s from ghcr.io/org/app: expected %s but the 3 bytes received hash to %s."
        % (ABC_SHA256, ABC_SHA256, actual)
    )


def test_verify_digest_rejects_an_invalid_or_unsupported_expected_digest():
    with pytest.raises(InvalidReferenceError, match=r"Invalid digest 'sha256:abc'"):
        verify_digest(b"abc", "sha256:abc")
    with pytest.raises(InvalidReferenceError, match=r"'blake3' is not supported; registries support sha256"):
        verify_digest(b"abc", "blake3:" + "a" * 64)


def test_digest_verifier_streams_in_chunks():
    data = bytes(range(256)) * 1000
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    verifier = DigestVerifier(expected, expected_size=len(data))
    for start in range(0, len(data), 4096):
        verifier.update(data[start : start + 4096])
    assert verifier.size == len(data)
    assert verifier.hexdigest == hashlib.sha256(data).hexdigest()
    assert verifier.digest == expected
    assert verifier.verify() == expected


def test_digest_verifier_sha512():
    verifier = DigestVerifier(EMPTY_SHA512)
    assert verifier.verify() == EMPTY_SHA512
    assert verifier.size == 0


def test_digest_verifier_mismatch_names_both_digests():
    verifier = DigestVerifier(ABC_SHA256, description="layer 2")
    verifier.update(b"ab")
    verifier.update(b"d")
    with pytest.raises(DigestMismatchError) as info:
        verifier.verify()
    actual = "sha256:" + hashlib.sha256(b"abd").hexdigest()
    assert str(info.value) == "Digest mismatch of layer 2: expected %s but the 3 bytes received hash to %s." % (
        ABC_SHA256,
        actual,
    )


def test_digest_verifier_size_mismatch():
    verifier = DigestVerifier(ABC_SHA256, expected_size=4)
    verifier.update(b"abc")
    with pytest.raises(
        DigestMismatchError, match=r"Size mismatch: expected 4 bytes for %s but received 3 bytes" % ABC_SHA256
    ):
        verifier.verify()


def test_digest_verifier_validates_the_expected_digest():
    with pytest.raises(InvalidReferenceError, match=r"Invalid digest 'nope'"):
        DigestVerifier("nope")


# ----------------------------------------------------------------------------------------------------
# parse_manifest


def test_parse_oci_manifest_keeps_raw_bytes_and_hashes_them():
    info = parse_manifest(OCI_MANIFEST_BYTES, OCI_MANIFEST)
    assert info.raw is OCI_MANIFEST_BYTES
    assert info.digest == "sha256:" + hashlib.sha256(OCI_MANIFEST_BYTES).hexdigest()
    # the digest differs from that of a re-serialised document, so keeping raw bytes matters
    assert info.digest != compute_digest(json.dumps(json.loads(OCI_MANIFEST_BYTES)).encode())
    assert info.media_type == OCI_MANIFEST
    assert not info.is_index
    assert info.size == len(OCI_MANIFEST_BYTES)
    assert info.config == Descriptor(OCI_CONFIG, digest_of("c"), 1469)
    assert [layer.digest for layer in info.layers] == [digest_of("1"), digest_of("2")]
    assert info.layers[1].annotations == {"a": "b"}
    assert info.layers[1].to_dict() == {
        "digest": digest_of("2"),
        "size": 42,
        "media_type": OCI_LAYER_TAR_ZSTD,
        "annotations": {"a": "b"},
    }
    assert info.total_size == len(OCI_MANIFEST_BYTES) + 1469 + 3000000 + 42
    assert info.blobs == (info.config,) + info.layers
    assert info.manifests == ()
    assert info.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    assert info.document["schemaVersion"] == 2


def test_descriptors_and_manifests_are_hashable_despite_dict_fields():
    info = parse_manifest(index_bytes(INDEX_CHILDREN), None)
    again = parse_manifest(index_bytes(INDEX_CHILDREN), None)
    assert info == again
    assert len({info, again}) == 1
    assert len(set(info.manifests) | set(again.manifests)) == len(INDEX_CHILDREN)
    with pytest.raises(AttributeError):
        info.media_type = OCI_MANIFEST  # type: ignore[misc]


def test_parse_docker_v2_manifest_with_foreign_layer():
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": digest_of("c"), "size": 7023},
        "layers": [
            {
                "mediaType": DOCKER_FOREIGN_LAYER,
                "digest": digest_of("f"),
                "size": 1000,
                "urls": ["https://mcr.microsoft.com/layer"],
            },
            {"mediaType": DOCKER_LAYER, "digest": digest_of("1"), "size": 32654},
        ],
    }
    info = parse_manifest(json.dumps(doc).encode(), "application/json")
    assert info.media_type == DOCKER_MANIFEST
    assert is_foreign_layer(info.layers[0].media_type)
    assert info.layers[0].urls == ("https://mcr.microsoft.com/layer",)
    assert info.total_size == len(info.raw) + 7023 + 1000 + 32654


def test_parse_index_lists_children_and_platforms():
    raw = index_bytes(INDEX_CHILDREN)
    info = parse_manifest(raw, OCI_INDEX)
    assert info.is_index
    assert info.media_type == OCI_INDEX
    assert info.config is None
    assert info.layers == ()
    assert info.blobs == ()
    assert len(info.manifests) == 6
    assert info.manifests[1].platform == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert info.total_size == len(raw) + sum(entry["size"] for entry in INDEX_CHILDREN)
    assert info.platforms[0] == {
        "os": "linux",
        "architecture": "amd64",
        "variant": None,
        "digest": digest_of("a"),
        "size": 1000,
    }
    assert info.platforms[1]["variant"] == "v8"


def test_parse_docker_manifest_list():
    raw = index_bytes([child("a", "linux", "amd64", media_type=DOCKER_MANIFEST)], media_type=DOCKER_MANIFEST_LIST)
    info = parse_manifest(raw, DOCKER_MANIFEST_LIST)
    assert info.is_index
    assert info.media_type == DOCKER_MANIFEST_LIST


@pytest.mark.parametrize(
    ("document", "content_type", "expected"),
    [
        # the document's mediaType wins over the header
        ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, OCI_MANIFEST, OCI_INDEX),
        # no mediaType in the document: the header decides, parameters and case ignored
        ({"schemaVersion": 2, "manifests": []}, DOCKER_MANIFEST_LIST + "; charset=utf-8", DOCKER_MANIFEST_LIST),
        ({"schemaVersion": 2, "config": CONFIG, "layers": []}, DOCKER_MANIFEST.upper(), DOCKER_MANIFEST),
        # neither: the shape decides
        ({"schemaVersion": 2, "manifests": []}, "application/json", OCI_INDEX),
        ({"schemaVersion": 2, "config": CONFIG, "layers": [LAYER_1]}, None, OCI_MANIFEST),
        ({"schemaVersion": 2, "config": CONFIG}, "application/octet-stream", OCI_MANIFEST),
    ],
)
def test_media_type_detection(document, content_type, expected):
    assert parse_manifest(json.dumps(document).encode(), content_type).media_type == expected


def test_artifact_manifest_with_subject():
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_SHA256, "size": 0},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest_of("a"), "size": 500},
    }
    info = parse_manifest(json.dumps(doc).encode(), None)
    assert info.artifact_type == "application/vnd.example.sbom"
    assert info.subject == Descriptor(OCI_MANIFEST, digest_of("a"), 500)
    assert info.layers == ()


def test_accepts_str_bytearray_and_memoryview():
    text = OCI_MANIFEST_BYTES.decode()
    for data in (text, bytearray(OCI_MANIFEST_BYTES), memoryview(OCI_MANIFEST_BYTES)):
        info = parse_manifest(data, None)
        assert info.raw == OCI_MANIFEST_BYTES
        assert isinstance(info.raw, bytes)


SCHEMA1_SIGNED = json.dumps(
    {
        "schemaVersion": 1,
        "name": "library/hello",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest_of("a")}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [{"header": {}, "signature": "x", "protected": "y"}],
    }
).encode()


@pytest.mark.parametrize(
    ("data", "content_type", "named"),
    [
        (SCHEMA1_SIGNED, DOCKER_SCHEMA1_SIGNED_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST),
        (SCHEMA1_SIGNED, "application/json", DOCKER_SCHEMA1_MANIFEST),
        (SCHEMA1_SIGNED, None, DOCKER_SCHEMA1_MANIFEST),
        (
            json.dumps({"schemaVersion": 1, "mediaType": DOCKER_SCHEMA1_MANIFEST}).encode(),
            None,
            DOCKER_SCHEMA1_MANIFEST,
        ),
        # declared schema 1 media type even without schemaVersion
        (json.dumps({"mediaType": DOCKER_SCHEMA1_SIGNED_MANIFEST}).encode(), None, DOCKER_SCHEMA1_SIGNED_MANIFEST),
        # no mediaType, schema 1 content type
        (json.dumps({"name": "x"}).encode(), DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_MANIFEST),
    ],
)
def test_schema1_is_rejected_clearly(data, content_type, named):
    with pytest.raises(UnsupportedError) as info:
        parse_manifest(data, content_type)
    message = str(info.value)
    assert "Docker image manifest schema 1 (%s)" % named in message
    assert "not supported" in message
    assert "Push the image again" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"<html>oops</html>", "not valid JSON (17 bytes"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "JSON but not an object (got list)"),
        (b'"manifest"', "JSON but not an object (got str)"),
        (b"null", "JSON but not an object (got NoneType)"),
        (b"{}", "not a manifest"),
        (json.dumps({"mediaType": 5}).encode(), "mediaType is 5, not a string"),
        (json.dumps({"schemaVersion": 3, "mediaType": OCI_INDEX, "manifests": []}).encode(), "schemaVersion is 3"),
        (json.dumps({"mediaType": OCI_INDEX}).encode(), "'manifests' is missing or not a list"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": {}}).encode(), "'manifests' is missing or not a list"),
        (json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode(), "has no 'config' descriptor"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": CONFIG, "layers": {}}).encode(), "'layers' is not a list"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": "c"}).encode(), "config is not a JSON object"),
        (
            json.dumps({"mediaType": OCI_MANIFEST, "config": dict(CONFIG, digest="sha256:xyz")}).encode(),
            "config has an invalid digest. Invalid digest 'sha256:xyz'",
        ),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": dict(CONFIG, size=-1)}).encode(), "has size -1"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": dict(CONFIG, size="9")}).encode(), "has size '9'"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": dict(CONFIG, size=True)}).encode(), "has size True"),
        (
            json.dumps({"mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [dict(LAYER_1, urls="x")]}).encode(),
            "layers[0]",
        ),
        (
            json.dumps(
                {"mediaType": OCI_INDEX, "manifests": [dict(child("a", "linux", "amd64"), platform="x")]}
            ).encode(),
            "manifests[0]",
        ),
    ],
)
def test_malformed_manifests(data, fragment):
    with pytest.raises(RegistryResponseError) as info:
        parse_manifest(data, None)
    assert fragment in str(info.value)


def test_unknown_media_type_is_unsupported():
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json", "blobs": []}
    with pytest.raises(UnsupportedError, match=r"Unsupported manifest media type 'application/vnd.oci.artifact"):
        parse_manifest(json.dumps(doc).encode(), None)


# ----------------------------------------------------------------------------------------------------
# platforms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64", "variant": None}),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v7"}),
        ("Linux/AMD64", {"os": "linux", "architecture": "amd64", "variant": None}),
        ("windows/amd64", {"os": "windows", "architecture": "amd64", "variant": None}),
        ("linux/386", {"os": "linux", "architecture": "386", "variant": None}),
        ("linux/ppc64le", {"os": "linux", "architecture": "ppc64le", "variant": None}),
        ("linux/x86_64", {"os": "linux", "architecture": "amd64", "variant": None}),
        ("linux/aarch64", {"os": "linux", "architecture": "arm64", "variant": None}),
        ("linux/armhf", {"os": "linux", "architecture": "arm", "variant": "v7"}),
        ("linux/arm64/8", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ],
)
def test_parse_platform(text, expected):
    assert parse_platform(text) == expected


@pytest.mark.parametrize(
    "text", ["linux", "linux/", "/amd64", "linux/arm64/v8/extra", "", "linux amd64", "linux/amd 64", "linux//v8"]
)
def test_parse_platform_errors_name_the_value(text):
    with pytest.raises(InvalidInputError) as info:
        parse_platform(text)
    assert str(info.value) == (
        "Invalid platform %r: expected 'os/architecture[/variant]', e.g. 'linux/amd64' or 'linux/arm64/v8'." % text
    )


@pytest.mark.parametrize("value", [None, 5, ["linux", "amd64"]])
def test_parse_platform_rejects_non_strings(value):
    with pytest.raises(InvalidInputError, match=r"Invalid platform"):
        parse_platform(value)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ({"os": "linux", "architecture": "amd64", "variant": None}, "linux/amd64"),
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64/v8"),
        ({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}, "windows/amd64"),
    ],
)
def test_format_platform(platform, expected):
    assert format_platform(platform) == expected
    assert format_platform(parse_platform(expected)) == expected


@pytest.mark.parametrize("platform", [{}, {"os": "linux"}, {"architecture": "amd64"}, None, "linux/amd64"])
def test_format_platform_errors(platform):
    with pytest.raises(InvalidInputError, match=r"needs 'os' and 'architecture'"):
        format_platform(platform)


@pytest.mark.parametrize(
    ("wanted", "platform", "expected"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}, True),
        ("linux/amd64", {"os": "linux", "architecture": "amd64", "variant": "v1"}, True),
        ("linux/amd64/v1", {"os": "linux", "architecture": "amd64"}, True),
        ("linux/amd64", {"os": "linux", "architecture": "amd64", "variant": "v3"}, False),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}, True),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64"}, True),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64", "variant": "8"}, True),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v9"}, False),
        ("linux/arm", {"os": "linux", "architecture": "arm", "variant": "v7"}, True),
        ("linux/arm/v6", {"os": "linux", "architecture": "arm", "variant": "v7"}, False),
        ("linux/amd64", {"os": "windows", "architecture": "amd64"}, False),
        ("linux/amd64", {"os": "linux", "architecture": "arm64"}, False),
        ("linux/x86_64", {"os": "linux", "architecture": "amd64"}, True),
        ("Linux/AMD64", {"os": "linux", "architecture": "amd64"}, True),
        ({"os": "linux", "architecture": "arm64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}, True),
        ("linux/amd64", None, False),
        ("linux/amd64", {"os": "linux"}, False),
        ("linux/amd64", {"os": "unknown", "architecture": "unknown"}, False),
    ],
)
def test_platform_matches(wanted, platform, expected):
    assert platform_matches(wanted, platform) is expected


def test_platform_matches_rejects_an_invalid_wanted_platform():
    with pytest.raises(InvalidInputError, match=r"Invalid platform 'linux'"):
        platform_matches("linux", {"os": "linux", "architecture": "amd64"})
    with pytest.raises(InvalidInputError, match=r"Invalid platform \{'os': 'linux'\}"):
        platform_matches({"os": "linux"}, {"os": "linux", "architecture": "amd64"})


@pytest.mark.parametrize(
    ("wanted", "digest_char"),
    [
        ("linux/amd64", "a"),
        ("linux/arm64", "b"),
        ("linux/arm64/v8", "b"),
        ("linux/arm", "d"),
        ("linux/arm/v6", "e"),
        ("windows/amd64", "f"),
        ({"os": "linux", "architecture": "arm", "variant": "v6"}, "e"),
    ],
)
def test_select_platform(wanted, digest_char):
    info = parse_manifest(index_bytes(INDEX_CHILDREN), None)
    assert select_platform(info, wanted).digest == digest_of(digest_char)


def test_select_platform_takes_the_first_match():
    children = [child("1", "linux", "amd64"), child("2", "linux", "amd64", "v1")]
    info = parse_manifest(index_bytes(children), None)
    assert select_platform(info, "linux/amd64").digest == digest_of("1")


def test_select_platform_missing_lists_the_available_platforms():
    info = parse_manifest(index_bytes(INDEX_CHILDREN), None)
    with pytest.raises(NotFoundError) as excinfo:
        select_platform(info, "linux/s390x")
    assert str(excinfo.value) == (
        "No manifest for platform linux/s390x in the index %s; available platforms: "
        "linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6, windows/amd64." % info.digest
    )


def test_select_platform_in_an_index_without_platforms():
    info = parse_manifest(index_bytes([{"mediaType": OCI_MANIFEST, "digest": digest_of("a"), "size": 1}]), None)
    with pytest.raises(NotFoundError, match=r"available platforms: none\."):
        select_platform(info, {"os": "linux", "architecture": "amd64"})


def test_select_platform_needs_an_index():
    info = parse_manifest(OCI_MANIFEST_BYTES, None)
    with pytest.raises(
        InvalidInputError, match=re.escape("needs an image index or manifest list, not %s." % OCI_MANIFEST)
    ):
        select_platform(info, "linux/amd64")

# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cosign signature verification (plugins/module_utils/_ops/signatures.py), pure: signatures are made here.

The signers below are test code (``cryptography``, plus RFC 8032's Ed25519ph on the plugin's point arithmetic,
which the pure-Ed25519 cross-check against ``cryptography`` and RFC 8032's own vector validate). Media types and
annotation names come from the plugin; the JSON layouts are written out here. External vectors: the DSSE spec's
example (ECDSA P-256, raw r||s) and test vectors (Ed25519, secure-systems-lab/dsse testvectors/vectors.json),
RFC 8032 section 7.3 (Ed25519ph).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    COSIGN_SIGN_PREDICATE_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIGNATURE_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    SIGSTORE_BUNDLE_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops import signatures
from ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures import (
    Verification,
    dsse_pae,
    ed25519ph_verify,
    is_sigstore_bundle_media_type,
    load_public_key,
    verify_bundle,
    verify_dsse_envelope,
    verify_simple_signing,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, utils, x25519
    from cryptography.x509.oid import NameOID
except ImportError:  # ansible-test units installs only what tests/unit/requirements.txt names
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True

DIGEST = "sha256:" + hashlib.sha256(b"the signed manifest").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"another manifest").hexdigest()
REFERENCE = "registry.example:5000/team/app"
KINDS = ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "ed25519")
CURVE_SIZES = {"ecdsa-p256": 256, "ecdsa-p384": 384, "ecdsa-p521": 521}
PH_DOM = b"SigEd25519 no Ed25519 collisions\x01\x00"
NOT_VERIFIED = "the signature does not verify with the key"
SLSA = "https://slsa.dev/provenance/v1"


# These need no cryptography: under ansible-test units (which has none) only they run; everything else is skipped.
PURE_TESTS = frozenset(
    (
        "test_verification_is_a_named_tuple",
        "test_pae_is_exactly_the_dsse_spec_example",
        "test_pae_matches_the_dsse_test_vectors",
        "test_ed25519ph_accepts_the_rfc8032_vector_and_nothing_near_it",
        "test_bundle_media_types",
        "test_importing_the_module_does_not_import_cryptography",
        "test_without_cryptography_the_module_imports_and_says_what_is_missing",
    )
)


def skip_without_cryptography() -> None:
    if not HAVE_CRYPTOGRAPHY:
        pytest.skip("needs the Python library cryptography to make signatures")


@pytest.fixture(autouse=True)
def cryptography_or_skip(request: pytest.FixtureRequest) -> None:
    if request.node.originalname not in PURE_TESTS:
        skip_without_cryptography()


def hash_of(name: str) -> Any:
    return {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[name]()


def curve_of(kind: str) -> Any:
    return {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1, "ecdsa-p521": ec.SECP521R1}[kind]()


# -- test signers --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """One private key per kind, and a second one of each ("other-" + kind) for the wrong-key tests."""
    skip_without_cryptography()  # module-scoped: set up before the autouse skip could run
    made: dict[str, Any] = {}
    for prefix in ("", "other-"):
        for kind in KINDS:
            made[prefix + kind] = new_key(kind)
    return made


def new_key(kind: str) -> Any:
    if kind in CURVE_SIZES:
        return ec.generate_private_key(curve_of(kind))
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def ed25519ph_sign(private: ed25519.Ed25519PrivateKey, prehash: bytes, dom: bytes = PH_DOM) -> bytes:
    """RFC 8032 (5.1.6) signing with the plugin's point arithmetic; ``dom=b""`` is pure Ed25519 of ``prehash``."""
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expanded = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(expanded[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    base = signatures.ed25519_base_point()
    public = signatures.ed25519_encode(signatures.ed25519_multiply(scalar, base))
    nonce = int.from_bytes(hashlib.sha512(dom + expanded[32:] + prehash).digest(), "little") % signatures.ED25519_ORDER
    commitment = signatures.ed25519_encode(signatures.ed25519_multiply(nonce, base))
    challenge = int.from_bytes(hashlib.sha512(dom + commitment + public + prehash).digest(), "little")
    return commitment + ((nonce + challenge * scalar) % signatures.ED25519_ORDER).to_bytes(32, "little")


def sign(
    private: Any,
    message: bytes,
    *,
    hash_name: str | None = None,
    raw: bool = False,
    pss: bool = False,
    pure: bool = False,
) -> bytes:
    """As cosign 3 signs (P-384 SHA-384, Ed25519ph...), or as told."""
    if isinstance(private, ec.EllipticCurvePrivateKey):
        default = {256: "sha256", 384: "sha384", 521: "sha512"}[private.curve.key_size]
        der = private.sign(message, ec.ECDSA(hash_of(hash_name or default)))
        if not raw:
            return der
        width = (private.curve.key_size + 7) // 8
        r_value, s_value = utils.decode_dss_signature(der)
        return r_value.to_bytes(width, "big") + s_value.to_bytes(width, "big")
    if isinstance(private, rsa.RSAPrivateKey):
        chosen = hash_of(hash_name or "sha256")
        pad = padding.PSS(mgf=padding.MGF1(chosen), salt_length=padding.PSS.MAX_LENGTH) if pss else padding.PKCS1v15()
        return private.sign(message, pad, chosen)
    return private.sign(message) if pure else ed25519ph_sign(private, hashlib.sha512(message).digest())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def payload(digest: str = DIGEST, *, kind: str = COSIGN_SIGNATURE_TYPE) -> bytes:
    document = {
        "critical": {
            "identity": {"docker-reference": REFERENCE},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signed_layer(private: Any, body: bytes | None = None, **options: Any) -> tuple[bytes, dict[str, str]]:
    """(payload, layer annotations) of one .sig layer."""
    body = payload() if body is None else body
    return body, {COSIGN_SIGNATURE_ANNOTATION: b64(sign(private, body, **options))}


def statement(digest: str = DIGEST, predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE, **extra: Any) -> bytes:
    algorithm, _colon, encoded = digest.partition(":")
    document = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {algorithm: encoded}}]}
    document.update(predicateType=predicate_type, predicate={}, **extra)
    return json.dumps(document, separators=(",", ":")).encode()


def envelope(private: Any, body: bytes | None = None, payload_type: str = IN_TOTO_PAYLOAD_TYPE, **options: Any) -> dict:
    body = statement() if body is None else body
    signature = sign(
        private, b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(body), body), **options
    )
    return {"payload": b64(body), "payloadType": payload_type, "signatures": [{"sig": b64(signature)}]}


def hint(private: Any) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64(hashlib.sha256(der).digest())


def bundle(private: Any, content: dict | None = None, **material: Any) -> bytes:
    document = {
        "mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material or {"publicKey": {"hint": hint(private)}},
        "dsseEnvelope": envelope(private) if content is None else content,
    }
    if "messageSignature" in document["dsseEnvelope"]:
        document["messageSignature"] = document.pop("dsseEnvelope")["messageSignature"]
    return json.dumps(document).encode()


def key_of(keys: dict[str, Any], kind: str) -> signatures.PublicKey:
    return load_public_key(public_pem(keys[kind]))


# -- simple signing: good signatures -----------------------------------------------------------------------------

GOOD_VARIANTS = [
    ("ecdsa-p256", {}, "ECDSA P-256, SHA-256"),
    ("ecdsa-p256", {"raw": True}, "ECDSA P-256, SHA-256"),
    ("ecdsa-p384", {}, "ECDSA P-384, SHA-384"),
    ("ecdsa-p384", {"raw": True}, "ECDSA P-384, SHA-384"),
    ("ecdsa-p384", {"hash_name": "sha256"}, "ECDSA P-384, SHA-256"),  # cosign before 2.4 hashed every curve so
    ("ecdsa-p384", {"hash_name": "sha256", "raw": True}, "ECDSA P-384, SHA-256"),
    ("ecdsa-p521", {}, "ECDSA P-521, SHA-512"),
    ("ecdsa-p521", {"raw": True}, "ECDSA P-521, SHA-512"),
    ("rsa-2048", {}, "RSA-2048 PKCS#1 v1.5, SHA-256"),
    ("rsa-2048", {"pss": True}, "RSA-2048 PSS, SHA-256"),
    ("rsa-3072", {}, "RSA-3072 PKCS#1 v1.5, SHA-256"),
    ("ed25519", {}, "Ed25519ph"),
    ("ed25519", {"pure": True}, "Ed25519"),
]


@pytest.mark.parametrize(("kind", "options", "scheme"), GOOD_VARIANTS)
def test_a_good_simple_signing_signature_verifies(keys: dict, kind: str, options: dict, scheme: str) -> None:
    body, annotations = signed_layer(keys[kind], **options)
    assert verify_simple_signing(body, annotations, DIGEST, key_of(keys, kind)) == (
        True,
        "verified with the key (%s)" % scheme,
    )


def test_the_key_may_be_given_as_pem_text_or_bytes(keys: dict) -> None:
    body, annotations = signed_layer(keys["ecdsa-p256"])
    pem = public_pem(keys["ecdsa-p256"])
    assert verify_simple_signing(body, annotations, DIGEST, pem).verified
    assert verify_simple_signing(body, annotations, DIGEST, pem.encode()).verified


def test_verification_is_a_named_tuple() -> None:
    result = Verification(False, "why")
    verified, reason = result
    assert (verified, reason) == (result.verified, result.reason) == (False, "why")


# -- simple signing: what is rejected, and why ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_key_is_rejected(keys: dict, kind: str) -> None:
    body, annotations = signed_layer(keys[kind])
    assert verify_simple_signing(body, annotations, DIGEST, key_of(keys, "other-" + kind)) == (False, NOT_VERIFIED)


@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_payload_byte_is_rejected(keys: dict, kind: str) -> None:
    body, annotations = signed_layer(keys[kind])
    at = body.index(b"sha256:") + 10  # inside the digest: still JSON, but no longer what was signed
    flipped = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
    assert verify_simple_signing(flipped, annotations, DIGEST, key_of(keys, kind)) == (False, NOT_VERIFIED)


@pytest.mark.parametrize("kind", KINDS)
def test_a_payload_naming_another_digest_is_rejected(keys: dict, kind: str) -> None:
    body, annotations = signed_layer(keys[kind], payload(OTHER_DIGEST))
    assert verify_simple_signing(body, annotations, DIGEST, key_of(keys, kind)) == (
        False,
        "the payload names %s, not %s" % (OTHER_DIGEST, DIGEST),
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("ecdsa-p256", "neither DER nor the 64-byte r||s of ECDSA P-256"),
        ("ecdsa-p384", "neither DER nor the 96-byte r||s of ECDSA P-384"),
        ("rsa-2048", "an RSA-2048 signature has 256"),
        ("ed25519", "an Ed25519 signature has 64"),
    ],
)
def test_a_truncated_signature_is_rejected_as_truncated(keys: dict, kind: str, reason: str) -> None:
    body = payload()
    signature = sign(keys[kind], body)[:-10]  # 10: never the raw r||s length, whatever the DER length was
    verified, why = verify_simple_signing(
        body, {COSIGN_SIGNATURE_ANNOTATION: b64(signature)}, DIGEST, key_of(keys, kind)
    )
    assert not verified
    assert why.startswith("the signature is truncated or malformed: %d bytes" % len(signature))
    assert why.endswith(reason)


def test_a_damaged_raw_ecdsa_signature_does_not_verify(keys: dict) -> None:
    body = payload()
    raw = sign(keys["ecdsa-p256"], body, raw=True)
    damaged = raw[:-1] + bytes([raw[-1] ^ 0x01])
    verdict = verify_simple_signing(
        body, {COSIGN_SIGNATURE_ANNOTATION: b64(damaged)}, DIGEST, key_of(keys, "ecdsa-p256")
    )
    assert verdict == (False, NOT_VERIFIED)


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        (None, "the layer has no dev.cosignproject.cosign/signature annotation"),
        ({}, "the layer has no dev.cosignproject.cosign/signature annotation"),
        ({COSIGN_SIGNATURE_ANNOTATION: "not base64!"}, "the signature is not base64"),
        ({COSIGN_SIGNATURE_ANNOTATION: "QUJD="}, "the signature is not base64"),  # padded to a wrong length
        ({COSIGN_SIGNATURE_ANNOTATION: "QUJDR"}, "the signature is not base64"),  # cut inside a group
        ({COSIGN_SIGNATURE_ANNOTATION: 42}, "the signature is not base64"),
        ({COSIGN_SIGNATURE_ANNOTATION: ""}, "the signature is empty"),
    ],
)
def test_a_missing_or_undecodable_signature_says_so(keys: dict, annotations: Any, reason: str) -> None:
    assert verify_simple_signing(payload(), annotations, DIGEST, key_of(keys, "ecdsa-p256")) == (False, reason)


def signed_verdict(keys: dict, body: bytes) -> Verification:
    """The verdict on BODY correctly signed: only the payload's content can make it fail."""
    return verify_simple_signing(*signed_layer(keys["ecdsa-p256"], body), DIGEST, key_of(keys, "ecdsa-p256"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "the payload is not JSON"),
        (b"\xff\xfe{}", "the payload is not JSON"),
        (b"[1, 2]", "the payload is not a JSON object"),
        (b'{"optional": {}}', "the payload has no 'critical' section"),
        (payload(kind="atomic container signature"), "the payload's critical.type is 'atomic container signature', "),
        (b'{"critical": {"image": {}}}', "the payload's critical.type is missing, "),
        (
            b'{"critical": {"type": "cosign container image signature", "image": {}}}',
            "the payload names no image digest (critical.image.docker-manifest-digest)",
        ),
        (
            b'{"critical": {"type": "cosign container image signature", "image": {"docker-manifest-digest": 7}}}',
            "the payload names no image digest",
        ),
        (payload() + b" ", ""),  # trailing white space is still the same JSON: verified
    ],
)
def test_the_payload_must_be_a_cosign_image_signature(keys: dict, body: bytes, reason: str) -> None:
    verdict = signed_verdict(keys, body)
    assert verdict.verified is (reason == "")
    assert verdict.reason.startswith(reason or "verified")


def test_keys_match_as_cosign_reads_them_ignoring_case(keys: dict) -> None:
    # cosign's own SIGNATURE_SPEC example spells it "Docker-manifest-digest"; Go's encoding/json ignores case.
    body = payload().replace(b"docker-manifest-digest", b"Docker-manifest-digest")
    assert signed_verdict(keys, body).verified
    # Go also folds the long s and the Kelvin sign onto s and k.
    body = payload().replace(b"docker-manifest-digest", "docker-manifeſt-digest".encode())
    assert signed_verdict(keys, body).verified


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            payload().replace(b'"optional":null', b'"optional":null,"optional":{}'),
            "the payload is ambiguous: it gives the key 'optional' twice",
        ),
        (
            payload()[:-1] + b',"Critical":{}}',
            "the payload has no 'critical' section (ambiguous: 'critical' and 'Critical')",
        ),
        (
            payload().replace(
                b'"docker-manifest-digest":"%s"' % DIGEST.encode(),
                ('"docker-manifest-digest":"%s","docker-manifeſt-digest":"%s"' % (DIGEST, OTHER_DIGEST)).encode(),
            ),
            "the payload names no image digest (critical.image.docker-manifest-digest: ambiguous: ",
        ),
    ],
)
def test_a_payload_that_parsers_could_read_differently_is_refused(keys: dict, body: bytes, reason: str) -> None:
    # Go takes the last of two equal keys, other readers the first: whichever digest one saw, another may not.
    verdict = signed_verdict(keys, body)
    assert not verdict.verified
    assert verdict.reason.startswith(reason)


def test_a_bad_digest_argument_is_an_error_not_a_verdict(keys: dict) -> None:
    with pytest.raises(InvalidInputError):
        verify_simple_signing(payload(), {}, "sha256:abc", key_of(keys, "ecdsa-p256"))


# -- keys ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "description"),
    [
        ("ecdsa-p256", "ecdsa-p256", "ECDSA P-256"),
        ("ecdsa-p384", "ecdsa-p384", "ECDSA P-384"),
        ("rsa-2048", "rsa-2048", "RSA-2048"),
        ("ed25519", "ed25519", "Ed25519"),
    ],
)
def test_public_keys_load_with_their_kind_and_fingerprint(keys: dict, kind: str, name: str, description: str) -> None:
    key = key_of(keys, kind)
    der = (
        keys[kind]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert (key.kind, key.description) == (name, description)
    assert key.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()
    assert key.hint == hint(keys[kind])


def test_a_pkcs1_rsa_public_key_and_crlf_lines_load(keys: dict) -> None:
    pkcs1 = keys["rsa-2048"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert load_public_key(pkcs1).kind == "rsa-2048"
    assert load_public_key(public_pem(keys["ecdsa-p256"]).replace("\n", "\r\n")).kind == "ecdsa-p256"


def pem_block(label: str, der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii")
    return "-----BEGIN %s-----\n%s-----END %s-----\n" % (label, body, label)


def certificate_pem() -> str:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_pem(private: Any) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture(scope="module")
def garbage() -> dict[str, str]:
    """Key texts that are not a usable public key, by name."""
    skip_without_cryptography()
    p256 = ec.generate_private_key(ec.SECP256R1())
    good = public_pem(p256)
    body = good.splitlines()[1]
    damaged = good.replace(body, body[:10] + "!!!!" + body[14:])
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return {
        "empty": "  \n",
        "words": "not a key at all",
        "a-path": "/etc/cosign.pub",
        "cut-short": good[: len(good) // 2],
        "damaged": damaged,
        "not-der": pem_block("PUBLIC KEY", b"\x30\x03\x02\x01\x01"),
        "private": private_pem(p256),
        "private-cut": private_pem(p256)[:60],
        "cosign-private": pem_block("ENCRYPTED SIGSTORE PRIVATE KEY", b"x" * 40),
        "certificate": certificate_pem(),
        "two-keys": good + good,
        "other-block": pem_block("EC PARAMETERS", b"\x06\x08*\x86H\xce=\x03\x01\x07"),
        "secp256k1": public_pem(ec.generate_private_key(ec.SECP256K1())),
        "rsa-1024": public_pem(rsa.generate_private_key(65537, 1024)),
        "x25519": pem_block("PUBLIC KEY", x25519.X25519PrivateKey.generate().public_key().public_bytes(*spki)),
        "ed448": pem_block("PUBLIC KEY", ed448.Ed448PrivateKey.generate().public_key().public_bytes(*spki)),
    }


GARBAGE_SAYS = {
    "empty": "verify_key is empty",
    "words": "verify_key is not a PEM public key: it has no '-----BEGIN PUBLIC KEY-----'",
    "a-path": "if it is a file name, give the key's text",
    "cut-short": "verify_key has an incomplete PEM block",
    "damaged": "does not decode as a public key: its base64 or DER is damaged",
    "not-der": "does not decode as a public key",
    "private": "verify_key is a private key",
    "private-cut": "verify_key is a private key",
    "cosign-private": "verify_key is a private key",
    "certificate": "verify_key is an X.509 certificate",
    "two-keys": "verify_key holds 2 PEM blocks (PUBLIC KEY, PUBLIC KEY)",
    "other-block": "is a PEM 'EC PARAMETERS'",
    "secp256k1": "verify_key is an ECDSA key on curve secp256k1",
    "rsa-1024": "an RSA key of 1024 bits: too weak",
    "x25519": "verify_key is an unsupported X25519 key",
    "ed448": "verify_key is an unsupported Ed448 key",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_SAYS))
def test_a_garbage_key_is_refused_saying_what_is_wrong_without_quoting_it(garbage: dict, name: str) -> None:
    text, says = garbage[name], GARBAGE_SAYS[name]
    with pytest.raises(InvalidInputError) as raised:
        load_public_key(text)
    message = str(raised.value)
    assert says in message
    for line in text.splitlines():
        if not line.startswith("-----") and len(line) >= 16:
            assert line[:16] not in message, "the message quotes the key"


def test_a_garbage_key_given_to_a_verify_function_raises_too() -> None:
    with pytest.raises(InvalidInputError, match="verify_key is not a PEM public key"):
        verify_simple_signing(payload(), {}, DIGEST, "garbage")
    with pytest.raises(InvalidInputError, match="verify_key is empty"):
        verify_bundle(b"{}", DIGEST, "")


def test_the_option_name_in_key_messages_can_be_set() -> None:
    with pytest.raises(InvalidInputError, match="^promote_verify_key is empty"):
        load_public_key("", what="promote_verify_key")
    with pytest.raises(InvalidInputError, match="must be the PEM text of a public key, not int"):
        load_public_key(42)  # type: ignore[arg-type]


# -- DSSE ----------------------------------------------------------------------------------------------------------


def test_pae_is_exactly_the_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md, "Test Vectors".
    assert dsse_pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("payload_type", "body", "pae_hex"),
    [
        # secure-systems-lab/dsse testvectors/vectors.json: "single-signature", "non-ascii-payload-type" (LEN is
        # bytes: 29 for 28 characters), "empty-payload" (a trailing space), "url-safe-base64" (binary body).
        (
            "application/vnd.in-toto+json",
            b'{"_type":"https://in-toto.io/Statement/v1"}',
            "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b225f74797065223a22"
            "68747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d",
        ),
        (
            "application/vnd.exämple+json",
            b'{"_type":"https://in-toto.io/Statement/v1"}',
            "445353457631203239206170706c69636174696f6e2f766e642e6578c3a46d706c652b6a736f6e203433207b225f74797065223a"
            "2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d",
        ),
        (
            "application/vnd.in-toto+json",
            b"",
            "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203020",
        ),
        (
            "application/vnd.in-toto+json",
            b"\xfb\xff\xbf>?",
            "445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203520fbffbf3e3f",
        ),
    ],
)
def test_pae_matches_the_dsse_test_vectors(payload_type: str, body: bytes, pae_hex: str) -> None:
    assert dsse_pae(payload_type, body).hex() == pae_hex


DSSE_VECTOR_KEY_A = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"  # RFC 8032 7.1 TEST 1
DSSE_VECTOR_STATEMENT = "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ=="
DSSE_VECTOR_SIG = "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="


def vector_key_a() -> str:
    public = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(DSSE_VECTOR_KEY_A))
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize(
    ("envelope_value", "reason"),
    [
        # The signature verifies; the statement (only a _type) then names no subject: proof the signature passed.
        (
            {
                "payload": DSSE_VECTOR_STATEMENT,
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": DSSE_VECTOR_SIG, "keyid": "A"}],
            },
            "the statement has no subject with a sha256 digest",
        ),
        # The same signature under another payloadType: PAE binds the type.
        (
            {
                "payload": DSSE_VECTOR_STATEMENT,
                "payloadType": "application/vnd.example.other+json",
                "signatures": [{"sig": DSSE_VECTOR_SIG}],
            },
            NOT_VERIFIED,
        ),
        # URL-safe base64 (payload and signature): verifiers MUST accept it; the body is binary, so not JSON.
        (
            {
                "payload": "-_-_Pj8=",
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [
                    {"sig": "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw=="}
                ],
            },
            "the statement is not JSON",
        ),
        # An empty body is signed as "... 0 ": verifies, and is not JSON.
        (
            {
                "payload": "",
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [
                    {"sig": "gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg=="}
                ],
            },
            "the statement is not JSON",
        ),
    ],
)
def test_the_dsse_test_vectors(envelope_value: dict, reason: str) -> None:
    assert verify_dsse_envelope(envelope_value, DIGEST, vector_key_a()) == (False, reason)


def test_the_dsse_spec_example_raw_ecdsa_signature_verifies() -> None:
    # protocol.md: ECDSA P-256 SHA-256, "raw concatenation of r and s", over the PAE of "hello world".
    x_value = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y_value = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    public = ec.EllipticCurvePublicNumbers(x_value, y_value, ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    example = {
        "payload": "aGVsbG8gd29ybGQ=",
        "payloadType": "http://example.com/HelloWorld",
        "signatures": [
            {"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}
        ],
    }
    # The signature passes; then the payload type is not one a signature of an image can be.
    assert verify_dsse_envelope(example, DIGEST, pem) == (
        False,
        "the DSSE payloadType 'http://example.com/HelloWorld' is not an in-toto statement "
        "(application/vnd.in-toto+json)",
    )
    example["payload"] = b64(b"hello world!")
    assert verify_dsse_envelope(example, DIGEST, pem) == (False, NOT_VERIFIED)


@pytest.mark.parametrize(
    ("kind", "options"), [(kind, {}) for kind in KINDS] + [("ecdsa-p256", {"raw": True}), ("ed25519", {"pure": True})]
)
def test_a_good_dsse_envelope_verifies(keys: dict, kind: str, options: dict) -> None:
    verdict = verify_dsse_envelope(json.dumps(envelope(keys[kind], **options)).encode(), DIGEST, key_of(keys, kind))
    assert verdict.verified, verdict.reason
    assert verdict.reason.endswith(", DSSE statement)")


def test_one_good_signature_among_several_is_enough(keys: dict) -> None:
    good = envelope(keys["ecdsa-p256"])
    other = envelope(keys["other-ecdsa-p256"])
    good["signatures"] = [{"sig": "!!"}, other["signatures"][0], good["signatures"][0]]
    assert verify_dsse_envelope(good, DIGEST, key_of(keys, "ecdsa-p256")).verified
    good["signatures"] = good["signatures"][:2]
    assert verify_dsse_envelope(good, DIGEST, key_of(keys, "ecdsa-p256")) == (
        False,
        "none of the 2 signatures verifies with the key (the signature does not verify with the key; the signature "
        "is missing or not base64)",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.pop("signatures"), "the DSSE envelope has no signatures"),
        (lambda e: e.update(signatures=[]), "the DSSE envelope has no signatures"),
        (lambda e: e.pop("payloadType"), "the DSSE envelope has no payloadType"),
        (lambda e: e.update(payload="%%%"), "the DSSE payload is missing or not base64"),
        (
            lambda e: e["signatures"][0].update(sig=e["signatures"][0]["sig"][:-12] + "===="),
            "the signature is missing or not base64",
        ),
    ],
)
def test_a_broken_envelope_says_what_is_broken(keys: dict, change: Any, reason: str) -> None:
    broken = envelope(keys["ecdsa-p256"])
    change(broken)
    assert verify_dsse_envelope(broken, DIGEST, key_of(keys, "ecdsa-p256")) == (False, reason)


def test_envelope_input_that_is_not_an_envelope(keys: dict) -> None:
    key = key_of(keys, "ecdsa-p256")
    assert verify_dsse_envelope(b"{", DIGEST, key) == (False, "the DSSE envelope is not JSON")
    assert verify_dsse_envelope(b"[]", DIGEST, key) == (False, "the DSSE envelope is not a JSON object")


# -- bundles -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_bundle_verifies(keys: dict, kind: str) -> None:
    verdict = verify_bundle(bundle(keys[kind]), DIGEST, key_of(keys, kind))
    assert verdict.verified, verdict.reason


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_signed_by_another_key_says_which_key_it_names(keys: dict, kind: str) -> None:
    verified, reason = verify_bundle(bundle(keys[kind]), DIGEST, key_of(keys, "other-" + kind))
    assert not verified
    assert reason == "%s (the bundle names another key: hint %s, this key's is %s)" % (
        NOT_VERIFIED,
        hint(keys[kind]),
        hint(keys["other-" + kind]),
    )


def test_a_keyless_bundle_says_it_carries_a_certificate(keys: dict) -> None:
    keyless = bundle(keys["ecdsa-p256"], certificate={"rawBytes": "MIIB"})
    assert verify_bundle(keyless, DIGEST, key_of(keys, "other-ecdsa-p256")) == (
        False,
        NOT_VERIFIED + " (the bundle carries a certificate: a keyless signature, which a key does not verify)",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_with_a_flipped_payload_byte_is_rejected(keys: dict, kind: str) -> None:
    good = envelope(keys[kind])
    body = bytearray(base64.b64decode(good["payload"]))
    body[len(body) // 2] ^= 0x01
    good["payload"] = b64(bytes(body))
    assert verify_bundle(bundle(keys[kind], good), DIGEST, key_of(keys, kind)) == (False, NOT_VERIFIED)


def test_a_bundle_over_another_digest_is_rejected(keys: dict) -> None:
    other = envelope(keys["ecdsa-p256"], statement(OTHER_DIGEST))
    assert verify_bundle(bundle(keys["ecdsa-p256"], other), DIGEST, key_of(keys, "ecdsa-p256")) == (
        False,
        "the statement names %s, not %s" % (OTHER_DIGEST, DIGEST),
    )


def test_a_bundle_with_a_truncated_signature_is_rejected(keys: dict) -> None:
    cut = envelope(keys["ecdsa-p384"])
    cut["signatures"][0]["sig"] = b64(base64.b64decode(cut["signatures"][0]["sig"])[:-10])
    verified, reason = verify_bundle(bundle(keys["ecdsa-p384"], cut), DIGEST, key_of(keys, "ecdsa-p384"))
    assert not verified
    assert reason.startswith("the signature is truncated or malformed: ")


def test_any_subject_may_name_the_digest(keys: dict) -> None:
    many = json.loads(statement(OTHER_DIGEST))
    many["subject"].append({"name": "x", "digest": {"sha512": "00"}})
    many["subject"].append({"digest": {"sha256": DIGEST.partition(":")[2]}})
    signed = envelope(keys["ecdsa-p256"], json.dumps(many).encode())
    assert verify_bundle(bundle(keys["ecdsa-p256"], signed), DIGEST, key_of(keys, "ecdsa-p256")).verified


def test_an_attestation_bundle_is_not_a_signature_unless_asked_for(keys: dict) -> None:
    provenance = bundle(keys["ecdsa-p256"], envelope(keys["ecdsa-p256"], statement(predicate_type=SLSA)))
    key = key_of(keys, "ecdsa-p256")
    assert verify_bundle(provenance, DIGEST, key) == (
        False,
        "the statement is a 'https://slsa.dev/provenance/v1' attestation, not a cosign signature",
    )
    assert verify_bundle(provenance, DIGEST, key, predicate_types=None).verified
    assert verify_bundle(provenance, DIGEST, key, predicate_types=SLSA).verified
    assert verify_dsse_envelope(envelope(keys["ecdsa-p256"], statement(predicate_type=SLSA)), DIGEST, key).verified


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "the statement is not JSON"),
        (b'"text"', "the statement is not a JSON object"),
        (
            b'{"_type": "https://example.com/Statement"}',
            "the statement's _type 'https://example.com/Statement' is not an in-toto statement",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v0.1", "subject": 3}',
            "the statement has no subject with a sha256 digest",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", "subject": [], "subject": []}',
            "the statement is ambiguous: it gives the key 'subject' twice",
        ),
    ],
)
def test_a_signed_statement_must_be_an_in_toto_statement(keys: dict, body: bytes, reason: str) -> None:
    signed = envelope(keys["ecdsa-p256"], body)
    assert verify_bundle(bundle(keys["ecdsa-p256"], signed), DIGEST, key_of(keys, "ecdsa-p256")) == (False, reason)


def test_a_dsse_wrapped_simple_signing_payload_is_read_as_one(keys: dict) -> None:
    key = key_of(keys, "ecdsa-p256")
    wrapped = envelope(keys["ecdsa-p256"], payload(), payload_type=SIMPLE_SIGNING_MEDIA_TYPE)
    assert verify_bundle(bundle(keys["ecdsa-p256"], wrapped), DIGEST, key).verified
    wrapped = envelope(keys["ecdsa-p256"], payload(OTHER_DIGEST), payload_type=SIMPLE_SIGNING_MEDIA_TYPE)
    assert verify_bundle(bundle(keys["ecdsa-p256"], wrapped), DIGEST, key) == (
        False,
        "the payload names %s, not %s" % (OTHER_DIGEST, DIGEST),
    )


def message_signature(private: Any, digest: str = DIGEST, algorithm: str = "SHA2_256", **changes: Any) -> dict:
    signed = bytes.fromhex(digest.partition(":")[2])
    if isinstance(private, ec.EllipticCurvePrivateKey):
        signature = private.sign(signed, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    elif isinstance(private, rsa.RSAPrivateKey):
        signature = private.sign(signed, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    else:
        signature = b"\x00" * 64
    content = {"messageDigest": {"algorithm": algorithm, "digest": b64(signed)}, "signature": b64(signature)}
    content.update(changes)
    return {"messageSignature": content}


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "rsa-2048"])
def test_a_message_signature_of_the_digest_verifies(keys: dict, kind: str) -> None:
    verdict = verify_bundle(bundle(keys[kind], message_signature(keys[kind])), DIGEST, key_of(keys, kind))
    assert verdict.verified, verdict.reason
    assert verdict.reason.endswith(", SHA-256, message signature)")


def test_a_message_signature_is_checked_like_the_others(keys: dict) -> None:
    key = key_of(keys, "ecdsa-p256")
    private = keys["ecdsa-p256"]
    assert verify_bundle(bundle(private, message_signature(private, OTHER_DIGEST)), DIGEST, key) == (
        False,
        "the message signature is of %s, not %s" % (OTHER_DIGEST, DIGEST),
    )
    assert verify_bundle(bundle(private, message_signature(keys["other-ecdsa-p256"])), DIGEST, key).reason.startswith(
        NOT_VERIFIED
    )
    assert verify_bundle(bundle(private, message_signature(private, algorithm="MD5")), DIGEST, key) == (
        False,
        "the messageSignature's digest algorithm 'MD5' is not supported",
    )
    assert verify_bundle(bundle(private, message_signature(private, signature="??")), DIGEST, key) == (
        False,
        "the signature is missing or not base64",
    )
    ed_key = key_of(keys, "ed25519")
    assert verify_bundle(bundle(keys["ed25519"], message_signature(keys["ed25519"])), DIGEST, ed_key) == (
        False,
        "an Ed25519 signature cannot be checked from a sha256 digest alone (Ed25519ph signs SHA-512)",
    )


def test_an_ed25519ph_message_signature_of_a_sha512_digest_verifies(keys: dict) -> None:
    digest = "sha512:" + hashlib.sha512(b"the signed manifest").hexdigest()
    signed = bytes.fromhex(digest.partition(":")[2])
    content = {
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_512", "digest": b64(signed)},
            "signature": b64(ed25519ph_sign(keys["ed25519"], signed)),
        }
    }
    assert verify_bundle(bundle(keys["ed25519"], content), digest, key_of(keys, "ed25519")) == (
        True,
        "verified with the key (Ed25519ph, message signature)",
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"nope", "the bundle is not JSON"),
        (b"[]", "the bundle is not a JSON object"),
        (b'{"mediaType": "application/json"}', "not a sigstore bundle: its mediaType is 'application/json'"),
        (b"{}", "not a sigstore bundle: its mediaType is None"),
        (
            json.dumps({"mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE, "verificationMaterial": {}}).encode(),
            "the bundle holds neither a dsseEnvelope nor a messageSignature",
        ),
    ],
)
def test_what_is_not_a_bundle_says_so(keys: dict, document: bytes, reason: str) -> None:
    assert verify_bundle(document, DIGEST, key_of(keys, "ecdsa-p256")) == (False, reason)


@pytest.mark.parametrize(
    ("media_type", "known"),
    [
        ("application/vnd.dev.sigstore.bundle.v0.3+json", True),
        ("application/vnd.dev.sigstore.bundle+json;version=0.1", True),
        ("application/vnd.dev.sigstore.bundle+json;version=0.2", True),
        ("application/vnd.dev.sigstore.bundle.v0.4+json", True),
        ("application/vnd.dev.sigstore.bundle+json", False),
        ("application/vnd.dsse.envelope.v1+json", False),
        (None, False),
    ],
)
def test_bundle_media_types(media_type: Any, known: bool) -> None:
    assert is_sigstore_bundle_media_type(media_type) is known


def test_a_version_0_1_bundle_is_read_the_same_way(keys: dict) -> None:
    old = json.loads(bundle(keys["ecdsa-p256"]))
    old["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    assert verify_bundle(old, DIGEST, key_of(keys, "ecdsa-p256")).verified


# -- Ed25519ph -------------------------------------------------------------------------------------------------------

RFC8032_PH_SECRET = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"
RFC8032_PH_PUBLIC = "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
RFC8032_PH_SIGNATURE = (
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)


def test_ed25519ph_accepts_the_rfc8032_vector_and_nothing_near_it() -> None:
    public = bytes.fromhex(RFC8032_PH_PUBLIC)
    signature = bytes.fromhex(RFC8032_PH_SIGNATURE)
    prehash = hashlib.sha512(b"abc").digest()
    assert ed25519ph_verify(public, signature, prehash)
    assert not ed25519ph_verify(public, signature, hashlib.sha512(b"abd").digest())
    assert not ed25519ph_verify(public, signature[:-1] + bytes([signature[-1] ^ 1]), prehash)
    assert not ed25519ph_verify(public[:-1] + bytes([public[-1] ^ 1]), signature, prehash)
    # S + L is the same scalar, but not canonical: refused (RFC 8032 5.1.7: S must be below L).
    s_plus_order = int.from_bytes(signature[32:], "little") + signatures.ED25519_ORDER
    assert not ed25519ph_verify(public, signature[:32] + s_plus_order.to_bytes(32, "little"), prehash)
    assert not ed25519ph_verify(public, signature[:63], prehash)


def test_the_test_signer_reproduces_rfc8032_and_matches_cryptography() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_PH_SECRET))
    assert ed25519ph_sign(private, hashlib.sha512(b"abc").digest()).hex() == RFC8032_PH_SIGNATURE
    # Without dom2 the same arithmetic is pure Ed25519, which cryptography computes on its own.
    for message in (b"", b"abc", os.urandom(100)):
        other = ed25519.Ed25519PrivateKey.generate()
        assert ed25519ph_sign(other, message, dom=b"") == other.sign(message)


def test_an_ed25519ph_signature_is_not_a_pure_one(keys: dict) -> None:
    # Same key, same payload: the dom2 prefix keeps the two schemes apart.
    body = payload()
    ph = sign(keys["ed25519"], body)
    assert ph != sign(keys["ed25519"], body, pure=True)
    with pytest.raises(InvalidSignature):
        keys["ed25519"].public_key().verify(ph, body)


# -- small things --------------------------------------------------------------------------------------------------


# The directory that holds ansible_collections/, as this run imports the collection from it.
COLLECTIONS = Path(signatures.__file__).parents[6]


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run CODE in a fresh interpreter (so that nothing this run imported counts), with the collection importable."""
    env = {**os.environ, "PYTHONPATH": str(COLLECTIONS)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)


MODULE = "ansible_collections.ocireg.registry.plugins.module_utils._ops.signatures"


def test_importing_the_module_does_not_import_cryptography() -> None:
    run = python("import sys, %s as s; print('cryptography' in sys.modules)" % MODULE)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_without_cryptography_the_module_imports_and_says_what_is_missing() -> None:
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from %s import CRYPTOGRAPHY_IMPORT_ERROR, cryptography_import_error, load_public_key\n"
        "error = cryptography_import_error()\n"
        "print(isinstance(CRYPTOGRAPHY_IMPORT_ERROR, ImportError), isinstance(error, ImportError))\n"
        "from ansible_collections.ocireg.registry.plugins.module_utils._errors import UnsupportedError\n"
        "try:\n    load_public_key('x')\nexcept UnsupportedError as e:\n    print(e)\n" % MODULE
    )
    run = python(code)
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.splitlines()[:2]
    assert first == "True True"
    assert "needs the Python library 'cryptography'" in second
    assert "pip install cryptography" in second


def test_with_cryptography_there_is_no_import_error() -> None:
    assert signatures.cryptography_import_error() is None
    assert signatures.CRYPTOGRAPHY_IMPORT_ERROR is None
    with pytest.raises(AttributeError):
        signatures.NO_SUCH_NAME  # noqa: B018

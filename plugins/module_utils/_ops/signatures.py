# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of cosign signatures with a public key: pure, the caller hands in the bytes it read.

Two formats, as cosign writes them:

- **Simple signing** (cosign 2 and older, the ``sha256-<hex>.sig`` tag): each layer of the signature image is a
  payload (``application/vnd.dev.cosign.simplesigning.v1+json``) whose ``critical.image.docker-manifest-digest``
  names the signed manifest; the layer's ``dev.cosignproject.cosign/signature`` annotation is the base64 signature
  over the exact payload bytes (cosign ``specs/SIGNATURE_SPEC.md``).
- **Sigstore bundles** (cosign 3's default, an OCI 1.1 referrer whose one layer is the bundle, cosign
  ``specs/BUNDLE_SPEC.md``): a DSSE envelope whose payload is an in-toto statement (predicate type
  ``https://sigstore.dev/cosign/sign/v1`` for ``cosign sign``) with the signed digest as a subject; the signature
  covers the DSSE pre-authentication encoding (DSSE ``protocol.md``). A bundle may instead hold a
  ``messageSignature`` over the digest itself; that is checked too. cosign 2's ``.att`` layers are bare DSSE
  envelopes (``application/vnd.dsse.envelope.v1+json``): :func:`verify_dsse_envelope`.

Keys are PEM public keys: ECDSA P-256, P-384 (and P-521), RSA (2048 bits or more) and Ed25519. Which hash a
signer used is not recorded anywhere, so each key accepts what cosign's versions sign with: ECDSA P-256 with
SHA-256; P-384 with SHA-384 (current cosign: sigstore's ``LoadDefaultSignerVerifier``) or SHA-256 (older cosign
hashed every key with SHA-256); P-521 with SHA-512 or SHA-256; ECDSA signatures DER-encoded (cosign) or raw ``r||s``
(KMS, some DSSE tools); RSA PKCS#1 v1.5 with SHA-256 (cosign's default) or RSA-PSS with SHA-256; Ed25519 pure (older
cosign) or Ed25519ph (current cosign signs with it by default: ``GetDefaultLoadOptions``). ``cryptography`` has no
Ed25519ph, so that one check is done here with the curve arithmetic of RFC 8032 (verification only: nothing secret
is handled).

A signature that does not verify is a fact, not an error: every ``verify_*`` function returns a
:class:`Verification` ``(verified, reason)`` and raises only for a bad key (:func:`load_public_key`) or a bad
``digest`` argument. The transparency log and certificates (keyless signing) are not checked.

``cryptography`` is imported on first use only, so that importing this file costs nothing and never fails: a module
checks :func:`cryptography_import_error` (or ``CRYPTOGRAPHY_IMPORT_ERROR``) and reports
``missing_required_lib('cryptography')``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Union

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DuplicateKeyError,
    InvalidInputError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.mediatypes import (
    COSIGN_SIGN_PREDICATE_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIGNATURE_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    IN_TOTO_STATEMENT_TYPES,
    SIMPLE_SIGNING_MEDIA_TYPE,
    is_sigstore_bundle_media_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import validate_digest

# messageSignature.messageDigest.algorithm (sigstore_common.proto HashAlgorithm) -> digest algorithm.
_MESSAGE_DIGEST_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
_MIN_RSA_BITS = 2048
_ECDSA_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# The hashes each curve's signatures are tried with, cosign's current default first.
_ECDSA_HASHES = {"secp256r1": ("SHA256",), "secp384r1": ("SHA384", "SHA256"), "secp521r1": ("SHA512", "SHA256")}
_HASH_LABELS = {"SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}
_DIGEST_HASHES = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PUBLIC_KEY_LABELS = (b"PUBLIC KEY", b"RSA PUBLIC KEY")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_SHOWN_SUBJECTS = 3
_GO_FOLDS = {"\u017f": "s", "\u212a": "k"}


class Verification(NamedTuple):
    """What checking one signature found: ``verified`` and a short reason that says why (or with what)."""

    verified: bool
    reason: str


def dsse_pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``.

    LEN is the byte length (of the UTF-8 type) in ASCII decimal; a DSSE signature covers exactly these bytes.
    """
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(encoded_type), encoded_type, len(body), body)


# -- cryptography, imported on first use --------------------------------------------------------------------------

_crypto: types.SimpleNamespace | None = None
_crypto_import_error: Exception | None = None
_crypto_tried = False


def cryptography_import_error() -> Exception | None:
    """The ImportError of ``cryptography``, or None when it imports (tried once, on the first call)."""
    _load_cryptography()
    return _crypto_import_error


def __getattr__(name: str) -> Any:
    # CRYPTOGRAPHY_IMPORT_ERROR, as transport.py has REQUESTS_IMPORT_ERROR, but only tried when someone asks.
    if name == "CRYPTOGRAPHY_IMPORT_ERROR":
        return cryptography_import_error()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _load_cryptography() -> types.SimpleNamespace | None:
    global _crypto, _crypto_import_error, _crypto_tried
    if not _crypto_tried:
        # Two threads may both try the import (harmless); _crypto_tried is set only once the outcome is known.
        try:
            from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
        except ImportError as error:
            _crypto_import_error = error
        else:
            _crypto = types.SimpleNamespace(
                InvalidSignature=InvalidSignature,
                UnsupportedAlgorithm=UnsupportedAlgorithm,
                hashes=hashes,
                serialization=serialization,
                ec=ec,
                ed25519=ed25519,
                padding=padding,
                rsa=rsa,
                utils=utils,
            )
        _crypto_tried = True
    return _crypto


def _cryptography() -> types.SimpleNamespace:
    crypto = _load_cryptography()
    if crypto is None:
        raise UnsupportedError(
            "Verifying signatures needs the Python library 'cryptography' on the host that runs the task "
            "(pip install cryptography): %s" % _crypto_import_error
        )
    return crypto


# -- keys ---------------------------------------------------------------------------------------------------------


class PublicKey:
    """A verification key: ``kind`` (``ecdsa-p256``, ``rsa-3072``, ``ed25519``...), ``description`` for messages,
    ``fingerprint`` (``sha256:`` of the DER SubjectPublicKeyInfo) and ``hint`` (base64 of that hash: what a sigstore
    bundle's ``verificationMaterial.publicKey.hint`` says for the key that signed it)."""

    def __init__(self, key: Any, kind: str, description: str, der: bytes):
        self.key = key
        self.kind = kind
        self.description = description
        digest = hashlib.sha256(der).digest()
        self.fingerprint = "sha256:" + digest.hex()
        self.hint = base64.b64encode(digest).decode("ascii")

    def __repr__(self) -> str:
        return "PublicKey(%s, %s)" % (self.description, self.fingerprint)


KeyLike = Union[PublicKey, str, bytes]


def _text_fingerprint(data: bytes) -> str:
    return "sha256:%s..." % hashlib.sha256(data).hexdigest()[:12]


def load_public_key(pem: str | bytes, *, what: str = "verify_key") -> PublicKey:
    """Parse one PEM public key (``-----BEGIN PUBLIC KEY-----``, or PKCS#1 ``RSA PUBLIC KEY``).

    Raises :class:`InvalidInputError` naming what is wrong, never quoting the key: at most a short fingerprint of the
    given text. ``what`` names the option in messages.
    """
    crypto = _cryptography()
    if isinstance(pem, str):
        data = pem.encode("utf-8")
    elif isinstance(pem, (bytes, bytearray)):
        data = bytes(pem)
    else:
        raise InvalidInputError("%s must be the PEM text of a public key, not %s." % (what, type(pem).__name__))
    if not data.strip():
        raise InvalidInputError("%s is empty: give the PEM text of a public key (cosign.pub)." % what)
    blocks = _PEM_BLOCK.findall(data)
    labels = [label for label, _body in blocks]
    if any(b"PRIVATE KEY" in label for label in labels) or (not blocks and b"PRIVATE KEY" in data):
        raise InvalidInputError(
            "%s is a private key: give the public key (cosign.pub, '-----BEGIN PUBLIC KEY-----'), never the private "
            "key." % what
        )
    if not blocks and b"-----BEGIN" in data:
        raise InvalidInputError(
            "%s has an incomplete PEM block: no '-----END ...-----' line matches its '-----BEGIN' line (given text "
            "%s)." % (what, _text_fingerprint(data))
        )
    if not blocks:
        looks_like_path = b"\n" not in data.strip() and len(data) < 4096 and b"-----" not in data
        raise InvalidInputError(
            "%s is not a PEM public key: it has no '-----BEGIN PUBLIC KEY-----' block (given text %s)%s."
            % (what, _text_fingerprint(data), "; if it is a file name, give the key's text" if looks_like_path else "")
        )
    if len(blocks) > 1:
        raise InvalidInputError(
            "%s holds %d PEM blocks (%s): give exactly one public key."
            % (what, len(blocks), ", ".join(label.decode("ascii") for label in labels))
        )
    label = labels[0]
    if label == b"CERTIFICATE":
        raise InvalidInputError(
            "%s is an X.509 certificate, not a public key: give the key it holds "
            "(openssl x509 -pubkey -noout -in CERT)." % what
        )
    if label not in _PUBLIC_KEY_LABELS:
        raise InvalidInputError(
            "%s is a PEM '%s' block, not a public key ('-----BEGIN PUBLIC KEY-----')." % (what, label.decode("ascii"))
        )
    match = _PEM_BLOCK.search(data)
    block = match.group(0) if match else data
    try:
        key = crypto.serialization.load_pem_public_key(block)
    except (ValueError, TypeError, crypto.UnsupportedAlgorithm):
        raise InvalidInputError(
            "%s has a '%s' block that does not decode as a public key: its base64 or DER is damaged (given text "
            "%s)." % (what, label.decode("ascii"), _text_fingerprint(data))
        ) from None
    return _describe_key(crypto, key, what)


def _describe_key(crypto: types.SimpleNamespace, key: Any, what: str) -> PublicKey:
    der = key.public_bytes(crypto.serialization.Encoding.DER, crypto.serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key, crypto.ec.EllipticCurvePublicKey):
        curve = _ECDSA_CURVES.get(key.curve.name)
        if curve is None:
            raise InvalidInputError(
                "%s is an ECDSA key on curve %s: cosign keys use P-256 or P-384 (or P-521)." % (what, key.curve.name)
            )
        return PublicKey(key, "ecdsa-" + curve.lower().replace("-", ""), "ECDSA " + curve, der)
    if isinstance(key, crypto.rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise InvalidInputError(
                "%s is an RSA key of %d bits: too weak to trust, cosign and sigstore need %d bits or more."
                % (what, key.key_size, _MIN_RSA_BITS)
            )
        return PublicKey(key, "rsa-%d" % key.key_size, "RSA-%d" % key.key_size, der)
    if isinstance(key, crypto.ed25519.Ed25519PublicKey):
        return PublicKey(key, "ed25519", "Ed25519", der)
    kind = type(key).__name__.replace("PublicKey", "").lstrip("_") or "unknown"
    raise InvalidInputError(
        "%s is an unsupported %s key: use an ECDSA P-256 or P-384, RSA or Ed25519 public key." % (what, kind)
    )


def _as_key(key: KeyLike) -> PublicKey:
    if isinstance(key, PublicKey):
        return key
    return load_public_key(key)


# -- signatures over bytes ----------------------------------------------------------------------------------------


def _b64decode(text: object) -> bytes | None:
    """Standard or URL-safe base64, padded or not (DSSE: verifiers MUST accept either); None when it is not."""
    if not isinstance(text, str) or not _BASE64_TEXT.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1 or (len(unpadded) != len(text) and len(text) % 4):
        return None
    padded = unpadded.replace("-", "+").replace("_", "/") + "=" * (-len(unpadded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _verify_bytes(key: PublicKey, signature: bytes, message: bytes, prehash: str | None = None) -> tuple[str, str]:
    """``(scheme, "")`` when ``signature`` verifies over ``message`` with ``key``, else ``("", reason)``.

    With ``prehash`` (``sha256``...), ``message`` is already that digest of the signed bytes (a messageSignature).
    """
    crypto = _cryptography()
    if not signature:
        return "", "the signature is empty"
    if key.kind.startswith("ecdsa-"):
        return _verify_ecdsa(crypto, key, signature, message, prehash)
    if key.kind.startswith("rsa-"):
        return _verify_rsa(crypto, key, signature, message, prehash)
    return _verify_ed25519(crypto, key, signature, message, prehash)


def _hash(crypto: types.SimpleNamespace, name: str) -> Any:
    return getattr(crypto.hashes, name)()


def _verify_ecdsa(
    crypto: types.SimpleNamespace, key: PublicKey, signature: bytes, message: bytes, prehash: str | None
) -> tuple[str, str]:
    width = (key.key.curve.key_size + 7) // 8
    candidates = []
    try:
        candidates.append(crypto.utils.decode_dss_signature(signature))
    except ValueError:
        pass
    if len(signature) == 2 * width:
        candidates.append((int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")))
    if not candidates:
        return "", "the signature is truncated or malformed: %d bytes are neither DER nor the %d-byte r||s of %s" % (
            len(signature),
            2 * width,
            key.description,
        )
    hash_names = (_DIGEST_HASHES[prehash],) if prehash else _ECDSA_HASHES[key.key.curve.name]
    for r_value, s_value in candidates:
        encoded = crypto.utils.encode_dss_signature(r_value, s_value)
        for hash_name in hash_names:
            algorithm: Any = _hash(crypto, hash_name)
            if prehash:
                algorithm = crypto.utils.Prehashed(algorithm)
            try:
                key.key.verify(encoded, message, crypto.ec.ECDSA(algorithm))
            except (crypto.InvalidSignature, ValueError):
                continue
            return "%s, %s" % (key.description, _HASH_LABELS[hash_name]), ""
    return "", "the signature does not verify with the key"


def _verify_rsa(
    crypto: types.SimpleNamespace, key: PublicKey, signature: bytes, message: bytes, prehash: str | None
) -> tuple[str, str]:
    width = (key.key.key_size + 7) // 8
    if len(signature) != width:
        return "", "the signature is truncated or malformed: %d bytes, an %s signature has %d" % (
            len(signature),
            key.description,
            width,
        )
    hash_name = _DIGEST_HASHES[prehash] if prehash else "SHA256"
    pss_salts = [getattr(crypto.padding.PSS, "AUTO", None)]
    if pss_salts[0] is None:  # cryptography < 37: try the two salt lengths signers use
        pss_salts = [_hash(crypto, hash_name).digest_size, crypto.padding.PSS.MAX_LENGTH]
    paddings = [("PKCS#1 v1.5", crypto.padding.PKCS1v15())] + [
        ("PSS", crypto.padding.PSS(mgf=crypto.padding.MGF1(_hash(crypto, hash_name)), salt_length=salt))
        for salt in pss_salts
    ]
    for label, chosen in paddings:
        algorithm: Any = _hash(crypto, hash_name)
        if prehash:
            algorithm = crypto.utils.Prehashed(algorithm)
        try:
            key.key.verify(signature, message, chosen, algorithm)
        except (crypto.InvalidSignature, ValueError):
            continue
        return "%s %s, %s" % (key.description, label, _HASH_LABELS[hash_name]), ""
    return "", "the signature does not verify with the key"


def _verify_ed25519(
    crypto: types.SimpleNamespace, key: PublicKey, signature: bytes, message: bytes, prehash: str | None
) -> tuple[str, str]:
    if len(signature) != 64:
        return "", "the signature is truncated or malformed: %d bytes, an Ed25519 signature has 64" % len(signature)
    public = key.key.public_bytes(crypto.serialization.Encoding.Raw, crypto.serialization.PublicFormat.Raw)
    if prehash:
        # Ed25519ph signs SHA-512(message): from a digest alone only a sha512 one can be checked.
        if prehash != "sha512":
            return "", "an Ed25519 signature cannot be checked from a %s digest alone (Ed25519ph signs SHA-512)" % (
                prehash
            )
        if ed25519ph_verify(public, signature, message):
            return "Ed25519ph", ""
        return "", "the signature does not verify with the key"
    try:
        key.key.verify(signature, message)
        return "Ed25519", ""
    except crypto.InvalidSignature:
        pass
    if ed25519ph_verify(public, signature, hashlib.sha512(message).digest()):
        return "Ed25519ph", ""
    return "", "the signature does not verify with the key"


# -- Ed25519ph (RFC 8032, section 5.1), verification only ---------------------------------------------------------
# The point arithmetic is public so that the tests' signers (test code, never shipped) can build on it.

_ED_P = 2**255 - 19
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
_ED_D = -121665 * pow(121666, _ED_P - 2, _ED_P) % _ED_P
_ED_SQRT_M1 = pow(2, (_ED_P - 1) // 4, _ED_P)
_ED_BASE_Y = 4 * pow(5, _ED_P - 2, _ED_P) % _ED_P
# dom2(phflag=1, context=""), the prefix that makes an Ed25519ph signature differ from a pure Ed25519 one.
ED25519PH_DOM = b"SigEd25519 no Ed25519 collisions\x01\x00"

EdPoint = tuple  # extended coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z


def _ed_add(first: EdPoint, second: EdPoint) -> EdPoint:
    p = _ED_P
    a = (first[1] - first[0]) * (second[1] - second[0]) % p
    b = (first[1] + first[0]) * (second[1] + second[0]) % p
    c = 2 * first[3] * second[3] * _ED_D % p
    d = 2 * first[2] * second[2] % p
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def ed25519_multiply(scalar: int, point: EdPoint) -> EdPoint:
    """``[scalar]point`` (double and add: not constant-time, which only public values here need)."""
    result: EdPoint = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _ed_add(result, point)
        point = _ed_add(point, point)
        scalar >>= 1
    return result


def ed25519_encode(point: EdPoint) -> bytes:
    """The 32-byte encoding of a point: y, little-endian, with the low bit of x as its top bit."""
    z_inverse = pow(point[2], _ED_P - 2, _ED_P)
    x = point[0] * z_inverse % _ED_P
    y = point[1] * z_inverse % _ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed25519_decode(data: bytes) -> EdPoint | None:
    """The point a 32-byte encoding names, or None when it names none (RFC 8032, 5.1.3)."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _ED_P:
        return None
    x_squared = (y * y - 1) * pow(_ED_D * y * y + 1, _ED_P - 2, _ED_P) % _ED_P
    if x_squared == 0:
        if sign:
            return None
        return (0, y, 1, 0)
    x = pow(x_squared, (_ED_P + 3) // 8, _ED_P)
    if (x * x - x_squared) % _ED_P:
        x = x * _ED_SQRT_M1 % _ED_P
    if (x * x - x_squared) % _ED_P:
        return None
    if (x & 1) != sign:
        x = _ED_P - x
    return (x, y, 1, x * y % _ED_P)


def ed25519_base_point() -> EdPoint:
    """The base point B of edwards25519."""
    point = ed25519_decode(_ED_BASE_Y.to_bytes(32, "little"))
    if point is None:  # pragma: no cover - the constant is valid
        raise ValueError("edwards25519 base point does not decode")
    return point


def ed25519ph_verify(public: bytes, signature: bytes, prehash: bytes) -> bool:
    """True when ``signature`` is an Ed25519ph signature (empty context) by ``public`` of a message whose SHA-512 is
    ``prehash``. Cofactorless, as Go's crypto/ed25519: ``[S]B - [k]A`` must encode to exactly the signature's R."""
    if len(public) != 32 or len(signature) != 64 or len(prehash) != 64:
        return False
    point_a = ed25519_decode(public)
    if point_a is None:
        return False
    s_value = int.from_bytes(signature[32:], "little")
    if s_value >= ED25519_ORDER:
        return False
    k_value = int.from_bytes(hashlib.sha512(ED25519PH_DOM + signature[:32] + public + prehash).digest(), "little")
    negative_a = ((_ED_P - point_a[0]) % _ED_P, point_a[1], point_a[2], (_ED_P - point_a[3]) % _ED_P)
    check = _ed_add(
        ed25519_multiply(s_value, ed25519_base_point()), ed25519_multiply(k_value % ED25519_ORDER, negative_a)
    )
    return ed25519_encode(check) == signature[:32]


# -- JSON as signers wrote it -------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice reads differently in different parsers (the first or the last wins): refuse it.
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise DuplicateKeyError(name)
        seen[name] = value
    return seen


def _load_json(data: bytes | str, what: str) -> tuple[Any, str]:
    """``(document, "")``, or ``(None, reason)`` when ``data`` is not UTF-8 JSON or gives a key twice."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, object_pairs_hook=_no_duplicates), ""
    except DuplicateKeyError as duplicate:
        return None, "the %s is ambiguous: it gives the key %r twice" % (what, str(duplicate))
    except (UnicodeDecodeError, ValueError):
        return None, "the %s is not JSON" % what


def _json_object(value: bytes | str | Mapping[str, Any], what: str) -> tuple[Mapping[str, Any] | None, str]:
    """``(object, "")`` for a JSON object given as text or already parsed, or ``(None, reason)``."""
    if isinstance(value, (bytes, bytearray, str)):
        value, problem = _load_json(value, what)
        if problem:
            return None, problem
    if not isinstance(value, Mapping):
        return None, "the %s is not a JSON object" % what
    return value, ""


def _go_fold(name: str) -> str:
    # Go's encoding/json matches struct fields ignoring case; the only non-ASCII letters that fold to ASCII ones
    # are the long s and the Kelvin sign.
    return "".join(_GO_FOLDS.get(char, char.lower() if char.isascii() else char) for char in name)


def _field(document: Mapping[str, Any], name: str) -> tuple[Any, str]:
    """A field as Go's encoding/json (cosign) reads it: the one key equal to ``name`` ignoring case.

    Two such keys (``critical`` and ``Critical``) are refused: Go takes the last, other readers the first.
    """
    matches = [key for key in document if _go_fold(key) == name]
    if len(matches) > 1:
        return None, "ambiguous: %s" % " and ".join(repr(key) for key in matches)
    return (document[matches[0]], "") if matches else (None, "")


def _simple_signing_digest(payload: bytes) -> tuple[str, str]:
    """``(digest the payload names, "")`` or ``("", reason)``; the payload must be a cosign image signature."""
    document, problem = _load_json(payload, "payload")
    if problem:
        return "", problem
    if not isinstance(document, dict):
        return "", "the payload is not a JSON object"
    critical, problem = _field(document, "critical")
    if problem or not isinstance(critical, dict):
        return "", "the payload has no 'critical' section" + (" (%s)" % problem if problem else "")
    kind, problem = _field(critical, "type")
    if problem or kind != COSIGN_SIGNATURE_TYPE:
        return "", "the payload's critical.type is %s, not %r" % (
            problem or (repr(kind) if kind is not None else "missing"),
            COSIGN_SIGNATURE_TYPE,
        )
    image, problem = _field(critical, "image")
    named, inner_problem = _field(image, "docker-manifest-digest") if isinstance(image, dict) else (None, "")
    problem = problem or inner_problem
    if problem or not isinstance(named, str) or not named:
        return "", "the payload names no image digest (critical.image.docker-manifest-digest%s)" % (
            ": %s" % problem if problem else ""
        )
    return named, ""


def _statement_check(
    payload_type: object, body: bytes, digest: str, predicate_types: Iterable[str] | None
) -> tuple[str, str]:
    """``(what the payload is, "")`` when a verified DSSE payload names ``digest``; else ``("", reason)``."""
    if payload_type == SIMPLE_SIGNING_MEDIA_TYPE:
        # Not what cosign writes, but some signers wrap a simple-signing payload in DSSE: its digest is as binding.
        named, problem = _simple_signing_digest(body)
        if problem:
            return "", problem
        if named != digest:
            return "", "the payload names %s, not %s" % (named, digest)
        return "simple-signing payload", ""
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        return "", "the DSSE payloadType %r is not an in-toto statement (%s)" % (payload_type, IN_TOTO_PAYLOAD_TYPE)
    statement, problem = _load_json(body, "statement")
    if problem:
        return "", problem
    if not isinstance(statement, dict):
        return "", "the statement is not a JSON object"
    statement_type = statement.get("_type")
    if statement_type not in IN_TOTO_STATEMENT_TYPES:
        return "", "the statement's _type %r is not an in-toto statement" % (statement_type,)
    algorithm, _colon, encoded = digest.partition(":")
    subjects = statement.get("subject")
    named: list[str] = []
    for subject in subjects if isinstance(subjects, list) else []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        value = digests.get(algorithm) if isinstance(digests, dict) else None
        if isinstance(value, str):
            named.append("%s:%s" % (algorithm, value))
    if "%s:%s" % (algorithm, encoded) not in named:
        if not named:
            return "", "the statement has no subject with a %s digest" % algorithm
        shown = ", ".join(named[:_SHOWN_SUBJECTS]) + (", ..." if len(named) > _SHOWN_SUBJECTS else "")
        return "", "the statement names %s, not %s" % (shown, digest)
    predicate_type = statement.get("predicateType")
    if isinstance(predicate_types, str):
        predicate_types = (predicate_types,)
    accepted = None if predicate_types is None else frozenset(predicate_types)
    if accepted is not None and predicate_type not in accepted:
        return "", "the statement is a %r attestation, not %s" % (
            predicate_type,
            "a cosign signature" if accepted == {COSIGN_SIGN_PREDICATE_TYPE} else " or ".join(sorted(accepted)),
        )
    return "statement", ""


# -- the formats --------------------------------------------------------------------------------------------------


def verify_simple_signing(
    payload: bytes, annotations: Mapping[str, Any] | None, digest: str, key: KeyLike
) -> Verification:
    """Check one layer of a cosign ``.sig`` image: ``payload`` is its blob, ``annotations`` its descriptor's.

    Verified when the signature annotation verifies over the exact payload bytes and the payload is a cosign image
    signature naming ``digest``.
    """
    key = _as_key(key)
    digest = validate_digest(digest)
    encoded = (annotations or {}).get(COSIGN_SIGNATURE_ANNOTATION)
    if encoded is None:
        return Verification(False, "the layer has no %s annotation" % COSIGN_SIGNATURE_ANNOTATION)
    signature = _b64decode(encoded)
    if signature is None:
        return Verification(False, "the signature is not base64")
    scheme, failure = _verify_bytes(key, signature, bytes(payload))
    if failure:
        return Verification(False, failure)
    named, problem = _simple_signing_digest(bytes(payload))
    if problem:
        return Verification(False, problem)
    if named != digest:
        return Verification(False, "the payload names %s, not %s" % (named, digest))
    return Verification(True, "verified with the key (%s)" % scheme)


def verify_dsse_envelope(
    envelope: bytes | Mapping[str, Any],
    digest: str,
    key: KeyLike,
    *,
    predicate_types: Iterable[str] | None = None,
) -> Verification:
    """Check a DSSE envelope (a cosign 2 ``.att`` layer, or a bundle's ``dsseEnvelope``) over an in-toto statement.

    Verified when one of its signatures verifies over the PAE of its payload, and the statement has ``digest`` as a
    subject (and, with ``predicate_types``, one of those predicate types).
    """
    key = _as_key(key)
    digest = validate_digest(digest)
    return _verify_envelope(envelope, digest, key, predicate_types)


def _verify_envelope(
    envelope: bytes | Mapping[str, Any], digest: str, key: PublicKey, predicate_types: Iterable[str] | None
) -> Verification:
    envelope, problem = _json_object(envelope, "DSSE envelope")
    if envelope is None:
        return Verification(False, problem)
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        return Verification(False, "the DSSE envelope has no payloadType")
    body = _b64decode(envelope.get("payload"))
    if body is None:
        return Verification(False, "the DSSE payload is missing or not base64")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return Verification(False, "the DSSE envelope has no signatures")
    signed = dsse_pae(payload_type, body)
    failures: list[str] = []
    scheme = ""
    for entry in signatures:
        signature = _b64decode(entry.get("sig")) if isinstance(entry, dict) else None
        if signature is None:
            failures.append("the signature is missing or not base64")
            continue
        scheme, failure = _verify_bytes(key, signature, signed)
        if not failure:
            break
        failures.append(failure)
    if not scheme:
        if len(failures) == 1:
            return Verification(False, failures[0])
        distinct = sorted(set(failures))
        return Verification(
            False,
            "none of the %d signatures verifies with the key (%s)" % (len(failures), "; ".join(distinct)),
        )
    what, problem = _statement_check(payload_type, body, digest, predicate_types)
    if problem:
        return Verification(False, problem)
    return Verification(True, "verified with the key (%s, DSSE %s)" % (scheme, what))


def verify_bundle(
    bundle: bytes | Mapping[str, Any],
    digest: str,
    key: KeyLike,
    *,
    predicate_types: Iterable[str] | None = (COSIGN_SIGN_PREDICATE_TYPE,),
) -> Verification:
    """Check a sigstore bundle (the layer of a cosign 3 referrer) as a signature of ``digest`` by ``key``.

    A ``dsseEnvelope`` must hold an in-toto statement with ``digest`` as a subject and, by default, cosign's
    signature predicate type (``predicate_types=None`` accepts any attestation); a ``messageSignature`` must be a
    signature of ``digest`` itself. The transparency log entries and timestamps the bundle carries are not checked.
    """
    key = _as_key(key)
    digest = validate_digest(digest)
    bundle, problem = _json_object(bundle, "bundle")
    if bundle is None:
        return Verification(False, problem)
    media_type = bundle.get("mediaType")
    if not is_sigstore_bundle_media_type(media_type):
        return Verification(False, "not a sigstore bundle: its mediaType is %r" % (media_type,))
    envelope = bundle.get("dsseEnvelope")
    message = bundle.get("messageSignature")
    if envelope is not None:
        result = _verify_envelope(envelope, digest, key, predicate_types)
    elif message is not None:
        result = _verify_message_signature(message, digest, key)
    else:
        return Verification(False, "the bundle holds neither a dsseEnvelope nor a messageSignature")
    if not result.verified and result.reason.endswith("does not verify with the key"):
        return Verification(False, result.reason + _signer_hint(bundle.get("verificationMaterial"), key))
    return result


def _verify_message_signature(message: object, digest: str, key: PublicKey) -> Verification:
    if not isinstance(message, Mapping):
        return Verification(False, "the messageSignature is not a JSON object")
    message_digest = message.get("messageDigest")
    if not isinstance(message_digest, Mapping):
        return Verification(False, "the messageSignature has no messageDigest")
    algorithm = _MESSAGE_DIGEST_ALGORITHMS.get(message_digest.get("algorithm"))  # type: ignore[arg-type]
    if algorithm is None:
        return Verification(
            False, "the messageSignature's digest algorithm %r is not supported" % (message_digest.get("algorithm"),)
        )
    signed_digest = _b64decode(message_digest.get("digest"))
    if signed_digest is None or len(signed_digest) != hashlib.new(algorithm).digest_size:
        return Verification(False, "the messageSignature's digest is missing, not base64 or of the wrong length")
    signature = _b64decode(message.get("signature"))
    if signature is None:
        return Verification(False, "the signature is missing or not base64")
    scheme, failure = _verify_bytes(key, signature, signed_digest, prehash=algorithm)
    if failure:
        return Verification(False, failure)
    named = "%s:%s" % (algorithm, signed_digest.hex())
    if named != digest:
        return Verification(False, "the message signature is of %s, not %s" % (named, digest))
    return Verification(True, "verified with the key (%s, message signature)" % scheme)


def _signer_hint(material: object, key: PublicKey) -> str:
    """Why a bundle's signature may not verify, from what its verificationMaterial names (a hint, never trusted)."""
    if not isinstance(material, Mapping):
        return ""
    if material.get("certificate") or material.get("x509CertificateChain"):
        return " (the bundle carries a certificate: a keyless signature, which a key does not verify)"
    public_key = material.get("publicKey")
    hint = public_key.get("hint") if isinstance(public_key, Mapping) else None
    if isinstance(hint, str) and hint and hint != key.hint:
        return " (the bundle names another key: hint %s, this key's is %s)" % (hint, key.hint)
    return ""

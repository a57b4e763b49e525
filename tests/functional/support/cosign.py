"""Make cosign signatures, attestations and SBOM attachments byte for byte as cosign does, with `cryptography`.

There is no cosign binary here and Debian's skopeo has sigstore signing disabled, so the tests make what cosign
would write themselves. Nothing is pushed by the builders: they return bytes and descriptors, and `push` (or the
caller, with skopeo) writes them.

    key = signing_key("ecdsa-p256")
    layer = simple_signature(image.digest, key, docker_reference=f"{server.host}/{repo}")
    sig = signature_image(image.digest, [layer])              # tag sha256-<hex>.sig
    push(client, repo, sig)
    referrer = sign_bundle(subject_of(image), key)           # cosign 3: a sigstore bundle referrer
    push(client, repo, referrer)
    push(client, repo, fallback_index([referrer]), tag=referrers_tag(image.digest))

What cosign writes (and where it was read):

- `.sig` (cosign 2 and older; cosign 3 with `--new-bundle-format=false`; cosign `specs/SIGNATURE_SPEC.md`,
  `pkg/oci/static`, `pkg/oci/mutate`): an OCI image manifest built by go-containerregistry's `mutate.Append` on
  `empty.Image` with OCI media types, so its config is a real image config
  (`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"",
  "rootfs":{"type":"layers","diff_ids":[<each payload digest>]},"config":{}}`), one history entry and one layer per
  signature. Each layer is the simple-signing payload (`sigstore/sigstore` `pkg/signature/payload`: Go's
  `json.Marshal` of `{"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},
  "type":"cosign container image signature"},"optional":ANNOTATIONS-or-null}`), media type
  `application/vnd.dev.cosign.simplesigning.v1+json`, with the base64 signature in the layer annotation
  `dev.cosignproject.cosign/signature` (plus `dev.sigstore.cosign/bundle`, the Rekor entry, when a transparency log
  was used: not made here). Every JSON document is Go's `json.Marshal`: compact, struct fields in declaration order,
  map keys sorted, `<`, `>` and `&` escaped.
- `.att` (cosign 2 `attest`): the same image shape; each layer is a DSSE envelope (`application/vnd.dsse.envelope.
  v1+json`, go-securesystemslib's `{"payloadType":...,"payload":...,"signatures":[{"keyid":"","sig":...}]}`) over an
  in-toto v0.1 statement, with the layer annotation `predicateType`.
- `.sbom` (cosign `attach sbom`, deprecated): the same image shape with the SBOM as its one layer.
- cosign 3 (`cosign sign`, new bundle format by default; `cmd/cosign/cli/sign/sign.go` `signDigestBundle`,
  `pkg/oci/remote/write.go` `WriteReferrer`/`WriteAttestationNewBundleFormat`, `specs/BUNDLE_SPEC.md`): an in-toto v1
  statement `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":HEX},"annotations":{}}],
  "predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`, DSSE-signed with payloadType
  `application/vnd.in-toto+json`, in a sigstore bundle v0.3 (protobuf JSON: `mediaType`, `verificationMaterial`
  `{"publicKey":{"hint":base64(sha256(DER key))}}` for a key, `dsseEnvelope`), pushed as the one layer of an OCI 1.1
  referrer: config the empty descriptor (`{}`, with cosign's own `artifactType` on it), `artifactType` and layer
  media type `application/vnd.dev.sigstore.bundle.v0.3+json`, manifest annotations `dev.sigstore.bundle.content`
  (`dsse-envelope`), `dev.sigstore.bundle.predicateType` and `org.opencontainers.image.created`, `subject` the signed
  manifest's descriptor. Go marshals that manifest with `artifactType` last (an embedded struct, then the field).
- Signing (sigstore's `LoadDefaultSignerVerifier`, cosign's `GetDefaultLoadOptions`): ECDSA P-256 with SHA-256, P-384
  with SHA-384, P-521 with SHA-512, DER-encoded; RSA PKCS#1 v1.5 with SHA-256; Ed25519 as Ed25519ph (current cosign;
  older cosign signed pure Ed25519 and hashed every curve with SHA-256: `legacy=True`).
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from ansible_collections.ocireg.registry.plugins.module_utils._errors import NotFoundError
from ansible_collections.ocireg.registry.plugins.module_utils._ops import signatures as ours
from ansible_collections.ocireg.registry.plugins.module_utils._registry.api import RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
# Spelled out here rather than taken from the plugin, so that a wrong constant there cannot hide in both.
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SPDX_JSON = "text/spdx+json"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, which cosign's signature images carry
KINDS = ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")
_CURVES = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1, "ecdsa-p521": ec.SECP521R1}
_CURVE_HASHES = {"ecdsa-p256": "sha256", "ecdsa-p384": "sha384", "ecdsa-p521": "sha512"}
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_ED25519PH_DOM = b"SigEd25519 no Ed25519 collisions\x01\x00"  # RFC 8032 dom2(phflag=1, context="")


def go_json(value: Any) -> bytes:
    """Go's ``json.Marshal``: compact, insertion order kept (build dicts in struct order; sort maps with
    ``_sorted``), non-ASCII as UTF-8, and ``<``, ``>``, ``&``, U+2028, U+2029 escaped as Go escapes them."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029").encode("utf-8")


def proto_json(value: Any) -> bytes:
    """protobuf's JSON as protojson writes it (fields in field-number order; build dicts that way), compact."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in sorted(mapping)}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algorithm, _colon, encoded = digest.partition(":")
    if algorithm != "sha256" or len(encoded) != 64:
        raise ValueError("expected a sha256 digest, got %r" % digest)
    return encoded


def cosign_tag(digest: str, suffix: str = ".sig") -> str:
    """``sha256-<hex>.sig`` (``.att``, ``.sbom``): where cosign puts an attachment of DIGEST."""
    return "sha256-%s%s" % (_hex(digest), suffix)


def referrers_tag(digest: str) -> str:
    """``sha256-<hex>``: the distribution-spec's referrers fallback tag of DIGEST."""
    return "sha256-" + _hex(digest)


# -- keys ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key of one KIND and the signatures cosign makes with it."""

    kind: str
    private: Any

    @property
    def public(self) -> Any:
        return self.private.public_key()

    @property
    def public_der(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_pem(self) -> str:
        """What ``cosign public-key`` prints (``cosign.pub``)."""
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    @property
    def hint(self) -> str:
        """The key's hint in a sigstore bundle: base64 of the SHA-256 of its DER public key."""
        return b64(hashlib.sha256(self.public_der).digest())

    def sign(
        self,
        message: bytes,
        *,
        legacy: bool = False,
        hash_name: str | None = None,
        raw_ecdsa: bool = False,
        rsa_pss: bool = False,
        ed25519_pure: bool | None = None,
    ) -> bytes:
        """A signature of MESSAGE as current cosign makes it; ``legacy=True`` as older cosign did (SHA-256 for every
        curve, pure Ed25519). ``raw_ecdsa`` gives ``r||s`` instead of DER, ``rsa_pss`` RSA-PSS (salt as long as the
        hash), ``hash_name`` overrides the hash of ECDSA and RSA."""
        if self.kind.startswith("ecdsa-"):
            chosen = hash_name or ("sha256" if legacy else _CURVE_HASHES[self.kind])
            der = self.private.sign(message, ec.ECDSA(_HASHES[chosen]()))
            return _raw_ecdsa(der, self.private.curve.key_size) if raw_ecdsa else der
        if self.kind.startswith("rsa-"):
            algorithm = _HASHES[hash_name or "sha256"]()
            if rsa_pss:
                chosen_padding: Any = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            else:
                chosen_padding = padding.PKCS1v15()
            return self.private.sign(message, chosen_padding, algorithm)
        pure = legacy if ed25519_pure is None else ed25519_pure
        return self.private.sign(message) if pure else ed25519ph_sign(self.private, hashlib.sha512(message).digest())

    def sign_digest(self, digest: bytes, hash_name: str = "sha256") -> bytes:
        """A signature of the message whose HASH_NAME digest is DIGEST (a bundle's messageSignature)."""
        if self.kind.startswith("ecdsa-"):
            return self.private.sign(digest, ec.ECDSA(utils.Prehashed(_HASHES[hash_name]())))
        if self.kind.startswith("rsa-"):
            return self.private.sign(digest, padding.PKCS1v15(), utils.Prehashed(_HASHES[hash_name]()))
        if hash_name != "sha512":
            raise ValueError("Ed25519ph signs a SHA-512 digest")
        return ed25519ph_sign(self.private, digest)


def _raw_ecdsa(der: bytes, key_size: int) -> bytes:
    width = (key_size + 7) // 8
    r_value, s_value = utils.decode_dss_signature(der)
    return r_value.to_bytes(width, "big") + s_value.to_bytes(width, "big")


def ed25519ph_sign(private: ed25519.Ed25519PrivateKey, prehash: bytes) -> bytes:
    """RFC 8032 Ed25519ph (empty context) of the message whose SHA-512 is PREHASH; ``cryptography`` has none."""
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expanded = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(expanded[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    base = ours.ed25519_base_point()
    public = ours.ed25519_encode(ours.ed25519_multiply(scalar, base))
    nonce = int.from_bytes(hashlib.sha512(_ED25519PH_DOM + expanded[32:] + prehash).digest(), "little")
    nonce %= ours.ED25519_ORDER
    commitment = ours.ed25519_encode(ours.ed25519_multiply(nonce, base))
    challenge = int.from_bytes(hashlib.sha512(_ED25519PH_DOM + commitment + public + prehash).digest(), "little")
    return commitment + ((nonce + challenge * scalar) % ours.ED25519_ORDER).to_bytes(32, "little")


def generate_key(kind: str) -> SigningKey:
    """A new key: ``ecdsa-p256`` (what ``cosign generate-key-pair`` makes), ``ecdsa-p384``, ``ecdsa-p521``,
    ``rsa-2048``, ``rsa-3072``, ``rsa-4096`` or ``ed25519``."""
    if kind in _CURVES:
        return SigningKey(kind, ec.generate_private_key(_CURVES[kind]()))
    if kind.startswith("rsa-"):
        return SigningKey(kind, rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:])))
    if kind == "ed25519":
        return SigningKey(kind, ed25519.Ed25519PrivateKey.generate())
    raise ValueError("unknown key kind %r: one of %s" % (kind, ", ".join(KINDS)))


@functools.cache
def signing_key(kind: str = "ecdsa-p256", name: str = "signer") -> SigningKey:
    """The same key for the same (KIND, NAME) for the whole run: RSA keys take a while to make."""
    return generate_key(kind)


# -- blobs and manifests ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """Bytes to push, with the media type and annotations of their descriptor."""

    data: bytes
    media_type: str
    annotations: Mapping[str, str] | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        """As go-containerregistry writes a v1.Descriptor: mediaType, size, digest, annotations (sorted)."""
        described: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if self.annotations:
            described["annotations"] = _sorted(self.annotations)
        return described

    @property
    def signature(self) -> bytes:
        """The signature of a simple-signing layer, decoded."""
        return base64.b64decode((self.annotations or {})[SIGNATURE_ANNOTATION])


@dataclass(frozen=True)
class Artifact:
    """A manifest and the blobs it names (config first), ready to push; ``tag`` is where cosign puts it (None for a
    referrer, which is pushed by digest)."""

    manifest: bytes
    media_type: str
    blobs: tuple[Blob, ...]
    tag: str | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def layers(self) -> tuple[Blob, ...]:
        return self.blobs[1:]

    def descriptor(self) -> dict[str, Any]:
        """Its descriptor in a referrers index: mediaType, size, digest, annotations and artifactType (the
        manifest's ``artifactType``, else its config's media type, as the distribution-spec says)."""
        document = self.document
        described: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if document.get("annotations"):
            described["annotations"] = _sorted(document["annotations"])
        described["artifactType"] = document.get("artifactType") or document["config"]["mediaType"]
        return described


def subject_of(image: Any) -> dict[str, Any]:
    """The subject descriptor of an image (anything with media_type, digest and size, such as support.images.Image)."""
    return {"mediaType": image.media_type, "size": image.size, "digest": image.digest}


def _cosign_image(layers: Sequence[Blob], tag: str) -> Artifact:
    """The image cosign writes for attachments: mutate.Append on an OCI empty.Image, one layer per entry."""
    if not layers:
        raise ValueError("a cosign attachment image has at least one layer")
    config = go_json(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME} for _layer in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
            "config": {},
        }
    )
    config_blob = Blob(config, OCI_CONFIG)
    manifest = go_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    )
    return Artifact(manifest, OCI_MANIFEST, (config_blob, *layers), tag=tag)


# -- simple signing (.sig) ------------------------------------------------------------------------------------------


def simple_signing_payload(digest: str, docker_reference: str, optional: Mapping[str, Any] | None = None) -> bytes:
    """The payload cosign signs for DIGEST; DOCKER_REFERENCE is the repository (``host:port/t/app``), OPTIONAL the
    ``-a key=value`` annotations (null without)."""
    return go_json(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None if optional is None else _sorted(optional),
        }
    )


def simple_signature(
    digest: str,
    key: SigningKey,
    *,
    docker_reference: str,
    optional: Mapping[str, Any] | None = None,
    payload: bytes | None = None,
    **sign_options: Any,
) -> Blob:
    """One signature layer: the payload naming DIGEST (or PAYLOAD as given) and its signature annotation."""
    payload = simple_signing_payload(digest, docker_reference, optional) if payload is None else payload
    return Blob(payload, SIMPLE_SIGNING, {SIGNATURE_ANNOTATION: b64(key.sign(payload, **sign_options))})


def signature_image(digest: str, layers: Sequence[Blob]) -> Artifact:
    """The ``sha256-<hex>.sig`` image of DIGEST holding LAYERS (from :func:`simple_signature`)."""
    return _cosign_image(layers, cosign_tag(digest, ".sig"))


# -- DSSE attestations (.att) -------------------------------------------------------------------------------------


def dsse_pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding, written out here independently of the plugin's."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(body)).encode() + b" " + body


def in_toto_statement_v01(digest: str, name: str, predicate_type: str, predicate: Any) -> bytes:
    """cosign 2 ``attest``'s statement (in-toto-golang v0.1 structs)."""
    return go_json(
        {
            "_type": STATEMENT_V01,
            "predicateType": predicate_type,
            "subject": [{"name": name, "digest": {"sha256": _hex(digest)}}],
            "predicate": predicate,
        }
    )


def dsse_envelope(payload: bytes, key: SigningKey, payload_type: str = IN_TOTO, **sign_options: Any) -> bytes:
    """A DSSE envelope as go-securesystemslib writes it (cosign 2 ``.att`` layers)."""
    signature = key.sign(dsse_pae(payload_type, payload), **sign_options)
    return go_json(
        {"payloadType": payload_type, "payload": b64(payload), "signatures": [{"keyid": "", "sig": b64(signature)}]}
    )


def attestation_layer(
    digest: str,
    key: SigningKey,
    *,
    docker_reference: str,
    predicate_type: str = SLSA_PROVENANCE_V02,
    predicate: Any = None,
    statement: bytes | None = None,
    **sign_options: Any,
) -> Blob:
    """One ``.att`` layer: a DSSE envelope over the statement about DIGEST, annotated with its predicate type."""
    if statement is None:
        predicate = {"builder": {"id": "https://example.com/ci"}} if predicate is None else predicate
        statement = in_toto_statement_v01(digest, docker_reference, predicate_type, predicate)
    return Blob(dsse_envelope(statement, key, **sign_options), DSSE_ENVELOPE, {"predicateType": predicate_type})


def attestation_image(digest: str, layers: Sequence[Blob]) -> Artifact:
    """The ``sha256-<hex>.att`` image of DIGEST holding LAYERS (from :func:`attestation_layer`)."""
    return _cosign_image(layers, cosign_tag(digest, ".att"))


def sbom_image(digest: str, sbom: bytes, media_type: str = SPDX_JSON) -> Artifact:
    """The ``sha256-<hex>.sbom`` image ``cosign attach sbom`` writes: the SBOM as its one layer."""
    return _cosign_image([Blob(sbom, media_type)], cosign_tag(digest, ".sbom"))


# -- cosign 3: sigstore bundles as OCI 1.1 referrers --------------------------------------------------------------


def cosign_sign_statement(digest: str, annotations: Mapping[str, Any] | None = None) -> bytes:
    """The in-toto v1 statement cosign 3's ``sign`` signs (protojson of intotov1.Statement, compact)."""
    subject = {"digest": {"sha256": _hex(digest)}, "annotations": _sorted(annotations or {})}
    return proto_json(
        {"_type": STATEMENT_V1, "subject": [subject], "predicateType": COSIGN_SIGN_PREDICATE, "predicate": {}}
    )


def in_toto_statement_v1(digest: str, name: str, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto v1 statement about DIGEST (an attestation: SLSA provenance, an SBOM...)."""
    subject = {"name": name, "digest": {"sha256": _hex(digest)}}
    return proto_json(
        {"_type": STATEMENT_V1, "subject": [subject], "predicateType": predicate_type, "predicate": predicate}
    )


def _verification_material(key: SigningKey) -> dict[str, Any]:
    return {"publicKey": {"hint": key.hint}}


def dsse_bundle(
    statement: bytes,
    key: SigningKey,
    *,
    payload_type: str = IN_TOTO,
    media_type: str = BUNDLE_V03,
    **sign_options: Any,
) -> bytes:
    """A sigstore bundle holding a DSSE envelope over STATEMENT, signed by KEY, no transparency log entry."""
    signature = key.sign(dsse_pae(payload_type, statement), **sign_options)
    return proto_json(
        {
            "mediaType": media_type,
            "verificationMaterial": _verification_material(key),
            "dsseEnvelope": {
                "payload": b64(statement),
                "payloadType": payload_type,
                "signatures": [{"sig": b64(signature)}],
            },
        }
    )


def message_signature_bundle(digest: str, key: SigningKey, *, media_type: str = BUNDLE_V03) -> bytes:
    """A sigstore bundle whose messageSignature signs DIGEST itself (BUNDLE_SPEC's ``message-signature`` content)."""
    signed = bytes.fromhex(_hex(digest))
    return proto_json(
        {
            "mediaType": media_type,
            "verificationMaterial": _verification_material(key),
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(signed)},
                "signature": b64(key.sign_digest(signed, "sha256")),
            },
        }
    )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bundle_referrer(
    subject: Mapping[str, Any],
    bundle: bytes,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE,
    content: str = "dsse-envelope",
    created: str | None = None,
) -> Artifact:
    """The referrer manifest cosign 3 pushes for BUNDLE: ``WriteReferrer``'s bytes exactly (``created`` is its
    ``time.Now()`` in RFC 3339; give one for reproducible digests)."""
    config = Blob(b"{}", OCI_EMPTY)
    layer = Blob(bundle, BUNDLE_V03)
    annotations = {
        "org.opencontainers.image.created": created or _now(),
        "dev.sigstore.bundle.content": content,
        "dev.sigstore.bundle.predicateType": predicate_type,
    }
    manifest = go_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**config.descriptor(), "artifactType": BUNDLE_V03},
            "layers": [layer.descriptor()],
            "annotations": _sorted(annotations),
            "subject": {"mediaType": subject["mediaType"], "size": subject["size"], "digest": subject["digest"]},
            "artifactType": BUNDLE_V03,
        }
    )
    return Artifact(manifest, OCI_MANIFEST, (config, layer))


def sign_bundle(
    subject: Mapping[str, Any], key: SigningKey, *, created: str | None = None, **sign_options: Any
) -> Artifact:
    """What ``cosign sign --key`` (cosign 3) pushes for SUBJECT: the signature bundle referrer."""
    bundle = dsse_bundle(cosign_sign_statement(subject["digest"]), key, **sign_options)
    return bundle_referrer(subject, bundle, created=created)


def attest_bundle(
    subject: Mapping[str, Any],
    key: SigningKey,
    *,
    name: str,
    predicate_type: str = "https://slsa.dev/provenance/v1",
    predicate: Any = None,
    created: str | None = None,
) -> Artifact:
    """A cosign 3 ``attest`` referrer: a bundle over an in-toto v1 statement of PREDICATE_TYPE about SUBJECT."""
    predicate = {"buildDefinition": {"buildType": "https://example.com/ci"}} if predicate is None else predicate
    statement = in_toto_statement_v1(subject["digest"], name, predicate_type, predicate)
    return bundle_referrer(subject, dsse_bundle(statement, key), predicate_type=predicate_type, created=created)


def fallback_index(referrers: Sequence[Artifact], existing: bytes | None = None) -> Artifact:
    """The referrers fallback index (tag ``sha256-<hex>`` of the subject) listing REFERRERS after what EXISTING
    lists, each once, as the distribution-spec says a client maintains it."""
    manifests = list(json.loads(existing)["manifests"]) if existing else []
    known = {entry["digest"] for entry in manifests}
    manifests += [r.descriptor() for r in referrers if r.digest not in known]
    index = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return Artifact(index, OCI_INDEX, ())


# -- tampering ----------------------------------------------------------------------------------------------------


def flip_byte(data: bytes, index: int | None = None) -> bytes:
    """DATA with one bit of one byte flipped (the middle byte unless INDEX)."""
    index = len(data) // 2 if index is None else index
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def tampered_payload(layer: Blob) -> Blob:
    """The layer with one hex digit of the digest in its payload changed: still JSON, no longer what was signed."""
    at = layer.data.index(b"sha256:") + len(b"sha256:")
    changed = b"0" if layer.data[at : at + 1] != b"0" else b"1"
    return replace(layer, data=layer.data[:at] + changed + layer.data[at + 1 :])


def truncated_signature(layer: Blob, drop: int = 10) -> Blob:
    """The layer with its signature cut short by DROP bytes (then base64 again, so only the length is wrong).

    10 by default: a DER ECDSA signature so cut is never exactly the raw r||s length (P-256 DER is 70 to 72 bytes),
    so the verifier sees a truncated signature, not another encoding."""
    annotations = dict(layer.annotations or {})
    annotations[SIGNATURE_ANNOTATION] = b64(layer.signature[:-drop])
    return replace(layer, annotations=annotations)


def with_signature_text(layer: Blob, text: str) -> Blob:
    """The layer with its signature annotation replaced by TEXT (not base64, empty...)."""
    return replace(layer, annotations={**(layer.annotations or {}), SIGNATURE_ANNOTATION: text})


def tampered_bundle(bundle: bytes, *, flip_payload: bool = False, truncate_signature: int = 0) -> bytes:
    """BUNDLE with one bit of its DSSE payload flipped, or its first signature cut short by TRUNCATE_SIGNATURE bytes."""
    document = json.loads(bundle)
    envelope = document["dsseEnvelope"]
    if flip_payload:
        envelope["payload"] = b64(flip_byte(base64.b64decode(envelope["payload"])))
    if truncate_signature:
        signature = base64.b64decode(envelope["signatures"][0]["sig"])
        envelope["signatures"][0]["sig"] = b64(signature[:-truncate_signature])
    return proto_json(document)


def replace_layer(artifact: Artifact, bundle: bytes) -> Artifact:
    """A bundle referrer like ARTIFACT but holding BUNDLE (same subject, annotations and artifact type)."""
    document = artifact.document
    return bundle_referrer(
        document["subject"],
        bundle,
        predicate_type=document["annotations"]["dev.sigstore.bundle.predicateType"],
        content=document["annotations"]["dev.sigstore.bundle.content"],
        created=document["annotations"]["org.opencontainers.image.created"],
    )


# -- writing ------------------------------------------------------------------------------------------------------


def push(client: RegistryClient, repository: str, artifact: Artifact, *, tag: str | None = None) -> str:
    """Write ARTIFACT to REPOSITORY: missing blobs, then the manifest under TAG (default its own tag; by digest when
    it has none). Returns the manifest digest."""
    for blob in {blob.digest: blob for blob in artifact.blobs}.values():
        if client.head_blob(repository, blob.digest) is None:
            client.upload_blob(repository, blob.digest, blob.data)
    return client.put_manifest(
        repository, tag or artifact.tag or artifact.digest, artifact.manifest, artifact.media_type
    )


def push_referrers(
    client: RegistryClient, repository: str, subject_digest: str, referrers: Sequence[Artifact]
) -> Artifact:
    """Push REFERRERS by digest, then add them to SUBJECT_DIGEST's fallback index (read first: 404 means none), as a
    client must on a registry without the referrers API (distribution 2.8). Returns the index written."""
    for referrer in referrers:
        push(client, repository, referrer)
    tag = referrers_tag(subject_digest)
    try:
        existing: bytes | None = client.get_manifest(repository, tag).raw
    except NotFoundError:
        existing = None
    index = fallback_index(referrers, existing)
    push(client, repository, index, tag=tag)
    return index

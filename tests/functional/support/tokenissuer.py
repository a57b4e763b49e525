"""A small Docker registry token issuer (https://distribution.github.io/distribution/spec/auth/token/).

GET /token?service=&scope=...&account=[&offline_token=true] with optional Basic auth, and the OAuth2 form
POST /token (grant_type=password | refresh_token). Tokens are RS256 JWTs whose signing certificate chains to
the registry's `auth.token.rootcertbundle`; the header carries the chain in `x5c` (or a libtrust `kid`).
Every request is recorded in `requests` so tests can count token round trips and check scopes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .pki import CertificateAuthority

CATALOG_SCOPE = "registry:catalog:*"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key fingerprint distribution matches a JWT `kid` against (libtrust's keyIDFromCryptoKey)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """`repository:a/b:pull,push` -> ("repository", "a/b", ["pull", "push"])."""
    resource_type, _sep, rest = scope.partition(":")
    name, _sep, actions = rest.rpartition(":")
    return resource_type, name, [action for action in actions.split(",") if action]


@dataclass
class TokenRequest:
    """One request the issuer answered."""

    method: str
    path: str
    params: dict[str, list[str]]
    scopes: list[str]
    grant_type: str | None
    auth_sent: bool
    user: str | None
    status: int = 0
    granted: list[dict[str, Any]] = field(default_factory=list)
    refresh_token_issued: bool = False


class TokenIssuer:
    """Threaded HTTP token issuer on 127.0.0.1:<free port>. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        ca: CertificateAuthority,
        users: Mapping[str, str],
        *,
        service: str = "ocireg-test-registry",
        issuer: str = "ocireg-test-issuer",
        user_actions: Mapping[str, Collection[str]] | None = None,
        anonymous_actions: Collection[str] = ("pull",),
        expires_in: int = 300,
        key_id_mode: str = "x5c",
    ) -> None:
        self.users = dict(users)
        self.service = service
        self.issuer = issuer
        # user -> actions they may get; users not listed get whatever they ask for.
        self.user_actions = {user: set(actions) for user, actions in (user_actions or {}).items()}
        self.anonymous_actions = set(anonymous_actions)
        self.expires_in = expires_in
        self.key_id_mode = key_id_mode  # "x5c" (certificate chain) or "kid" (libtrust fingerprint)
        self.signer = ca.issue_signing()
        # The bundle holds the CA (x5c chains verify up to it) and the signer itself (kid lookups use its key).
        self.rootcertbundle = ca.directory / "token-rootcertbundle.pem"
        self.rootcertbundle.write_bytes(ca.cert_path.read_bytes() + self.signer.cert_path.read_bytes())
        self.requests: list[TokenRequest] = []
        self.refresh_tokens: dict[str, str] = {}
        self.handed_out: list[str] = []  # every access token sent to a client over HTTP (for leak checks)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> TokenIssuer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="token-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("token issuer is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # -- request bookkeeping ---------------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.requests)

    def requests_since(self, mark: int) -> list[TokenRequest]:
        return self.requests[mark:]

    def scopes_since(self, mark: int) -> list[str]:
        return [scope for request in self.requests_since(mark) for scope in request.scopes]

    # -- token minting ---------------------------------------------------------------------------------------

    def authorize(self, user: str | None, scope: str) -> dict[str, Any] | None:
        """The access entry granted for one requested scope (None for malformed scopes)."""
        resource_type, name, actions = parse_scope(scope)
        if not resource_type or not name:
            return None
        if resource_type == "registry" and name == "catalog":
            granted = ["*"] if user is not None and "*" in actions else []
        else:
            allowed = self.anonymous_actions if user is None else self.user_actions.get(user)
            granted = list(actions) if allowed is None else [a for a in actions if a in allowed or "*" in allowed]
        return {"type": resource_type, "name": name, "actions": granted}

    def issue_token(self, user: str | None, scopes: Collection[str]) -> tuple[str, list[dict[str, Any]]]:
        """Mint a signed token for USER (None: anonymous) covering SCOPES, as the registry will verify it."""
        access = [entry for entry in (self.authorize(user, scope) for scope in scopes) if entry is not None]
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
        if self.key_id_mode == "kid":
            header["kid"] = libtrust_key_id(self.signer.key.public_key())
        else:
            header["x5c"] = [base64.b64encode(self.signer.der).decode("ascii")]
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.signer.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}", access

    def check_password(self, username: str, password: str) -> bool:
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    def new_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        username, _sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def _handler_for(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class TokenHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, record: TokenRequest, status: int, body: Mapping[str, Any]) -> None:
            record.status = status
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _grant(self, record: TokenRequest, user: str | None, offline: bool) -> None:
            service = (record.params.get("service") or [None])[0]
            if service != issuer.service:
                self._reply(record, 400, {"error": "invalid_request", "details": f"unknown service {service!r}"})
                return
            token, access = issuer.issue_token(user, record.scopes)
            issuer.handed_out.append(token)
            record.granted = access
            body: dict[str, Any] = {
                "token": token,
                "access_token": token,
                "expires_in": issuer.expires_in,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if record.method == "POST":
                body["scope"] = " ".join(record.scopes)
            if offline and user is not None:
                body["refresh_token"] = issuer.new_refresh_token(user)
                record.refresh_token_issued = True
            self._reply(record, 200, body)

        def _record(self, params: dict[str, list[str]], scopes: list[str], grant_type: str | None) -> TokenRequest:
            record = TokenRequest(
                method=self.command,
                path=urlsplit(self.path).path,
                params=params,
                scopes=scopes,
                grant_type=grant_type,
                auth_sent=False,
                user=None,
            )
            issuer.requests.append(record)
            return record

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = parse_qs(url.query, keep_blank_values=True)
            record = self._record(params, [s for value in params.get("scope", []) for s in value.split()], None)
            if url.path != "/token":
                self._reply(record, 404, {"error": "not_found"})
                return
            credentials = _basic_credentials(self.headers.get("Authorization"))
            record.auth_sent = "Authorization" in self.headers
            if record.auth_sent:
                if credentials is None or not issuer.check_password(*credentials):
                    self._reply(record, 401, {"details": "incorrect username or password"})
                    return
                record.user = credentials[0]
            offline = (params.get("offline_token") or ["false"])[0].lower() == "true"
            self._grant(record, record.user, offline)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
            grant_type = (params.get("grant_type") or [None])[0]
            record = self._record(params, [s for value in params.get("scope", []) for s in value.split()], grant_type)
            if urlsplit(self.path).path != "/token":
                self._reply(record, 404, {"error": "not_found"})
                return
            offline = (params.get("access_type") or [""])[0] == "offline"
            if grant_type == "password":
                record.auth_sent = True
                username = (params.get("username") or [""])[0]
                if not issuer.check_password(username, (params.get("password") or [""])[0]):
                    self._reply(record, 401, {"error": "invalid_grant", "details": "incorrect username or password"})
                    return
                record.user = username
            elif grant_type == "refresh_token":
                record.auth_sent = True
                user = issuer.refresh_tokens.get((params.get("refresh_token") or [""])[0])
                if user is None:
                    self._reply(record, 401, {"error": "invalid_grant", "details": "unknown refresh token"})
                    return
                record.user = user
            else:
                self._reply(record, 400, {"error": "unsupported_grant_type"})
                return
            self._grant(record, record.user, offline)

    return TokenHandler

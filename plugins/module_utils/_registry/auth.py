# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Challenge-driven registry authentication: Basic, and Bearer tokens from the registry's realm.

The first request goes out anonymously (or with a registry token given as is). A ``401`` teaches
us the registry's challenge; from then on every request carries the right ``Authorization``
header up front, so a run pays for exactly one handshake ``401``. Bearer tokens are cached per
scope set for the life of the client. Nothing here logs or returns a secret.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any, Callable

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    AuthenticationError,
    PermissionDeniedError,
    RegistryResponseError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.challenge import (
    Challenge,
    merge_scopes,
    parse_www_authenticate,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    NO_CREDENTIALS_ADVICE,
    Credentials,
)

# The token spec's default lifetime; refresh a little early so a token never expires in flight.
DEFAULT_TOKEN_SECONDS = 60
TOKEN_EXPIRY_MARGIN = 10
CLIENT_ID = "ocireg.registry"
TokenFetcher = Callable[..., Any]  # signature of requests.Session.request


class Authenticator:
    """Remembers one registry's challenge and hands out ``Authorization`` header values."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None,
        fetch: TokenFetcher,
        no_credentials_advice: str = NO_CREDENTIALS_ADVICE,
    ):
        self.registry = registry
        self.credentials = credentials if credentials is not None and not credentials.is_empty else None
        # What to do when the registry wants credentials and there are none (the resolver knows why there are none).
        self.no_credentials_advice = no_credentials_advice
        self._fetch = fetch
        self._challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.token_requests = 0

    @property
    def knows_challenge(self) -> bool:
        return self._challenge is not None or self._registry_token is not None

    @property
    def _registry_token(self) -> str | None:
        return self.credentials.registry_token if self.credentials else None

    def who(self) -> str:
        """Names the identity for messages: a user name, never a secret."""
        if self.credentials is None:
            return "anonymously (no credentials found for %s: %s)" % (self.registry, self.no_credentials_advice)
        if self.credentials.username:
            return "as user '%s' (credentials from %s)" % (self.credentials.username, self.credentials.source)
        return "with a token (from %s)" % self.credentials.source

    def known_tokens(self) -> list[str]:
        """Every secret token this authenticator holds (the registry token, cached bearer tokens), so that an
        error message can mask one a registry echoes. Never for anything but masking."""
        with self._lock:
            tokens = [token for token, _expiry in self._tokens.values()]
        if self._registry_token is not None:
            tokens.append(self._registry_token)
        return tokens

    def header_for(self, scopes: list[str]) -> str | None:
        """The ``Authorization`` value to send for a request needing ``scopes``, if known yet."""
        if self._registry_token is not None:
            return "Bearer " + self._registry_token
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self._basic_header()
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(challenge, scopes)
        return None

    def handle_unauthorized(self, response: Any, scopes: list[str], sent: str | None) -> bool:
        """Learn from a ``401``. True when resending the request may now succeed; otherwise raises."""
        challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            raise AuthenticationError(
                "Registry %s answered 401 without a Basic or Bearer challenge; cannot authenticate %s"
                % (self.registry, self.who()),
                registry=self.registry,
                status=401,
            )
        challenge = next((c for c in usable if c.scheme == "bearer"), usable[0])
        if sent is None:
            if challenge.scheme == "basic" and self.credentials is None:
                raise AuthenticationError(
                    "Registry %s requires authentication and no credentials were found for it: %s"
                    % (self.registry, self.no_credentials_advice),
                    registry=self.registry,
                    status=401,
                )
            with self._lock:
                self._challenge = challenge
            return True
        if challenge.scheme == "bearer" and challenge.params.get("error") == "insufficient_scope":
            raise PermissionDeniedError(
                "Registry %s denied access to %s %s: the token lacks the needed permission"
                % (self.registry, ", ".join(scopes) or "the registry", self.who()),
                registry=self.registry,
                status=401,
            )
        raise AuthenticationError(
            "Authentication failed for registry %s %s: the registry rejected the credentials"
            % (self.registry, self.who()),
            registry=self.registry,
            status=401,
        )

    def _basic_header(self) -> str:
        creds = self.credentials
        if creds is None or not creds.username or creds.password is None:
            raise AuthenticationError(
                "Registry %s requires a user name and password (Basic auth), and none were found for it"
                % self.registry,
                registry=self.registry,
            )
        raw = ("%s:%s" % (creds.username, creds.password)).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _token(self, challenge: Challenge, scopes: list[str]) -> str:
        wanted = merge_scopes(list(scopes))
        key = frozenset(wanted)
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(key)
        if cached and cached[1] > now:
            return cached[0]
        token, lifetime = self._request_token(challenge, wanted)
        with self._lock:
            self._tokens[key] = (token, now + max(1, lifetime - TOKEN_EXPIRY_MARGIN))
        return token

    def _request_token(self, challenge: Challenge, scopes: list[str]) -> tuple[str, int]:
        """A token and its lifetime from the challenge's realm (Docker's token spec, or OAuth2 with a refresh token)."""
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationError(
                "Registry %s sent a Bearer challenge without a realm; cannot get a token" % self.registry,
                registry=self.registry,
            )
        self.token_requests += 1
        try:
            response = self._ask_token_service(realm, challenge.params.get("service"), scopes)
        except TransportError as err:
            raise TransportError(
                "Cannot get a token for registry %s from %s: %s" % (self.registry, realm, err),
                registry=self.registry,
            ) from None
        with response:
            return self._read_token(response, realm)

    def _ask_token_service(self, realm: str, service: str | None, scopes: list[str]) -> Any:
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": CLIENT_ID}
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            return self._fetch("POST", realm, data=form)
        params: list[tuple[str, str]] = [("service", service)] if service else []
        params.extend(("scope", scope) for scope in scopes)
        headers = {}
        if creds is not None and creds.username:
            params.append(("account", creds.username))
            headers["Authorization"] = self._basic_header()
        return self._fetch("GET", realm, params=params, headers=headers)

    def _read_token(self, response: Any, realm: str) -> tuple[str, int]:
        if response.status_code in (401, 403):
            raise AuthenticationError(
                "Authentication failed for registry %s %s: the token service %s answered HTTP %d"
                % (self.registry, self.who(), realm, response.status_code),
                registry=self.registry,
                status=response.status_code,
            )
        if response.status_code != 200:
            raise RegistryResponseError(
                "The token service %s for registry %s answered HTTP %d" % (realm, self.registry, response.status_code),
                registry=self.registry,
                status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryResponseError(
                "The token service %s for registry %s answered without a token" % (realm, self.registry),
                registry=self.registry,
            )
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_SECONDS
        return token, lifetime

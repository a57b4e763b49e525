# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP transport to one registry: a pooled session, TLS, timeouts, retries, redirects and auth.

Every request to a registry goes through :meth:`Transport.request`. It is the one place that
knows about ``Authorization`` headers, and it never lets one follow a redirect to another origin.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    PermanentTransportError,
    RegistryError,
    TransportError,
    error_from_response,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.auth import Authenticator
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    NO_CREDENTIALS_ADVICE,
    Credentials,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import RetryPolicy, retry_transient

try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.utils import get_environ_proxies

    REQUESTS_IMPORT_ERROR: Exception | None = None
except ImportError as import_error:  # pragma: no cover - reported by the module with missing_required_lib
    requests = None  # type: ignore[assignment]
    HTTPAdapter = object  # type: ignore[assignment,misc]
    REQUESTS_IMPORT_ERROR = import_error


USER_AGENT = "ocireg.registry (Ansible collection)"
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# What OpenSSL says when the other end answered the handshake with something that is not TLS, such as a plain-HTTP
# "400 Bad Request" (OpenSSL 3.2 and later: record layer failure). Such a port may well serve plain HTTP.
NOT_A_TLS_ANSWER = re.compile(r"WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE", re.IGNORECASE)

# TLS failures that fail the same way every time (certificates, protocol mismatch): never retried.
# Others, such as an EOF in the handshake, can be a passing network problem.
PERMANENT_TLS_FAILURE = re.compile(
    r"CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE|" + NOT_A_TLS_ANSWER.pattern, re.IGNORECASE
)

# How long to wait for the plain-HTTP answer that tells a port serving plain HTTP from other TLS failures.
PLAIN_HTTP_PROBE_TIMEOUT = 5.0

# The server's alert when it wants a client certificate, or does not trust the one it got (mutual TLS).
CLIENT_CERTIFICATE_REFUSED = re.compile(
    r"ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|UNKNOWN_CA|ACCESS_DENIED)", re.IGNORECASE
)


@dataclasses.dataclass(frozen=True)
class ConnectionOptions:
    """The connection options every module shares (see the ``connection`` doc fragment)."""

    validate_certs: bool = True
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 60.0
    retries: int = 5
    pool_size: int = 16


# The CA bundle variables requests reads, honoured explicitly (in this order) without ca_path: see _new_session.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment_ca_bundle() -> tuple[str, str] | None:
    """``(variable, path)`` of the CA bundle the environment names, if any."""
    return next(((name, os.environ[name]) for name in CA_BUNDLE_VARIABLES if os.environ.get(name)), None)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def same_origin(first: str, second: str) -> bool:
    return _origin(first) == _origin(second)


class Transport:
    """Talks HTTP to one registry on behalf of one set of credentials."""

    def __init__(
        self,
        registry: str,
        base_url: str,
        credentials: Credentials | None,
        options: ConnectionOptions,
        no_credentials_advice: str = NO_CREDENTIALS_ADVICE,
    ):
        if requests is None:
            raise RegistryError("The Python library 'requests' is required: %s" % REQUESTS_IMPORT_ERROR)
        self.registry = registry
        self.base_url = base_url.rstrip("/")
        self.options = options
        self.retry = RetryPolicy(options.retries)
        self.session = self._new_session(options)
        self.auth = Authenticator(registry, credentials, self.send, no_credentials_advice)
        self.request_count = 0
        self._challenge_probed = False

    def _new_session(self, options: ConnectionOptions) -> Any:
        session = requests.Session()
        # trust_env would also read ~/.netrc and inject credentials we did not choose; the proxies and
        # CA bundle that the environment names are still honoured, explicitly.
        session.trust_env = False
        session.proxies.update(get_environ_proxies(self.base_url))
        session.headers["User-Agent"] = USER_AGENT
        bundle = environment_ca_bundle()
        if not options.validate_certs:
            session.verify = False
        elif options.ca_path:
            session.verify = options.ca_path
        elif bundle is not None:
            session.verify = bundle[1]
        if options.client_cert:
            session.cert = (options.client_cert, options.client_key) if options.client_key else options.client_cert
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=options.pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        """Resolve a path (``/v2/...``) or a ``Location`` header (relative or absolute)."""
        if path.startswith("/"):
            return self.base_url + path
        return urljoin(self.base_url + "/", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: list[str],
        action: str,
        repository: str | None = None,
        ok: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        stream: bool = False,
    ) -> Any:
        """Send an authenticated request; return the response when its status is in ``ok``.

        Any other status raises the typed error for it, with ``action`` in the message.
        """
        url = self.url(path)
        if data is not None and not isinstance(data, (bytes, str)) and not self._challenge_probed:
            # A streamed body cannot be sent twice, so learn the challenge before sending it.
            self.ping_challenge()
        sent = self.auth.header_for(scopes)
        response = self.send(method, url, headers=_with_auth(headers, sent), params=params, data=data, stream=stream)
        if response.status_code == 401:
            response.close()
            if self.auth.handle_unauthorized(response, scopes, sent):
                sent = self.auth.header_for(scopes)
                response = self.send(
                    method, url, headers=_with_auth(headers, sent), params=params, data=data, stream=stream
                )
                if response.status_code == 401:
                    response.close()
                    self.auth.handle_unauthorized(response, scopes, sent)
        if response.status_code in tuple(ok):
            return response
        body = b"" if method == "HEAD" else _read_error_body(response)
        response.close()
        content_type = response.headers.get("Content-Type")
        if method == "HEAD" and response.status_code == 400:
            # A HEAD answer has no body, and a 400 says nothing without one: read it from the same request as a GET.
            body, content_type = self._body_of_get(url, _with_auth(headers, sent), params, 400) or (body, content_type)
        raise error_from_response(
            response.status_code,
            body,
            action=action,
            registry=self.registry,
            repository=repository,
            content_type=content_type,
            secrets=_secrets_to_mask(self.auth, sent),
        )

    def _body_of_get(
        self, url: str, headers: dict[str, str], params: Any, status: int
    ) -> tuple[bytes, str | None] | None:
        """The error body and its content type of a GET of ``url``, when it answers ``status`` too."""
        try:
            response = self.send("GET", url, headers=headers, params=params, stream=True)
        except RegistryError:
            return None
        try:
            if response.status_code != status:
                return None
            return _read_error_body(response), response.headers.get("Content-Type")
        finally:
            response.close()

    def ping_challenge(self) -> None:
        """``GET /v2/`` to learn how the registry wants us to authenticate."""
        self._challenge_probed = True
        if self.auth.knows_challenge:
            return
        response = self.send("GET", self.url("/v2/"))
        response.close()
        if response.status_code == 401:
            self.auth.handle_unauthorized(response, [], None)

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        stream: bool = False,
    ) -> Any:
        """One logical request: retried on transient failures, redirects followed by hand.

        Redirects are followed here rather than by requests so that the rule is explicit and
        tested: an ``Authorization`` header is only ever sent to the origin it was meant for.
        """
        headers = dict(headers or {})
        original_url = url
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send_once(method, url, headers=headers, params=params, data=data, stream=stream)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            next_url = urljoin(url, location)
            if not same_origin(original_url, next_url):
                headers.pop("Authorization", None)
            if response.status_code == 303:
                method, data = "GET", None
            params = None  # the Location carries its own query
            url = next_url
        raise TransportError(
            "Registry %s redirected more than %d times for %s" % (self.registry, MAX_REDIRECTS, original_url),
            registry=self.registry,
        )

    @retry_transient
    def _send_once(self, method: str, url: str, **kwargs: Any) -> Any:
        self.request_count += 1
        try:
            return self.session.request(method, url, allow_redirects=False, timeout=self.options.timeout, **kwargs)
        except requests.exceptions.SSLError as err:
            reason = _reason(err)
            if NOT_A_TLS_ANSWER.search(reason):
                advice = self._not_a_tls_answer_advice(url)
            elif CLIENT_CERTIFICATE_REFUSED.search(reason):
                advice = "The registry wants a client certificate it trusts: give one with client_cert and client_key"
            else:
                advice = "Give the registry's CA with ca_path, or set validate_certs to false for a registry you trust"
            error_class = PermanentTransportError if PERMANENT_TLS_FAILURE.search(reason) else TransportError
            raise error_class(
                "TLS failure talking to registry %s (%s): %s. %s" % (self.registry, _host_of(url), reason, advice),
                registry=self.registry,
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError(
                "Timed out after %s seconds talking to registry %s (%s)"
                % (self.options.timeout, self.registry, _host_of(url)),
                registry=self.registry,
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            raise TransportError(
                "Cannot reach registry %s at %s: %s" % (self.registry, _host_of(url), _reason(err)),
                registry=self.registry,
            ) from None
        except requests.exceptions.RequestException as err:
            raise TransportError(
                "Request to registry %s failed: %s" % (self.registry, _reason(err)), registry=self.registry
            ) from None

    def _not_a_tls_answer_advice(self, url: str) -> str:
        """What to do when ``url`` answered the TLS handshake with something else: ask it over plain HTTP once.

        A CA or ``validate_certs`` cannot help here. The usual cause is an ``https://`` reference to a registry
        that serves plain HTTP, which the one plain request shows; it carries no credentials.
        """
        parts = urlsplit(url)
        address = parts.netloc if parts.port else "%s:443" % parts.netloc
        if not self._answers_plain_http(urlunsplit(("http", address, "/v2/", "", ""))):
            return "The server at %s does not answer TLS: check the host, the port and the scheme" % _host_of(url)
        if not same_origin(url, self.base_url):
            return "The server at %s answers plain HTTP, not HTTPS" % _host_of(url)
        return "The registry answers plain HTTP: use http://%s/... in the reference, not https://%s/..." % (
            address,
            parts.netloc,
        )

    def _answers_plain_http(self, url: str) -> bool:
        """Whether a registry answers ``GET /v2/`` at the plain-HTTP ``url``: a 200 or 401, or the API version
        header; not just anything that speaks HTTP there, such as a proxy's 502."""
        self.request_count += 1
        timeout = min(self.options.timeout, PLAIN_HTTP_PROBE_TIMEOUT)
        try:
            response = self.session.request("GET", url, allow_redirects=False, timeout=timeout)
        except requests.exceptions.RequestException:
            return False
        response.close()
        return response.status_code in (200, 401) or "Docker-Distribution-API-Version" in response.headers


def _secrets_to_mask(auth: Authenticator, sent: str | None) -> list[str]:
    """What a registry's error answer must not show if it echoes it: the credentials' secrets, the Basic value
    made of them (sent to the registry or to its token service), every token the authenticator holds, and the
    ``Authorization`` value sent, whole and without its scheme."""
    found = list(auth.known_tokens())
    credentials = auth.credentials
    if credentials is not None:
        found.extend(filter(None, (credentials.password, credentials.registry_token, credentials.identity_token)))
        if credentials.username and credentials.password:
            basic = "%s:%s" % (credentials.username, credentials.password)
            found.append(base64.b64encode(basic.encode("utf-8")).decode("ascii"))
    if sent:
        found.append(sent)
        found.append(sent.partition(" ")[2])
    return found


def _with_auth(headers: dict[str, str] | None, authorization: str | None) -> dict[str, str]:
    merged = dict(headers or {})
    if authorization:
        merged["Authorization"] = authorization
    return merged


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    return "%s://%s" % (parts.scheme, parts.netloc)


def _reason(err: BaseException) -> str:
    """The underlying reason of a requests/urllib3 error, without urllib3's object repr prefix."""
    inner: Any = err.args[0] if err.args and isinstance(err.args[0], BaseException) else err
    inner = getattr(inner, "reason", None) or inner
    return re.sub(r"^<[^>]*>: ", "", str(inner)) or inner.__class__.__name__


def _read_error_body(response: Any, limit: int = 65536) -> bytes:
    try:
        return response.content[:limit]
    except Exception:  # noqa: BLE001 - an unreadable error body must not mask the status
        return b""

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every exception the client raises, and how a registry's error answer becomes one.

Every expected failure is a :class:`RegistryError` carrying a message a user can act on. Modules catch it
once (``_common.registry_errors``) and turn it into ``fail_json``; nothing here ever carries a secret.

What a registry says in an error answer (its codes, messages, ``detail`` values, or a short plain-text body)
reaches the message, but only after every secret the caller knows is replaced by ``********`` and only cut
short: a registry (or a proxy before it) may echo a request header, and may answer at any length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any


class RegistryError(Exception):
    """Base of every expected failure: ``str(err)`` is the user-facing message."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        repository: str | None = None,
        status: int | None = None,
        codes: list[str] | None = None,
        details: list[str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.repository = repository
        self.status = status
        self.codes = codes or []
        # details[i]: what the registry gave as ``detail`` for codes[i], as shown in the message (secrets masked,
        # cut short); "" when it gave none or only repeated its message.
        self.details = details or []

    def __str__(self) -> str:
        return self.message

    def reworded(self, message: str) -> RegistryError:
        """The same failure (its type, registry, status, codes and details) told with ``message``: for a caller that
        knows what was being done when it happened."""
        return type(self)(
            message,
            registry=self.registry,
            repository=self.repository,
            status=self.status,
            codes=self.codes,
            details=self.details,
        )


class InvalidInputError(RegistryError, ValueError):
    """A value given by the user (reference, tag, digest, option) is not valid."""


class InvalidReferenceError(InvalidInputError):
    """An image reference, repository, tag or digest does not parse."""


class CredentialsError(RegistryError):
    """Credentials could not be found or read (auth file, credential helper)."""


class TransportError(RegistryError):
    """The registry could not be reached: DNS, refused connection, TLS failure, timeout."""


class PermanentTransportError(TransportError):
    """A transport failure that retrying cannot fix, such as an untrusted certificate: raised at once."""


class AuthenticationError(RegistryError):
    """The registry rejected the credentials (401 after authenticating, or the token service refused)."""


class PermissionDeniedError(RegistryError):
    """Authenticated, but not allowed to do this (403 / DENIED)."""


class NotFoundError(RegistryError):
    """The repository, manifest or blob does not exist."""


class UnsupportedError(RegistryError):
    """The registry or the content uses something this collection (or the registry) does not support."""


class TooManyRequestsError(RegistryError):
    """Rate limited (429 / TOOMANYREQUESTS) and retries did not help."""


class DigestMismatchError(RegistryError):
    """Bytes received do not hash to the digest they were asked for."""


class RegistryResponseError(RegistryError):
    """The registry answered with an unexpected status or a malformed body."""


# Distribution / OCI error codes -> (exception class, plain-language explanation).
_ERROR_CODES: dict[str, tuple[type[RegistryError], str]] = {
    "BLOB_UNKNOWN": (NotFoundError, "blob unknown to the registry"),
    "BLOB_UPLOAD_INVALID": (RegistryResponseError, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (RegistryResponseError, "blob upload unknown to the registry"),
    "DIGEST_INVALID": (DigestMismatchError, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (RegistryResponseError, "manifest references a blob the registry does not have"),
    "MANIFEST_INVALID": (RegistryResponseError, "manifest invalid"),
    "MANIFEST_UNKNOWN": (NotFoundError, "manifest unknown"),
    "MANIFEST_UNVERIFIED": (RegistryResponseError, "manifest failed signature verification"),
    "NAME_INVALID": (InvalidReferenceError, "invalid repository name"),
    "NAME_UNKNOWN": (NotFoundError, "repository name not known to the registry"),
    "SIZE_INVALID": (RegistryResponseError, "provided length did not match content length"),
    "TAG_INVALID": (InvalidReferenceError, "manifest tag did not match URI"),
    "UNAUTHORIZED": (AuthenticationError, "authentication required"),
    "DENIED": (PermissionDeniedError, "requested access to the resource is denied"),
    "UNSUPPORTED": (UnsupportedError, "the operation is unsupported by the registry"),
    "TOOMANYREQUESTS": (TooManyRequestsError, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (RegistryResponseError, "invalid number of results requested"),
    "RANGE_INVALID": (RegistryResponseError, "invalid content range"),
}
_STATUS_CLASSES: dict[int, type[RegistryError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: UnsupportedError,
    429: TooManyRequestsError,
}


MASK = "********"
# The most of one registry-provided text (a message, a detail, a plain-text body) shown, and of all of it together:
# enough for one code with a message and a detail both cut, not for a registry listing fifty.
MAX_REGISTRY_TEXT = 300
MAX_REGISTRY_TEXT_IN_ALL = 800
_CUT_MARK = "... (%d more characters cut)"
MAX_DETAIL_DEPTH = 20
_NO_DETAIL = (None, "", {}, [])
_NOT_JSON = object()
# Control characters but tab, newline and carriage return: a body holding one is not text to show.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s+")
_PLAIN_HTTP_TO_HTTPS = "Client sent an HTTP request to an HTTPS server"


def parse_error_codes(body: bytes | str | None) -> list[tuple[str, str]]:
    """Return ``[(code, message), ...]`` from a registry error body; ``[]`` when it is not one."""
    return [(code, message) for code, message, _detail in parse_errors(body)]


def parse_errors(body: bytes | str | None) -> list[tuple[str, str, Any]]:
    """Return ``[(code, message, detail), ...]`` from a registry error body; ``[]`` when it is not one.

    ``detail`` is whatever JSON value the registry put there (``None`` when absent)."""
    doc = _json_or_not(body)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    found = []
    for entry in errors:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            found.append((entry["code"], message if isinstance(message, str) else "", entry.get("detail")))
    return found


def error_from_response(
    status: int,
    body: bytes | str | None,
    *,
    action: str,
    registry: str,
    repository: str | None = None,
    content_type: str | None = None,
    secrets: Iterable[str | None] = (),
) -> RegistryError:
    """Build the typed exception for a failed registry response.

    ``action`` says what was attempted ("get manifest alpine:3.19"); the message names the
    registry and repository, explains the registry's error codes in plain words and adds the
    ``detail`` of each. ``secrets`` are the values the caller sent or could have sent (passwords,
    tokens, ``Authorization`` values): each is replaced by ``********`` in whatever the registry
    said before it is cut short. A body that is not an error document is shown only when its
    ``content_type`` says it is plain text or JSON, and never when it is HTML.
    """
    masker = _Masker(secrets)
    entries = parse_errors(body)
    code_names = [code for code, _message, _detail in entries]
    where = "registry %s" % registry
    if repository:
        where += ", repository %s" % repository
    message = "Failed to %s on %s: HTTP %d" % (action, where, status)
    cls = _STATUS_CLASSES.get(status, RegistryResponseError)
    details: list[str] = []
    if entries:
        # An unknown code (distribution's UNAVAILABLE, a vendor's QUOTA_EXCEEDED) says less than the status.
        cls = _ERROR_CODES.get(code_names[0], (cls, ""))[0]
        explained = []
        for code, registry_message, detail in entries:
            explanation = masker.line(registry_message) or _ERROR_CODES.get(code, (cls, ""))[1]
            detail_text = _detail_text(detail, explanation, masker)
            details.append(detail_text)
            explained.append(_explain(masker.line(code), _cut(explanation, MAX_REGISTRY_TEXT), detail_text))
        message += " " + _cut(masker.text("; ".join(explained)), MAX_REGISTRY_TEXT_IN_ALL)
    elif status == 400 and _is_plain_http_to_https(body):
        message += (
            ": the registry serves HTTPS on this port and was asked over plain HTTP (a reference to a loopback host"
            " without a scheme uses http://): use https://%s/... in the reference" % registry
        )
    else:
        excerpt = _body_excerpt(body, content_type, masker)
        if excerpt:
            message += " (the registry answered: %s)" % excerpt
    return cls(message, registry=registry, repository=repository, status=status, codes=code_names, details=details)


def _is_plain_http_to_https(body: bytes | str | None) -> bool:
    """Whether ``body`` is what Go's net/http (distribution's server) answers, with a 400 and no Content-Type, to a
    plain-HTTP request on its TLS port."""
    if isinstance(body, bytes):
        body = body[:200].decode("utf-8", "replace")
    return bool(body) and body.strip().startswith(_PLAIN_HTTP_TO_HTTPS)


def _explain(code: str, explanation: str, detail: str) -> str:
    said = ": ".join(text for text in (explanation, detail) if text)
    return "%s (%s)" % (code, said) if said else code


class _Masker:
    """Replaces every known secret by ``********``, in text and in the strings of a JSON value."""

    def __init__(self, secrets: Iterable[str | None]):
        # The longest first, so that a secret holding another (a token holding the password) goes as a whole.
        self._secrets = sorted({value for value in secrets if isinstance(value, str) and value}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def value(self, value: Any, depth: int = 0) -> Any:
        """``value`` with its strings masked; what lies deeper than ``MAX_DETAIL_DEPTH`` becomes ``"..."``, so that
        neither this walk nor ``json.dumps`` can run out of stack on a body nested a thousand levels deep."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (list, dict)) and depth >= MAX_DETAIL_DEPTH:
            return "..."
        if isinstance(value, list):
            return [self.value(item, depth + 1) for item in value]
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item, depth + 1) for key, item in value.items()}
        return value

    def line(self, text: str) -> str:
        """``text`` masked and on one line (the message is one line of a task result). Masked again after the
        whitespace is folded, as folding could make a secret out of text that held it with other whitespace."""
        return self.text(_WHITESPACE.sub(" ", self.text(text)).strip())

    def json(self, value: Any) -> str:
        """``value`` as compact JSON on one line, masked in its strings and, for secrets JSON escapes, in the text."""
        text = self.line(json.dumps(self.value(value), separators=(",", ":"), sort_keys=True))
        for secret in self._secrets:
            text = text.replace(json.dumps(secret)[1:-1], MASK)
        return text


def _detail_text(detail: Any, explanation: str, masker: _Masker) -> str:
    """The detail as shown: a string as it is, anything else as compact JSON; "" for none or a repetition."""
    if detail in _NO_DETAIL:
        return ""
    text = masker.line(detail) if isinstance(detail, str) else masker.json(detail)
    if _same_words(text, explanation):
        return ""
    return _cut(text, MAX_REGISTRY_TEXT)


def _body_excerpt(body: bytes | str | None, content_type: str | None, masker: _Masker) -> str:
    """A short single line of a body that is not an error document, or "" when showing it could mislead.

    Only plain text and JSON: HTML (a proxy's or a login page) and XML are markup, long and seldom about the
    request; other types may be binary. Text that does not decode as UTF-8 or holds control characters is taken
    for binary whatever its label says."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    if not body or not (is_json or (media_type.startswith("text/") and media_type != "text/html")):
        return ""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        return ""
    if _BINARY.search(text):
        return ""
    doc = _json_or_not(text) if is_json else _NOT_JSON
    if doc is not _NOT_JSON:
        return "" if doc in _NO_DETAIL else _cut(masker.json(doc), MAX_REGISTRY_TEXT)
    text = masker.line(text)
    if text.startswith("<"):
        return ""
    return _cut(text, MAX_REGISTRY_TEXT)


def _json_or_not(body: bytes | str | None) -> Any:
    """The JSON value of ``body``, or ``_NOT_JSON``."""
    if not body:
        return _NOT_JSON
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


def _same_words(first: str, second: str) -> bool:
    return first.rstrip(".").casefold() == second.rstrip(".").casefold()


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` and a mark saying how many more there were. Cut only text whose
    secrets are masked already: a secret astride the cut would otherwise show its first half."""
    if len(text) <= limit:
        return text
    return text[:limit] + _CUT_MARK % (len(text) - limit)


class TagOverwriteError(RegistryError):
    """``overwrite: false`` and a tag already points at another digest."""


class InterruptedDownloadError(TransportError):
    """A blob download that broke off mid-body. Connecting was already retried; reading the blob again from its
    start (a fresh GET) is the caller's call, as only the caller knows what it did with the bytes so far."""


class HelperExecutionError(Exception):
    """A credential helper exists but could not be executed (``run_command`` may raise it)."""


class DuplicateKeyError(ValueError):
    """A JSON object gives a key twice: parsers disagree on which value wins, so a signed payload holding one is
    ambiguous (raised while parsing, and caught by the caller that says so)."""

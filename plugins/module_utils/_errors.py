# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every exception the client raises, and how a registry's error answer becomes one.

Every expected failure is a :class:`RegistryError` carrying a message a user can act on. Modules catch it
once (``_common.registry_errors``) and turn it into ``fail_json``; nothing here ever carries a secret.
"""

from __future__ import annotations

import json


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
    ):
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.repository = repository
        self.status = status
        self.codes = codes or []

    def __str__(self) -> str:
        return self.message


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


def parse_error_codes(body: bytes | str | None) -> list[tuple[str, str]]:
    """Return ``[(code, message), ...]`` from a registry error body; ``[]`` when it is not one."""
    if not body:
        return []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    found = []
    for entry in errors:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            found.append((entry["code"], message if isinstance(message, str) else ""))
    return found


def error_from_response(
    status: int,
    body: bytes | str | None,
    *,
    action: str,
    registry: str,
    repository: str | None = None,
) -> RegistryError:
    """Build the typed exception for a failed registry response.

    ``action`` says what was attempted ("get manifest alpine:3.19"); the message names the
    registry and repository and explains the registry's error codes in plain words.
    """
    codes = parse_error_codes(body)
    code_names = [code for code, _message in codes]
    where = "registry %s" % registry
    if repository:
        where += ", repository %s" % repository
    message = "Failed to %s on %s: HTTP %d" % (action, where, status)
    cls = _STATUS_CLASSES.get(status, RegistryResponseError)
    if codes:
        # An unknown code (distribution's UNAVAILABLE, a vendor's QUOTA_EXCEEDED) says less than the status.
        cls = _ERROR_CODES.get(code_names[0], (cls, ""))[0]
        message += " " + "; ".join(_explain(code, text) for code, text in codes)
    return cls(message, registry=registry, repository=repository, status=status, codes=code_names)


def _explain(code: str, registry_message: str) -> str:
    explanation = registry_message or _ERROR_CODES.get(code, (RegistryResponseError, ""))[1]
    return "%s (%s)" % (code, explanation) if explanation else code


class TagOverwriteError(RegistryError):
    """``overwrite: false`` and a tag already points at another digest."""


class InterruptedDownloadError(TransportError):
    """A blob download that broke off mid-body. Connecting was already retried; reading the blob again from its
    start (a fresh GET) is the caller's call, as only the caller knows what it did with the bytes so far."""


class HelperExecutionError(Exception):
    """A credential helper exists but could not be executed (``run_command`` may raise it)."""

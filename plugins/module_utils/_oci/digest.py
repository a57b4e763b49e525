# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests: computed from the bytes, checked against what was asked for, chunk by chunk for streams."""

from __future__ import annotations

import hashlib

from ansible_collections.ocireg.registry.plugins.module_utils._errors import DigestMismatchError, UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import DIGEST_HEX_LENGTHS, validate_digest

DIGEST_ALGORITHMS = tuple(DIGEST_HEX_LENGTHS)


def _hasher(algorithm: str):
    if algorithm not in DIGEST_ALGORITHMS:
        raise UnsupportedError(
            "Digest algorithm %r is not supported: use one of %s." % (algorithm, ", ".join(DIGEST_ALGORITHMS))
        )
    return hashlib.new(algorithm)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data`` (sha256 or sha512)."""
    hasher = _hasher(algorithm)
    hasher.update(data)
    return "%s:%s" % (algorithm, hasher.hexdigest())


def _describe(description: str | None) -> str:
    return " of %s" % description if description else ""


def verify_digest(data: bytes, expected: str, *, description: str | None = None) -> str:
    """Return ``expected`` when ``data`` hashes to it; raise :class:`DigestMismatchError` naming both otherwise.

    ``description`` (``"blob sha256:... from ghcr.io/org/app"``) makes the message say what was checked.
    """
    expected = validate_digest(expected)
    actual = compute_digest(data, expected.partition(":")[0])
    if actual != expected:
        raise DigestMismatchError(
            "Digest mismatch%s: expected %s but the %d bytes received hash to %s."
            % (_describe(description), expected, len(data), actual)
        )
    return expected


class DigestVerifier:
    """Hash a stream chunk by chunk and check it against the digest (and size) it was asked for."""

    def __init__(self, expected: str, *, expected_size: int | None = None, description: str | None = None):
        self.expected = validate_digest(expected)
        self.algorithm = self.expected.partition(":")[0]
        self.expected_size = expected_size
        self.description = description
        self.size = 0
        self._hasher = _hasher(self.algorithm)

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.size += len(chunk)

    @property
    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    @property
    def digest(self) -> str:
        """``algorithm:hex`` of everything seen so far."""
        return "%s:%s" % (self.algorithm, self.hexdigest)

    def verify(self) -> str:
        """Return the digest when the stream matched; raise :class:`DigestMismatchError` otherwise."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                "Size mismatch%s: expected %d bytes for %s but received %d bytes."
                % (_describe(self.description), self.expected_size, self.expected, self.size)
            )
        actual = self.digest
        if actual != self.expected:
            raise DigestMismatchError(
                "Digest mismatch%s: expected %s but the %d bytes received hash to %s."
                % (_describe(self.description), self.expected, self.size, actual)
            )
        return actual

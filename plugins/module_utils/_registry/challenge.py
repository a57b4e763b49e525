# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``WWW-Authenticate`` challenges (RFC 7235) and token scopes (docker token auth).

The header parser is lenient on purpose: a registry's header is not user input, and a partly
readable challenge is more useful than an exception, so it never raises and returns what parses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError

# RFC 7230 tchar; auth-scheme and auth-param names are tokens.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# RFC 7235 token68, only valid as the sole credential-like value right after the scheme.
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")

# Registries in the wild send unquoted values such as realm=https://auth.example/token: accept
# anything up to the next comma or whitespace rather than only tchar.
_BARE_VALUE = re.compile(r"[^,\s]+")
_WHITESPACE = " \t\r\n"


@dataclasses.dataclass
class Challenge:
    """One challenge: ``scheme`` lowercased, ``params`` with lowercased names and unquoted values."""

    scheme: str
    params: dict = dataclasses.field(default_factory=dict)
    token68: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The parameter ``name`` (case-insensitive), or ``default``."""
        return self.params.get(name.lower(), default)


def parse_www_authenticate(header: object) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` values into challenges, in order.

    Accepts a str, bytes (latin-1, as HTTP headers are), or a list of values (several header lines).
    Garbage is skipped; an unterminated quoted string drops only that parameter. A repeated parameter
    keeps the last value, as docker's parser does.
    """
    if isinstance(header, (list, tuple)):
        return [challenge for value in header for challenge in parse_www_authenticate(value)]
    if isinstance(header, (bytes, bytearray)):
        header = bytes(header).decode("latin-1")
    if not isinstance(header, str):
        return []
    return _Parser(header).parse()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def parse(self) -> list[Challenge]:
        challenges: list[Challenge] = []
        current: Challenge | None = None
        text = self.text
        while True:
            self._skip(_WHITESPACE + ",")
            if self.pos >= len(text):
                return challenges
            match = _TOKEN.match(text, self.pos)
            if not match:
                self._skip_item()
                continue
            name_end = match.end()
            self.pos = name_end
            self._skip(_WHITESPACE)
            if self._at("="):
                self.pos += 1
                self._skip(_WHITESPACE)
                value = self._value()
                if current is not None and value is not None:
                    current.params[match.group().lower()] = value
                continue
            current = Challenge(match.group().lower())
            challenges.append(current)
            if self.pos > name_end:  # a token68 must be separated from the scheme by whitespace
                self._maybe_token68(current)

    def _skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def _at(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def _skip_item(self) -> None:
        """Skip unreadable input up to the next comma that is not inside a quoted string."""
        while self.pos < len(self.text) and not self._at(","):
            if self._at('"'):
                self._quoted()
            else:
                self.pos += 1

    def _maybe_token68(self, challenge: Challenge) -> None:
        """After ``scheme SP``: a lone token68 (``Basic abc==``) is the credential, not a new challenge.

        Challenges are separated by commas, so a token that follows the scheme with only whitespace
        between, and is itself followed by a comma or the end, cannot be the next scheme.
        """
        match = _TOKEN68.match(self.text, self.pos)
        if not match:
            return
        end = match.end()
        while end < len(self.text) and self.text[end] in _WHITESPACE:
            end += 1
        if end >= len(self.text) or self.text[end] == ",":
            challenge.token68 = match.group()
            self.pos = end

    def _value(self) -> str | None:
        if self._at('"'):
            return self._quoted()
        match = _BARE_VALUE.match(self.text, self.pos)
        if not match:
            return None
        self.pos = match.end()
        return match.group()

    def _quoted(self) -> str | None:
        """Read a quoted-string at ``pos`` (on the opening quote); None when it is not terminated."""
        chars = []
        index = self.pos + 1
        text = self.text
        while index < len(text):
            char = text[index]
            if char == "\\" and index + 1 < len(text):
                chars.append(text[index + 1])
                index += 2
                continue
            if char == '"':
                self.pos = index + 1
                return "".join(chars)
            chars.append(char)
            index += 1
        self.pos = len(text)
        return None


@dataclasses.dataclass(frozen=True)
class Scope:
    """A parsed token scope. ``name`` may itself contain ``:`` (``repository:host:5000/app:pull``)."""

    type: str
    name: str
    actions: tuple

    def __str__(self) -> str:
        return format_scope(self.type, self.name, self.actions)


def parse_scope(scope: object) -> Scope:
    """Parse one scope string; raise :class:`InvalidInputError` naming it when it is not ``type:name:actions``."""
    if not isinstance(scope, str) or any(char.isspace() for char in scope):
        raise InvalidInputError(
            "Invalid scope %r: expected one 'type:name:action[,action]' without spaces, "
            "e.g. 'repository:team/app:pull,push'." % (scope,)
        )
    resource_type, _sep, rest = scope.partition(":")
    name, _sep, action_text = rest.rpartition(":")
    actions = _unique(action for action in action_text.split(",") if action)
    if not resource_type or not name or not actions:
        raise InvalidInputError(
            "Invalid scope %r: expected 'type:name:action[,action]', e.g. 'repository:team/app:pull,push'." % scope
        )
    return Scope(resource_type, name, tuple(actions))


def format_scope(resource_type: str, name: str, actions: str | Iterable[str]) -> str:
    """``type:name:a,b``; ``actions`` is one action, a comma list, or an iterable (duplicates dropped)."""
    if isinstance(actions, str):
        actions = actions.split(",")
    action_list = _unique(action for action in actions if action)
    if not resource_type or not name or not action_list:
        raise InvalidInputError(
            "Cannot build a scope from type %r, name %r and actions %r: all three are required."
            % (resource_type, name, action_list)
        )
    return "%s:%s:%s" % (resource_type, name, ",".join(action_list))


def merge_scopes(scopes: Iterable[str]) -> list[str]:
    """Merge actions of scopes naming the same resource, keeping first-seen order of resources and actions.

    ``["repository:a:pull", "repository:b:pull", "repository:a:push"]`` gives
    ``["repository:a:pull,push", "repository:b:pull"]``. Space-separated scope lists are split first;
    unparsable entries are kept once, verbatim, in place.
    """
    merged: dict[tuple, list[str]] = {}
    for entry in scopes:
        for scope_text in entry.split() if isinstance(entry, str) else ():
            try:
                scope = parse_scope(scope_text)
            except InvalidInputError:
                merged.setdefault(("", scope_text), [])
                continue
            actions = merged.setdefault((scope.type, scope.name), [])
            actions.extend(action for action in scope.actions if action not in actions)
    return [format_scope(key[0], key[1], actions) if key[0] else key[1] for key, actions in merged.items()]


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    return seen

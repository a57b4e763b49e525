# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the credentials for a registry: task options, the ``credentials`` option, auth files, helpers.

Precedence, for the task's main registry: ``username``/``password`` > ``credentials[host]`` > auth file.
For every other registry: ``credentials[host]`` > auth file.

Auth files are read the way docker and podman/skopeo read them (``config.json`` / ``auth.json``):
``credHelpers`` and ``credsStore`` run ``docker-credential-NAME get``; ``auths`` entries hold ``auth``
(base64 ``user:pass``), ``username``/``password``, ``identitytoken`` or ``registrytoken``, keyed by a
host, a URL, or (podman) ``host/namespace[/repo]``, the most specific key winning.

No secret ever reaches a message: errors name options, files, keys and helpers, never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any, Optional

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    CredentialsError,
    HelperExecutionError,
    InvalidInputError,
)

HUB = "docker.io"

# Names docker, podman and old configs use for Docker Hub; all mean HUB.
HUB_ALIASES = frozenset(("docker.io", "index.docker.io", "registry-1.docker.io"))

# The key docker itself uses for the Hub in config.json and in credential helpers.
HUB_LEGACY_SERVER_URL = "https://index.docker.io/v1/"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 30.0

# docker-credential-helpers print this (on stdout, exit code 1) when they hold nothing for the server.
_HELPER_NOT_FOUND_TEXT = "credentials not found"
_HELPER_TOKEN_USERNAME = "<token>"  # noqa: S105 - the marker helpers use, not a secret
_HELPER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CREDENTIALS_ENTRY_KEYS = ("username", "password", "token")

# The environment variables that stand in for the ``username`` and ``password`` options (env_fallback in the
# modules' argument spec, ``env`` entries in the lookup's documentation).
ENVIRONMENT_VARIABLES = {"username": "REGISTRY_USERNAME", "password": "REGISTRY_PASSWORD"}
TASK_OPTIONS = "task options"
# What ``username`` and ``password`` apply to, for messages; the lookup says "the lookup's first reference".
TASK_PRIMARY = "the task's main reference"
NO_CREDENTIALS_ADVICE = "set username and password, credentials, or an auth file"

# run_command(argv, stdin_text, env, timeout) -> (exit code, stdout, stderr).
# Raises FileNotFoundError when the program does not exist, HelperExecutionError (or OSError) when it
# cannot be executed, subprocess.TimeoutExpired on timeout.
RunCommand = Callable[[list, str, Optional[dict], float], tuple]


class Credentials:
    """What to authenticate with at one registry. ``repr``/``str`` show which secrets exist, never their values."""

    __slots__ = ("username", "password", "identity_token", "registry_token", "source")

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        identity_token: str | None = None,
        registry_token: str | None = None,
        source: str = "",
    ):
        self.username = username or None
        self.password = password or None
        # An OAuth2 refresh token (auth-file ``identitytoken``, helper Username ``<token>``).
        self.identity_token = identity_token or None
        # A bearer token sent to the registry as is.
        self.registry_token = registry_token or None
        # Where the credentials came from, for messages.
        self.source = source

    @property
    def is_empty(self) -> bool:
        return not (self.password or self.identity_token or self.registry_token)

    def _fields(self) -> tuple:
        return (self.username, self.password, self.identity_token, self.registry_token, self.source)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        parts = []
        if self.username is not None:
            parts.append("username=%r" % self.username)
        for name in ("password", "identity_token", "registry_token"):
            if getattr(self, name):
                parts.append("%s=<hidden>" % name)
        parts.append("source=%r" % self.source)
        return "Credentials(%s)" % ", ".join(parts)

    __str__ = __repr__


def task_credentials_source(from_environment: Collection[str] = (), given_as: str = "task") -> str:
    """Where the ``username`` and ``password`` a task ended up with came from, for messages.

    ``from_environment`` names those of the two that were not given (as ``given_as`` options: "task", "lookup")
    but taken from their environment variable.
    """
    if not from_environment:
        return "%s options" % given_as
    if all(name in from_environment for name in ENVIRONMENT_VARIABLES):
        return "environment variables %s" % " and ".join(ENVIRONMENT_VARIABLES.values())
    return " and ".join(
        "environment variable %s" % variable if name in from_environment else "%s option %s" % (given_as, name)
        for name, variable in ENVIRONMENT_VARIABLES.items()
    )


def split_registry_key(key: str) -> tuple[str, str]:
    """``(host, path)`` for a key of ``credentials`` or of an auth file's ``auths``/``credHelpers``.

    A scheme makes the key a URL, of which only the host counts (docker's ConvertToHostname); without one,
    a trailing ``v1``/``v2`` API path is dropped and any other path is a namespace/repository scope
    (podman's ``host/namespace/repo`` keys). Hub aliases become ``docker.io``. Hosts are lower-cased.
    """
    text = key.strip()
    scheme = _SCHEME_RE.match(text)
    if scheme:
        text = text[scheme.end() :]
    host, _sep, path = text.partition("/")
    path = path.strip("/")
    if scheme or path in ("v1", "v2"):
        path = ""
    host = host.lower()
    if host in HUB_ALIASES:
        host = HUB
    return host, path


def _path_in_scope(repository: str, scope: str) -> bool:
    return not scope or repository == scope or repository.startswith(scope + "/")


def _best_scoped(entries: list, host: str, repository: str) -> list:
    """Entries ``(host, path, ...)`` that apply to host/repository, most specific first (stable otherwise)."""
    matching = [entry for entry in entries if entry[0] == host and _path_in_scope(repository, entry[1])]
    return sorted(matching, key=lambda entry: -len(entry[1]))


def _text_value(value: Any) -> str | None:
    """Option values as text; YAML turns ``password: 12345`` into an int, which is still meant as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _default_run_command(argv: list, stdin_text: str, env: dict[str, str] | None, timeout: float) -> tuple:
    search_path = (env if env is not None else os.environ).get("PATH", os.defpath)
    program = shutil.which(argv[0], path=search_path)
    if program is None:
        raise FileNotFoundError(argv[0])
    try:
        completed = subprocess.run(  # noqa: S603 - argv is a resolved helper path plus the literal "get"
            [program] + list(argv[1:]),
            input=stdin_text,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as err:
        # The program exists (which() found it) but cannot be executed: a bad interpreter line, no permission.
        # Not a FileNotFoundError, which means "not installed".
        raise HelperExecutionError(err.strerror or type(err).__name__) from None
    return completed.returncode, completed.stdout, completed.stderr


class _AuthFile:
    """One parsed ``config.json``/``auth.json``: its ``auths``, ``credHelpers`` and ``credsStore``."""

    def __init__(self, path: str, document: dict):
        self.path = path
        auths = document.get("auths") or {}
        if not isinstance(auths, dict):
            raise CredentialsError("Auth file %s is not valid: 'auths' must be an object" % path)
        # (host, path, key, entry), in file order.
        self.auths: list = []
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                raise CredentialsError("Auth file %s is not valid: auths entry %r must be an object" % (path, key))
            host, scope = split_registry_key(key)
            if host:
                self.auths.append((host, scope, key, entry))

        helpers = document.get("credHelpers") or {}
        if not isinstance(helpers, dict):
            raise CredentialsError("Auth file %s is not valid: 'credHelpers' must be an object" % path)
        self.cred_helpers: dict[str, str] = {}
        for key, name in helpers.items():
            self.cred_helpers.setdefault(
                split_registry_key(key)[0], self._helper_name(name, "credHelpers entry %r" % key)
            )

        store = document.get("credsStore") or ""
        self.creds_store = self._helper_name(store, "credsStore") if store else ""

    def _helper_name(self, name: Any, where: str) -> str:
        if not isinstance(name, str) or not _HELPER_NAME_RE.match(name):
            raise CredentialsError(
                "Auth file %s is not valid: %s must name a credential helper (the NAME of docker-credential-NAME)"
                % (self.path, where)
            )
        return name

    def auths_credentials(self, host: str, repository: str, warn: Callable[[str], None]) -> Credentials | None:
        """The most specific ``auths`` entry for host/repository that holds an actual credential.

        An entry that holds half a login (a password without a user name, or the reverse) cannot be used: it is
        passed over, as docker and podman do, but ``warn`` says so, as they do not.
        """
        source = "auth file %s" % self.path
        # Most specific first; among keys that normalise alike, the one already spelled in canonical form.
        candidates = sorted(
            _best_scoped(self.auths, host, repository),
            key=lambda entry: (-len(entry[1]), entry[2] != (entry[0] + "/" + entry[1]).rstrip("/")),
        )
        for _host, _scope, key, entry in candidates:
            credentials = self._decode_entry(key, entry, source)
            half = self._half_a_login(credentials)
            if half:
                warn(
                    "Auth file %s: auths entry %r has a %s but no %s, so it is not used for %s: add the %s, or give"
                    " both as 'auth' (base64 of user:password)" % (self.path, key, half[0], half[1], host, half[1])
                )
                continue
            if not credentials.is_empty:
                return credentials
        return None

    @staticmethod
    def _half_a_login(credentials: Credentials) -> tuple[str, str] | None:
        """``(what it has, what it lacks)`` for an entry with only one half of a user name and password."""
        if credentials.identity_token or credentials.registry_token:
            return None
        if credentials.password and not credentials.username:
            return ("password", "username")
        if credentials.username and not credentials.password:
            return ("username", "password")
        return None

    def _decode_entry(self, key: str, entry: dict, source: str) -> Credentials:
        fields = {}
        for name in ("auth", "username", "password", "identitytoken", "registrytoken"):
            value = entry.get(name)
            if value is not None and not isinstance(value, str):
                raise CredentialsError(
                    "Auth file %s is not valid: %r of auths entry %r must be a string" % (self.path, name, key)
                )
            fields[name] = value or None
        username, password = fields["username"], fields["password"]
        if fields["auth"]:
            username, password = self._decode_auth(key, fields["auth"])
        return Credentials(
            username=username,
            password=password,
            identity_token=fields["identitytoken"],
            registry_token=fields["registrytoken"],
            source=source,
        )

    def _decode_auth(self, key: str, auth: str) -> tuple[str, str]:
        # Docker writes padded standard base64; tolerate missing padding, reject anything else.
        encoded = auth.strip()
        encoded += "=" * (-len(encoded) % 4)
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialsError(
                "Auth file %s: the 'auth' value of auths entry %r is not base64 of 'username:password'"
                % (self.path, key)
            ) from None
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise CredentialsError(
                "Auth file %s: the 'auth' value of auths entry %r does not decode to 'username:password'"
                % (self.path, key)
            )
        return username, password.strip("\x00")


class CredentialResolver:
    """Answers "what credentials for this registry (and repository)?" for one task.

    ``username``/``password`` apply to ``primary_registry`` only. ``credentials`` maps registry keys
    (a host, a URL, a Hub alias, or ``host/namespace`` for one part of a registry) to
    ``{username, password}`` or ``{token}``. ``auth_file`` replaces the default auth file search.
    ``environ`` (default ``os.environ``) gives the search variables, HOME and the helpers' environment;
    ``run_command`` runs credential helpers (see :data:`RunCommand`). Without ``primary_registry``,
    ``username``/``password`` are checked but apply to no registry (they are never sent to a guessed one).
    ``credentials_source`` says where ``username``/``password`` came from (see :func:`task_credentials_source`)
    and ``primary_role`` what ``primary_registry`` is the registry of, for messages.

    Options are checked when the resolver is made; auth files are read and helpers run only when a
    registry needs them, once per run. What the user should know but that does not stop the task (an auth
    file entry that cannot be used) is collected in :attr:`warnings`, once each.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        auth_file: str | None = None,
        primary_registry: str | None = None,
        environ: Mapping[str, str] | None = None,
        run_command: RunCommand | None = None,
        credentials_source: str = TASK_OPTIONS,
        primary_role: str = TASK_PRIMARY,
    ):
        self._environ = dict(environ) if environ is not None else None
        self._run_command = run_command or _default_run_command
        self._auth_file = auth_file or None
        self._primary = split_registry_key(primary_registry)[0] if primary_registry else None
        self._primary_role = primary_role
        self._task_credentials = self._check_task_options(username, password, credentials_source)
        self._scoped_credentials = self._check_credentials_option(credentials)
        self._auth_files: list | None = None
        self._helper_answers: dict = {}
        self._resolved: dict = {}
        self.warnings: list[str] = []
        # Modules resolve from worker threads (registry_info concurrency); run each helper once.
        self._lock = threading.RLock()

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ if self._environ is not None else os.environ

    def _warn(self, text: str) -> None:
        with self._lock:
            if text not in self.warnings:
                self.warnings.append(text)

    def missing_credentials_advice(self, registry: str) -> str:
        """What to tell the user when a registry wants credentials and none were found for ``registry``.

        Task ``username``/``password`` that were given but apply to the main registry only are the usual reason
        when ``registry`` is another one: say so, naming both registries, rather than "set username and password".
        """
        host = split_registry_key(registry)[0]
        if self._task_credentials is None or host == self._primary:
            return NO_CREDENTIALS_ADVICE
        if self._primary is None:
            return (
                "username and password (from %s) apply to no registry here; give the credentials for %s in the"
                " credentials option or an auth file" % (self._task_credentials.source, host)
            )
        return (
            "the username and password from %s apply only to %s, the registry of %s; give the credentials for %s"
            " in the credentials option or an auth file"
            % (self._task_credentials.source, self._primary, self._primary_role, host)
        )

    @staticmethod
    def _check_task_options(username: Any, password: Any, source: str = TASK_OPTIONS) -> Credentials | None:
        username_text = _text_value(username) if username is not None else None
        password_text = _text_value(password) if password is not None else None
        if username is not None and username_text is None:
            raise InvalidInputError("Option 'username' must be a string")
        if password is not None and password_text is None:
            raise InvalidInputError("Option 'password' must be a string")
        if username_text and not password_text:
            raise InvalidInputError("Option 'password' is required when 'username' is set")
        if password_text and not username_text:
            raise InvalidInputError("Option 'username' is required when 'password' is set")
        if not username_text:
            return None
        return Credentials(username=username_text, password=password_text, source=source)

    @staticmethod
    def _check_credentials_option(option: Mapping[str, Any] | None) -> list:
        if option is None:
            return []
        if not isinstance(option, Mapping):
            raise InvalidInputError(
                "Option 'credentials' must be a dictionary of registry -> {username, password} or {token}"
            )
        checked: list = []
        seen: dict = {}
        for key, entry in option.items():
            where = "credentials[%r]" % (key,)
            if not isinstance(key, str):
                raise InvalidInputError("Option 'credentials': every key must be a registry host")
            host, scope = split_registry_key(key)
            if not host:
                raise InvalidInputError("Option %s: the key does not name a registry host" % where)
            if (host, scope) in seen:
                raise InvalidInputError(
                    "Option 'credentials': keys %r and %r name the same registry" % (seen[(host, scope)], key)
                )
            seen[(host, scope)] = key
            if not isinstance(entry, Mapping):
                raise InvalidInputError("Option %s must be a dictionary with username and password, or token" % where)
            unknown = sorted(str(name) for name in entry if name not in _CREDENTIALS_ENTRY_KEYS)
            if unknown:
                raise InvalidInputError(
                    "Option %s: unsupported key(s) %s; use username and password, or token"
                    % (where, ", ".join(unknown))
                )
            values = {}
            for name in _CREDENTIALS_ENTRY_KEYS:
                raw = entry.get(name)
                values[name] = _text_value(raw) if raw is not None else None
                if raw is not None and values[name] is None:
                    raise InvalidInputError("Option %s: %s must be a string" % (where, name))
            username, password, token = values["username"], values["password"], values["token"]
            if token and (username or password):
                raise InvalidInputError("Option %s: give either username and password, or token, not both" % where)
            if not token and not password:
                raise InvalidInputError("Option %s has neither a password nor a token" % where)
            if password and not username:
                raise InvalidInputError("Option %s: username is required with password" % where)
            credentials = Credentials(
                username=username, password=password, registry_token=token, source="credentials option"
            )
            checked.append((host, scope, key, credentials))
        return checked

    def for_registry(self, registry: str, repository: str | None = None) -> Credentials | None:
        """The credentials to use at ``registry`` (for ``repository``, when known), or None for anonymous."""
        host = split_registry_key(registry)[0]
        path = (repository or "").strip("/")
        with self._lock:
            if (host, path) not in self._resolved:
                self._resolved[(host, path)] = self._resolve(host, path)
            return self._resolved[(host, path)]

    def _resolve(self, host: str, repository: str) -> Credentials | None:
        if self._task_credentials is not None and host == self._primary:
            return self._task_credentials
        scoped = _best_scoped(self._scoped_credentials, host, repository)
        if scoped:
            return scoped[0][3]
        for auth_file in self._load_auth_files():
            found = self._from_auth_file(auth_file, host, repository)
            if found is not None:
                return found
        return None

    # Auth files ---------------------------------------------------------------------------------------

    def default_auth_file_paths(self) -> list[str]:
        """Where auth files are looked for when ``auth_file`` is not given, in order."""
        environ = self.environ
        home = environ.get("HOME") or (os.path.expanduser("~") if self._environ is None else "")
        home = home if home and home != "~" else ""
        paths = []
        if environ.get("REGISTRY_AUTH_FILE"):
            paths.append(environ["REGISTRY_AUTH_FILE"])
        if environ.get("XDG_RUNTIME_DIR"):
            paths.append(os.path.join(environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
        # podman's persistent location (containers-auth.json(5)); skopeo reads it too.
        config_home = environ.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else "")
        if config_home:
            paths.append(os.path.join(config_home, "containers", "auth.json"))
        if environ.get("DOCKER_CONFIG"):
            paths.append(os.path.join(environ["DOCKER_CONFIG"], "config.json"))
        if home:
            paths.append(os.path.join(home, ".docker", "config.json"))
        unique = []
        for path in paths:
            if path not in unique:
                unique.append(path)
        return unique

    def _load_auth_files(self) -> list:
        """The auth files to consult, in order: ``auth_file`` alone, or every default one that exists.

        Like skopeo/podman (and unlike docker, which reads one file), a registry that the first file
        does not cover is looked up in the next one: a podman ``auth.json`` holding a login to one registry
        must not hide the docker ``config.json`` logins to the others.
        """
        if self._auth_files is None:
            if self._auth_file:
                self._auth_files = [self._read_auth_file(self._auth_file, required=True)]
            else:
                found = (self._read_auth_file(path, required=False) for path in self.default_auth_file_paths())
                self._auth_files = [auth_file for auth_file in found if auth_file is not None]
        return self._auth_files

    @staticmethod
    def _read_auth_file(path: str, *, required: bool) -> _AuthFile | None:
        try:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except FileNotFoundError:
            if required:
                raise CredentialsError("Auth file %s does not exist" % path) from None
            return None
        except OSError as err:
            raise CredentialsError(
                "Cannot read auth file %s: %s" % (path, err.strerror or type(err).__name__)
            ) from None
        except UnicodeDecodeError:
            raise CredentialsError("Auth file %s is not valid: not UTF-8 text" % path) from None
        if not text.strip():
            # docker treats an empty config.json as an empty configuration.
            return _AuthFile(path, {})
        try:
            document = json.loads(text)
        except ValueError as err:
            # JSONDecodeError's own message holds only a position, never the file's content.
            detail = (
                "%s at line %d column %d" % (err.msg, err.lineno, err.colno) if hasattr(err, "lineno") else "bad JSON"
            )
            raise CredentialsError("Auth file %s is not valid JSON: %s" % (path, detail)) from None
        if not isinstance(document, dict):
            raise CredentialsError("Auth file %s is not valid: it must hold a JSON object" % path)
        return _AuthFile(path, document)

    def _from_auth_file(self, auth_file: _AuthFile, host: str, repository: str) -> Credentials | None:
        """Docker's order: ``credHelpers[host]``, else ``credsStore``, else ``auths``.

        docker/cli (configfile.GetCredentialsStore) uses the per-host helper, else the default store,
        and reads ``auths`` only when neither is configured. When the helper holds nothing for the host
        docker stays anonymous; here the ``auths`` entry is still tried, so a credential written by hand,
        by podman or by a CI step next to a ``credsStore`` is used rather than ignored. A helper that is
        missing or fails is an error, not anonymity, so that a broken setup is reported where it is.
        """
        helper = auth_file.cred_helpers.get(host)
        origin = "credHelpers"
        if helper is None and auth_file.creds_store:
            helper, origin = auth_file.creds_store, "credsStore"
        if helper is not None:
            found = self._from_helper(helper, host, "%s in %s" % (origin, auth_file.path))
            if found is not None:
                return found
        return auth_file.auths_credentials(host, repository, self._warn)

    # Credential helpers -------------------------------------------------------------------------------

    @staticmethod
    def _helper_server_urls(host: str) -> list[str]:
        """Server URLs to ask a helper for, in order: docker's key first, then the other spellings in use."""
        if host == HUB:
            # docker stores the Hub under its legacy URL; podman under docker.io.
            return [HUB_LEGACY_SERVER_URL, HUB]
        # docker login stores what was typed (the host); older docker versions stored https://host.
        return [host, "https://" + host]

    def _from_helper(self, helper: str, host: str, origin: str) -> Credentials | None:
        for server_url in self._helper_server_urls(host):
            found = self._ask_helper(helper, server_url, host, origin)
            if found is not None:
                return found
        return None

    def _ask_helper(self, helper: str, server_url: str, host: str, origin: str) -> Credentials | None:
        if (helper, server_url) in self._helper_answers:
            return self._helper_answers[(helper, server_url)]
        program = HELPER_PREFIX + helper
        try:
            code, stdout, stderr = self._run_command([program, "get"], server_url, self._environ, HELPER_TIMEOUT)
        except FileNotFoundError:
            raise CredentialsError(
                "Credential helper %s (%s) is not installed or not on PATH; install it, or give the credentials "
                "for %s with the credentials option" % (program, origin, host),
                registry=host,
            ) from None
        except subprocess.TimeoutExpired:
            raise CredentialsError(
                "Credential helper %s (%s) did not answer within %d seconds for %s"
                % (program, origin, HELPER_TIMEOUT, host),
                registry=host,
            ) from None
        except (HelperExecutionError, OSError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err) or type(err).__name__
            raise CredentialsError(
                "Credential helper %s (%s) could not be run: %s" % (program, origin, reason),
                registry=host,
            ) from None
        answer = self._parse_helper_answer(program, origin, host, code, stdout or "", stderr or "")
        self._helper_answers[(helper, server_url)] = answer
        return answer

    @staticmethod
    def _parse_helper_answer(
        program: str, origin: str, host: str, code: int, stdout: str, stderr: str
    ) -> Credentials | None:
        # Never echo stdout: on success it holds the secret, and helpers print their errors there too.
        if code != 0:
            if _HELPER_NOT_FOUND_TEXT in stdout.lower() or _HELPER_NOT_FOUND_TEXT in stderr.lower():
                return None
            message = "Credential helper %s (%s) failed for %s with exit code %s" % (program, origin, host, code)
            last_line = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
            if last_line:
                message += ": %s" % last_line[:200]
            raise CredentialsError(message, registry=host)
        try:
            answer = json.loads(stdout)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("Secret", ""), str):
            raise CredentialsError(
                "Credential helper %s (%s) gave an answer for %s that is not a JSON object with Username and Secret"
                % (program, origin, host),
                registry=host,
            )
        username = answer.get("Username") if isinstance(answer.get("Username"), str) else None
        secret = answer.get("Secret") or None
        source = "credential helper %s" % program
        if username == _HELPER_TOKEN_USERNAME:
            credentials = Credentials(identity_token=secret, source=source)
        else:
            credentials = Credentials(username=username, password=secret, source=source)
        return None if credentials.is_empty else credentials

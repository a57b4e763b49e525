# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential resolution: options, auth files in their search order, auths forms, credential helpers.

Credential helpers are real executables written into tmp_path and found through PATH, like docker's.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import threading

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import CredentialsError, InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._registry import credentials as _credentials
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    CredentialResolver,
    Credentials,
    split_registry_key,
    task_credentials_source,
)

SECRET = "s3cr3t-PASSWORD-9f1c"
TOKEN = "tok-REGISTRY-7d2e"
IDENTITY = "idt-REFRESH-41ab"
HELPER_SECRET = "helper-SECRET-88aa"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path, document) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def auths_for(key: str, user: str = "alice", password: str = SECRET) -> dict:
    return {"auths": {key: {"auth": b64("%s:%s" % (user, password))}}}


HELPER_SCRIPT = """#!{python}
import json, os, sys, time
answers = json.load(open({answers!r}))
server = sys.stdin.read().strip()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "server": server, "marker": os.environ.get("HELPER_MARKER")}}) + "\\n")
answer = answers.get(server, "notfound")
if answer == "notfound":
    print("credentials not found in native keychain")
    sys.exit(1)
if answer == "fail":
    print("leaky stdout " + {secret!r})
    print("backend exploded", file=sys.stderr)
    sys.exit(3)
if answer == "garbage":
    print("this is not json " + {secret!r})
    sys.exit(0)
if answer == "sleep":
    time.sleep(10)
    sys.exit(0)
json.dump(dict(answer, ServerURL=server), sys.stdout)
"""


class Helpers:
    """Writes docker-credential-NAME programs into one bin directory and reads what they were asked."""

    def __init__(self, tmp_path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.tmp_path = tmp_path

    def add(self, name: str, answers: dict) -> None:
        answers_file = self.tmp_path / ("answers-%s.json" % name)
        answers_file.write_text(json.dumps(answers))
        program = self.bin / ("docker-credential-" + name)
        program.write_text(
            HELPER_SCRIPT.format(
                python=sys.executable, answers=str(answers_file), log=str(self.log_path(name)), secret=HELPER_SECRET
            )
        )
        program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def log_path(self, name: str):
        return self.tmp_path / ("calls-%s.log" % name)

    def calls(self, name: str) -> list:
        path = self.log_path(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def helpers(tmp_path):
    return Helpers(tmp_path)


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def environ(home, helpers):
    """An isolated environment: a HOME of our own, PATH holding only the test helpers."""
    return {"HOME": str(home), "PATH": str(helpers.bin)}


def assert_no_secret(text: str) -> None:
    for secret in (SECRET, TOKEN, IDENTITY, HELPER_SECRET):
        assert secret not in text


# Credentials ------------------------------------------------------------------------------------------


def test_credentials_repr_and_str_hide_every_secret():
    creds = Credentials(
        username="alice", password=SECRET, identity_token=IDENTITY, registry_token=TOKEN, source="task options"
    )
    for text in (repr(creds), str(creds), "%s" % creds, f"{creds!r}"):
        assert_no_secret(text)
        assert "alice" in text
        assert "password=<hidden>" in text
        assert "identity_token=<hidden>" in text
        assert "registry_token=<hidden>" in text
        assert "task options" in text


def test_credentials_is_empty():
    assert Credentials(source="x").is_empty
    assert Credentials(username="alice", source="x").is_empty
    assert not Credentials(username="alice", password=SECRET, source="x").is_empty
    assert not Credentials(identity_token=IDENTITY, source="x").is_empty
    assert not Credentials(registry_token=TOKEN, source="x").is_empty


@pytest.mark.parametrize(
    "key, expected",
    [
        ("docker.io", ("docker.io", "")),
        ("index.docker.io", ("docker.io", "")),
        ("registry-1.docker.io", ("docker.io", "")),
        ("https://index.docker.io/v1/", ("docker.io", "")),
        ("https://registry-1.docker.io/v2/", ("docker.io", "")),
        ("http://127.0.0.1:5000", ("127.0.0.1:5000", "")),
        ("https://Registry.Example.com/some/path", ("registry.example.com", "")),
        ("127.0.0.1:5000/v2/", ("127.0.0.1:5000", "")),
        ("quay.io/v1", ("quay.io", "")),
        ("[::1]:5000", ("[::1]:5000", "")),
        ("quay.io/team/app", ("quay.io", "team/app")),
        ("docker.io/library/", ("docker.io", "library")),
    ],
)
def test_split_registry_key_normalises(key, expected):
    assert split_registry_key(key) == expected


# Options ----------------------------------------------------------------------------------------------


def test_task_options_win_for_primary_registry(tmp_path, environ):
    auth_file = write_json(tmp_path / "auth.json", auths_for("ghcr.io", "from-file"))
    resolver = CredentialResolver(
        username="task-user",
        password=SECRET,
        credentials={"ghcr.io": {"username": "option-user", "password": "other"}},
        auth_file=auth_file,
        primary_registry="ghcr.io",
        environ=environ,
    )
    creds = resolver.for_registry("ghcr.io", "org/app")
    assert (creds.username, creds.password, creds.source) == ("task-user", SECRET, "task options")


def test_task_options_are_not_sent_to_other_registries(tmp_path, environ):
    resolver = CredentialResolver(username="task-user", password=SECRET, primary_registry="ghcr.io", environ=environ)
    assert resolver.for_registry("quay.io", "org/app") is None
    resolver = CredentialResolver(username="task-user", password=SECRET, environ=environ)
    assert resolver.for_registry("ghcr.io") is None


def test_primary_registry_hub_alias(environ):
    resolver = CredentialResolver(
        username="task-user", password=SECRET, primary_registry="index.docker.io", environ=environ
    )
    assert resolver.for_registry("docker.io", "library/alpine").source == "task options"


def test_credentials_option_beats_auth_file_for_primary_and_others(tmp_path, environ):
    auth_file = write_json(
        tmp_path / "auth.json",
        {"auths": {"ghcr.io": {"auth": b64("file:x")}, "quay.io": {"auth": b64("file:y")}}},
    )
    resolver = CredentialResolver(
        credentials={
            "ghcr.io": {"username": "option-user", "password": SECRET},
            "quay.io": {"token": TOKEN},
        },
        auth_file=auth_file,
        primary_registry="ghcr.io",
        environ=environ,
    )
    ghcr = resolver.for_registry("ghcr.io", "org/app")
    assert (ghcr.username, ghcr.password, ghcr.source) == ("option-user", SECRET, "credentials option")
    quay = resolver.for_registry("quay.io", "org/app")
    assert (quay.registry_token, quay.username, quay.password) == (TOKEN, None, None)
    assert quay.source == "credentials option"


def test_auth_file_used_when_options_do_not_cover_registry(tmp_path, environ):
    auth_file = write_json(tmp_path / "auth.json", auths_for("quay.io", "file-user"))
    resolver = CredentialResolver(
        credentials={"ghcr.io": {"token": TOKEN}}, auth_file=auth_file, primary_registry="ghcr.io", environ=environ
    )
    creds = resolver.for_registry("quay.io")
    assert (creds.username, creds.password) == ("file-user", SECRET)
    assert creds.source == "auth file %s" % auth_file
    assert resolver.for_registry("registry.example.com") is None


@pytest.mark.parametrize(
    "key",
    ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/", "https://docker.io"],
)
def test_credentials_option_hub_aliases(key, environ):
    resolver = CredentialResolver(credentials={key: {"username": "hubber", "password": SECRET}}, environ=environ)
    assert resolver.for_registry("docker.io", "library/alpine").username == "hubber"


@pytest.mark.parametrize("key", ["http://127.0.0.1:5000", "127.0.0.1:5000", "https://127.0.0.1:5000/v2/"])
def test_credentials_option_keys_with_scheme_and_api_path(key, environ):
    resolver = CredentialResolver(credentials={key: {"username": "local", "password": SECRET}}, environ=environ)
    assert resolver.for_registry("127.0.0.1:5000").username == "local"
    assert resolver.for_registry("127.0.0.1:5001") is None


def test_credentials_option_repository_scope_most_specific_wins(environ):
    resolver = CredentialResolver(
        credentials={
            "ghcr.io": {"username": "registry-wide", "password": "a"},
            "ghcr.io/org-a": {"username": "org-a", "password": "b"},
            "ghcr.io/org-a/special": {"token": TOKEN},
        },
        environ=environ,
    )
    assert resolver.for_registry("ghcr.io", "org-a/app").username == "org-a"
    assert resolver.for_registry("ghcr.io", "org-a/special").registry_token == TOKEN
    assert resolver.for_registry("ghcr.io", "org-a/special/sub").registry_token == TOKEN
    assert resolver.for_registry("ghcr.io", "org-ab/app").username == "registry-wide"
    assert resolver.for_registry("ghcr.io", "org-b/app").username == "registry-wide"
    assert resolver.for_registry("ghcr.io").username == "registry-wide"


def test_numeric_password_from_yaml_is_text(environ):
    resolver = CredentialResolver(credentials={"ghcr.io": {"username": "u", "password": 12345}}, environ=environ)
    assert resolver.for_registry("ghcr.io").password == "12345"


@pytest.mark.parametrize(
    "username, password, named",
    [
        ("alice", None, "'password'"),
        ("alice", "", "'password'"),
        (None, SECRET, "'username'"),
        ("", SECRET, "'username'"),
    ],
)
def test_username_and_password_go_together(username, password, named, environ):
    with pytest.raises(InvalidInputError) as caught:
        CredentialResolver(username=username, password=password, primary_registry="ghcr.io", environ=environ)
    assert named in str(caught.value)
    assert_no_secret(str(caught.value))


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"username": "alice"}, "neither a password nor a token"),
        ({}, "neither a password nor a token"),
        ("alice:" + SECRET, "must be a dictionary"),
        (None, "must be a dictionary"),
        ({"password": SECRET}, "username is required"),
        ({"username": "alice", "password": SECRET, "token": TOKEN}, "not both"),
        ({"user": "alice", "pass": SECRET}, "unsupported key(s) pass, user"),
        ({"username": "alice", "password": ["x", SECRET]}, "password must be a string"),
    ],
)
def test_invalid_credentials_entries_name_the_key_never_the_secret(entry, message, environ):
    with pytest.raises(InvalidInputError) as caught:
        CredentialResolver(credentials={"https://ghcr.io": entry}, environ=environ)
    text = str(caught.value)
    assert "credentials['https://ghcr.io']" in text
    assert message in text
    assert_no_secret(text)


def test_credentials_keys_naming_one_registry_twice(environ):
    with pytest.raises(InvalidInputError, match="'docker.io' and 'https://index.docker.io/v1/' name the same"):
        CredentialResolver(
            credentials={"docker.io": {"token": TOKEN}, "https://index.docker.io/v1/": {"token": TOKEN}},
            environ=environ,
        )


def test_credentials_option_must_be_a_dict(environ):
    with pytest.raises(InvalidInputError, match="'credentials' must be a dictionary"):
        CredentialResolver(credentials=["ghcr.io"], environ=environ)


def test_credentials_key_without_host(environ):
    with pytest.raises(InvalidInputError, match="does not name a registry host"):
        CredentialResolver(credentials={"https://": {"token": TOKEN}}, environ=environ)


def test_options_win_without_reading_a_broken_auth_file(tmp_path, environ):
    broken = write_json(tmp_path / "broken.json", "{not json")
    resolver = CredentialResolver(
        username="u",
        password=SECRET,
        credentials={"quay.io": {"token": TOKEN}},
        auth_file=broken,
        primary_registry="ghcr.io",
        environ=environ,
    )
    assert resolver.for_registry("ghcr.io").username == "u"
    assert resolver.for_registry("quay.io").registry_token == TOKEN
    with pytest.raises(CredentialsError, match="broken.json"):
        resolver.for_registry("registry.example.com")


# Auth file search order ------------------------------------------------------------------------------

LOCATIONS = {
    "REGISTRY_AUTH_FILE": lambda root: root / "custom" / "my-auth.json",
    "XDG_RUNTIME_DIR": lambda root: root / "run" / "containers" / "auth.json",
    "XDG_CONFIG_HOME": lambda root: root / "xdg-config" / "containers" / "auth.json",
    "HOME/.config": lambda root: root / "home" / ".config" / "containers" / "auth.json",
    "DOCKER_CONFIG": lambda root: root / "docker-config" / "config.json",
    "HOME/.docker": lambda root: root / "home" / ".docker" / "config.json",
}
ORDER = list(LOCATIONS)


def location_environ(root, home, helpers, names):
    environ = {"HOME": str(home), "PATH": str(helpers.bin)}
    if "REGISTRY_AUTH_FILE" in names:
        environ["REGISTRY_AUTH_FILE"] = str(LOCATIONS["REGISTRY_AUTH_FILE"](root))
    if "XDG_RUNTIME_DIR" in names:
        environ["XDG_RUNTIME_DIR"] = str(root / "run")
    if "XDG_CONFIG_HOME" in names:
        environ["XDG_CONFIG_HOME"] = str(root / "xdg-config")
    if "DOCKER_CONFIG" in names:
        environ["DOCKER_CONFIG"] = str(root / "docker-config")
    return environ


@pytest.mark.parametrize("index", range(len(ORDER)), ids=ORDER)
def test_each_location_is_found_and_beats_the_later_ones(index, tmp_path, home, helpers):
    names = ORDER[index:]
    environ = location_environ(tmp_path, home, helpers, names)
    for position, name in enumerate(names):
        write_json(LOCATIONS[name](tmp_path), auths_for("ghcr.io", "user-%d" % (index + position)))
    creds = CredentialResolver(environ=environ).for_registry("ghcr.io")
    assert creds.username == "user-%d" % index
    assert creds.source == "auth file %s" % LOCATIONS[ORDER[index]](tmp_path)


def test_default_auth_file_paths_order(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, [name for name in ORDER if name != "XDG_CONFIG_HOME"])
    paths = CredentialResolver(environ=environ).default_auth_file_paths()
    assert paths == [str(LOCATIONS[name](tmp_path)) for name in ORDER if name != "XDG_CONFIG_HOME"]


def test_missing_default_files_are_skipped(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, ORDER)
    write_json(LOCATIONS["HOME/.docker"](tmp_path), auths_for("ghcr.io", "last-one"))
    assert CredentialResolver(environ=environ).for_registry("ghcr.io").username == "last-one"


def test_nothing_anywhere_is_anonymous(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, ORDER)
    assert CredentialResolver(environ=environ).for_registry("ghcr.io") is None
    assert CredentialResolver(environ={"PATH": str(helpers.bin)}).for_registry("ghcr.io") is None


def test_a_later_file_covers_what_an_earlier_one_does_not(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, ["XDG_RUNTIME_DIR", "HOME/.docker"])
    podman = write_json(LOCATIONS["XDG_RUNTIME_DIR"](tmp_path), auths_for("quay.io", "podman-user"))
    docker = write_json(LOCATIONS["HOME/.docker"](tmp_path), auths_for("https://index.docker.io/v1/", "hub-user"))
    resolver = CredentialResolver(environ=environ)
    assert resolver.for_registry("quay.io").source == "auth file %s" % podman
    hub = resolver.for_registry("docker.io", "library/alpine")
    assert (hub.username, hub.source) == ("hub-user", "auth file %s" % docker)


def test_auth_file_option_replaces_the_search(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, ["HOME/.docker"])
    write_json(LOCATIONS["HOME/.docker"](tmp_path), auths_for("quay.io", "default-user"))
    explicit = write_json(tmp_path / "explicit.json", auths_for("ghcr.io", "explicit-user"))
    resolver = CredentialResolver(auth_file=explicit, environ=environ)
    assert resolver.for_registry("ghcr.io").username == "explicit-user"
    assert resolver.for_registry("quay.io") is None


def test_auth_file_option_must_exist(tmp_path, environ):
    missing = str(tmp_path / "nope" / "auth.json")
    resolver = CredentialResolver(auth_file=missing, environ=environ)
    with pytest.raises(CredentialsError) as caught:
        resolver.for_registry("ghcr.io")
    assert missing in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_auth_file_option_that_is_a_directory(tmp_path, environ):
    resolver = CredentialResolver(auth_file=str(tmp_path), environ=environ)
    with pytest.raises(CredentialsError, match="Cannot read auth file %s" % tmp_path):
        resolver.for_registry("ghcr.io")


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"auths": {"ghcr.io": {"auth": "%s"}' % b64("alice:" + SECRET), "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"auths": ["ghcr.io"]}', "'auths' must be an object"),
        ('{"auths": {"ghcr.io": "alice:%s"}}' % SECRET, "auths entry 'ghcr.io' must be an object"),
        ('{"credHelpers": ["x"]}', "'credHelpers' must be an object"),
        ('{"credsStore": "../../bin/sh"}', "credsStore must name a credential helper"),
        ('{"credHelpers": {"ghcr.io": 5}}', "credHelpers entry 'ghcr.io' must name a credential helper"),
        ('{"auths": {"ghcr.io": {"auth": 12}}}', "'auth' of auths entry 'ghcr.io' must be a string"),
    ],
)
@pytest.mark.parametrize("explicit", [True, False], ids=["auth_file", "default"])
def test_malformed_auth_files_are_errors_naming_the_file(content, message, explicit, tmp_path, home, environ):
    path = write_json(home / ".docker" / "config.json", content)
    resolver = CredentialResolver(auth_file=path if explicit else None, environ=environ)
    with pytest.raises(CredentialsError) as caught:
        resolver.for_registry("ghcr.io")
    text = str(caught.value)
    assert path in text
    assert message in text
    assert_no_secret(text)


def test_empty_auth_file_is_an_empty_configuration(home, environ):
    write_json(home / ".docker" / "config.json", "  \n")
    assert CredentialResolver(environ=environ).for_registry("ghcr.io") is None


# auths entries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, registry",
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("registry.example.com", "registry.example.com"),
        ("https://registry.example.com", "registry.example.com"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_auths_key_forms(key, registry, tmp_path, environ):
    path = write_json(tmp_path / "auth.json", auths_for(key, "keyed"))
    resolver = CredentialResolver(auth_file=path, environ=environ)
    creds = resolver.for_registry(registry, "team/app")
    assert (creds.username, creds.password) == ("keyed", SECRET)
    assert resolver.for_registry("other.example.com", "team/app") is None


def test_auths_username_and_password_fields(tmp_path, environ):
    path = write_json(tmp_path / "auth.json", {"auths": {"ghcr.io": {"username": "plain", "password": SECRET}}})
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    assert (creds.username, creds.password) == ("plain", SECRET)


def test_auths_auth_field_wins_over_username_fields_like_docker(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {"auths": {"ghcr.io": {"auth": b64("encoded:" + SECRET), "username": "plain", "password": "other"}}},
    )
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    assert (creds.username, creds.password) == ("encoded", SECRET)


def test_auths_password_with_colons_and_nul_padding(tmp_path, environ):
    path = write_json(tmp_path / "auth.json", {"auths": {"ghcr.io": {"auth": b64("u:pa:ss:%s\x00\x00" % SECRET)}}})
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io").password == "pa:ss:" + SECRET


def test_auths_auth_without_padding_is_accepted(tmp_path, environ):
    encoded = b64("alice:" + SECRET + "xy").rstrip("=")
    assert len(encoded) % 4, "the test needs a value whose base64 has padding"
    path = write_json(tmp_path / "auth.json", {"auths": {"ghcr.io": {"auth": encoded}}})
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io").password == SECRET + "xy"


def test_auths_identitytoken(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {
            "auths": {
                "myregistry.azurecr.io": {
                    "auth": b64("00000000-0000-0000-0000-000000000000:"),
                    "identitytoken": IDENTITY,
                }
            }
        },
    )
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("myregistry.azurecr.io")
    assert creds.identity_token == IDENTITY
    assert creds.username == "00000000-0000-0000-0000-000000000000"
    assert creds.password is None
    assert not creds.is_empty
    assert_no_secret(repr(creds))


def test_auths_registrytoken(tmp_path, environ):
    path = write_json(tmp_path / "auth.json", {"auths": {"https://ghcr.io": {"registrytoken": TOKEN}}})
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    assert (creds.registry_token, creds.username, creds.password) == (TOKEN, None, None)


def test_podman_repository_scoped_keys_most_specific_wins(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {
            "auths": {
                "quay.io": {"auth": b64("registry-wide:a")},
                "quay.io/team": {"auth": b64("team:b")},
                "quay.io/team/app": {"auth": b64("app:c")},
                "docker.io/library/alpine": {"auth": b64("alpine:d")},
            }
        },
    )
    resolver = CredentialResolver(auth_file=path, environ=environ)
    assert resolver.for_registry("quay.io", "team/app").username == "app"
    assert resolver.for_registry("quay.io", "team/other").username == "team"
    assert resolver.for_registry("quay.io", "teammate/app").username == "registry-wide"
    assert resolver.for_registry("quay.io").username == "registry-wide"
    assert resolver.for_registry("docker.io", "library/alpine").username == "alpine"
    assert resolver.for_registry("docker.io", "library/busybox") is None


def test_entries_without_a_credential_do_not_shadow_others(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {
            "auths": {
                "quay.io/team": {},
                "quay.io/team/app": {"auth": b64("user-only:")},
                "quay.io": {"auth": b64("r:x")},
            }
        },
    )
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("quay.io", "team/app").username == "r"


def test_canonical_key_preferred_among_aliases(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {"auths": {"https://index.docker.io/v1/": {"auth": b64("docker:x")}, "docker.io": {"auth": b64("podman:y")}}},
    )
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("docker.io").username == "podman"


@pytest.mark.parametrize(
    "auth, message",
    [
        ("!!%s!!" % SECRET, "is not base64"),
        (b64("no-colon-" + SECRET), "does not decode to 'username:password'"),
        (b64(":" + SECRET), "does not decode to 'username:password'"),
        (base64.b64encode(b"\xff\xfe:" + SECRET.encode()).decode(), "is not base64"),
    ],
)
def test_bad_auth_values_name_file_and_key_never_the_secret(auth, message, tmp_path, environ):
    path = write_json(tmp_path / "auth.json", {"auths": {"https://ghcr.io/v1/": {"auth": auth}}})
    resolver = CredentialResolver(auth_file=path, environ=environ)
    with pytest.raises(CredentialsError) as caught:
        resolver.for_registry("ghcr.io")
    text = str(caught.value)
    assert path in text
    assert "'https://ghcr.io/v1/'" in text
    assert message in text
    assert_no_secret(text)
    assert auth not in text


def test_bad_entry_for_another_registry_does_not_matter(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json", {"auths": {"quay.io": {"auth": "!!bad!!"}, "ghcr.io": {"auth": b64("ok:" + SECRET)}}}
    )
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io").username == "ok"


# Credential helpers -----------------------------------------------------------------------------------


def test_creds_store_helper_is_run_with_the_host_on_stdin(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": {"Username": "helper-user", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    creds = CredentialResolver(auth_file=path, environ=dict(environ, HELPER_MARKER="seen")).for_registry("ghcr.io")
    assert (creds.username, creds.password) == ("helper-user", HELPER_SECRET)
    assert creds.source == "credential helper docker-credential-store"
    assert helpers.calls("store") == [{"argv": ["get"], "server": "ghcr.io", "marker": "seen"}]
    assert_no_secret(repr(creds))


def test_hub_is_asked_by_dockers_legacy_url(tmp_path, helpers, environ):
    helpers.add("store", {"https://index.docker.io/v1/": {"Username": "hubber", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("docker.io", "library/alpine")
    assert creds.username == "hubber"
    assert [call["server"] for call in helpers.calls("store")] == ["https://index.docker.io/v1/"]


def test_hub_falls_back_to_podmans_key_in_the_helper(tmp_path, helpers, environ):
    helpers.add("store", {"docker.io": {"Username": "podman-hub", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("docker.io").username == "podman-hub"
    assert [call["server"] for call in helpers.calls("store")] == ["https://index.docker.io/v1/", "docker.io"]


def test_helper_falls_back_to_https_url_key(tmp_path, helpers, environ):
    helpers.add("store", {"https://registry.example.com": {"Username": "old-docker", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("registry.example.com")
    assert creds.username == "old-docker"


def test_helper_token_username_means_identity_token(tmp_path, helpers, environ):
    helpers.add("store", {"myregistry.azurecr.io": {"Username": "<token>", "Secret": IDENTITY}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    creds = CredentialResolver(auth_file=path, environ=environ).for_registry("myregistry.azurecr.io")
    assert (creds.identity_token, creds.username, creds.password) == (IDENTITY, None, None)


def test_cred_helpers_beat_creds_store(tmp_path, helpers, environ):
    helpers.add(
        "store", {"ghcr.io": {"Username": "from-store", "Secret": "a"}, "quay.io": {"Username": "q", "Secret": "b"}}
    )
    helpers.add("gh", {"ghcr.io": {"Username": "from-gh", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store", "credHelpers": {"https://ghcr.io": "gh"}})
    resolver = CredentialResolver(auth_file=path, environ=environ)
    assert resolver.for_registry("ghcr.io").username == "from-gh"
    assert resolver.for_registry("quay.io").username == "q"
    assert [call["server"] for call in helpers.calls("store")] == ["quay.io"]


def test_cred_helpers_key_for_hub_in_docker_form(tmp_path, helpers, environ):
    helpers.add("hub", {"https://index.docker.io/v1/": {"Username": "hubber", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credHelpers": {"https://index.docker.io/v1/": "hub"}})
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("docker.io").username == "hubber"


def test_helper_beats_auths_entry_like_docker(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": {"Username": "from-store", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", dict(auths_for("ghcr.io", "from-auths"), credsStore="store"))
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io").username == "from-store"


def test_helper_not_found_falls_back_to_auths_then_anonymous(tmp_path, helpers, environ):
    helpers.add("store", {})
    path = write_json(
        tmp_path / "config.json",
        {"credsStore": "store", "auths": {"ghcr.io": {"auth": b64("fallback:" + SECRET)}, "quay.io": {}}},
    )
    resolver = CredentialResolver(auth_file=path, environ=environ)
    creds = resolver.for_registry("ghcr.io")
    assert (creds.username, creds.source) == ("fallback", "auth file %s" % path)
    assert resolver.for_registry("quay.io") is None
    assert [call["server"] for call in helpers.calls("store")] == [
        "ghcr.io",
        "https://ghcr.io",
        "quay.io",
        "https://quay.io",
    ]


def test_helper_empty_secret_is_no_credentials(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": {"Username": "", "Secret": ""}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    assert CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io") is None


def test_helper_not_found_in_next_default_file(tmp_path, home, helpers):
    environ = location_environ(tmp_path, home, helpers, ["XDG_RUNTIME_DIR", "HOME/.docker"])
    helpers.add("store", {})
    write_json(LOCATIONS["XDG_RUNTIME_DIR"](tmp_path), {"credsStore": "store"})
    write_json(LOCATIONS["HOME/.docker"](tmp_path), auths_for("ghcr.io", "docker-file"))
    assert CredentialResolver(environ=environ).for_registry("ghcr.io").username == "docker-file"


def test_helper_is_asked_once_per_run(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": {"Username": "u", "Secret": HELPER_SECRET}})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    resolver = CredentialResolver(auth_file=path, environ=environ)
    threads = [threading.Thread(target=resolver.for_registry, args=("ghcr.io", "org/app%d" % n)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resolver.for_registry("ghcr.io").username == "u"
    assert len(helpers.calls("store")) == 1


def test_missing_helper_is_an_error_naming_it(tmp_path, environ):
    path = write_json(tmp_path / "config.json", dict(auths_for("ghcr.io"), credsStore="desktop"))
    with pytest.raises(CredentialsError) as caught:
        CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    text = str(caught.value)
    assert "docker-credential-desktop" in text
    assert "credsStore in %s" % path in text
    assert "not installed or not on PATH" in text
    assert_no_secret(text)


def test_failing_helper_is_an_error_that_never_echoes_stdout(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": "fail"})
    path = write_json(tmp_path / "config.json", {"credHelpers": {"ghcr.io": "store"}})
    with pytest.raises(CredentialsError) as caught:
        CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    text = str(caught.value)
    assert "docker-credential-store (credHelpers in %s) failed for ghcr.io with exit code 3" % path in text
    assert "backend exploded" in text
    assert "leaky stdout" not in text
    assert_no_secret(text)


def test_helper_answer_that_is_not_json(tmp_path, helpers, environ):
    helpers.add("store", {"ghcr.io": "garbage"})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    with pytest.raises(CredentialsError) as caught:
        CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    assert "not a JSON object with Username and Secret" in str(caught.value)
    assert_no_secret(str(caught.value))


def test_helper_timeout(tmp_path, helpers, environ, monkeypatch):
    monkeypatch.setattr(_credentials, "HELPER_TIMEOUT", 0.5)
    helpers.add("store", {"ghcr.io": "sleep"})
    path = write_json(tmp_path / "config.json", {"credsStore": "store"})
    with pytest.raises(CredentialsError, match="docker-credential-store .* did not answer within"):
        CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")


def test_helper_that_cannot_be_executed(tmp_path, helpers, environ):
    program = helpers.bin / "docker-credential-broken"
    program.write_text("#!/nonexistent/interpreter\n")
    program.chmod(0o755)
    path = write_json(tmp_path / "config.json", {"credsStore": "broken"})
    with pytest.raises(CredentialsError) as caught:
        CredentialResolver(auth_file=path, environ=environ).for_registry("ghcr.io")
    assert "docker-credential-broken (credsStore in %s) could not be run: " % path in str(caught.value)


def test_injected_run_command(tmp_path, environ):
    asked = []

    def run_command(argv, stdin_text, env, timeout):
        asked.append((argv, stdin_text, env, timeout))
        return 0, json.dumps({"ServerURL": stdin_text, "Username": "injected", "Secret": HELPER_SECRET}), ""

    path = write_json(tmp_path / "config.json", {"credsStore": "fake"})
    resolver = CredentialResolver(auth_file=path, environ=environ, run_command=run_command)
    assert resolver.for_registry("ghcr.io").username == "injected"
    assert asked == [(["docker-credential-fake", "get"], "ghcr.io", environ, _credentials.HELPER_TIMEOUT)]


def test_default_environment_is_the_process_environment(tmp_path, home, helpers, monkeypatch):
    helpers.add("store", {"ghcr.io": {"Username": "via-os-environ", "Secret": HELPER_SECRET}})
    write_json(home / ".docker" / "config.json", {"credsStore": "store"})
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(helpers.bin) + os.pathsep + os.environ.get("PATH", ""))
    assert CredentialResolver().for_registry("ghcr.io").username == "via-os-environ"


# Where the task's credentials came from, and what to say when a registry has none ---------------------------


@pytest.mark.parametrize(
    "from_environment, given_as, source",
    [
        ((), "task", "task options"),
        ((), "lookup", "lookup options"),
        (("username", "password"), "task", "environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD"),
        (("password",), "task", "task option username and environment variable REGISTRY_PASSWORD"),
        (("username",), "lookup", "environment variable REGISTRY_USERNAME and lookup option password"),
    ],
)
def test_task_credentials_source_names_options_and_variables(from_environment, given_as, source):
    assert task_credentials_source(from_environment, given_as) == source


def test_the_source_of_task_credentials_is_theirs(environ):
    source = task_credentials_source(["username", "password"])
    resolver = CredentialResolver(
        username="alice", password=SECRET, primary_registry="ghcr.io", environ=environ, credentials_source=source
    )
    assert resolver.for_registry("ghcr.io").source == "environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD"


def test_advice_for_another_registry_says_whose_the_task_credentials_are(environ):
    resolver = CredentialResolver(
        username="alice",
        password=SECRET,
        primary_registry="https://ghcr.io",
        environ=environ,
        credentials_source="environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD",
    )
    assert resolver.missing_credentials_advice("Quay.io") == (
        "the username and password from environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD apply only to"
        " ghcr.io, the registry of the task's main reference; give the credentials for quay.io in the credentials"
        " option or an auth file"
    )
    lookup = CredentialResolver(
        username="alice",
        password=SECRET,
        primary_registry="ghcr.io",
        environ=environ,
        credentials_source="lookup options",
        primary_role="the lookup's first reference",
    )
    assert "from lookup options apply only to ghcr.io, the registry of the lookup's first reference" in (
        lookup.missing_credentials_advice("quay.io")
    )
    assert_no_secret(resolver.missing_credentials_advice("quay.io"))


def test_advice_without_task_credentials_or_for_their_registry_is_to_give_some(environ):
    generic = "set username and password, credentials, or an auth file"
    given = CredentialResolver(username="alice", password=SECRET, primary_registry="ghcr.io", environ=environ)
    assert given.missing_credentials_advice("ghcr.io") == generic  # theirs (then they were rejected, not missing)
    assert CredentialResolver(primary_registry="ghcr.io", environ=environ).missing_credentials_advice("quay.io") == (
        generic
    )
    unplaced = CredentialResolver(username="alice", password=SECRET, environ=environ)
    assert unplaced.missing_credentials_advice("quay.io").startswith("username and password (from task options)")


# Auth file entries that cannot be used -----------------------------------------------------------------------


def test_an_entry_with_a_password_but_no_username_is_passed_over_with_a_warning(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {"auths": {"quay.io/team": {"password": SECRET}, "quay.io": {"auth": b64("r:x")}, "ghcr.io": {}}},
    )
    resolver = CredentialResolver(auth_file=path, environ=environ)

    assert resolver.for_registry("quay.io", "team/app").username == "r"  # the next entry that fits
    assert resolver.for_registry("quay.io", "team/other").username == "r"
    assert resolver.for_registry("ghcr.io") is None  # an empty entry (docker's, beside a credsStore) says nothing

    assert resolver.warnings == [  # once, however often the entry is consulted
        "Auth file %s: auths entry 'quay.io/team' has a password but no username, so it is not used for quay.io:"
        " add the username, or give both as 'auth' (base64 of user:password)" % path
    ]
    assert_no_secret(" ".join(resolver.warnings))


def test_an_entry_with_a_username_but_no_password_warns_too(tmp_path, environ):
    path = write_json(tmp_path / "auth.json", {"auths": {"ghcr.io": {"username": "alice"}}})
    resolver = CredentialResolver(auth_file=path, environ=environ)
    assert resolver.for_registry("ghcr.io") is None
    assert resolver.warnings == [
        "Auth file %s: auths entry 'ghcr.io' has a username but no password, so it is not used for ghcr.io: add the"
        " password, or give both as 'auth' (base64 of user:password)" % path
    ]


def test_entries_for_other_registries_and_usable_ones_do_not_warn(tmp_path, environ):
    path = write_json(
        tmp_path / "auth.json",
        {
            "auths": {
                "quay.io": {"password": SECRET},
                "ghcr.io": {"identitytoken": IDENTITY, "username": "alice"},
                "registry.example.com": {"username": "bob", "password": SECRET},
            }
        },
    )
    resolver = CredentialResolver(auth_file=path, environ=environ)
    assert resolver.for_registry("ghcr.io").identity_token == IDENTITY
    assert resolver.for_registry("registry.example.com").username == "bob"
    assert resolver.warnings == []


def test_a_half_entry_in_a_default_file_warns_and_the_next_file_is_read(tmp_path, home, helpers):
    podman = write_json(home / ".config" / "containers" / "auth.json", {"auths": {"quay.io": {"password": SECRET}}})
    write_json(home / ".docker" / "config.json", auths_for("quay.io", "docker-user"))
    resolver = CredentialResolver(environ={"HOME": str(home), "PATH": str(helpers.bin)})
    assert resolver.for_registry("quay.io").username == "docker-user"
    assert len(resolver.warnings) == 1 and resolver.warnings[0].startswith("Auth file %s: " % podman)

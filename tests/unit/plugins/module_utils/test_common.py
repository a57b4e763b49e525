# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared options' checks: how an option value that ansible-core cannot convert gets named in the message,
whatever the core's wording, and the TLS files the options name, checked before the first request."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._common import (
    _name_the_value,
    connection_argument_spec,
    connection_problems,
)

SPEC: dict[str, Any] = {
    **connection_argument_spec(),
    "concurrency": {"type": "int", "default": 8},
    "retention": {"type": "dict", "options": {"keep_last": {"type": "int"}, "older_than": {"type": "str"}}},
}
OLD_TOP = (
    "argument 'concurrency' is of type <class 'str'> and we were unable to convert to int: <class 'str'> cannot be"
    " converted to an int"
)
OLD_NESTED = (
    "argument 'keep_last' is of type <class 'str'> found in 'retention'. and we were unable to convert to int:"
    " <class 'str'> cannot be converted to an int"
)


def test_an_old_core_message_gets_the_value_it_left_out() -> None:
    assert _name_the_value(OLD_TOP, {"concurrency": "many"}, SPEC) == OLD_TOP + "; got 'many'"


def test_a_suboption_value_is_found_through_its_context() -> None:
    params = {"retention": {"keep_last": "three"}}
    assert _name_the_value(OLD_NESTED, params, SPEC) == OLD_NESTED + "; got 'three'"


def test_a_secret_option_is_never_echoed() -> None:
    message = OLD_TOP.replace("concurrency", "credentials").replace("to int", "to dict")
    assert _name_the_value(message, {"credentials": "s3cret-token"}, SPEC) == message
    message = OLD_TOP.replace("concurrency", "password")
    assert _name_the_value(message, {"password": "s3cret"}, SPEC) == message


@pytest.mark.parametrize(
    "message, params",
    [
        # ansible-core 2.19 and later name the value themselves
        (
            "argument 'concurrency' is of type str and we were unable to convert to int: \"'many'\" cannot be"
            " converted to an int",
            {"concurrency": "many"},
        ),
        ("timeout must be a positive number of seconds, got -1", {"timeout": -1}),
        (OLD_TOP, {}),  # given under an alias, or not at all: no guessing
        (OLD_TOP.replace("concurrency", "unknown"), {"unknown": "x"}),
        (OLD_NESTED, {"retention": "not a dict"}),
        (OLD_TOP, {"concurrency": ["a", "list"]}),
        (None, {"concurrency": "many"}),
    ],
)
def test_anything_else_is_left_as_it_is(message: Any, params: dict[str, Any]) -> None:
    assert _name_the_value(message, params, SPEC) == message


def test_a_long_value_is_shortened() -> None:
    named = _name_the_value(OLD_TOP, {"concurrency": "x" * 500}, SPEC)
    assert named.startswith(OLD_TOP + "; got 'xxx") and named.endswith("...")
    assert len(named) - len(OLD_TOP) < 100


# -- TLS files: named with their option, before the first request ------------------------------------------------

BASE = {"timeout": 10.0, "retries": 0, "validate_certs": True}
TO_TRUST = "give the PEM file (or directory) of the CA certificates to trust"


@pytest.fixture
def pem(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "present.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_tls_files_that_exist_are_fine(pem: Any) -> None:
    assert connection_problems({**BASE, "ca_path": str(pem), "client_cert": str(pem), "client_key": str(pem)}) == []
    assert connection_problems({**BASE, "ca_path": str(pem.parent)}) == []  # requests takes a directory of CAs too


def test_missing_tls_files_are_named_with_their_option(pem: Any) -> None:
    missing = pem.with_name("missing.pem")
    options = {**BASE, "ca_path": str(missing), "client_cert": str(missing), "client_key": str(pem.parent)}
    assert connection_problems(options) == [
        "ca_path names %s, which does not exist: %s" % (missing, TO_TRUST),
        "client_cert names %s, which does not exist: give the PEM file of the client certificate" % missing,
        "client_key names %s, which is not a file: give the PEM file of the private key of the client certificate"
        % pem.parent,
    ]


def test_ca_path_is_not_checked_when_certificates_are_not_verified(pem: Any) -> None:
    assert connection_problems({**BASE, "validate_certs": False, "ca_path": str(pem.with_name("missing.pem"))}) == []


def test_a_missing_ca_bundle_named_by_the_environment_is_named_with_its_variable(
    pem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = pem.with_name("missing-bundle.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(missing))
    assert connection_problems(BASE) == [
        "the environment variable CURL_CA_BUNDLE names %s, which does not exist: %s" % (missing, TO_TRUST)
    ]
    assert connection_problems({**BASE, "ca_path": str(pem)}) == []  # ca_path comes first: the variable is not used

# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by every module: the common options, client set-up, and error reporting.

The options here are documented once, in the ``ocireg.registry.connection`` doc fragment. Every
module builds its ``AnsibleModule`` with :func:`registry_module` and wraps its work in
:func:`registry_errors`, the single place where client exceptions become ``fail_json``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.ocireg.registry.plugins.module_utils._errors import RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._oci.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._registry.clients import (
    RegistryClients,
    clients_for,
    connection_problems,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.credentials import (
    ENVIRONMENT_VARIABLES,
    task_credentials_source,
)
from ansible_collections.ocireg.registry.plugins.module_utils._registry.transport import REQUESTS_IMPORT_ERROR


def connection_argument_spec() -> dict[str, Any]:
    """The options of the ``ocireg.registry.connection`` doc fragment."""
    return {
        "username": {"type": "str", "fallback": (env_fallback, [ENVIRONMENT_VARIABLES["username"]])},
        "password": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, [ENVIRONMENT_VARIABLES["password"]]),
        },
        "credentials": {"type": "dict", "no_log": True},
        "auth_file": {"type": "path", "aliases": ["config_path"]},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "client_cert": {"type": "path"},
        "client_key": {"type": "path"},
        "timeout": {"type": "float", "default": 60.0},
        "retries": {"type": "int", "default": 5},
    }


# How ansible-core before 2.19 words an option value it cannot convert, without the value itself:
# "argument 'concurrency' is of type <class 'str'> and we were unable to convert to int: <class 'str'> cannot be
# converted to an int". 2.19 and later name the value, and do not match.
_UNCONVERTIBLE = re.compile(
    r"argument '(?P<name>[^']+)' is of type <class '[^']+'>(?: found in '(?P<context>[^']+)'\.)?"
    r" and we were unable to convert to "
)
_SHOWN_VALUE_CHARS = 80


class _RegistryModule(AnsibleModule):
    """``AnsibleModule`` that knows what the task itself gave, and reports what its registry clients learnt.

    Its messages about an option value it cannot convert name the value, on every core. It remembers which of
    ``username`` and ``password`` the task's arguments held, before validation fills in the others from their
    environment variables, so that messages can name where credentials came from. The warnings of the clients
    made for it (:func:`registry_clients`) go out with its result, failed or not.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self.given_by_task: frozenset[str] = frozenset()
        self.client_sets: list[RegistryClients] = []
        super().__init__(*args, **kwargs)

    def _load_params(self) -> None:
        super()._load_params()
        # The task's arguments as sent, before validation applies the env fallbacks: a key is there when the task
        # (or module_defaults) set it, even to null, which also keeps the fallback from applying.
        self.given_by_task = frozenset(name for name in ENVIRONMENT_VARIABLES if name in (self.params or {}))

    @property
    def credentials_source(self) -> str:
        """Where ``username`` and ``password`` came from: task options, their environment variables, or both."""
        from_environment = [
            name for name in ENVIRONMENT_VARIABLES if name not in self.given_by_task and self.params.get(name)
        ]
        return task_credentials_source(from_environment)

    def _report_client_warnings(self) -> None:
        for clients in self.client_sets:
            for warning in clients.warnings:
                self.warn(warning)
        self.client_sets = []

    def exit_json(self, **kwargs: Any) -> Any:  # type: ignore[override]
        self._report_client_warnings()
        return super().exit_json(**kwargs)

    def fail_json(self, msg: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._report_client_warnings()
        return super().fail_json(msg=_name_the_value(msg, self.params, self.argument_spec), **kwargs)


def _name_the_value(msg: Any, params: Any, spec: dict[str, Any]) -> Any:
    match = _UNCONVERTIBLE.search(msg) if isinstance(msg, str) else None
    if match is None or not isinstance(params, dict):
        return msg
    path = [part.strip() for part in (match.group("context") or "").split("->") if part.strip()]
    path.append(match.group("name"))
    level: Any = spec
    value: Any = params
    for option in path:
        option_spec = level.get(option) if isinstance(level, dict) else None
        if not isinstance(option_spec, dict) or option_spec.get("no_log"):
            return msg  # never echo anything given under a secret option, nor guess through aliases
        if not isinstance(value, dict) or option not in value:
            return msg
        level, value = option_spec.get("options"), value[option]
    if not isinstance(value, (str, int, float, bool)):
        return msg
    shown = repr(value)
    if len(shown) > _SHOWN_VALUE_CHARS:
        shown = shown[: _SHOWN_VALUE_CHARS - 3] + "..."
    return "%s; got %s" % (msg, shown)


def registry_module(argument_spec: dict[str, Any], **kwargs: Any) -> AnsibleModule:
    """An ``AnsibleModule`` with the shared options added and ``requests`` checked."""
    spec = connection_argument_spec()
    spec.update(argument_spec)
    required_by = dict(kwargs.pop("required_by", {}), client_key="client_cert")
    module = _RegistryModule(argument_spec=spec, required_by=required_by, **kwargs)
    _reveal_user_names(module)
    if REQUESTS_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
    problems = connection_problems(module.params)
    if problems:
        module.fail_json(msg="; ".join(problems))
    return module


def _reveal_user_names(module: AnsibleModule) -> None:
    """Take the user names in ``credentials`` off the module's list of values to mask.

    ``credentials`` is ``no_log``, which masks every value in it, user names included, everywhere in the
    result: an authentication error could not say as which user it failed, and a repository that contains
    the user name would show as ``********``. A user name is not a secret; one that equals a password or
    token stays masked.
    """
    credentials = module.params.get("credentials")
    if not isinstance(credentials, dict):
        return
    entries = [entry for entry in credentials.values() if isinstance(entry, dict)]
    values = [entry.get(key) for entry in entries for key in ("password", "token")] + [module.params.get("password")]
    secrets = {value for value in values if isinstance(value, str)}
    for entry in entries:
        name = entry.get("username")
        if isinstance(name, str) and name not in secrets:
            module.no_log_values.discard(name)


def registry_clients(module: Any, primary: Reference | str | None, pool_size: int = 16) -> RegistryClients:
    """Clients for every registry a task touches; task credentials apply to ``primary``'s registry.

    ``module`` is the task's module (from :func:`registry_module`): its messages name the real origin of
    ``username``/``password``, and it reports the clients' warnings. ``primary`` is the task's main reference, or a
    bare registry host.
    """
    clients = clients_for(module.params, primary, pool_size, credentials_source=module.credentials_source)
    module.client_sets.append(clients)
    return clients


@contextlib.contextmanager
def registry_errors(module: AnsibleModule, **result: Any) -> Iterator[None]:
    """Turn any client error raised inside the block into ``fail_json`` with its message.

    ``result`` carries what the module already knows (e.g. ``changed``) into the failure; a callable value is asked
    at the failure, for what the block found out on its way (``changed=lambda: task.changed_so_far``).
    """
    try:
        yield
    except RegistryError as err:
        module.fail_json(msg=str(err), **{key: value() if callable(value) else value for key, value in result.items()})

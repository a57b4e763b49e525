"""Secrets never reach the output, even at -vvvv; wrong credentials say what failed, where and as whom.

Every module, the lookup and the filter run in one playbook at -vvvv against a registry with htpasswd (Basic)
auth and one with token auth, once with the right password and once with a wrong one. The password travels by
every road a user may take: the username/password options, the credentials option, an auth file (whose "auth"
field is the Basic value itself), the REGISTRY_USERNAME/REGISTRY_PASSWORD environment of ansible-playbook, and
lookup keywords. Then the whole output (stdout and stderr) is searched for the passwords, the Basic
Authorization values (base64 of user:password) and every token the issuer handed out.

(Not the task keyword `environment:`: at -vvvv Ansible itself prints it on the EXEC line, whatever the module
does. reliability.rst says so.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

INFO = "ocireg.registry.registry_info"
TAG = "ocireg.registry.registry_tag"
IMAGE = "ocireg.registry.registry_image"
REPO = "ocireg.registry.registry_repo"
MODULE_TASKS = ["info image", "info catalog", "tag", "image", "repo", "lookup", "lookup from the environment"]
# Tasks that take their credentials another way say so: otherwise the environment's would apply to them too.
NOT_FROM_THE_ENVIRONMENT = {"username": None, "password": None}
PASSWORD = "{{ lookup('ansible.builtin.env', 'REGISTRY_PASSWORD') }}"

Playbook = Callable[..., PlaybookRun]


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def every_task(server: RegistryServer, user: str, password: str, auth_file: Path) -> list[dict[str, Any]]:
    """One task per plugin, each taking the credentials by another road.

    The password comes from a template, as in real playbooks (vault, CI secrets): ansible-core 2.19 quotes the
    playbook lines around a failed task, so a password written into the playbook would show up there, and at
    -vvvv it prints the extra vars given with -e. Here the template reads the environment of ansible-playbook.
    """
    host = server.host
    login = {"username": user, "password": PASSWORD}
    auth_file.write_text(json.dumps({"auths": {host: {"auth": basic(user, password)}}}))

    def module(name: str, plugin: str, **options: Any) -> dict[str, Any]:
        return {"name": name, plugin: options, "ignore_errors": True}

    return [
        module("info image", INFO, image=f"{host}/t/app:v1", **login),
        module("info catalog", INFO, registry=host, details=True, **login),
        module(
            "tag",
            TAG,
            repository=f"{host}/t/app",
            tag=["v2"],
            source=f"{host}/t/app:v1",
            credentials={host: login},
            **NOT_FROM_THE_ENVIRONMENT,
        ),
        module(
            "image",
            IMAGE,
            src=f"{host}/t/app:v1",
            dest=f"{host}/t/copy:v1",
            auth_file=str(auth_file),
            **NOT_FROM_THE_ENVIRONMENT,
        ),
        module("repo", REPO, repository=f"{host}/t/app", retention={"keep_last": 5}),  # from the environment
        {
            "name": "lookup",
            "ansible.builtin.debug": {
                "msg": "{{ lookup('ocireg.registry.registry_digest', ref, username=user, password=secret) }}"
            },
            "vars": {"ref": f"{host}/t/app:v1", "user": user, "secret": PASSWORD},
            "ignore_errors": True,
        },
        {
            "name": "lookup from the environment",
            "ansible.builtin.debug": {"msg": "{{ lookup('ocireg.registry.registry_digest', ref) }}"},
            "vars": {"ref": f"{host}/t/app:v1"},
            "ignore_errors": True,
        },
        {
            "name": "filter",
            "ansible.builtin.debug": {"msg": "{{ ref | ocireg.registry.parse_reference }}"},
            "vars": {"ref": f"{host}/t/app:v1"},
        },
    ]


def outcome(run: PlaybookRun, name: str) -> tuple[str, dict[str, Any]]:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries, run.output
    return entries[-1]["status"], entries[-1]["result"]


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_no_secret_in_the_output_at_vvvv_and_wrong_credentials_say_so(
    kind: str,
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    server = registry_factory(kind)
    image = image_factory(layers=1, layer_size=2000)
    skopeo(server).copy(image.oci, "t/app:v1")
    user, password = server.username or "", server.password or ""
    wrong = password[::-1] + "-wrong"

    right = playbook(
        every_task(server, user, password, tmp_path / "auth-right.json"),
        verbosity=4,
        env={"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": password},
    )
    denied = playbook(
        every_task(server, user, wrong, tmp_path / "auth-wrong.json"),
        verbosity=4,
        env={"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": wrong},
    )

    # The right password works everywhere...
    for name in [*MODULE_TASKS, "filter"]:
        status, result = outcome(right, name)
        assert status == "ok", (name, result)
    assert outcome(right, "lookup")[1]["msg"] == outcome(right, "lookup from the environment")[1]["msg"] == image.digest
    assert skopeo(server).digest("t/copy:v1") == image.digest
    # ...a wrong one fails everywhere, saying authentication failed, for which registry, as which user.
    for name in MODULE_TASKS:
        status, result = outcome(denied, name)
        message = result.get("msg", "")
        assert status == "failed", (name, result)
        assert "uthentication failed" in message, (name, message)
        assert server.host in message and f"'{user}'" in message, (name, message)
    assert outcome(denied, "filter")[0] == "ok"

    issuer = server.token_issuer
    tokens = [] if issuer is None else [*issuer.handed_out, *issuer.refresh_tokens]
    if kind == "token":
        assert len(tokens) >= 5  # the run really held tokens that could have leaked
    secrets = [password, wrong, basic(user, password), basic(user, wrong), *tokens]
    for run in (right, denied):
        leaked = [secret for secret in secrets if secret in run.output]
        assert leaked == [], "secrets in the output: %s" % [s[:8] + "..." for s in leaked]
    # the output is the verbose one: module arguments are shown, with the secrets masked
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in right.output and "<localhost> EXEC" in right.output

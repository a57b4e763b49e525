"""Challenge-driven auth of the shared client against the real registry: htpasswd Basic and token (Bearer) auth.

Witnesses: the registry's access log (statuses, one 401 handshake), the token issuer's request log (scopes,
grant types, who asked) and, for headers on the wire, a FaultProxy in pass-through mode.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.client import ClientFactory, ours
from support.faultproxy import FaultProxy
from support.images import Image, read_blob
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo
from support.tokenissuer import TokenIssuer

from ansible_collections.ocireg.registry.plugins.module_utils._errors import AuthenticationError, PermissionDeniedError

BLOB = b"a small blob for auth tests\n"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    factory = ClientFactory()
    yield factory
    factory.close()


@pytest.fixture
def pushed(
    image_factory: Callable[..., Image], skopeo: Callable[..., Skopeo], unique_repo: str
) -> Callable[[RegistryServer], Image]:
    """pushed(server) -> an image skopeo pushed to unique_repo:v1 on SERVER."""

    def push(server: RegistryServer) -> Image:
        image = image_factory(layers=1)
        skopeo(server).copy(image.oci, f"{unique_repo}:v1")
        return image

    return push


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def statuses(server: RegistryServer, mark: int) -> list[int]:
    return [entry["status"] for entry in ours(server.requests_since(mark))]


# -- htpasswd (Basic) ---------------------------------------------------------------------------------------------


def test_basic_auth_with_the_right_password(
    registry_htpasswd: RegistryServer, connect: ClientFactory, pushed: Callable[..., Image], unique_repo: str
) -> None:
    image = pushed(registry_htpasswd)
    client = connect(registry_htpasswd, unique_repo)
    mark = registry_htpasswd.mark()

    assert client.list_tags(unique_repo) == ["v1"]
    assert client.get_manifest(unique_repo, "v1").digest == image.digest
    layer = image.platforms["linux/amd64"].layers[0]
    assert client.read_blob(unique_repo, layer.digest) == read_blob(image, layer.digest)

    assert statuses(registry_htpasswd, mark) == [401, 200, 200, 200]  # one handshake, then Basic up front


def test_basic_auth_with_a_wrong_password_names_user_and_registry_but_not_the_password(
    registry_htpasswd: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    wrong = "not-the-password-" + "x" * 8
    client = connect(registry_htpasswd, unique_repo, username="alice", password=wrong)
    mark = registry_htpasswd.mark()

    with pytest.raises(AuthenticationError) as caught:
        client.list_tags(unique_repo)

    message = str(caught.value)
    assert registry_htpasswd.host in message and "'alice'" in message
    assert wrong not in message and wrong not in repr(caught.value.args)
    assert statuses(registry_htpasswd, mark) == [401, 401]  # tried once with the password, then gave up


def test_basic_auth_without_credentials_says_what_to_set(
    registry_htpasswd: RegistryServer, connect: ClientFactory, unique_repo: str
) -> None:
    client = connect(registry_htpasswd, unique_repo, username=None, password=None)
    with pytest.raises(AuthenticationError) as caught:
        client.list_tags(unique_repo)
    message = str(caught.value)
    assert registry_htpasswd.host in message and "no credentials" in message
    assert "username and password" in message


def test_basic_credentials_are_sent_up_front_after_the_handshake(
    registry_htpasswd: RegistryServer,
    connect: ClientFactory,
    fault_proxy: Callable[..., FaultProxy],
    pushed: Callable[..., Image],
    unique_repo: str,
) -> None:
    image = pushed(registry_htpasswd)
    proxy = fault_proxy(registry_htpasswd)
    client = connect(proxy.server, unique_repo)

    client.head_manifest(unique_repo, "v1")
    client.get_manifest(unique_repo, image.digest)
    client.list_tags(unique_repo)

    sent = [(r.status, r.headers.get("Authorization", "")[:6]) for r in proxy.requests]
    assert sent == [(401, ""), (200, "Basic "), (200, "Basic "), (200, "Basic ")]


# -- token (Bearer) -----------------------------------------------------------------------------------------------


def test_token_auth_handshakes_once_and_asks_for_the_narrowest_scopes(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    connect: ClientFactory,
    pushed: Callable[..., Image],
    unique_repo_factory: Callable[[], str],
    unique_repo: str,
) -> None:
    image = pushed(registry_token)
    client = connect(registry_token, unique_repo)
    registry_mark, issuer_mark = registry_token.mark(), token_issuer.mark()

    # reads: pull only
    assert client.list_tags(unique_repo) == ["v1"]
    assert client.head_manifest(unique_repo, "v1") is not None
    assert client.get_manifest(unique_repo, "v1").digest == image.digest
    reads = token_issuer.requests_since(issuer_mark)
    assert [r.scopes for r in reads] == [[f"repository:{unique_repo}:pull"]]
    assert reads[0].user == "alice" and reads[0].auth_sent and reads[0].status == 200

    # the same reads again: the cached token serves them, no new token request
    issuer_mark = token_issuer.mark()
    client.list_tags(unique_repo)
    client.get_manifest(unique_repo, image.digest)
    assert token_issuer.requests_since(issuer_mark) == []

    # a mount: ONE token request for pull on the source and pull,push on the destination
    dest = unique_repo_factory()
    issuer_mark = token_issuer.mark()
    assert client.mount_blob(dest, image.platforms["linux/amd64"].layers[0].digest, unique_repo).mounted
    mount_tokens = token_issuer.requests_since(issuer_mark)
    assert [sorted(r.scopes) for r in mount_tokens] == [
        sorted([f"repository:{unique_repo}:pull", f"repository:{dest}:pull,push"])
    ]
    granted = {entry["name"]: entry["actions"] for entry in mount_tokens[0].granted}
    assert granted == {unique_repo: ["pull"], dest: ["pull", "push"]}

    # a plain push to the same destination is another scope set: one more token, pull,push on dest only
    issuer_mark = token_issuer.mark()
    client.upload_blob(dest, sha256(BLOB), BLOB)
    assert token_issuer.scopes_since(issuer_mark) == [f"repository:{dest}:pull,push"]

    # one 401 (the first request's handshake) for the whole client's life
    sent = statuses(registry_token, registry_mark)
    assert sent[0] == 401 and sent.count(401) == 1


def test_token_wrong_password_names_user_and_registry_but_not_the_password(
    registry_token: RegistryServer, token_issuer: TokenIssuer, connect: ClientFactory, unique_repo: str
) -> None:
    wrong = "not-the-password-" + "y" * 8
    client = connect(registry_token, unique_repo, username="alice", password=wrong)
    mark = token_issuer.mark()

    with pytest.raises(AuthenticationError) as caught:
        client.list_tags(unique_repo)

    message = str(caught.value)
    assert registry_token.host in message and "'alice'" in message and token_issuer.realm in message
    assert wrong not in message
    assert [(r.user, r.auth_sent, r.status) for r in token_issuer.requests_since(mark)] == [(None, True, 401)]


def test_reader_may_pull_but_not_push(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    connect: ClientFactory,
    pushed: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    image = pushed(registry_token)
    client = connect(registry_token, unique_repo, username="reader", password=token_issuer.users["reader"])
    assert client.get_manifest(unique_repo, "v1").digest == image.digest
    mark = token_issuer.mark()

    with pytest.raises(PermissionDeniedError) as caught:
        client.upload_blob(unique_repo, sha256(BLOB), BLOB)

    message = str(caught.value)
    assert registry_token.host in message and "'reader'" in message and f"repository:{unique_repo}:pull,push" in message
    asked = token_issuer.requests_since(mark)
    assert [(r.user, r.scopes) for r in asked] == [("reader", [f"repository:{unique_repo}:pull,push"])]
    assert asked[0].granted[0]["actions"] == ["pull"]  # the issuer said no to push; the registry enforced it
    assert skopeo(registry_token).list_tags(unique_repo) == ["v1"]


def test_anonymous_pull_works_and_anonymous_push_is_denied(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    connect: ClientFactory,
    pushed: Callable[..., Image],
    unique_repo: str,
) -> None:
    image = pushed(registry_token)
    client = connect(registry_token, unique_repo, username=None, password=None)
    mark = token_issuer.mark()

    assert client.list_tags(unique_repo) == ["v1"]
    assert client.get_manifest(unique_repo, "v1").digest == image.digest
    asked = token_issuer.requests_since(mark)
    assert [(r.user, r.auth_sent, r.scopes) for r in asked] == [(None, False, [f"repository:{unique_repo}:pull"])]

    with pytest.raises(PermissionDeniedError, match="anonymously"):
        client.upload_blob(unique_repo, sha256(BLOB), BLOB)


def test_identity_token_is_used_as_a_refresh_token(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    connect: ClientFactory,
    pushed: Callable[..., Image],
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = pushed(registry_token)
    offline = requests.get(
        token_issuer.realm,
        params={"service": token_issuer.service, "account": "alice", "offline_token": "true"},
        auth=("alice", token_issuer.users["alice"]),
        timeout=10,
    ).json()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {registry_token.host: {"identitytoken": offline["refresh_token"]}}}))
    client = connect(registry_token, unique_repo, username=None, password=None, auth_file=str(auth_file))
    mark = token_issuer.mark()

    assert client.get_manifest(unique_repo, "v1").digest == image.digest
    client.upload_blob(unique_repo, sha256(BLOB), BLOB)

    asked = token_issuer.requests_since(mark)
    assert [(r.method, r.grant_type, r.user, r.status) for r in asked] == [("POST", "refresh_token", "alice", 200)] * 2
    assert [r.scopes for r in asked] == [[f"repository:{unique_repo}:pull"], [f"repository:{unique_repo}:pull,push"]]
    assert asked[0].params["refresh_token"] == [offline["refresh_token"]]
    assert client.head_blob(unique_repo, sha256(BLOB)) == len(BLOB)


def test_a_registry_token_from_credentials_is_sent_as_bearer(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    connect: ClientFactory,
    fault_proxy: Callable[..., FaultProxy],
    pushed: Callable[..., Image],
    unique_repo: str,
) -> None:
    image = pushed(registry_token)
    token, _unused = token_issuer.issue_token("alice", [f"repository:{unique_repo}:pull"])
    proxy = fault_proxy(registry_token)
    client = connect(
        proxy.server, unique_repo, username=None, password=None, credentials={proxy.host: {"token": token}}
    )
    mark = token_issuer.mark()

    assert client.list_tags(unique_repo) == ["v1"]
    assert client.get_manifest(unique_repo, "v1").digest == image.digest

    assert [(r.status, r.headers.get("Authorization")) for r in proxy.requests] == [(200, f"Bearer {token}")] * 2
    assert token_issuer.requests_since(mark) == []  # sent as is: no token round trip


def test_token_registry_without_anonymous_access_says_no_credentials_were_found(
    registry_factory: Callable[..., RegistryServer], connect: ClientFactory
) -> None:
    server = registry_factory("token", anonymous_actions=())
    assert server.token_issuer is not None
    client = connect(server, "t/private", username=None, password=None)

    with pytest.raises(PermissionDeniedError) as caught:
        client.list_tags("t/private")

    message = str(caught.value)
    assert server.host in message and "repository:t/private:pull" in message
    advice = "set username and password, credentials, or an auth file"
    assert "anonymously (no credentials found for %s: %s)" % (server.host, advice) in message
    assert [(r.user, r.granted) for r in server.token_issuer.requests] == [
        (None, [{"type": "repository", "name": "t/private", "actions": []}])
    ]


# -- what a task's messages say about its credentials (through the modules) -----------------------------------------

INFO = "ocireg.registry.registry_info"
IMAGE = "ocireg.registry.registry_image"


def test_messages_name_where_credentials_came_from_and_which_registry_they_are_for(
    registry_htpasswd: RegistryServer,
    registry_open: RegistryServer,
    pushed: Callable[..., Image],
    playbook: Callable[..., PlaybookRun],
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
    unique_repo_factory: Callable[[], str],
    tmp_path: Path,
) -> None:
    image = pushed(registry_htpasswd)
    guarded, opened = registry_htpasswd.host, registry_open.host
    user, password = registry_htpasswd.username or "", registry_htpasswd.password or ""
    wrong, other_wrong = password[::-1] + "-wrong", password[::-1] + "-other"
    source = f"{guarded}/{unique_repo}:v1"
    wrong_file = tmp_path / "wrong-auth.json"
    wrong_file.write_text(json.dumps({"auths": {guarded: {"auth": basic(user, other_wrong)}}}))
    half_file = tmp_path / "half-auth.json"
    half_file.write_text(json.dumps({"auths": {f"https://{guarded}": {}, guarded: {"password": password}}}))
    right = "{{ lookup('ansible.builtin.env', 'RIGHT_PASSWORD') }}"  # not written into the playbook
    copies = [unique_repo_factory() for _copy in range(2)]
    no_task_credentials = {"username": None, "password": None}

    def task(name: str, plugin: str, **options: object) -> dict[str, object]:
        return {"name": name, plugin: options, "ignore_errors": True}

    run = playbook(
        [
            task("environment", INFO, image=source),
            task("username option", INFO, image=source, username=user),
            task("options", INFO, image=source, username=user, password=other_wrong),
            task("auth file", INFO, image=source, auth_file=str(wrong_file), **no_task_credentials),
            task("half a login", INFO, image=source, auth_file=str(half_file), **no_task_credentials),
            # username/password apply to dest's registry, the main reference, and not to src's
            task("second registry", IMAGE, src=source, dest=f"{opened}/{copies[0]}:v1", username=user, password=right),
            task(
                "second registry in credentials",
                IMAGE,
                src=source,
                dest=f"{opened}/{copies[1]}:v1",
                credentials={guarded: {"username": user, "password": right}},
            ),
        ],
        env={"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": wrong, "RIGHT_PASSWORD": password},
    )

    def failure(name: str) -> str:
        result = run.task(name)
        assert result["failed"], (name, result)
        return result["msg"]

    as_alice = f"Authentication failed for registry {guarded} as user '{user}' (credentials from "
    assert as_alice + "environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD)" in failure("environment")
    assert as_alice + "task option username and environment variable REGISTRY_PASSWORD)" in failure("username option")
    assert as_alice + "task options)" in failure("options")
    assert as_alice + f"auth file {wrong_file})" in failure("auth file")

    assert failure("half a login").startswith(f"Registry {guarded} requires authentication and no credentials were")
    assert run.task("half a login")["warnings"] == [
        f"Auth file {half_file}: auths entry '{guarded}' has a password but no username, so it is not used for"
        f" {guarded}: add the username, or give both as 'auth' (base64 of user:password)"
    ]

    assert failure("second registry") == (
        f"Registry {guarded} requires authentication and no credentials were found for it: the username and"
        f" password from task options apply only to {opened}, the registry of the task's main reference; give the"
        f" credentials for {guarded} in the credentials option or an auth file"
    )
    assert not run.task("second registry in credentials")["failed"]  # what the message said to do
    assert skopeo(registry_open).digest(f"{copies[1]}:v1") == image.digest
    for secret in (password, basic(user, password), basic(user, other_wrong)):
        assert secret not in run.output

"""The ocireg.registry.registry_digest lookup against the real registry, with skopeo as the witness."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

LOOKUP = "ocireg.registry.registry_digest"
Playbook = Callable[..., PlaybookRun]


def fact(name: str, expression: str, ignore_errors: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "ansible.builtin.set_fact": {"value": expression}}
    if ignore_errors:
        entry["ignore_errors"] = True
    return entry


def value(run: PlaybookRun, name: str) -> Any:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "ok", entries or run.output
    return entries[-1]["result"]["ansible_facts"]["value"]


def error(run: PlaybookRun, name: str) -> str:
    entries = [entry for entry in run.results if entry["task"] == name]
    assert entries and entries[-1]["status"] == "failed", entries or run.output
    return entries[-1]["result"]["msg"]


def test_pinning_images_by_digest_in_templates(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
    tmp_path: Path,
) -> None:
    single = image_factory()
    multi = image_factory(platforms=["linux/amd64", "linux/arm64"])
    sk = skopeo(registry_open)
    sk.copy(single.oci, "%s:v1" % unique_repo)
    sk.copy(multi.oci, "%s:multi" % unique_repo)
    repository = "%s/%s" % (registry_open.host, unique_repo)
    template = tmp_path / "deployment.yml.j2"
    template.write_text("image: {{ app }}@{{ lookup('%s', app + ':v1') }}\n" % LOOKUP)
    rendered = tmp_path / "deployment.yml"
    mark = registry_open.mark()

    run = playbook(
        [
            {
                "name": "render",
                "ansible.builtin.template": {"src": str(template), "dest": str(rendered)},
                "vars": {"app": repository},
            },
            fact("several", "{{ query('%s', '%s:v1', '%s:multi') }}" % (LOOKUP, repository, repository)),
            fact("arm64", "{{ lookup('%s', '%s:multi', platform='linux/arm64') }}" % (LOOKUP, repository)),
            fact("single with platform", "{{ lookup('%s', '%s:v1', platform='linux/arm64') }}" % (LOOKUP, repository)),
            fact("by digest", "{{ lookup('%s', '%s@%s') }}" % (LOOKUP, repository, single.digest)),
            fact("missing tag", "{{ lookup('%s', '%s:nope') }}" % (LOOKUP, repository), ignore_errors=True),
            fact("missing repo", "{{ lookup('%s', '%s-gone:v1') }}" % (LOOKUP, repository), ignore_errors=True),
            fact("bad reference", "{{ lookup('%s', '%s/Bad:v1') }}" % (LOOKUP, registry_open.host), ignore_errors=True),
            fact(
                "bad platform",
                "{{ lookup('%s', '%s:multi', platform='x') }}" % (LOOKUP, repository),
                ignore_errors=True,
            ),
            fact(
                "absent platform",
                "{{ lookup('%s', '%s:multi', platform='linux/s390x') }}" % (LOOKUP, repository),
                ignore_errors=True,
            ),
        ]
    )

    sent = [(e["method"], e["path"].rsplit("/", 1)[1]) for e in registry_open.requests_since(mark)]
    single_digest = sk.digest("%s:v1" % unique_repo)
    assert single_digest == single.digest
    assert rendered.read_text() == "image: %s@%s\n" % (repository, single_digest)
    assert value(run, "several") == [single_digest, sk.digest("%s:multi" % unique_repo)]
    assert value(run, "arm64") == multi.manifests["linux/arm64"]
    assert value(run, "single with platform") == single_digest
    assert value(run, "by digest") == single_digest
    assert "Image %s:nope not found on registry %s" % (repository, registry_open.host) in error(run, "missing tag")
    assert "%s-gone:v1 not found" % repository in error(run, "missing repo")
    assert "'%s/Bad:v1'" % registry_open.host in error(run, "bad reference")
    assert "Invalid platform 'x'" in error(run, "bad platform")
    absent = error(run, "absent platform")
    assert "linux/s390x" in absent and "linux/amd64, linux/arm64" in absent

    # Pinning costs one HEAD per reference; only platform selection reads the index (one GET).
    assert sorted(sent) == sorted(
        [("HEAD", "v1")] * 4  # template, several, single with platform, missing repo
        + [("HEAD", "multi")] * 3  # several, arm64, absent platform
        + [("HEAD", single.digest), ("HEAD", "nope"), ("GET", multi.digest), ("GET", multi.digest)]
    )


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_credentials_from_options_and_environment(
    kind: str,
    request: pytest.FixtureRequest,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
) -> None:
    server: RegistryServer = request.getfixturevalue("registry_%s" % kind)
    image = image_factory()
    skopeo(server).copy(image.oci, "%s:v1" % unique_repo)
    reference = "%s/%s:v1" % (server.host, unique_repo)

    def lookup(**options: str) -> str:
        arguments = "".join(", %s=%s" % (key, json.dumps(option)) for key, option in options.items())
        return "{{ lookup('%s', '%s'%s) }}" % (LOOKUP, reference, arguments)

    run = playbook(
        [
            fact("options", lookup(username=server.username, password=server.password)),
            fact("environment", lookup()),
            fact("wrong password", lookup(username=server.username, password="wrong"), ignore_errors=True),
            fact("missing tag", lookup().replace(":v1'", ":nope'"), ignore_errors=True),
        ],
        env={"REGISTRY_USERNAME": server.username, "REGISTRY_PASSWORD": server.password},
    )

    assert (
        value(run, "options")
        == value(run, "environment")
        == image.digest
        == skopeo(server).digest("%s:v1" % unique_repo)
    )
    wrong = error(run, "wrong password")
    assert "Authentication failed for registry %s" % server.host in wrong
    assert "wrong" not in wrong.replace("Authentication failed", "")
    assert "%s:nope not found on registry %s" % (reference[:-3], server.host) in error(run, "missing tag")
    assert server.password not in run.output


def test_messages_name_where_credentials_came_from_and_which_registry_they_are_for(
    registry_htpasswd: RegistryServer,
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    playbook: Playbook,
    skopeo: Callable[..., Skopeo],
    unique_repo: str,
    tmp_path: Path,
) -> None:
    image = image_factory()
    for server in (registry_open, registry_htpasswd):
        skopeo(server).copy(image.oci, "%s:v1" % unique_repo)
    guarded, opened = registry_htpasswd.host, registry_open.host
    user, password = registry_htpasswd.username or "", registry_htpasswd.password or ""
    wrong = password[::-1] + "-wrong"
    half_file = tmp_path / "half-auth.json"
    half_file.write_text(json.dumps({"auths": {guarded: {"password": password}}}))
    variables = {
        "user": user,
        "other_wrong": wrong + "-other",
        "right": "{{ lookup('ansible.builtin.env', 'RIGHT_PASSWORD') }}",  # not written into the playbook
        "half_file": str(half_file),
        "logins": {guarded: {"username": "{{ user }}", "password": "{{ right }}"}},
    }

    def task(name: str, hosts: list[str], options: str = "") -> dict[str, Any]:
        terms = ", ".join("'%s/%s:v1'" % (host, unique_repo) for host in hosts)
        entry = fact(name, "{{ query('%s', %s%s) }}" % (LOOKUP, terms, options), ignore_errors=True)
        entry["vars"] = variables
        return entry

    run = playbook(
        [
            task("environment", [guarded]),
            task("username option", [guarded], ", username=user"),
            task("options", [guarded], ", username=user, password=other_wrong"),
            # username/password apply to the first reference's registry; the auth file's entry for the second
            # one has no username
            task("second registry", [opened, guarded], ", username=user, password=right, auth_file=half_file"),
            task("second registry in credentials", [opened, guarded], ", credentials=logins"),
        ],
        env={"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": wrong, "RIGHT_PASSWORD": password},
    )

    as_user = "Authentication failed for registry %s as user '%s' (credentials from " % (guarded, user)
    assert as_user + "environment variables REGISTRY_USERNAME and REGISTRY_PASSWORD)" in error(run, "environment")
    assert as_user + "lookup option username and environment variable REGISTRY_PASSWORD)" in error(
        run, "username option"
    )
    assert as_user + "lookup options)" in error(run, "options")
    assert error(run, "second registry").endswith(  # after what ansible-core 2.19 puts before a lookup's message
        "Registry %s requires authentication and no credentials were found for it: the username and password from"
        " lookup options apply only to %s, the registry of the lookup's first reference; give the credentials for %s"
        " in the credentials option or an auth file" % (guarded, opened, guarded)
    )
    warning = (
        "[WARNING]: Auth file %s: auths entry '%s' has a password but no username, so it is not used for %s: add the"
        " username, or give both as 'auth' (base64 of user:password)" % (half_file, guarded, guarded)
    )
    assert "".join(warning.split()) in "".join(run.output.split())  # the screen wraps it, at hyphens too
    assert value(run, "second registry in credentials") == [image.digest] * 2  # what the message said to do
    assert password not in run.output

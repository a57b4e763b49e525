"""Hostile and mistaken input: every case fails cleanly, names the bad value, and changes nothing.

One playbook holds the whole matrix (every task ignore_errors), across the four modules, the filter and the lookup:
invalid references, tags, digests, durations, regexes and platforms; mutually exclusive and missing options; an
unreachable host (a closed loopback port) and one that never answers (each says how long retrying took); a TLS
registry presented with the wrong CA; the wrong scheme both ways (https:// to the plain-HTTP registry, the TLS one on
loopback without a scheme); a missing CA, client certificate or key; a missing and a malformed auth file; a
credentials entry with neither password nor token. Each case must end failed, with a message that
contains the bad value, and without a traceback or "MODULE FAILURE". Both registries involved are compared before
and after: the API's view (catalog, tags, manifest digests) and the files in their storage.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.images import Image
from support.pki import CertificateAuthority
from support.playbook import PlaybookRun
from support.rawhttp import RawClient
from support.registry import RegistryServer, free_port
from support.skopeo import Skopeo

INFO = "ocireg.registry.registry_info"
TAG = "ocireg.registry.registry_tag"
IMAGE = "ocireg.registry.registry_image"
REPO = "ocireg.registry.registry_repo"
ZERO_DIGEST = "sha256:" + "0" * 64

Playbook = Callable[..., PlaybookRun]
Case = tuple[dict[str, Any], list[str]]  # (task, texts the failure message must contain)


def module_case(plugin: str, expected: list[str], **options: Any) -> Case:
    return {plugin: options}, expected


def lookup_case(expected: list[str], term: str, **options: Any) -> Case:
    call = "lookup('ocireg.registry.registry_digest', term, **options)"
    return {"ansible.builtin.debug": {"msg": "{{ %s }}" % call}, "vars": {"term": term, "options": options}}, expected


def filter_case(expected: list[str], value: str) -> Case:
    return {
        "ansible.builtin.debug": {"msg": "{{ value | ocireg.registry.parse_reference }}"},
        "vars": {"value": value},
    }, expected


def snapshot(server: RegistryServer) -> dict[str, Any]:
    """What the registry holds, by the API (repository -> tag -> manifest digest) and on disk (file -> size)."""
    with RawClient(server) as client:
        content = {
            repo: {
                tag: "sha256:" + hashlib.sha256(client.get_manifest(repo, tag).content).hexdigest()
                for tag in client.tags(repo)
            }
            for repo in client.catalog()
        }
    files = {str(path.relative_to(server.storage)): path.stat().st_size for path in server.storage.rglob("*")}
    return {"content": content, "files": files}


def matrix(
    host: str, tls: RegistryServer, wrong_ca: Path, closed: str, missing: Path, malformed: Path, silent: str
) -> dict[str, Case]:
    tls_ref = f"https://{tls.host}/t/app"
    wrong_tls = {"ca_path": str(wrong_ca)}
    unreachable = f"{closed}/t/app"
    no_secret = {host: {"username": "alice"}}
    # Docker Hub, for a reference that names no registry, made unreachable whatever the network: a closed proxy port.
    no_hub = {"HTTPS_PROXY": f"http://{closed}", "NO_PROXY": "127.0.0.1,localhost"}
    # an https:// reference to the plain-HTTP registry, and the TLS registry on loopback without a scheme (http://)
    https_to_http = [f"The registry answers plain HTTP: use http://{host}/... in the reference"]
    http_to_https = ["HTTP 400", "asked over plain HTTP", f"use https://{tls.host}/... in the reference"]
    no_file = missing.with_name("no-such.pem")
    missing_file = ["names %s, which does not exist" % no_file]
    gave_up = ["gave up after 1 retry over"]
    timed_out = ["Timed out after 0.5 seconds", "gave up after 2 retries over"]
    return {
        # -- registry_info ---------------------------------------------------------------------------------
        "info: uppercase repository": module_case(INFO, [f"{host}/T/App:v1"], image=f"{host}/T/App:v1"),
        "info: short digest": module_case(INFO, ["sha256:1234"], image=f"{host}/t/app@sha256:1234"),
        "info: bad tag": module_case(INFO, ["-v1"], image=f"{host}/t/app:-v1"),
        "info: md5 digest": module_case(
            INFO, ["md5", "sha256, sha384 and sha512"], image=f"{host}/t/app@md5:{'0' * 32}"
        ),
        "info: two targets": module_case(
            INFO, ["mutually exclusive", "registry", "repository"], registry=host, repository=f"{host}/t/app"
        ),
        "info: no target": module_case(INFO, ["one of the following is required", "image"], details=True),
        "info: platform without arch": module_case(INFO, ["'linux'"], image=f"{host}/t/app:v1", platform="linux"),
        "info: platform too long": module_case(
            INFO, ["linux/arm/v7/x"], image=f"{host}/t/app:v1", platform="linux/arm/v7/x"
        ),
        "info: concurrency 0": module_case(INFO, ["concurrency", "got 0"], repository=f"{host}/t/app", concurrency=0),
        "info: tags with image": module_case(INFO, ["tags", "not image"], image=f"{host}/t/app:v1", tags=["v*"]),
        "info: paths with repository": module_case(
            INFO, ["paths", "not repository"], repository=f"{host}/t/app", paths=["/etc"]
        ),
        "info: negative timeout": module_case(INFO, ["timeout", "-1"], image=f"{host}/t/app:v1", timeout=-1),
        "info: unreachable": module_case(INFO, [closed, *gave_up], image=f"{unreachable}:v1", retries=1),
        "info: no answer": module_case(INFO, [silent, *timed_out], image=f"{silent}/t/app:v1", timeout=0.5, retries=2),
        "info: https to plain http": module_case(INFO, https_to_http, image=f"https://{host}/t/app:v1"),
        "info: tls without a scheme": module_case(INFO, http_to_https, image=f"{tls.host}/t/app:v1"),
        "info: missing ca_path": module_case(
            INFO, ["ca_path", *missing_file], image=f"{tls_ref}:v1", ca_path=str(no_file)
        ),
        "info: wrong CA": module_case(INFO, [tls.host, "TLS"], image=f"{tls_ref}:v1", **wrong_tls),
        "info: missing auth file": module_case(INFO, [str(missing)], image=f"{host}/t/app:v1", auth_file=str(missing)),
        "info: malformed auth file": module_case(
            INFO, [str(malformed)], image=f"{host}/t/app:v1", auth_file=str(malformed)
        ),
        "info: credentials without secret": module_case(
            INFO, [host, "neither a password nor a token"], image=f"{host}/t/app:v1", credentials=no_secret
        ),
        # -- registry_tag ----------------------------------------------------------------------------------
        "tag: bad tag": module_case(
            TAG, ["'bad tag!'"], repository=f"{host}/t/app", tag=["ok", "bad tag!"], source=f"{host}/t/app:v1"
        ),
        "tag: repository with a tag": module_case(TAG, [f"{host}/t/app:v1"], repository=f"{host}/t/app:v1", tag="x"),
        "tag: short bare digest": module_case(
            TAG, ["sha256:abc"], repository=f"{host}/t/app", tag="x", source="sha256:abc"
        ),
        "tag: sha1 bare digest": module_case(
            TAG, ["sha1:", "sha256, sha384 and sha512"], repository=f"{host}/t/app", tag="x", source="sha1:" + "a" * 40
        ),
        "tag: source with absent": module_case(
            TAG,
            ["source", "state=present"],
            repository=f"{host}/t/app",
            tag="v1",
            state="absent",
            source=f"{host}/t/app:v1",
        ),
        "tag: no tag option": module_case(TAG, ["missing required arguments", "tag"], repository=f"{host}/t/app"),
        "tag: unknown state": module_case(
            TAG, ["gone", "present", "absent"], repository=f"{host}/t/app", tag="v1", state="gone"
        ),
        "tag: overwrite not a bool": module_case(
            TAG, ["maybe"], repository=f"{host}/t/app", tag="v2", source=f"{host}/t/app:v1", overwrite="maybe"
        ),
        "tag: empty tag list": module_case(
            TAG, ["at least one tag"], repository=f"{host}/t/app", tag=[], source=f"{host}/t/app:v1"
        ),
        "tag: unreachable": module_case(
            TAG, [closed, *gave_up], repository=unreachable, tag="v2", source=f"{unreachable}:v1", retries=1
        ),
        "tag: missing client_cert": module_case(
            TAG,
            ["client_cert", *missing_file],
            repository=tls_ref,
            tag="v2",
            source=f"{tls_ref}:v1",
            client_cert=str(no_file),
        ),
        "tag: wrong CA": module_case(
            TAG, [tls.host, "TLS"], repository=tls_ref, tag="v2", source=f"{tls_ref}:v1", **wrong_tls
        ),
        "tag: bare tag as source (Docker Hub)": (
            {
                TAG: {"repository": f"{host}/t/app", "tag": "v2", "source": "1.1.0", "retries": 0},
                "environment": no_hub,
            },
            ["'1.1.0'", "read as the Docker Hub image docker.io/library/1.1.0:latest", f"write {host}/t/app:1.1.0"],
        ),
        "tag: credentials without secret": module_case(
            TAG,
            [host, "neither a password nor a token"],
            repository=f"{host}/t/app",
            tag="v2",
            source=f"{host}/t/app:v1",
            credentials=no_secret,
        ),
        # -- registry_image --------------------------------------------------------------------------------
        "image: invalid src": module_case(IMAGE, ["Not/Valid:1"], src="Not/Valid:1", dest=f"{host}/t/copy:v1"),
        "image: bad dest tag": module_case(IMAGE, ["-bad"], src=f"{host}/t/app:v1", dest=f"{host}/t/copy:-bad"),
        "image: sha1 src digest": module_case(
            IMAGE, ["sha1", "sha256, sha384 and sha512"], src=f"{host}/t/app@sha1:{'a' * 40}", dest=f"{host}/t/copy:v1"
        ),
        "image: platform without arch": module_case(
            IMAGE, ["'linux'"], src=f"{host}/t/multi:v1", dest=f"{host}/t/copy:v1", platforms=["linux"]
        ),
        "image: platform not in the index": module_case(
            IMAGE,
            ["windows/amd64", "linux/arm64"],
            src=f"{host}/t/multi:v1",
            dest=f"{host}/t/copy:v1",
            platforms=["linux/amd64", "windows/amd64"],
        ),
        "image: jobs 0": module_case(
            IMAGE, ["jobs", "got 0"], src=f"{host}/t/app:v1", dest=f"{host}/t/copy:v1", jobs=0
        ),
        "image: no src": module_case(IMAGE, ["src"], dest=f"{host}/t/copy:v1"),
        "image: missing archive": module_case(
            IMAGE, ["/nonexistent/app.tar"], src="oci-archive:/nonexistent/app.tar", dest=f"{host}/t/copy:v1"
        ),
        "image: unsupported transport": module_case(
            IMAGE, ["ftp"], src="ftp://example.com/app.tar", dest=f"{host}/t/copy:v1"
        ),
        "image: skopeo's containers-storage": module_case(
            IMAGE,
            ["'containers-storage:app'", "oci-archive:FILE[:REF]", "write docker://containers-storage:app"],
            src="containers-storage:app",
            dest=f"{host}/t/copy:v1",
        ),
        "image: unknown transport": module_case(
            IMAGE,
            ["'podman:'", "not a transport", "docker-archive:FILE[:REF]"],
            src="podman:/x",
            dest=f"{host}/t/copy:v1",
        ),
        "image: bare tag (Docker Hub)": (
            {IMAGE: {"src": "1.1.0", "dest": f"{host}/t/copy:v1", "retries": 0}, "environment": no_hub},
            ["'1.1.0'", "read as the Docker Hub image docker.io/library/1.1.0:latest", "REGISTRY/REPOSITORY:1.1.0"],
        ),
        "image: dest digest differs": module_case(
            IMAGE, [ZERO_DIGEST], src=f"{host}/t/app:v1", dest=f"{host}/t/copy@{ZERO_DIGEST}"
        ),
        "image: unknown source tag": module_case(
            IMAGE, [f"{host}/t/app:nope"], src=f"{host}/t/app:nope", dest=f"{host}/t/copy:v1"
        ),
        "image: unknown state": module_case(
            IMAGE, ["maybe"], src=f"{host}/t/app:v1", dest=f"{host}/t/copy:v1", state="maybe"
        ),
        "image: password and token": module_case(
            IMAGE,
            [host, "not both"],
            src=f"{host}/t/app:v1",
            dest=f"{host}/t/copy:v1",
            credentials={host: {"username": "alice", "password": "s3cr3t-pw", "token": "s3cr3t-token"}},
        ),
        "image: unreachable": module_case(
            IMAGE, [closed, *gave_up], src=f"{unreachable}:v1", dest=f"{host}/t/copy:v1", retries=1
        ),
        "image: tls without a scheme": module_case(
            IMAGE, http_to_https, src=f"{tls.host}/t/app:v1", dest=f"{host}/t/copy:v1"
        ),
        "image: client_key is a directory": module_case(
            IMAGE,
            ["client_key", f"names {missing.parent}, which is not a file"],
            src=f"{tls_ref}:v1",
            dest=f"{host}/t/copy:v1",
            client_cert=str(wrong_ca),
            client_key=str(missing.parent),
        ),
        "image: wrong CA": module_case(
            IMAGE, [tls.host, "TLS"], src=f"{tls_ref}:v1", dest=f"{host}/t/copy:v1", **wrong_tls
        ),
        # -- registry_repo ---------------------------------------------------------------------------------
        "repo: bad duration": module_case(REPO, ["30x"], repository=f"{host}/t/app", retention={"older_than": "30x"}),
        "repo: bad keep regex": module_case(
            REPO, ["[unclosed"], repository=f"{host}/t/app", retention={"keep": ["[unclosed"]}
        ),
        "repo: bad match regex": module_case(
            REPO, ["(bad"], repository=f"{host}/t/app", retention={"match": ["v.*", "(bad"]}
        ),
        "repo: negative keep_last": module_case(
            REPO, ["keep_last", "-1"], repository=f"{host}/t/app", retention={"keep_last": -1}
        ),
        "repo: retention with absent": module_case(
            REPO, ["retention", "state=absent"], repository=f"{host}/t/app", state="absent", retention={"keep_last": 1}
        ),
        "repo: bad repository": module_case(REPO, ["bad//name"], repository=f"{host}/bad//name"),
        "repo: digest in the repository": module_case(
            REPO, ["md5", "sha256, sha384 and sha512"], repository=f"{host}/t/app@md5:{'0' * 32}"
        ),
        "repo: concurrency 100": module_case(REPO, ["concurrency", "100"], repository=f"{host}/t/app", concurrency=100),
        "repo: unknown retention key": module_case(
            REPO, ["keep_first"], repository=f"{host}/t/app", retention={"keep_first": 1}
        ),
        "repo: unreachable": module_case(
            REPO, [closed, *gave_up], repository=unreachable, retention={"keep_last": 1}, retries=1
        ),
        "repo: https to plain http": module_case(REPO, https_to_http, repository=f"https://{host}/t/app"),
        "repo: malformed auth file": module_case(
            REPO, [str(malformed)], repository=f"{host}/t/app", auth_file=str(malformed)
        ),
        # -- filter ----------------------------------------------------------------------------------------
        "filter: two colons": filter_case(["Bad:Ref:x"], "Bad:Ref:x"),
        "filter: bad digest": filter_case(["sha256:xyz"], "repo@sha256:xyz"),
        "filter: md5 digest": filter_case(["md5", "sha256, sha384 and sha512"], "repo@md5:" + "0" * 32),
        "filter: uppercase": filter_case(["UPPER/case"], "UPPER/case"),
        "filter: spaces": filter_case(["not a ref"], "not a ref"),
        # -- lookup ----------------------------------------------------------------------------------------
        "lookup: bad reference": lookup_case(["Not Valid"], "Not Valid"),
        "lookup: sha1 digest": lookup_case(["sha1", "sha256, sha384 and sha512"], f"{host}/t/app@sha1:{'a' * 40}"),
        "lookup: bad platform": lookup_case(["linux//"], f"{host}/t/multi:v1", platform="linux//"),
        "lookup: unreachable": lookup_case([closed, *gave_up], f"{unreachable}:v1", retries=1),
        "lookup: no answer": lookup_case([silent, *timed_out], f"{silent}/t/app:v1", timeout=0.5, retries=2),
        "lookup: https to plain http": lookup_case(https_to_http, f"https://{host}/t/app:v1"),
        "lookup: tls without a scheme": lookup_case(http_to_https, f"{tls.host}/t/app:v1"),
        "lookup: missing ca_path": lookup_case(["ca_path", *missing_file], f"{tls_ref}:v1", ca_path=str(no_file)),
        "lookup: wrong CA": lookup_case([tls.host, "TLS"], f"{tls_ref}:v1", **wrong_tls),
        "lookup: missing auth file": lookup_case([str(missing)], f"{host}/t/app:v1", auth_file=str(missing)),
        "lookup: malformed auth file": lookup_case([str(malformed)], f"{host}/t/app:v1", auth_file=str(malformed)),
        "lookup: credentials without secret": lookup_case(
            [host, "neither a password nor a token"], f"{host}/t/app:v1", credentials=no_secret
        ),
        "lookup: timeout 0": lookup_case(["timeout", "0"], f"{host}/t/app:v1", timeout=0),
    }


def test_bad_input_fails_naming_the_value_without_traceback_and_changes_nothing(
    registry_factory: Callable[..., RegistryServer],
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    server, tls = registry_factory("open"), registry_factory("tls")
    single, multi = image_factory(layers=1), image_factory(platforms=["linux/amd64", "linux/arm64"], layers=1)
    for target in (server, tls):
        skopeo(target).copy(single.oci, "t/app:v1")
    skopeo(server).copy(multi.oci, "t/multi:v1")
    wrong_ca = CertificateAuthority(tmp_path / "other-ca").cert_path
    malformed = tmp_path / "malformed-auth.json"
    malformed.write_text('{"auths": {"%s": {"auth": ' % server.host)
    # A port that takes connections and never answers: each request times out.
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)
    missing = tmp_path / "no-such-auth.json"
    closed, silent_host = f"127.0.0.1:{free_port()}", "127.0.0.1:%d" % silent.getsockname()[1]
    cases = matrix(server.host, tls, wrong_ca, closed, missing, malformed, silent_host)
    assert len(cases) >= 40
    before = {"open": snapshot(server), "tls": snapshot(tls)}

    with silent:
        run = playbook([{"name": name, **entry, "ignore_errors": True} for name, (entry, _expected) in cases.items()])

    problems = []
    for name, (_entry, expected) in cases.items():
        entries = [entry for entry in run.results if entry["task"] == name]
        if not entries or entries[-1]["status"] != "failed":
            problems.append(f"{name}: did not fail: {entries}")
            continue
        message = str(entries[-1]["result"].get("msg", ""))
        missing = [text for text in expected if text not in message]
        if missing or "Traceback" in message or "MODULE FAILURE" in message:
            problems.append(f"{name}: {missing} not in: {message}")
    assert problems == [], "\n".join(problems)
    assert "Traceback" not in run.output and "MODULE FAILURE" not in run.output
    assert {"open": snapshot(server), "tls": snapshot(tls)} == before

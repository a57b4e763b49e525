"""The ocireg.registry.promote role: dev -> staging -> prod pinned by digest, immutable release tags, verification.

Each playbook includes the role the way users do (ansible.builtin.include_role with vars); skopeo is the witness.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from support.images import Image
from support.registry import RegistryServer
from support.skopeo import Skopeo, SkopeoError

ROLE = "ocireg.registry.promote"
PLATFORMS = ["linux/amd64", "linux/arm64"]
WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
RESULT_TASK = f"{ROLE} : Record the result in promote_result"
WRITE_TASK = f"{ROLE} : Point the release tags of the stage at the pinned digest, never moving one"
PREFLIGHT_TASK = f"{ROLE} : Check that the release tags of later stages are free or already on the pinned digest"
VERIFY_TASK = f"{ROLE} : Check that every promoted tag points at the pinned digest"
STAGE_CHECK_TASK = f"{ROLE} : Check the stages"


def promote(name: str, **role_vars: Any) -> dict[str, Any]:
    return {"name": name, "ansible.builtin.include_role": {"name": ROLE}, "vars": role_vars}


def rescued(task: dict[str, Any]) -> dict[str, Any]:
    """TASK in a block whose failure is caught, so the playbook goes on."""
    return {
        "name": "expect failure: " + task["name"],
        "block": [task],
        "rescue": [{"name": "caught: " + task["name"], "ansible.builtin.debug": {"msg": "failed as expected"}}],
    }


def stage(server: RegistryServer, name: str, repo: str, tags=(), release_tags=()) -> dict[str, Any]:
    return {"name": name, "repository": f"{server.host}/{repo}", "tags": list(tags), "release_tags": list(release_tags)}


def tag_state(sk: Skopeo, repo: str) -> dict[str, str]:
    """tag -> digest of every tag in REPO, read by skopeo; {} when the repository does not exist."""
    try:
        tags = sk.list_tags(repo)
    except SkopeoError as err:
        if "name unknown" in err.stderr.lower() or "not found" in err.stderr.lower():
            return {}
        raise
    return {tag: sk.digest(f"{repo}:{tag}") for tag in sorted(tags)}


def writes(server: RegistryServer, mark: int) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in server.requests_since(mark) if e["method"] in WRITE_METHODS]


def recap_changed(run: Any) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", run.stdout)
    assert match, run.output
    return int(match.group(1))


def failures(run: Any) -> list[tuple[str, str]]:
    """(task name, message) of every failed task or loop item, in order."""
    found = []
    for entry in run.results:
        if entry["status"] != "failed":
            continue
        result = entry["result"]
        messages = [item.get("msg", "") for item in result.get("results", []) if item.get("failed")]
        found.append((entry["task"], " | ".join(messages) or result.get("msg", "")))
    return found


def failed_items(run: Any) -> list[tuple[str, list[str]]]:
    """(task name, [message of each failed loop item]) of every failed task, in order."""
    return [
        (entry["task"], [item.get("msg", "") for item in entry["result"].get("results", []) if item.get("failed")])
        for entry in run.results
        if entry["status"] == "failed"
    ]


def test_promotes_through_the_stages_pinned_by_digest(
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_htpasswd
    sk = skopeo(server)
    dev, staging, prod = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    image = image_factory(platforms=PLATFORMS)
    sk.copy(image.oci, f"{dev}:candidate")
    task = promote(
        "promote",
        promote_source=f"{server.host}/{dev}:candidate",
        promote_stages=[
            stage(server, "staging", staging, tags=["latest"], release_tags=["1.0"]),
            stage(server, "prod", prod, tags=["latest", "stable"], release_tags=["1.0"]),
        ],
        promote_username=server.username,
        promote_password=server.password,
    )

    mark = server.mark()
    check = playbook([task], check=True, diff=True)
    assert check.rc == 0, check.output
    planned = check.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert planned["digest"] == image.digest
    assert planned["changed"] is True
    assert [(op["stage"], op["tags"], op["overwrite"], op["changed"]) for op in planned["operations"]] == [
        ("staging", ["1.0"], False, True),
        ("staging", ["latest"], True, True),
        ("prod", ["1.0"], False, True),
        ("prod", ["latest", "stable"], True, True),
    ]
    assert writes(server, mark) == []
    assert tag_state(sk, staging) == {} and tag_state(sk, prod) == {}
    assert server.password not in check.output

    real = playbook([task])
    assert real.rc == 0, real.output
    result = real.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert result["digest"] == image.digest
    assert result["pinned"] == f"{server.host}/{dev}@{image.digest}"
    # Each stage comes from the one before it, by digest.
    assert [op["source"] for op in result["operations"]] == [
        f"{server.host}/{dev}@{image.digest}",
        f"{server.host}/{dev}@{image.digest}",
        f"{server.host}/{staging}@{image.digest}",
        f"{server.host}/{staging}@{image.digest}",
    ]
    assert tag_state(sk, staging) == {"1.0": image.digest, "latest": image.digest}
    assert tag_state(sk, prod) == {"1.0": image.digest, "latest": image.digest, "stable": image.digest}
    for child in image.manifests.values():
        assert sk.exists(f"{prod}@{child}")
    verified = real.task(VERIFY_TASK)
    assert [item["msg"] for item in verified["results"]] == [
        "stage staging: latest, 1.0 verified",
        "stage prod: latest, stable, 1.0 verified",
    ]

    # Moving the source tag afterwards does not matter: a re-run promotes what the tag points at now, and a new
    # image cannot take the release tags. Here the tag stays, so the re-run changes nothing and writes nothing.
    mark = server.mark()
    again = playbook([task])
    assert again.rc == 0, again.output
    assert recap_changed(again) == 0
    assert again.task(RESULT_TASK)["ansible_facts"]["promote_result"]["changed"] is False
    assert writes(server, mark) == []


def test_release_tags_are_immutable_and_a_refused_promotion_changes_nothing(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    sk = skopeo(server)
    dev, staging, prod = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    first, second = image_factory(), image_factory(platforms=PLATFORMS)
    sk.copy(first.oci, f"{dev}:candidate")
    source = f"{server.host}/{dev}:candidate"
    initial = playbook(
        [
            promote(
                "first release",
                promote_source=source,
                promote_stages=[
                    stage(server, "staging", staging, tags=["latest"], release_tags=["1.0"]),
                    stage(server, "prod", prod, tags=["latest", "stable"], release_tags=["1.0"]),
                ],
            )
        ]
    )
    assert initial.rc == 0, initial.output
    before = {staging: tag_state(sk, staging), prod: tag_state(sk, prod)}
    assert before[prod] == {"1.0": first.digest, "latest": first.digest, "stable": first.digest}

    # A new image on the source tag, promoted again: as 1.1 in staging (free) but 1.0 in prod (taken), and then
    # as 1.0 in staging too (taken, in the first stage).
    sk.copy(second.oci, f"{dev}:candidate")
    mark = server.mark()
    run = playbook(
        [
            rescued(
                promote(
                    "later stage taken",
                    promote_source=source,
                    promote_stages=[
                        stage(server, "staging", staging, tags=["latest"], release_tags=["1.1"]),
                        stage(server, "prod", prod, tags=["latest", "stable"], release_tags=["1.0"]),
                    ],
                )
            ),
            rescued(
                promote(
                    "first stage taken",
                    promote_source=source,
                    promote_stages=[
                        stage(server, "staging", staging, tags=["latest"], release_tags=["1.0"]),
                        stage(server, "prod", prod, tags=["latest"], release_tags=["1.2"]),
                    ],
                )
            ),
        ]
    )
    assert run.rc == 0, run.output
    refused = failures(run)
    assert [task for task, _msg in refused] == [PREFLIGHT_TASK, WRITE_TASK]
    for (_task, message), repo in zip(refused, [prod, staging]):
        assert f"{server.host}/{repo}" in message
        assert f"to {second.digest} because overwrite is false: 1.0 (now {first.digest})" in message
        assert "Nothing was changed" in message
    # Nothing anywhere moved: not the free release tag 1.1, not the moving tags latest and stable.
    assert writes(server, mark) == []
    assert {staging: tag_state(sk, staging), prod: tag_state(sk, prod)} == before


def test_promote_to_stops_at_a_stage_and_stages_may_span_registries(
    registry_open: RegistryServer,
    registry_htpasswd: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    dev_registry, prod_registry = registry_open, registry_htpasswd
    dev, staging, prod = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    image = image_factory()
    skopeo(dev_registry).copy(image.oci, f"{dev}:1.4.2")
    role_vars = {
        "promote_source": f"{dev_registry.host}/{dev}:1.4.2",
        "promote_stages": [
            stage(dev_registry, "staging", staging, release_tags=["1.4.2"]),
            stage(prod_registry, "prod", prod, tags=["stable"], release_tags=["1.4.2"]),
        ],
        # The prod registry wants a login; the dev registry is open.
        "promote_credentials": {
            prod_registry.host: {"username": prod_registry.username, "password": prod_registry.password}
        },
    }

    mark = prod_registry.mark()
    to_staging = playbook([promote("to staging", promote_to="staging", **role_vars)], verbosity=2)
    assert to_staging.rc == 0, to_staging.output
    assert tag_state(skopeo(dev_registry), staging) == {"1.4.2": image.digest}
    assert prod_registry.requests_since(mark) == []

    to_prod = playbook([promote("to prod", **role_vars)], verbosity=2)
    assert to_prod.rc == 0, to_prod.output
    result = to_prod.task(RESULT_TASK)["ansible_facts"]["promote_result"]
    assert [(op["stage"], op["changed"]) for op in result["operations"]] == [
        ("staging", False),
        ("prod", True),
        ("prod", True),
    ]
    assert result["operations"][1]["source"] == f"{dev_registry.host}/{staging}@{image.digest}"
    assert tag_state(skopeo(prod_registry), prod) == {"1.4.2": image.digest, "stable": image.digest}
    for run in (to_staging, to_prod):
        assert prod_registry.password not in run.output


def test_bad_role_input_fails_before_touching_the_registry(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    dev, prod = unique_repo_factory(), unique_repo_factory()
    skopeo(server).copy(image_factory().oci, f"{dev}:1.0")
    source = f"{server.host}/{dev}:1.0"
    good_stage = stage(server, "prod", prod, tags=["latest"])
    cases = [
        ("no source", {"promote_stages": [good_stage]}, r"missing required arguments: promote_source"),
        ("no stages", {"promote_source": source}, r"missing required arguments: promote_stages"),
        (
            "stage without repository",
            {"promote_source": source, "promote_stages": [{"name": "prod", "tags": ["latest"]}]},
            r"missing required arguments: repository found in promote_stages",
        ),
        (
            "stages not a list of dicts",
            {"promote_source": source, "promote_stages": ["prod"]},
            r"promote_stages.*dict",
        ),
        (
            "verify not a bool",
            {"promote_source": source, "promote_stages": [good_stage], "promote_verify": "perhaps"},
            r"promote_verify.*bool",
        ),
    ]
    mark = server.mark()
    run = playbook([rescued(promote(name, **role_vars)) for name, role_vars, _pattern in cases])
    assert run.rc == 0, run.output
    found = failures(run)
    assert len(found) == len(cases), found
    for (name, _vars, pattern), (_task, message) in zip(cases, found):
        assert re.search(pattern, message), (name, message)
    assert server.requests_since(mark) == []
    assert tag_state(skopeo(server), prod) == {}


def test_stage_checks_report_only_the_rules_that_fail_each_on_its_own(
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Callable[..., Any],
    unique_repo_factory: Callable[[], str],
) -> None:
    server = registry_open
    dev, prod, qa = unique_repo_factory(), unique_repo_factory(), unique_repo_factory()
    skopeo(server).copy(image_factory().oci, f"{dev}:1.0")
    source = f"{server.host}/{dev}:1.0"
    stageless = stage(server, "prod", prod)
    cases = [
        ("no stage", {"promote_stages": []}, ["promote_stages is empty: it needs at least one stage"]),
        (
            "a stage without tags",
            {"promote_stages": [stage(server, "qa", qa, tags=["latest"]), stageless]},
            ["every stage needs at least one tag in tags or release_tags; without any: prod"],
        ),
        (
            "names used twice",
            {
                "promote_stages": [
                    stage(server, "prod", qa, tags=["latest"]),
                    stage(server, "prod", prod, tags=["latest"]),
                    {"repository": f"{server.host}/{prod}", "tags": ["stable"]},
                    {"repository": f"{server.host}/{prod}", "tags": ["latest"]},
                ]
            },
            [
                "stage names must be unique (a stage's name defaults to its repository); more than once: "
                f"prod, {server.host}/{prod}"
            ],
        ),
        (
            "tags both moving and release",
            {
                "promote_stages": [
                    stage(server, "qa", qa, tags=["latest"], release_tags=["1.0"]),
                    stage(server, "prod", prod, tags=["1.0", "latest", "2.0"], release_tags=["2.0", "1.0"]),
                ]
            },
            ["a tag of a stage may not be both in its tags and its release_tags; in both: prod (1.0, 2.0)"],
        ),
        (
            "unknown promote_to",
            {"promote_stages": [stage(server, "qa", qa, tags=["latest"])], "promote_to": "prd"},
            ["promote_to must name a stage (promote_to: prd); the stages are: qa"],
        ),
        (
            "two rules broken at once",
            {"promote_stages": [stage(server, "qa", qa, tags=["latest"]), stageless], "promote_to": "staging"},
            [
                "every stage needs at least one tag in tags or release_tags; without any: prod",
                "promote_to must name a stage (promote_to: staging); the stages are: qa, prod",
            ],
        ),
    ]
    mark = server.mark()
    run = playbook([rescued(promote(name, promote_source=source, **role_vars)) for name, role_vars, _messages in cases])
    assert run.rc == 0, run.output
    assert failed_items(run) == [(STAGE_CHECK_TASK, messages) for _name, _vars, messages in cases]
    assert server.requests_since(mark) == []
    assert tag_state(skopeo(server), prod) == {} and tag_state(skopeo(server), qa) == {}

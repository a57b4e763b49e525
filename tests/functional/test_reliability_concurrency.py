"""Two pipelines promote different images to the same tag at the same moment: both end cleanly, and the tag ends
on one of the two images, complete.

Two ansible-playbook processes start together. Each promotes its own source with registry_tag (to another
repository of the registry: blobs mounted) and with registry_image (to another registry: blobs streamed), to the
same destination tags. Neither may fail or report a broken state; afterwards each tag names one of the two
digests, and skopeo can copy out everything it names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.images import Image
from support.playbook import PlaybookRun
from support.registry import RegistryServer
from support.skopeo import Skopeo

TAG = "ocireg.registry.registry_tag"
IMAGE = "ocireg.registry.registry_image"

Playbook = Callable[..., PlaybookRun]


def promotion(source: str, target: str, registry: RegistryServer, mirror: RegistryServer) -> list[dict[str, Any]]:
    """Tasks promoting SOURCE to TARGET:prod and :stable in REGISTRY, and mirroring it to TARGET:prod in MIRROR."""
    login = {"username": registry.username, "password": registry.password}
    promote = {
        "repository": f"{registry.host}/{target}",
        "tag": ["prod", "stable"],
        "source": f"{registry.host}/{source}",
    }
    copy = {"src": f"{registry.host}/{source}", "dest": f"{mirror.host}/{target}:prod"}
    return [
        {"name": "promote", TAG: {**promote, **login}},
        {"name": "mirror", IMAGE: {**copy, "credentials": {registry.host: login}}},
    ]


def run_together(playbook: Playbook, *task_lists: list[dict[str, Any]]) -> list[PlaybookRun]:
    runs: list[PlaybookRun | None] = [None] * len(task_lists)
    start = threading.Barrier(len(task_lists))

    def run(position: int) -> None:
        start.wait()
        runs[position] = playbook(task_lists[position])

    threads = [threading.Thread(target=run, args=(position,)) for position in range(len(task_lists))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(run is not None for run in runs)
    return runs  # type: ignore[return-value]


def test_two_playbooks_promoting_to_the_same_tag_at_once(
    registry_htpasswd: RegistryServer,
    registry_open: RegistryServer,
    image_factory: Callable[..., Image],
    skopeo: Callable[..., Skopeo],
    playbook: Playbook,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    witness, mirror_witness = skopeo(registry_htpasswd), skopeo(registry_open)
    first = image_factory(platforms=["linux/amd64", "linux/arm64"], layers=2, layer_size=300_000, compresslevel=1)
    second = image_factory(layers=3, layer_size=300_000, compresslevel=1)
    witness.copy(first.oci, f"{unique_repo}/first:v1")
    witness.copy(second.oci, f"{unique_repo}/second:v1")
    target = f"{unique_repo}/app"
    candidates = {first.digest, second.digest}

    for round_number in range(2):  # the second round starts from the first one's winner
        runs = run_together(
            playbook,
            promotion(f"{unique_repo}/first:v1", target, registry_htpasswd, registry_open),
            promotion(f"{unique_repo}/second:v1", target, registry_htpasswd, registry_open),
        )
        for run, image in zip(runs, (first, second)):
            assert run.rc == 0, run.output
            for name in ("promote", "mirror"):
                entry = [e for e in run.results if e["task"] == name][-1]
                assert entry["status"] == "ok" and entry["result"]["digest"] == image.digest, (round_number, entry)

        for sk, tag in ((witness, "prod"), (witness, "stable"), (mirror_witness, "prod")):
            digest = sk.digest(f"{target}:{tag}")
            assert digest in candidates, (round_number, tag, digest)
            sk.copy(f"{target}:{tag}", f"oci:{tmp_path / f'{round_number}-{tag}-{id(sk)}'}:x")

"""What carrying attachments costs: registry_image with ``referrers: true`` against ``false``, and skopeo copy with
``use-sigstore-attachments: true``, on the same signed image, in one run.

Starts two CNCF distribution registries (a source and a destination; 2.8 has no referrers API, so referrers are
found through the fallback tag), pushes a two-platform image to the source and signs it in both cosign formats
(support/cosign.py, cosign's byte layouts): a ``.sig`` and a sigstore bundle referrer for the index, an ``.att``
and an attestation bundle referrer for its arm64 child. Then, ROUNDS times, alternating which goes first:

- a first copy to a fresh destination repository: registry_image without and with ``referrers``, and skopeo
  (``copy --all``, which carries the ``.sig`` of each manifest it copies, nothing else);
- the same task again, with everything up to date.

registry_image runs through ansible-playbook; skopeo runs as an ansible.builtin.command task in a playbook, so both
pay the same Ansible start-up. It prints the median wall times, the ratios, and the requests each side's access log
recorded for the last round (auth handshakes left out), by method.

Run from the repository root (needs `make collection-tree` once, docker-registry and skopeo):

    .venv/bin/python benchmarks/referrers.py [ROUNDS]
"""

from __future__ import annotations

import collections
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Keep this folder off sys.path: its copy.py would hide the standard library's copy module.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests" / "functional"))
sys.path.insert(0, str(ROOT / "build" / "collections"))  # `make collection-tree` links the checkout there

from support import cosign  # noqa: E402
from support.client import ClientFactory, ours  # noqa: E402
from support.images import make_image  # noqa: E402
from support.playbook import run_playbook  # noqa: E402
from support.registry import RegistryServer  # noqa: E402
from support.skopeo import SKOPEO_BINARY, Skopeo, _Isolation, cleanup_isolation  # noqa: E402

SOURCE_REPO = "bench/signed"
TOOLS = ("plain", "referrers", "skopeo")


def sign(client: Any, host: str, image: Any) -> int:
    """Sign IMAGE (an index) in SOURCE_REPO in both formats; the number of attachments made."""
    key = cosign.signing_key("ecdsa-p256")
    reference = f"{host}/{SOURCE_REPO}"
    layer = cosign.simple_signature(image.digest, key, docker_reference=reference)
    cosign.push(client, SOURCE_REPO, cosign.signature_image(image.digest, [layer]))
    bundle = cosign.sign_bundle(cosign.subject_of(image), key, created="2025-06-01T12:00:00Z")
    cosign.push_referrers(client, SOURCE_REPO, image.digest, [bundle])
    child = image.platforms["linux/arm64"]
    statement = cosign.attestation_layer(child.digest, key, docker_reference=reference)
    cosign.push(client, SOURCE_REPO, cosign.attestation_image(child.digest, [statement]))
    attestation = cosign.attest_bundle(cosign.subject_of(child), key, name=reference, created="2025-06-01T12:00:00Z")
    cosign.push_referrers(client, SOURCE_REPO, child.digest, [attestation])
    return 4


class Bench:
    def __init__(self, root: Path, source: RegistryServer, dest: RegistryServer):
        self.root = root
        self.source = source
        self.dest = dest
        self.registries_d = root / "registries.d"
        self.registries_d.mkdir()
        (self.registries_d / "sigstore.yaml").write_text(
            "docker:\n" + "".join("  %s:\n    use-sigstore-attachments: true\n" % s.host for s in (source, dest))
        )
        self.runs = 0

    def task(self, tool: str, dest_repo: str) -> dict[str, Any]:
        src, dest = f"{self.source.host}/{SOURCE_REPO}:1.0", f"{self.dest.host}/{dest_repo}:1.0"
        if tool == "skopeo":
            # the later --registries.d wins over the isolation's own: sigstore attachments on, for both registries
            argv = [SKOPEO_BINARY, *_Isolation.global_args(), "--registries.d", str(self.registries_d), "copy"]
            argv += ["--quiet", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
            argv += ["--src-no-creds", "--dest-no-creds", f"docker://{src}", f"docker://{dest}"]
            env = _Isolation.env()
            keep = ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "TMPDIR")
            environment = {key: env[key] for key in keep} | {
                "CONTAINERS_REGISTRIES_CONF": env["CONTAINERS_REGISTRIES_CONF"]
            }
            return {
                "name": "copy",
                "ansible.builtin.command": {"argv": argv},
                "environment": environment,
                "changed_when": True,
            }
        options = {"src": src, "dest": dest, "referrers": tool == "referrers"}
        return {"name": "copy", "ocireg.registry.registry_image": options}

    def run(self, tool: str, dest_repo: str) -> tuple[float, dict[str, collections.Counter]]:
        marks = self.source.mark(), self.dest.mark()
        self.runs += 1
        started = time.perf_counter()
        run = run_playbook([self.task(tool, dest_repo)], self.root / "playbooks" / str(self.runs))
        wall = time.perf_counter() - started
        if run.rc != 0:
            raise SystemExit(f"{tool}: the task failed (rc {run.rc}):\n{run.output}")
        counts = {}
        for side, server, mark in (("source", self.source, marks[0]), ("dest", self.dest, marks[1])):
            entries = server.requests_since(mark)
            if tool != "skopeo":
                entries = ours(entries)
            counts[side] = collections.Counter(e["method"] for e in entries if e["status"] != 401)
        return wall, counts


def show(counts: collections.Counter) -> str:
    return ", ".join(f"{n} {method}" for method, n in sorted(counts.items())) or "none"


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH (apt-get install docker-registry skopeo)")
    root = Path(tempfile.mkdtemp(prefix="ocireg-bench-referrers-"))
    servers: list[RegistryServer] = []
    connect = ClientFactory()
    try:
        source = RegistryServer("open", root / "source").start()
        dest = RegistryServer("open", root / "dest").start()
        servers += [source, dest]
        image = make_image(root / "layout", ref="1.0", platforms=["linux/amd64", "linux/arm64"], seed="referrers")
        Skopeo(source).copy(image.oci, f"{SOURCE_REPO}:1.0")
        attachments = sign(connect(source, SOURCE_REPO), source.host, image)
        bench = Bench(root, source, dest)
        walls: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        last: dict[tuple[str, str], dict[str, collections.Counter]] = {}
        for number in range(rounds):
            order = TOOLS if number % 2 == 0 else tuple(reversed(TOOLS))
            for tool in order:
                dest_repo = f"bench/{tool}-{number}"
                for phase in ("first copy", "up to date"):
                    wall, counts = bench.run(tool, dest_repo)
                    walls[(tool, phase)].append(wall)
                    last[(tool, phase)] = counts
        print(
            f"one 2-platform image, {attachments} attachments (2 cosign tags, 2 fallback-index referrers); "
            f"{rounds} rounds, median wall seconds; requests of the last round, auth handshakes left out"
        )
        print(f"{'tool':<34} {'phase':<11} {'wall':>6}  source requests / destination requests")
        names = {
            "plain": "registry_image referrers: false",
            "referrers": "registry_image referrers: true",
            "skopeo": "skopeo copy --all (sigstore att.)",
        }
        for phase in ("first copy", "up to date"):
            for tool in TOOLS:
                counts = last[(tool, phase)]
                median = statistics.median(walls[(tool, phase)])
                print(
                    f"{names[tool]:<34} {phase:<11} {median:>6.2f}  {show(counts['source'])} / {show(counts['dest'])}"
                )
            ratio = statistics.median(walls[("referrers", phase)]) / statistics.median(walls[("plain", phase)])
            peer = statistics.median(walls[("referrers", phase)]) / statistics.median(walls[("skopeo", phase)])
            print(f"  {phase}: referrers true / false = {ratio:.2f}; referrers true / skopeo = {peer:.2f}")
        return 0
    finally:
        connect.close()
        for server in servers:
            server.stop()
        cleanup_isolation()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

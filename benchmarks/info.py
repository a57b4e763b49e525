"""Benchmark: image details for a whole registry, registry_info against a skopeo loop.

    PYTHONPATH=build/collections .venv/bin/python benchmarks/info.py [--repos 300] [--tags 10] [--kind open]

Seeds REPOS x TAGS images (every tag its own manifest, all sharing one config and layer) in a fresh
CNCF distribution registry, then gathers the same facts two ways:

- ours: ONE ansible-playbook task, ``registry_info: {registry: HOST, repositories: [PREFIX/*], details: true}``;
- skopeo: ``skopeo list-tags`` per repository, then ``skopeo inspect`` per tag (manifest and config, the same
  facts), with as many skopeo processes at once as our ``concurrency`` (8): once with ``--no-tags`` (the fairest
  to skopeo, since the tags are already listed) and once as ``skopeo inspect`` runs by default (it lists the
  repository's tags again for every image); then ``--no-tags`` one process at a time.

Prints wall times, the speed-up, and the HTTP requests each made, from the registry's access log. It also prints
what bounds the speed-up on this machine: the CPU the registry process itself spends answering each tool (read from
/proc), and the time of a one-task playbook (``ansible.builtin.command: "true"``). Even a client that cost nothing
could not finish before Ansible's own start-up plus the registry's CPU spread over every core, so
``sequential loop / (playbook start-up + registry CPU / cores)`` is the best ratio any Ansible module could reach.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its sibling copy.py would shadow the standard
# library's ``copy``: drop it before anything imports ``copy``.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import collections  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "functional"))

from support.pki import CertificateAuthority  # noqa: E402
from support.playbook import run_playbook  # noqa: E402
from support.registry import RegistryServer  # noqa: E402
from support.seed import seed_many  # noqa: E402
from support.skopeo import Skopeo  # noqa: E402
from support.tokenissuer import TokenIssuer  # noqa: E402

CONCURRENCY = 8


def classify(entries: list[dict[str, Any]]) -> collections.Counter:
    """Requests by kind: 'GET manifest', 'GET blob', 'GET tags', 'GET catalog', 'GET /v2/', with 401s apart."""
    kinds: collections.Counter = collections.Counter()
    for entry in entries:
        path = entry["path"]
        if "/manifests/" in path:
            what = "manifest"
        elif "/blobs/" in path:
            what = "blob"
        elif path.endswith("/tags/list"):
            what = "tags"
        elif path == "/v2/_catalog":
            what = "catalog"
        else:
            what = path
        kinds["%s %s%s" % (entry["method"], what, " (401)" if entry["status"] == 401 else "")] += 1
    return kinds


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def run_ours(server: RegistryServer, prefix: str, workdir: Path) -> tuple[float, int]:
    args: dict[str, Any] = {
        "registry": server.host,
        "repositories": ["%s/*" % prefix],
        "details": True,
        "concurrency": CONCURRENCY,
    }
    if server.username:
        args.update(username=server.username, password=server.password)
    seconds, run = timed(
        lambda: run_playbook(
            [{"name": "details", "ocireg.registry.registry_info": args, "register": "facts"}], workdir, timeout=1800
        )
    )
    result = run.task("details")
    if run.rc != 0 or "repositories" not in result:
        raise SystemExit("registry_info failed:\n%s" % run.output)
    described = sum(len(entry["tags"]) for entry in result["repositories"])
    return seconds, described


def timed_trivial_playbook(workdir: Path) -> float:
    """Ansible's own cost for a one-task playbook: start-up, one module round trip, and exit."""
    seconds, run = timed(
        lambda: run_playbook([{"name": "nothing", "ansible.builtin.command": "true"}], workdir, timeout=600)
    )
    if run.rc != 0:
        raise SystemExit("the trivial playbook failed:\n%s" % run.output)
    return seconds


def run_skopeo(skopeo: Skopeo, repos: list[str], workers: int, inspect_args: tuple[str, ...]) -> tuple[float, int]:
    def inspect(reference: str) -> None:
        skopeo.run("inspect", *inspect_args, *skopeo._side_args(skopeo.ref(reference), ""), skopeo.ref(reference))

    def one_repo(repo: str) -> list[str]:
        return ["%s:%s" % (repo, tag) for tag in skopeo.list_tags(repo)]

    def everything() -> int:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            references = [ref for refs in pool.map(one_repo, repos) for ref in refs]
            list(pool.map(inspect, references))
        return len(references)

    return timed(everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--kind", choices=["open", "htpasswd", "token"], default="open")
    parser.add_argument("--rounds", type=int, default=3, help="registry_info runs; the median counts")
    parser.add_argument("--skip-sequential", action="store_true", help="skip the one-at-a-time skopeo loop")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-info-"))
    issuer = None
    server = None
    try:
        if options.kind == "token":
            issuer = TokenIssuer(CertificateAuthority(workdir / "pki"), {"alice": "bench-password"}).start()
        server = RegistryServer(options.kind, workdir / "registry", token_issuer=issuer).start()
        prefix = "bench"
        seconds, seeded = timed(lambda: seed_many(server, options.repos, options.tags, prefix=prefix, distinct=True))
        total = options.repos * options.tags
        print(
            "seeded %d repositories x %d tags (%d manifests) in %.1f s" % (options.repos, options.tags, total, seconds)
        )

        # The machine may be shared: run ours several times and keep the median, skopeo's loops once each.
        ours_runs = []
        ours_cpu = []
        for round_number in range(options.rounds):
            mark = server.mark()
            tokens_before = len(issuer.requests) if issuer is not None else 0
            cpu_before = server.cpu_seconds()
            seconds, described = run_ours(server, prefix, workdir / ("playbook-%d" % round_number))
            ours_cpu.append(server.cpu_seconds() - cpu_before)
            ours_tokens = len(issuer.requests) - tokens_before if issuer is not None else 0
            ours_requests = classify(server.requests_since(mark))
            assert described == total, (described, total)
            ours_runs.append(seconds)
        ours_seconds = statistics.median(ours_runs)
        startup = statistics.median(timed_trivial_playbook(workdir / ("trivial-%d" % n)) for n in range(3))

        skopeo = Skopeo(server)
        loops: list[tuple[str, int, tuple[str, ...]]] = [
            ("skopeo list-tags + inspect --no-tags, %d at a time" % CONCURRENCY, CONCURRENCY, ("--no-tags",)),
            ("skopeo list-tags + inspect, %d at a time" % CONCURRENCY, CONCURRENCY, ()),
        ]
        if not options.skip_sequential:
            loops.append(("skopeo list-tags + inspect --no-tags, one at a time", 1, ("--no-tags",)))
        measured = []
        for label, workers, inspect_args in loops:
            mark = server.mark()
            cpu_before = server.cpu_seconds()
            seconds, inspected = run_skopeo(skopeo, seeded.repos, workers, inspect_args)
            assert inspected == total, (inspected, total)
            measured.append((label, seconds, classify(server.requests_since(mark)), server.cpu_seconds() - cpu_before))

        print()
        print("registry %s (%s), %d images; load average %.1f" % (server.url, options.kind, total, os.getloadavg()[0]))
        print(
            "%-55s %7.1f s   (median of %s)"
            % (
                "registry_info (one task, details, concurrency %d)" % CONCURRENCY,
                ours_seconds,
                ", ".join("%.1f" % run for run in ours_runs),
            )
        )
        for label, seconds, _requests, _cpu in measured:
            print("%-55s %7.1f s   registry_info %.1fx faster" % (label, seconds, seconds / ours_seconds))
        print()
        print("HTTP requests (registry access log):")
        print("  registry_info: %5d  %s" % (sum(ours_requests.values()), dict(sorted(ours_requests.items()))))
        if issuer is not None:
            print("  registry_info token requests: %d" % ours_tokens)
        for label, _seconds, requests, _cpu in measured:
            print("  %s: %5d  %s" % (label, sum(requests.values()), dict(sorted(requests.items()))))
        print()
        cores = os.cpu_count() or 1
        registry_cpu = statistics.median(ours_cpu)
        print("What bounds the ratio on this machine (%d cores):" % cores)
        print(
            "  registry CPU answering registry_info: %.1f s (%s), %.2f ms per request"
            % (
                registry_cpu,
                ", ".join("%.1f" % cpu for cpu in ours_cpu),
                1000 * registry_cpu / max(1, sum(ours_requests.values())),
            )
        )
        for label, _seconds, requests, cpu in measured:
            print(
                "  registry CPU answering %s: %.1f s, %.2f ms per request"
                % (label, cpu, 1000 * cpu / max(1, sum(requests.values())))
            )
        floor = startup + registry_cpu / cores
        print("  a one-task playbook (ansible.builtin.command: true): %.2f s" % startup)
        print(
            "  fastest possible registry_info run (start-up + registry CPU / %d cores, client costing nothing): %.1f s"
            % (cores, floor)
        )
        for label, seconds, _requests, _cpu in measured:
            print("  best ratio any module could reach against %s: %.1fx" % (label, seconds / floor))
    finally:
        if server is not None:
            server.stop()
        if issuer is not None:
            issuer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

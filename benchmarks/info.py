"""Benchmark: image details for a whole registry, registry_info against a skopeo loop.

    PYTHONPATH=build/collections .venv/bin/python benchmarks/info.py [--repos 300] [--tags 10] [--kind open]

Seeds REPOS x TAGS images (every tag its own manifest, all sharing one config and layer) in a fresh
CNCF distribution registry, then gathers the same facts two ways:

- ours: ONE ansible-playbook task, ``registry_info: {registry: HOST, repositories: [PREFIX/*], details: true}``;
- skopeo: ``skopeo list-tags`` per repository, then ``skopeo inspect --no-tags`` per tag (manifest and config,
  the same facts), with as many skopeo processes at once as our ``concurrency`` (8), and one at a time.

Prints wall times, the speed-up, and the HTTP requests each made, from the registry's access log.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its sibling copy.py would shadow the standard
# library's ``copy``: drop it before anything imports ``copy``.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import collections  # noqa: E402
import shutil  # noqa: E402
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


def run_skopeo(skopeo: Skopeo, repos: list[str], workers: int) -> tuple[float, int]:
    def inspect(reference: str) -> None:
        skopeo.run("inspect", "--no-tags", *skopeo._side_args(skopeo.ref(reference), ""), skopeo.ref(reference))

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

        mark = server.mark()
        tokens_before = len(issuer.requests) if issuer is not None else 0
        ours_seconds, described = run_ours(server, prefix, workdir / "playbook")
        ours_tokens = len(issuer.requests) - tokens_before if issuer is not None else 0
        ours_requests = classify(server.requests_since(mark))
        assert described == total, (described, total)

        skopeo = Skopeo(server)
        mark = server.mark()
        parallel_seconds, inspected = run_skopeo(skopeo, seeded.repos, CONCURRENCY)
        skopeo_requests = classify(server.requests_since(mark))
        assert inspected == total, (inspected, total)

        sequential_seconds = None
        if not options.skip_sequential:
            sequential_seconds, _count = run_skopeo(skopeo, seeded.repos, 1)

        print()
        print("registry %s (%s), %d images" % (server.url, options.kind, total))
        print("registry_info (one task, details, concurrency %d): %7.1f s" % (CONCURRENCY, ours_seconds))
        print("skopeo list-tags + inspect, %d at a time:           %7.1f s" % (CONCURRENCY, parallel_seconds))
        if sequential_seconds is not None:
            print("skopeo list-tags + inspect, one at a time:          %7.1f s" % sequential_seconds)
        print()
        print("speed-up against skopeo %d at a time: %.1fx" % (CONCURRENCY, parallel_seconds / ours_seconds))
        if sequential_seconds is not None:
            print("speed-up against skopeo one at a time: %.1fx" % (sequential_seconds / ours_seconds))
        print()
        print("HTTP requests (registry access log):")
        print("  registry_info: %5d  %s" % (sum(ours_requests.values()), dict(sorted(ours_requests.items()))))
        print("  skopeo:        %5d  %s" % (sum(skopeo_requests.values()), dict(sorted(skopeo_requests.items()))))
        if issuer is not None:
            print("  registry_info token requests: %d" % ours_tokens)
    finally:
        if server is not None:
            server.stop()
        if issuer is not None:
            issuer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

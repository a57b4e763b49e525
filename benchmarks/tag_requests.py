"""The HTTP requests registry_tag makes for a task that has nothing to do, with and without token auth.

Starts the CNCF distribution registry (open, htpasswd and token auth with the test token issuer), pushes one
image under the tags src, t1, t2 and t3 with skopeo, then runs, through ansible-playbook, the up-to-date task

    ocireg.registry.registry_tag: {repository: HOST/bench/app, tag: [t1, t2, t3], source: HOST/bench/app:src}

and prints every request the registry's access log and the token issuer's log recorded for it.
Target (the registry_tag documentation): one HEAD per tag and per tag-named source, plus the auth handshake.

Run from the repository root (needs `make collection-tree` once, docker-registry and skopeo):

    .venv/bin/python benchmarks/tag_requests.py
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Keep this folder off sys.path: its copy.py would hide the standard library's copy module.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests" / "functional"))
sys.path.insert(0, str(ROOT / "build" / "collections"))  # `make collection-tree` links the checkout there

from support.images import make_image  # noqa: E402
from support.pki import CertificateAuthority  # noqa: E402
from support.playbook import run_playbook  # noqa: E402
from support.registry import RegistryServer  # noqa: E402
from support.skopeo import Skopeo, cleanup_isolation  # noqa: E402
from support.tokenissuer import TokenIssuer  # noqa: E402

REPO = "bench/app"
TAGS = ["t1", "t2", "t3"]


def measure(kind: str, server: RegistryServer, image_oci: str, workdir: Path) -> tuple[int, int, int]:
    """Run the up-to-date task against SERVER; print its requests; return (answered, 401s, token requests)."""
    sk = Skopeo(server)
    for tag in ["src", *TAGS]:
        sk.copy(image_oci, f"{REPO}:{tag}")
    options = {"repository": f"{server.host}/{REPO}", "tag": TAGS, "source": f"{server.host}/{REPO}:src"}
    if server.username:
        options.update(username=server.username, password=server.password)
    task = {"name": "up to date", "ocireg.registry.registry_tag": options}
    issuer = server.token_issuer
    mark, token_mark = server.mark(), issuer.mark() if issuer else 0

    run = run_playbook([task], workdir / kind)
    result = run.task("up to date")
    if run.rc != 0 or result.get("changed") is not False:
        raise SystemExit(f"{kind}: the task did not run clean (rc {run.rc}):\n{run.output}")

    sent = server.requests_since(mark)
    tokens = issuer.requests_since(token_mark) if issuer else []
    print(f"== {kind}: registry_tag, {len(TAGS)} tags up to date, source named by tag")
    for entry in sent:
        print(f"   registry  {entry['method']:<6} {entry['path']}  -> {entry['status']}")
    for token in tokens:
        print(f"   issuer    {token.method:<6} {token.path}  scope={' '.join(token.scopes)}  -> {token.status}")
    answered = sum(1 for entry in sent if entry["status"] != 401 and entry["method"] == "HEAD")
    if any(entry["method"] != "HEAD" for entry in sent):
        raise SystemExit(f"{kind}: an up-to-date task sent something other than HEAD requests")
    handshakes = sum(1 for entry in sent if entry["status"] == 401)
    print(f"   total: {answered} answered HEADs, {handshakes} handshake 401, {len(tokens)} token request(s)\n")
    return answered, handshakes, len(tokens)


def main() -> int:
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH (apt-get install docker-registry skopeo)")
    root = Path(tempfile.mkdtemp(prefix="ocireg-bench-tag-"))
    servers: list[RegistryServer] = []
    issuer = None
    try:
        pki = CertificateAuthority(root / "pki")
        issuer = TokenIssuer(pki, {"alice": secrets.token_urlsafe(12)}).start()
        image = make_image(root / "layout", ref="v1", seed="tag-requests")
        figures = {}
        for kind in ("open", "htpasswd", "token"):
            server = RegistryServer(kind, root / kind, ca=pki, token_issuer=issuer).start()
            servers.append(server)
            figures[kind] = measure(kind, server, image.oci, root / "playbooks")
        print("set-up     answered  401  token requests   (target: 4 HEADs; auth adds one 401, token auth one token)")
        for kind, (answered, handshakes, tokens) in figures.items():
            print(f"{kind:<10} {answered:>8} {handshakes:>4} {tokens:>15}")
        ok = all(figure[0] == len(TAGS) + 1 for figure in figures.values())
        return 0 if ok else 1
    finally:
        for server in servers:
            server.stop()
        if issuer is not None:
            issuer.stop()
        cleanup_isolation()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

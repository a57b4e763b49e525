"""Fixtures that run REAL registries (CNCF distribution `docker-registry`) for the functional tests.

Session-scoped, shared by all tests (use `unique_repo` so tests don't see each other's data):
    registry_open, registry_htpasswd, registry_token, registry_tls, registry_mtls, any_registry (all five)
Per test:
    registry_factory(kind, **options) -> a fresh RegistryServer with its own storage (stopped after the test)
    unique_repo, unique_repo_factory(), image_factory(**make_image_kwargs), skopeo(server), raw_client(server),
    fault_proxy(server)
Set OCIREG_KEEP_TMP=1 to keep registry storage, configs and logs after the run.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.faultproxy import FaultProxy  # noqa: E402
from support.images import Image, make_image  # noqa: E402
from support.pki import CertificateAuthority  # noqa: E402
from support.playbook import PlaybookRun, run_playbook  # noqa: E402
from support.rawhttp import RawClient  # noqa: E402
from support.registry import KINDS, REGISTRY_BINARY, RegistryServer  # noqa: E402
from support.skopeo import SKOPEO_BINARY, Skopeo, cleanup_isolation  # noqa: E402
from support.tokenissuer import TokenIssuer  # noqa: E402

ISSUER_OPTIONS = ("user_actions", "anonymous_actions", "expires_in", "key_id_mode")
_repo_counter = itertools.count(1)


def _keep_tmp() -> bool:
    return os.environ.get("OCIREG_KEEP_TMP", "") not in ("", "0")


def _require_tools() -> None:
    missing = [tool for tool in (REGISTRY_BINARY, SKOPEO_BINARY) if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found on PATH: the functional tests run the real CNCF distribution registry "
            "and skopeo. Install them: apt-get install docker-registry skopeo",
            pytrace=False,
        )


def _default_users() -> dict[str, str]:
    return {name: secrets.token_urlsafe(12) for name in ("alice", "bob", "reader")}


@pytest.fixture(scope="session")
def functional_root() -> Iterator[Path]:
    """Session temp root for PKI, registry storage and logs; removed at session end."""
    root = Path(tempfile.mkdtemp(prefix="ocireg-functional-"))
    yield root
    cleanup_isolation()
    if not _keep_tmp():
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(functional_root: Path) -> CertificateAuthority:
    return CertificateAuthority(functional_root / "pki")


def _new_issuer(pki: CertificateAuthority, **options: Any) -> TokenIssuer:
    options.setdefault("user_actions", {"reader": ["pull"]})
    return TokenIssuer(pki, options.pop("users", None) or _default_users(), **options).start()


@pytest.fixture(scope="session")
def token_issuer(pki: CertificateAuthority) -> Iterator[TokenIssuer]:
    """The issuer of the session `registry_token`: users alice, bob (anything they ask) and reader (pull only)."""
    issuer = _new_issuer(pki)
    yield issuer
    issuer.stop()


def _session_registry(
    kind: str, root: Path, pki: CertificateAuthority, issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    _require_tools()
    server = RegistryServer(kind, root / f"registry-{kind}", ca=pki, token_issuer=issuer).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_open(
    functional_root: Path, pki: CertificateAuthority, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    yield from _session_registry("open", functional_root, pki, token_issuer)


@pytest.fixture(scope="session")
def registry_htpasswd(
    functional_root: Path, pki: CertificateAuthority, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    yield from _session_registry("htpasswd", functional_root, pki, token_issuer)


@pytest.fixture(scope="session")
def registry_token(
    functional_root: Path, pki: CertificateAuthority, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    yield from _session_registry("token", functional_root, pki, token_issuer)


@pytest.fixture(scope="session")
def registry_tls(
    functional_root: Path, pki: CertificateAuthority, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    yield from _session_registry("tls", functional_root, pki, token_issuer)


@pytest.fixture(scope="session")
def registry_mtls(
    functional_root: Path, pki: CertificateAuthority, token_issuer: TokenIssuer
) -> Iterator[RegistryServer]:
    yield from _session_registry("mtls", functional_root, pki, token_issuer)


@pytest.fixture(params=KINDS)
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    """Each of the five session registries in turn."""
    return request.getfixturevalue(f"registry_{request.param}")


@pytest.fixture
def registry_factory(functional_root: Path, pki: CertificateAuthority) -> Iterator[Callable[..., RegistryServer]]:
    """registry_factory(kind="open", **options) -> a started registry with fresh storage, stopped after the test.

    options: catalog_maxentries, config_overrides (deep-merged into the distribution config), users, port;
    for "token" a fresh TokenIssuer is made, taking users, user_actions, anonymous_actions, expires_in and
    key_id_mode (default users alice, bob and the pull-only reader).
    """
    _require_tools()
    started: list[tuple[RegistryServer, TokenIssuer | None]] = []

    def make(kind: str = "open", **options: Any) -> RegistryServer:
        issuer = None
        if kind == "token":
            issuer_options = {key: options.pop(key) for key in ISSUER_OPTIONS if key in options}
            issuer = _new_issuer(pki, users=options.pop("users", None), **issuer_options)
        workdir = Path(tempfile.mkdtemp(prefix=f"registry-{kind}-", dir=functional_root))
        server = RegistryServer(kind, workdir, ca=pki, token_issuer=issuer, **options)
        started.append((server, issuer))
        return server.start()

    yield make
    for server, issuer in started:
        server.stop()
        if issuer is not None:
            issuer.stop()
        if not _keep_tmp():
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture
def unique_repo_factory(request: pytest.FixtureRequest) -> Callable[[], str]:
    """unique_repo_factory() -> "t/<test name>-<n>", a new valid repository name on every call."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60].strip("-") or "test"

    def make() -> str:
        return f"t/{stem}-{next(_repo_counter)}"

    return make


@pytest.fixture
def unique_repo(unique_repo_factory: Callable[[], str]) -> str:
    return unique_repo_factory()


@pytest.fixture
def image_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Image]]:
    """image_factory(**make_image kwargs) -> Image in a new layout under tmp_path (or dest_dir=... to share one).

    Without seed=..., every call gets its own seed (stable across runs), so two images never share blobs.
    """
    counter = itertools.count(1)
    layouts = tmp_path / "layouts"

    def make(**kwargs: Any) -> Image:
        number = next(counter)
        kwargs.setdefault("seed", f"{request.node.nodeid}#{number}")
        dest_dir = kwargs.pop("dest_dir", None) or layouts / f"layout-{number}"
        return make_image(dest_dir, **kwargs)

    yield make
    shutil.rmtree(layouts, ignore_errors=True)


@pytest.fixture
def skopeo() -> Callable[..., Skopeo]:
    """skopeo(server, username=None, password=None) -> Skopeo bound to SERVER (default: the server's user)."""
    _require_tools()

    def bind(server: RegistryServer, **options: Any) -> Skopeo:
        return Skopeo(server, **options)

    return bind


@pytest.fixture
def raw_client() -> Iterator[Callable[..., RawClient]]:
    """raw_client(server, username=None, password=None) -> RawClient (plain requests, auth from the fixture)."""
    clients: list[RawClient] = []

    def make(server: RegistryServer, username: str | None = None, password: str | None = None) -> RawClient:
        clients.append(RawClient(server, username, password))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """fault_proxy(server, schedule=None) -> a started FaultProxy in front of SERVER, stopped after the test."""
    proxies: list[FaultProxy] = []

    def make(server: RegistryServer, schedule: Any = None) -> FaultProxy:
        proxies.append(FaultProxy(server, schedule=schedule).start())
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def playbook(tmp_path: Path) -> Callable[..., PlaybookRun]:
    """``playbook(tasks, check=False, diff=False, verbosity=0, ...)`` runs a real ansible-playbook on localhost.

    Each call gets its own working directory; read results with ``run.task(name)``.
    """
    runs = itertools.count(1)

    def run(tasks: list[dict[str, Any]], **options: Any) -> PlaybookRun:
        return run_playbook(tasks, tmp_path / ("playbook-%d" % next(runs)), **options)

    return run

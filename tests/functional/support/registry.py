"""Run the real CNCF distribution registry (`docker-registry serve CONFIG`) on a free loopback port.

Kinds: "open" (no auth, http), "htpasswd" (bcrypt basic auth, http), "token" (auth.token with our
TokenIssuer, http), "tls" (https, test CA), "mtls" (https, client certs required).

Stdout of the registry is its access log (combined log format, one line per request); `mark()` and
`requests_since(mark)` count what a piece of code sent:

    mark = registry.mark()
    ...  # run the code under test
    assert [r["method"] for r in registry.requests_since(mark)] == ["HEAD"]
"""

from __future__ import annotations

import atexit
import copy
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import requests
import yaml

from .pki import CertificateAuthority
from .tokenissuer import TokenIssuer

KINDS = ("open", "htpasswd", "token", "tls", "mtls")
REGISTRY_BINARY = "docker-registry"
SYNC_PARAM = "ocireg-log-sync"
ACCESS_LINE = re.compile(
    r'^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)"'
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def parse_access_line(line: str) -> dict[str, Any] | None:
    """A combined-log-format line -> {method, path, query (raw), params (parsed query), status, size, ...}."""
    match = ACCESS_LINE.match(line)
    if not match:
        return None
    target = urlsplit(match["target"])
    return {
        "method": match["method"],
        "path": target.path,
        "query": target.query,
        "params": parse_qs(target.query, keep_blank_values=True),
        "status": int(match["status"]),
        "size": 0 if match["size"] == "-" else int(match["size"]),
        "user_agent": match["user_agent"],
        "remote": match["remote"],
        "time": match["time"],
        "raw": line,
    }


try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not dlopen
except OSError:
    _LIBC = None
_LIVE: set[RegistryServer] = set()


def _die_with_parent() -> None:
    """Runs in the child: get SIGTERM when the parent dies, so no registry outlives a killed test run."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()


def write_htpasswd(path: Path, users: Mapping[str, str]) -> None:
    # Cost 4 (the minimum): the registry checks the hash on every request, so a high cost slows every test.
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}" for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")


class RegistryServer:
    """One docker-registry process with its own storage. Start with start() or `with`."""

    def __init__(
        self,
        kind: str,
        workdir: str | os.PathLike[str],
        *,
        ca: CertificateAuthority | None = None,
        token_issuer: TokenIssuer | None = None,
        users: Mapping[str, str] | None = None,
        catalog_maxentries: int | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        port: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}, expected one of {KINDS}")
        if kind in ("tls", "mtls") and ca is None:
            raise ValueError(f"a {kind!r} registry needs a CertificateAuthority")
        if kind == "token" and token_issuer is None:
            raise ValueError("a 'token' registry needs a TokenIssuer")
        self.kind = kind
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage = self.workdir / "storage"
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"  # stderr: the registry's own log
        self.access_log_path = self.workdir / "access.log"  # stdout: one line per HTTP request
        self.token_issuer = token_issuer if kind == "token" else None
        self.port = port or free_port()
        self._fixed_port = port is not None
        self._process: subprocess.Popen[bytes] | None = None
        self._sync_counter = 0
        self._origin: RegistryServer | None = None  # set on views made by seen_at()
        self._address: tuple[str, str] | None = None
        self.ca_cert: Path | None = None
        self.client_cert: Path | None = None
        self.client_key: Path | None = None
        self.cert_dir: Path | None = None
        self.users: dict[str, str] = {}
        if kind == "htpasswd":
            self.users = dict(users or {"alice": secrets.token_urlsafe(12), "bob": secrets.token_urlsafe(12)})
        elif self.token_issuer is not None:
            self.users = dict(self.token_issuer.users)
        self.username: str | None = next(iter(self.users), None)
        self.password: str | None = self.users.get(self.username) if self.username else None
        self.config = self._build_config(ca, catalog_maxentries)
        if config_overrides:
            deep_merge(self.config, config_overrides)

    # -- configuration ---------------------------------------------------------------------------------------

    def _build_config(self, ca: CertificateAuthority | None, catalog_maxentries: int | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": secrets.token_hex(16)},
        }
        if catalog_maxentries is not None:
            config["catalog"] = {"maxentries": catalog_maxentries}
        if self.kind == "htpasswd":
            htpasswd = self.workdir / "htpasswd"
            write_htpasswd(htpasswd, self.users)
            config["auth"] = {"htpasswd": {"realm": "ocireg-test", "path": str(htpasswd)}}
        elif self.token_issuer is not None:
            config["auth"] = {
                "token": {
                    "realm": self.token_issuer.realm,
                    "service": self.token_issuer.service,
                    "issuer": self.token_issuer.issuer,
                    "rootcertbundle": str(self.token_issuer.rootcertbundle),
                }
            }
        if self.kind in ("tls", "mtls") and ca is not None:
            server = ca.issue_server(f"server-{self.port}")
            self.ca_cert = ca.cert_path
            self.cert_dir = self.workdir / "certs.d"
            self.cert_dir.mkdir(exist_ok=True)
            shutil.copy(ca.cert_path, self.cert_dir / "ca.crt")
            config["http"]["tls"] = {"certificate": str(server.cert_path), "key": str(server.key_path)}
            if self.kind == "mtls":
                client = ca.issue_client(f"client-{self.port}")
                self.client_cert, self.client_key = client.cert_path, client.key_path
                shutil.copy(client.cert_path, self.cert_dir / "client.cert")
                shutil.copy(client.key_path, self.cert_dir / "client.key")
                config["http"]["tls"]["clientcas"] = [str(ca.cert_path)]
        return config

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        if self._address is not None:
            return self._address[1]
        return "https" if self.kind in ("tls", "mtls") else "http"

    @property
    def host(self) -> str:
        return self._address[0] if self._address is not None else f"127.0.0.1:{self.port}"

    def seen_at(self, host: str, scheme: str = "http") -> RegistryServer:
        """This registry reached at another address (a FaultProxy): same users and logs, no process of its own."""
        view = copy.copy(self)
        view._origin, view._address, view._process = self._origin or self, (host, scheme), None
        if scheme == "http":
            view.ca_cert = view.client_cert = view.client_key = view.cert_dir = None
        return view

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def tls_verify(self) -> bool:
        return self.scheme == "https"

    def requests_kwargs(self) -> dict[str, Any]:
        """verify/cert keyword arguments for `requests` to reach this registry (no credentials)."""
        kwargs: dict[str, Any] = {}
        if self.ca_cert is not None:
            kwargs["verify"] = str(self.ca_cert)
        if self.client_cert is not None and self.client_key is not None:
            kwargs["cert"] = (str(self.client_cert), str(self.client_key))
        return kwargs

    def session(self) -> requests.Session:
        """A requests session with this registry's TLS settings (no credentials)."""
        session = requests.Session()
        # The environment's REQUESTS_CA_BUNDLE would otherwise override verify=<test CA>.
        session.trust_env = False
        for key, value in self.requests_kwargs().items():
            setattr(session, key, value)
        return session

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU the registry process has used so far (benchmarks: what the server itself costs)."""
        if not self.running or self._process is None:
            raise RuntimeError("the registry is not running")
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, timeout: float = 20.0) -> RegistryServer:
        if self._origin is not None:
            raise RuntimeError("a view made by seen_at() cannot be started or stopped")
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RuntimeError(f"{REGISTRY_BINARY} not found: install it (apt-get install docker-registry)")
        for attempt in range(3):
            self.config["http"]["addr"] = f"127.0.0.1:{self.port}"
            self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
            with open(self.access_log_path, "ab") as stdout, open(self.log_path, "ab") as stderr:
                self._process = subprocess.Popen(
                    [binary, "serve", str(self.config_path)],
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    # PDEATHSIG follows the starting *thread*: only use it from the main thread.
                    preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
                )
                _LIVE.add(self)
            if self._wait_ready(timeout):
                return self
            log = self.log_tail()
            self.stop()
            if "address already in use" in log and not self._fixed_port and attempt < 2:
                self.port = free_port()  # lost a race for the port: try another
                continue
            raise RuntimeError(f"docker-registry ({self.kind}) did not start; its log ends with:\n{log}")
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                requests.get(f"{self.url}/v2/?{SYNC_PARAM}=ready", timeout=2, **self.requests_kwargs())
                return True  # any HTTP answer (200 or 401) means it serves
            except requests.RequestException:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        _LIVE.discard(self)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> RegistryServer:
        """Stop and start again on the same port and storage (the access log keeps growing)."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- access log ------------------------------------------------------------------------------------------

    def _sync(self, timeout: float = 5.0) -> None:
        """Make sure every request answered so far is in the access log: send a marker request, wait for it."""
        self._sync_counter += 1
        marker = f"{SYNC_PARAM}={os.getpid()}-{self._sync_counter}"
        requests.get(f"{self.url}/v2/?{marker}", timeout=5, **self.requests_kwargs())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.access_log_path.read_text(errors="replace"):
                return
            time.sleep(0.01)
        raise RuntimeError(f"access log marker {marker} never appeared in {self.access_log_path}")

    def access_log(self, sync: bool = True) -> list[dict[str, Any]]:
        """Every HTTP request the registry answered, oldest first (our log-sync requests left out)."""
        if self._origin is not None:
            return self._origin.access_log(sync)
        if sync and self.running:
            self._sync()
        if not self.access_log_path.exists():
            return []
        entries = (parse_access_line(line) for line in self.access_log_path.read_text(errors="replace").splitlines())
        return [entry for entry in entries if entry is not None and SYNC_PARAM not in entry["query"]]

    def mark(self) -> int:
        """A position in the access log, for requests_since()."""
        return len(self.access_log())

    def requests_since(self, mark: int) -> list[dict[str, Any]]:
        return self.access_log()[mark:]

    def __repr__(self) -> str:
        return f"RegistryServer(kind={self.kind!r}, url={self.url!r}, storage={str(self.storage)!r})"

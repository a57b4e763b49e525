"""skopeo, the independent witness, bound to one RegistryServer.

    sk = Skopeo(registry)
    sk.copy(image.oci, "t/app:v1")          # repo refs without a transport mean docker://HOST/REPO
    assert sk.digest("t/app:v1") == image.digest

Every call runs isolated from the machine: its own HOME, empty auth file, registries.conf and policy,
so no credentials or mirrors configured on the host leak in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .registry import RegistryServer

SKOPEO_BINARY = "skopeo"
ANONYMOUS = ""


class SkopeoError(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"skopeo failed ({returncode}): {' '.join(argv)}\n{stderr.strip()}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class _Isolation:
    """A private HOME, auth file, registries.conf and policy for skopeo, made once per process."""

    _root: Path | None = None

    @classmethod
    def root(cls) -> Path:
        if cls._root is None or not cls._root.exists():
            root = Path(tempfile.mkdtemp(prefix="ocireg-skopeo-"))
            (root / "home").mkdir()
            (root / "run").mkdir(mode=0o700)
            (root / "registries.d").mkdir()
            (root / "tmp").mkdir()
            (root / "auth.json").write_text('{"auths": {}}')
            (root / "registries.conf").write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
            (root / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
            cls._root = root
        return cls._root

    @classmethod
    def cleanup(cls) -> None:
        if cls._root is not None:
            shutil.rmtree(cls._root, ignore_errors=True)
            cls._root = None

    @classmethod
    def env(cls) -> dict[str, str]:
        root = cls.root()
        env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
        env.update(
            HOME=str(root / "home"),
            XDG_RUNTIME_DIR=str(root / "run"),
            XDG_CONFIG_HOME=str(root / "home" / ".config"),
            DOCKER_CONFIG=str(root / "home" / ".docker"),
            REGISTRY_AUTH_FILE=str(root / "auth.json"),
            CONTAINERS_REGISTRIES_CONF=str(root / "registries.conf"),
            TMPDIR=str(root / "tmp"),
        )
        return env

    @classmethod
    def global_args(cls) -> list[str]:
        root = cls.root()
        return ["--policy", str(root / "policy.json"), "--registries.d", str(root / "registries.d")]


class Skopeo:
    """skopeo bound to SERVER. username/password default to the server's own (ANONYMOUS = "": none)."""

    def __init__(
        self,
        server: RegistryServer,
        *,
        username: str | None = None,
        password: str | None = None,
        cert_dir: str | os.PathLike[str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        if shutil.which(SKOPEO_BINARY) is None:
            raise RuntimeError(f"{SKOPEO_BINARY} not found: install it (apt-get install skopeo)")
        self.server = server
        self.username = server.username if username is None else username
        self.password = server.password if password is None else password
        self.cert_dir = server.cert_dir if cert_dir is None else Path(cert_dir)
        self.timeout = timeout

    def with_credentials(self, username: str, password: str) -> Skopeo:
        return Skopeo(self.server, username=username, password=password, cert_dir=self.cert_dir, timeout=self.timeout)

    def anonymous(self) -> Skopeo:
        return self.with_credentials(ANONYMOUS, ANONYMOUS)

    # -- plumbing --------------------------------------------------------------------------------------------

    def ref(self, ref: str) -> str:
        """`repo:tag` / `repo@digest` -> `docker://HOST/repo:tag`; refs with a transport stay as they are."""
        transports = ("docker://", "oci:", "oci-archive:", "docker-archive:", "dir:")
        return ref if ref.startswith(transports) else f"docker://{self.server.host}/{ref}"

    def _side_args(self, ref: str, prefix: str) -> list[str]:
        """TLS and credential flags for one side (prefix "", "src-" or "dest-") of a command."""
        if not ref.startswith(f"docker://{self.server.host}/"):
            return []
        args = [f"--{prefix}tls-verify={'true' if self.server.tls_verify else 'false'}"]
        if self.cert_dir is not None:
            args.append(f"--{prefix}cert-dir={self.cert_dir}")
        if self.username:
            args.append(f"--{prefix}creds={self.username}:{self.password}")
        else:
            args.append(f"--{prefix}no-creds")
        return args

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        argv = [SKOPEO_BINARY, *_Isolation.global_args(), *args]
        result = subprocess.run(argv, capture_output=True, env=_Isolation.env(), timeout=self.timeout, check=False)
        if check and result.returncode != 0:
            shown = [a if "creds=" not in a else a.split("=", 1)[0] + "=***" for a in argv]
            raise SkopeoError(shown, result.returncode, result.stderr.decode(errors="replace"))
        return result

    # -- commands --------------------------------------------------------------------------------------------

    def copy(
        self, src: str, dest: str, *, all: bool = True, preserve_digests: bool = True, extra: Sequence[str] = ()
    ) -> None:
        """skopeo copy SRC DEST (`--all` copies every platform of an index)."""
        src, dest = self.ref(src), self.ref(dest)
        args = ["copy", "--quiet", *self._side_args(src, "src-"), *self._side_args(dest, "dest-")]
        if all:
            args.append("--all")
        if preserve_digests:
            args.append("--preserve-digests")
        self.run(*args, *extra, src, dest)

    def inspect(self, ref: str, *, raw: bool = False, config: bool = False) -> Any:
        """Parsed JSON of `skopeo inspect`; with raw=True the exact bytes (manifest, or config with config=True)."""
        ref = self.ref(ref)
        args = ["inspect", *self._side_args(ref, "")]
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        output = self.run(*args, ref).stdout
        return output if raw else json.loads(output)

    def manifest(self, ref: str) -> bytes:
        return self.inspect(ref, raw=True)

    def digest(self, ref: str) -> str:
        """sha256 of the raw manifest bytes the registry serves for REF."""
        return f"sha256:{hashlib.sha256(self.manifest(ref)).hexdigest()}"

    def exists(self, ref: str) -> bool:
        ref = self.ref(ref)
        result = self.run("inspect", "--raw", *self._side_args(ref, ""), ref, check=False)
        if result.returncode == 0:
            return True
        stderr = result.stderr.decode(errors="replace")
        if "manifest unknown" in stderr or "not found" in stderr or "name unknown" in stderr:
            return False
        raise SkopeoError(["inspect", ref], result.returncode, stderr)

    def list_tags(self, repo: str) -> list[str]:
        ref = self.ref(repo)
        return json.loads(self.run("list-tags", *self._side_args(ref, ""), ref).stdout)["Tags"] or []

    def delete(self, ref: str) -> None:
        ref = self.ref(ref)
        self.run("delete", *self._side_args(ref, ""), ref)


def cleanup_isolation() -> None:
    """Remove skopeo's private HOME/auth/policy directory (the conftest calls this at session end)."""
    _Isolation.cleanup()

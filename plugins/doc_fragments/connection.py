# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options every ocireg.registry module, and the lookup, take to reach a registry (``ocireg.registry.connection``).

    The matching argument spec lives in plugins/module_utils/_common.py, and the names in
    plugins/module_utils/_registry/clients.py (CONNECTION_OPTIONS): names, types, defaults, aliases and
    environment fallbacks here and there must stay the same. ``LOOKUP`` adds what only a lookup declares in its
    documentation: where a module has an environment fallback in its argument spec, a lookup names the variable.
    """

    DOCUMENTATION = r"""
options:
  username:
    description:
      - User name for the registry that the task's main reference names (the lookup's first reference).
      - If not set, the value of the E(REGISTRY_USERNAME) environment variable is used.
      - Give O(password) too. For tasks that touch several registries, use O(credentials) instead.
    type: str
  password:
    description:
      - Password or access token that goes with O(username).
      - If not set, the value of the E(REGISTRY_PASSWORD) environment variable is used.
      - Never logged or returned.
    type: str
  credentials:
    description:
      - Credentials for several registries at once, for tasks that read from one registry and write to another.
      - A dictionary whose keys are registry hosts as they appear in references (V(ghcr.io),
        V(registry.example.com:5000), V(docker.io) for Docker Hub). Each value is a dictionary with either C(username)
        and C(password), or C(token), a bearer token that is sent as it is.
      - A key may also name a namespace or repository (V(ghcr.io/my-org)); the most specific key that matches wins.
      - Never logged or returned.
    type: dict
  auth_file:
    description:
      - Path of a container auth file to read credentials from, in the format of C(docker login) (C(config.json))
        or C(podman login) (C(auth.json)).
      - If not set, these files are searched in this order, and the first that has an entry for the registry is used
        (as skopeo and podman do) E(REGISTRY_AUTH_FILE), C($XDG_RUNTIME_DIR/containers/auth.json),
        C($XDG_CONFIG_HOME/containers/auth.json) (default C(~/.config/containers/auth.json)),
        C($DOCKER_CONFIG/config.json), C(~/.docker/config.json). A file that exists but cannot be parsed is an error.
      - Entries under C(auths) may hold C(auth) (base64 of C(user:password)), C(username) and C(password), or
        C(identitytoken) (an OAuth2 refresh token exchanged for registry tokens). An entry with a password but no
        user name (or the reverse) cannot be used, and is passed over with a warning naming the file and the entry.
      - C(credHelpers) (a helper per registry) and C(credsStore) (a helper for every other registry) are honoured
        by running C(docker-credential-NAME get), which must be on the E(PATH) of the host that runs the task.
      - For a registry, O(username) and O(password) come first (for the registry of the main reference only),
        then O(credentials), then this file. With none of them the registry is used anonymously.
    type: path
    aliases:
      - config_path
  validate_certs:
    description:
      - Verify the registry's TLS certificate and host name.
      - Set to V(false) only for registries you trust on a network you trust.
    type: bool
    default: true
  ca_path:
    description:
      - Path of a PEM file with the CA certificates to trust for the registry, instead of the system's trust store.
    type: path
  client_cert:
    description:
      - Path of a PEM client certificate, for registries that require mutual TLS.
      - If this file also holds the private key, leave O(client_key) unset.
    type: path
  client_key:
    description:
      - Path of the PEM private key that goes with O(client_cert).
    type: path
  timeout:
    description:
      - Seconds to wait for each request to the registry (to connect, and between bytes of an answer).
    type: float
    default: 60
  retries:
    description:
      - How many times to retry a request that failed for a passing reason before giving up.
      - Retried are connection errors, and answers 408, 429 (too many requests), 502, 503 and 504 to idempotent requests
        (C(GET), C(HEAD), C(PUT), C(DELETE)), and 500 to reads (C(GET), C(HEAD)), which a registry may answer
        while another client writes the same tag. An interrupted blob upload starts again from a new upload session.
      - Waits grow exponentially between attempts. A C(Retry-After) header from the registry sets the wait instead.
        The wait state is kept per registry host and shared by every request to it.
      - V(0) turns retrying off.
    type: int
    default: 5
requirements:
  - requests (Python library, on the host that runs the task; usually the controller with C(delegate_to=localhost))
notes:
  - The modules and the lookup talk to the registry over HTTP themselves and need no container engine. Modules run
    wherever the task runs, so most playbooks run them with C(delegate_to=localhost); lookups run on the controller.
  - A reference may start with C(http://) or C(https://) to choose the scheme. Without one, HTTPS is used, except for
    loopback hosts (C(localhost), C(127.0.0.0/8) and C([::1])), which are reached over plain HTTP.
  - When a registry reached over HTTPS answers with something that is not TLS, one C(GET /v2/) without credentials is
    sent to the same port over plain HTTP, only to tell whether it serves plain HTTP and say so in the error.
  - O(ca_path), O(client_cert) and O(client_key) files that do not exist fail the task before the first request.
  - Authentication follows the registry's challenge. Requests are sent anonymously first; on a 401 answer the
    C(WWW-Authenticate) header decides. C(Basic) sends the credentials. C(Bearer) asks the token service named by
    C(realm) for a token (with C(service), the C(scope)s needed and the credentials if any), caches it for the run per
    set of scopes, and asks for C(pull,push) only when the task pushes.
  - Credentials and tokens never appear in results, warnings, errors or logs, and an C(Authorization) header is never
    sent on when a registry redirects to another host (for example to blob storage).
"""

    LOOKUP = r"""
options:
  username:
    env:
      - name: REGISTRY_USERNAME
  password:
    env:
      - name: REGISTRY_PASSWORD
"""

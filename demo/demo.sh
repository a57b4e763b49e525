#!/usr/bin/env bash
# The demo behind `make demo` and `make demo-stop`:
#   demo/demo.sh install   install the Debian packages the demo needs, when they are missing
#   demo/demo.sh run       start (or reuse) a local registry, push sample images, sign one, run playbooks/demo.yml
#   demo/demo.sh stop      stop the registry `run` started
# Everything lives under build/demo/: the registry's config, storage, log, pid and port files, the signing key pair
# (cosign.key, cosign.pub) and the report.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DEMO_DIR=$ROOT/build/demo
VENV=${VENV:-.venv-demo}
PYTHON=$ROOT/$VENV/bin/python
PID_FILE=$DEMO_DIR/registry.pid
PORT_FILE=$DEMO_DIR/registry.port
CONFIG=$DEMO_DIR/config.yml
LOG=$DEMO_DIR/registry.log
COLLECTIONS=$ROOT/build/collections
PACKAGES=(docker-registry skopeo python3-venv)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- install -------------------------------------------------------------------------------------------------

missing_packages() {
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v skopeo >/dev/null || missing+=(skopeo)
  # Debian's python3 has the venv module but not ensurepip, which `python3 -m venv` needs, without python3-venv.
  if [[ ! -x $PYTHON ]] && ! python3 -c 'import ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
  command -v python3 >/dev/null || missing+=(python3)
  if ((${#missing[@]})); then printf '%s\n' "${missing[@]}"; fi
}

cmd_install() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    say "Packages: ${PACKAGES[*]} are there"
    return
  fi
  say "Installing ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "demo: run as root or install sudo, or: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- registry ------------------------------------------------------------------------------------------------

registry_pid() {
  # The pid from the pid file, if that process is still our registry.
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"docker-registry serve $CONFIG"* ]] || return 1
  echo "$pid"
}

answers() {
  "$PYTHON" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_registry() {
  local pid port
  if pid=$(registry_pid) && [[ -f $PORT_FILE ]] && answers "$(<"$PORT_FILE")"; then
    say "Registry: reusing the one on 127.0.0.1:$(<"$PORT_FILE") (pid $pid)"
    return
  fi
  cmd_stop quiet
  port=$(free_port)
  mkdir -p "$DEMO_DIR/storage"
  cat >"$CONFIG" <<EOF
# The make demo registry (CNCF distribution), written by demo/demo.sh.
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DEMO_DIR/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  setsid docker-registry serve "$CONFIG" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  echo "$port" >"$PORT_FILE"
  for _ in $(seq 1 100); do
    if answers "$port"; then
      say "Registry: started on 127.0.0.1:$port (pid $(<"$PID_FILE"), storage build/demo/storage)"
      return
    fi
    registry_pid >/dev/null || break
    sleep 0.2
  done
  echo "demo: the registry did not start; its log, $LOG, ends with:" >&2
  tail -n 20 "$LOG" >&2 || true
  exit 1
}

cmd_stop() {
  local pid
  if pid=$(registry_pid); then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    [[ ${1:-} == quiet ]] || say "Registry stopped (pid $pid); its storage stays in build/demo/storage"
  elif [[ ${1:-} != quiet ]]; then
    say "No demo registry is running"
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

# --- run -----------------------------------------------------------------------------------------------------

cmd_run() {
  [[ -x $PYTHON ]] || { echo "demo: $VENV is missing: run make demo (it creates it)" >&2; exit 1; }
  mkdir -p "$DEMO_DIR" "$COLLECTIONS/ansible_collections/ocireg"
  # The playbook finds the collection through this link to the checkout (as the tests do).
  local link=$COLLECTIONS/ansible_collections/ocireg/registry
  [[ $(readlink "$link" 2>/dev/null) == ../../../.. ]] || ln -sfn ../../../.. "$link"

  start_registry
  local registry
  registry=127.0.0.1:$(<"$PORT_FILE")

  say "Sample images: building them and pushing what is missing to $registry/dev/*, and signing dev/app:1.2.0"
  "$PYTHON" demo/seed_images.py --registry "$registry" --workdir "$DEMO_DIR/images" --key-dir "$DEMO_DIR"

  say "Running playbooks/demo.yml"
  ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS \
    ANSIBLE_LOCAL_TEMP=$DEMO_DIR/ansible-tmp \
    ANSIBLE_RETRY_FILES_ENABLED=0 \
    ANSIBLE_DISPLAY_SKIPPED_HOSTS=0 \
    "$ROOT/$VENV/bin/ansible-playbook" -i localhost, playbooks/demo.yml \
    -e demo_registry="$registry" -e demo_report_dir="$DEMO_DIR/report" -e demo_cosign_pub="$DEMO_DIR/cosign.pub"

  say "Done. The audit report: $DEMO_DIR/report/registry-audit.html"
  echo "    open it in a browser: file://$DEMO_DIR/report/registry-audit.html"
  echo "    JSON: $DEMO_DIR/report/registry-audit.json   Markdown: $DEMO_DIR/report/registry-audit.md"
  echo "    The registry keeps running on $registry (make demo-stop stops it; make demo again reuses it)."
}

case ${1:-} in
  install) cmd_install ;;
  run) cmd_run ;;
  stop) cmd_stop ;;
  *)
    echo "usage: $0 install|run|stop" >&2
    exit 2
    ;;
esac

# Sourced by scripts/test, scripts/serve and bench/run: installs the toolchain a
# fresh machine lacks, and defines setup_mysql, setup_redis and setup_s3_tests,
# which the scripts that need those call (scripts/serve without arguments needs
# none: Spin's SQLite and key-value store are embedded).
# Idempotent: on a prepared machine it only checks. With SETUP_RECORD_STARTED=1
# it remembers the services it started, for stop_started_services (scripts/serve).
# scripts/test also calls setup_browser_tests (Chromium and playwright-core)
# and setup_observability_tests (Prometheus and promtool).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  step "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}


# Pid files of the services this run started (see stop_started_services).
STARTED_SERVICES=()

# Stops what this run started, newest first; nothing that was already running.
stop_started_services() {
  local i pid
  for ((i = ${#STARTED_SERVICES[@]} - 1; i >= 0; i--)); do
    pid="$(cat "${STARTED_SERVICES[$i]}" 2>/dev/null || true)"
    if [ -n "$pid" ]; then
      step "stopping $(basename "${STARTED_SERVICES[$i]}" .pid) (pid $pid), started by this run"
      as_root kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  STARTED_SERVICES=()
}

# Debian's headless Chromium and playwright-core (tests/browser, from npm) for
# tests/api/tests/browser.rs. Installs only what is missing.
setup_browser_tests() {
  step "browser tests: Chromium and playwright-core"
  [ -x /usr/bin/chromium ] || apt_install chromium
  local lock=tests/browser/package-lock.json stamp=tests/browser/node_modules/.installed-from-lock
  if ! cmp -s "$lock" "$stamp"; then
    npm ci --prefix tests/browser --ignore-scripts --no-audit --no-fund --loglevel=error
    cp "$lock" "$stamp"
  fi
}

# The Standard Webhooks reference library (PyPI, pinned in
# tests/webhooks/requirements.txt) in a venv of its own, for the order events
# tests, which verify real deliveries with it (tests/webhooks/verify.py).
setup_webhook_tests() {
  step "webhook tests: standardwebhooks"
  local venv=target/webhooks-venv stamp want
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum tests/webhooks/requirements.txt | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/webhooks/requirements.txt
    echo "$want" > "$stamp"
  fi
}

# Debian's Prometheus server and promtool for tests/api/tests/observe.rs,
# which scrapes the host with a real Prometheus and checks the alert rules.
setup_observability_tests() {
  step "observability tests: Prometheus and promtool"
  { [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || apt_install prometheus
  prometheus --version 2>&1 | head -1
}

# The uploads tests' S3-compatible store (tests/api/src/s3.rs): s3s-fs checks
# SigV4 signatures, presigned-URL expiry and checksums. 0.14.1 is the newest
# release this toolchain (Rust 1.95) builds; about four minutes on 2 cores.
setup_s3_tests() {
  step "S3 tests: s3s-fs"
  s3s-fs --version 2>/dev/null | grep -qx 's3s-fs 0.14.1' ||
    cargo install s3s-fs --version 0.14.1 --features binary --locked
}

# MariaDB for the scale-out shape (db_url = mysql://…) and the tests that
# run on it: installed from Debian (root) and started when not running.
setup_mysql() {
  step "MariaDB"
  if ! mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    as_root start-stop-daemon --start --oknodo --background --make-pidfile \
      --pidfile /tmp/spin-api-mariadb.pid --exec /usr/sbin/mariadbd
    [ -z "${SETUP_RECORD_STARTED:-}" ] || STARTED_SERVICES+=(/tmp/spin-api-mariadb.pid)
    for _ in $(seq 60); do
      mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  mariadb-admin --protocol=tcp -h127.0.0.1 -uroot ping
  # Spin opens one MySQL connection per request in flight: the concurrency tests
  # (100 orders at once) and the benchmark (128 connections) need more than
  # MariaDB's default 151 while other tests run beside them.
  mariadb --protocol=tcp -h127.0.0.1 -uroot -e "SET GLOBAL max_connections = GREATEST(@@max_connections, 512)"
}

# Redis for a shared key-value store (several instances) and the order
# events' trigger: installed from Debian (root) and started when not running.
setup_redis() {
  step "Redis"
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null || apt_install redis-server
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log --pidfile /tmp/spin-api-redis.pid
    [ -z "${SETUP_RECORD_STARTED:-}" ] || STARTED_SERVICES+=(/tmp/spin-api-redis.pid)
    for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
  fi
  redis-cli -h 127.0.0.1 ping
}

# What every script needs: the wasm target and the build's own tools. No
# server, and root only to install npm where it is missing.
step "toolchain"
rustup target add wasm32-wasip2 >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || rustup component add clippy rustfmt
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
# functions/docs installs Swagger UI from npm when it builds.
command -v npm >/dev/null || apt_install nodejs npm

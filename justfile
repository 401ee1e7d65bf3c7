# Site Pulse 360 — everyday commands. `just --list` shows them all.

# Run the service on the embedded SQLite default (sitepulse.db here).
run *ARGS:
    cargo run -- {{ARGS}}

# Run every test (needs PostgreSQL server binaries: apt-get install postgresql).
test:
    cargo test

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmarks that print their figures (BENCH_SIZES, BENCH_DATABASES, BENCH_SECONDS, BENCH_WEBSITES, BENCH_SUBSCRIPTIONS, BENCH_REQUESTS narrow them).
bench:
    command -v wrk >/dev/null || echo "wrk not installed (apt-get install wrk): the load-generator ratio is skipped"
    cargo bench --bench history
    cargo bench --bench checker
    cargo bench --bench login
    cargo bench --bench pages
    bash -c 'ulimit -n 65536 2>/dev/null || true; cargo bench --bench graphql'
    just load

# 60 s of pages, GraphQL queries and mutations and 1,000 subscriptions while 10,000 websites are checked, on SQLite and PostgreSQL.
load:
    bash -c 'ulimit -n 65536 2>/dev/null || true; cargo bench --bench load'

# Three replicas on a temporary PostgreSQL: takeover time and missed slots after kill -9 and SIGTERM of the leader.
cluster-demo:
    cargo bench --bench cluster

# Faults on a Patroni cluster behind HAProxy (etcd, patroni, haproxy from Debian): PostgreSQL primary killed, leader killed, rolling restart, database unreachable 30 s.
failover-test:
    cargo test --release --test failover -- --ignored --nocapture --test-threads 1

# Fuzz the parsing at the edge (website names, URLs, durations) for a minute each; needs nightly and cargo-fuzz.
fuzz seconds="60":
    cd fuzz && for t in website_name website_url durations; do cargo +nightly fuzz run $t -- -max_total_time={{seconds}} || exit 1; done

# A release build of the binary.
build:
    cargo build --release

# Run the service on a temporary local PostgreSQL (initdb as the postgres user when root; removed on exit).
dev *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    PATH="$bin:$PATH"
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as=(); if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
    "${as[@]}" initdb -D "$dir/data" -U postgres --auth=trust >/dev/null
    "${as[@]}" pg_ctl -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
    trap '"${as[@]}" pg_ctl -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT
    echo "PostgreSQL on 127.0.0.1:$port (data in $dir, removed on exit)"
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" cargo run -- {{ARGS}}

# Print the GraphQL schema into schema.graphql (a test compares them).
schema:
    cargo run -q -- schema > schema.graphql

# Build the container image with podman, or docker where podman is missing.
image TAG="site-pulse-360:dev":
    #!/usr/bin/env bash
    set -euo pipefail
    engine=$(command -v podman || command -v docker || { echo "neither podman nor docker is installed" >&2; exit 1; })
    "$engine" build -f Containerfile -t {{TAG}} .
    "$engine" image ls {{TAG}}

# Deploy to the current kubectl context: k3s (CloudNativePG) or k3s/overlays/patroni.
deploy TARGET="k3s":
    kubectl apply -k {{TARGET}}
    kubectl -n site-pulse-360 rollout status deployment/sitepulse --timeout=5m

# Follow the logs of every replica, each line prefixed with its pod.
logs:
    kubectl -n site-pulse-360 logs -l app.kubernetes.io/name=sitepulse -f --prefix --max-log-requests 10

# Restore a pg_dump file (custom format) into the CloudNativePG primary; the app is stopped meanwhile.
restore DUMP:
    #!/usr/bin/env bash
    set -euo pipefail
    ns=site-pulse-360
    test -f "{{DUMP}}" || { echo "no such dump file: {{DUMP}}" >&2; exit 1; }
    replicas=$(kubectl -n $ns get deployment sitepulse -o jsonpath='{.spec.replicas}')
    primary=$(kubectl -n $ns get pod -l cnpg.io/cluster=sitepulse-db,cnpg.io/instanceRole=primary -o name | head -1)
    test -n "$primary" || { echo "no primary of sitepulse-db found" >&2; exit 1; }
    echo "stopping the app ($replicas replicas), restoring into $primary"
    kubectl -n $ns scale deployment sitepulse --replicas=0
    kubectl -n $ns wait --for=delete pod -l app.kubernetes.io/name=sitepulse --timeout=2m || true
    kubectl -n $ns exec -i "$primary" -c postgres -- pg_restore --clean --if-exists --no-owner --role=sitepulse -d sitepulse < "{{DUMP}}"
    kubectl -n $ns scale deployment sitepulse --replicas="$replicas"
    kubectl -n $ns rollout status deployment/sitepulse --timeout=5m

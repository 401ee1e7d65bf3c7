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

# Benchmarks: checker throughput and lateness, history latency, storage size,
# sign-in throughput and page latency during a sign-in storm, GraphQL throughput and
# subscription fan-out (10,000 connections: it raises the open-file limit if it may),
# page server time (list of 1,000 websites, a website's page) and compressed size.
# BENCH_SIZES, BENCH_DATABASES, BENCH_SECONDS, BENCH_WEBSITES, BENCH_SUBSCRIPTIONS and
# BENCH_REQUESTS narrow them.
bench:
    command -v wrk >/dev/null || echo "wrk not installed (apt-get install wrk): the load-generator ratio is skipped"
    cargo bench --bench history
    cargo bench --bench checker
    cargo bench --bench login
    cargo bench --bench pages
    bash -c 'ulimit -n 65536 2>/dev/null || true; cargo bench --bench graphql'

# Three replicas on a temporary PostgreSQL: takeover time after kill -9 and SIGTERM
# of the leader, and the slots missed around each.
cluster-demo:
    cargo bench --bench cluster

# A release build of the binary.
build:
    cargo build --release

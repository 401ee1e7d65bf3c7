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
# sign-in throughput and page latency during a sign-in storm.
# BENCH_SIZES, BENCH_DATABASES, BENCH_SECONDS and BENCH_WEBSITES narrow them.
bench:
    command -v wrk >/dev/null || echo "wrk not installed (apt-get install wrk): the load-generator ratio is skipped"
    cargo bench --bench history
    cargo bench --bench checker
    cargo bench --bench login
    bash -c 'ulimit -n 65536; cargo bench --bench graphql'

# A release build of the binary.
build:
    cargo build --release

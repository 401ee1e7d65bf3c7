//! `sitepulse`: the command line around the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use sitepulse::config::{Cli, Command, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sitepulse::init_logging(cli.config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cli.config).await,
            Command::Migrate => {
                sitepulse::open_store(&cli.config).await?;
                println!(
                    "migrations applied to the {}",
                    cli.config.database().redacted()
                );
                Ok(())
            }
            Command::Healthcheck { url } => healthcheck(&cli.config, url).await,
            Command::Schema => {
                print!("{}", sitepulse::graphql::sdl());
                Ok(())
            }
            Command::User { action } => sitepulse::admin::run(&cli.config, action).await,
        }
    });
    // Checks abandoned at shutdown must not hold the process open.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything can answer requests, so a SIGTERM that
    // arrives right after start-up still shuts down gracefully.
    let signals = shutdown_signal()?;
    let server = sitepulse::Server::start(config).await?;
    let token = server.shutdown_token();
    tokio::spawn(async move {
        signals.await;
        tracing::info!("shutting down");
        token.cancel();
    });
    server.wait().await
}

/// Resolves on SIGTERM or Ctrl-C; the handlers are installed when this returns.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Exit 0 when /healthz answers 200 within three seconds.
async fn healthcheck(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    sitepulse::install_crypto_provider();
    let url = url.unwrap_or_else(|| {
        let mut addr = config.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/healthz")
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} did not answer: {e}"))?;
    if !response.status().is_success() {
        anyhow::bail!("{url} answered {}", response.status());
    }
    Ok(())
}

//! `sitepulse user …`: managing users from the command line, for the first admin
//! on a locked-out installation and for scripts.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use crate::auth::model::Role;
use crate::auth::{AccountError, Accounts};
use crate::config::{Config, UserCommand};

/// Where a new password comes from: `SITEPULSE_PASSWORD`, else the first line of
/// standard input.
pub const PASSWORD_ENV: &str = "SITEPULSE_PASSWORD";

pub async fn run(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let store = crate::open_store(config).await?;
    let accounts = Accounts::new(store, config.auth());
    match command {
        UserCommand::Add { name, admin } => {
            let role = if admin { Role::Admin } else { Role::Viewer };
            let password = read_password(&name).await?;
            let user = accounts
                .create_user(&name, &password, role)
                .await
                .map_err(explain)?;
            println!("created {} {:?}", user.role, user.username);
        }
        UserCommand::Passwd { name } => {
            let Some(user) = accounts.user_by_name(&name).await.map_err(explain)? else {
                bail!("no user named {name:?}");
            };
            let password = read_password(&user.username).await?;
            accounts
                .change_password(user.id, &password, None)
                .await
                .map_err(explain)?;
            println!(
                "changed the password of {:?} and ended their sessions",
                user.username
            );
        }
        UserCommand::List => {
            for user in accounts.users().await? {
                println!(
                    "{:<8} {:<24} created {}",
                    user.role.as_str(),
                    user.username,
                    user.created_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
    }
    Ok(())
}

fn explain(err: AccountError) -> anyhow::Error {
    match err {
        AccountError::Invalid(invalid) => anyhow::anyhow!("{}", invalid.message),
        other => anyhow::Error::new(other),
    }
}

async fn read_password(name: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("password for {name} (input is shown): ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("no password given: set {PASSWORD_ENV} or pipe it to standard input");
        }
        Ok(password)
    })
    .await
    .context("reading the password failed")?
}

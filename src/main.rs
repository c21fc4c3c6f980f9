//! The `lookout` binary: flags -> config -> tracing -> bind -> run -> exit code.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use lookout::auth;
use lookout::config::{Cli, Command, Config, SessionAction, TokenAction};
use lookout::console::say;

/// After Ctrl-C or SIGTERM, the server gets this long to close its streams.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // Colours only on a terminal: logs piped to a file or journald stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        // A line nobody can read is dropped and counted, never a panic.
        .with_writer(lookout::console::LogWriter)
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match &cli.command {
        Some(command) => maintain(&cli, command),
        None => serve(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("lookout: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(cli: &Cli) -> anyhow::Result<()> {
    // Before the config: the default caps are derived from this limit.
    if let Some((old, new)) = lookout::descriptors::raise_soft_limit() {
        tracing::info!("raised the open-file limit from {old} to the hard limit {new}");
    }
    let config = Config::from_cli(cli)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using the port? try --listen 127.0.0.1:8081",
                config.listen
            )
        })?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(lookout::run(listener, config, shutdown.clone()));
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        // Cancel first: nothing, not even a log that cannot be written, may
        // stand between a signal and the shutdown.
        signal.cancel();
        tracing::info!("stopping (press Ctrl-C again to exit at once)");
        wait_for_signal().await;
        std::process::exit(130);
    });
    let mut server = server;
    tokio::select! {
        r = &mut server => return r.context("server task failed")?.map_err(Into::into),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(r) => r.context("server task failed")?.map_err(Into::into),
        Err(_) => {
            tracing::warn!("some connections did not close in time; exiting anyway");
            Ok(())
        }
    }
}

/// Runs a maintenance subcommand against the data directory.
#[tokio::main]
async fn maintain(cli: &Cli, command: &Command) -> anyhow::Result<()> {
    let config = Config::from_cli(cli)?;
    lookout::datadir::create_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = lookout::store::Store::open(&config.data_dir)?;
    match command {
        Command::Passwd => {
            eprint!("new password for {:?}: ", config.user);
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            let ended = auth::set_stored_password(&store, password).await?;
            eprintln!(
                "password stored in {} (used unless LOOKOUT_PASSWORD or --password-file is set)",
                config.data_dir.display()
            );
            eprintln!(
                "ended {ended} browser session(s) and one-hour API token(s); long-lived tokens \
                 stay valid (`lookout token list`, `lookout token revoke NAME`)"
            );
        }
        Command::Sessions { action } => match action {
            SessionAction::List => {
                let sessions = auth::list_sessions(&store).await?;
                if sessions.is_empty() {
                    eprintln!("no sessions");
                }
                for s in sessions {
                    let expires = s.expires.map_or("never".to_string(), |e| format!("{e:.0}"));
                    println!(
                        "{}\t{}\tcreated {:.0}\texpires {expires}",
                        s.id, s.kind, s.created
                    );
                }
            }
            SessionAction::Revoke { id, all } => {
                let id = if *all { None } else { id.as_deref() };
                let ended = auth::end_sessions(&store, id).await?;
                if ended == 0 {
                    if let Some(id) = id {
                        anyhow::bail!("no session {id:?}; `lookout sessions list` shows them");
                    }
                }
                eprintln!(
                    "ended {ended} session(s) (a running lookout refuses them at once); \
                     long-lived tokens stay (`lookout token revoke NAME`)"
                );
            }
        },
        Command::Token { action } => match action {
            TokenAction::Create { name } => {
                let token = auth::create_long_token(&store, name)
                    .await
                    .with_context(|| {
                        format!("cannot create token {name:?} (does it exist already?)")
                    })?;
                eprintln!(
                    "token {name:?} (shown once; send it as `Authorization: Bearer <token>`):"
                );
                println!("{token}");
            }
            TokenAction::List => {
                for t in store.long_tokens().await? {
                    println!("{}\tcreated {:.0}", t.name.unwrap_or_default(), t.created);
                }
            }
            TokenAction::Revoke { name } => {
                if !store.revoke_long_token(name).await? {
                    anyhow::bail!("no token named {name:?}; `lookout token list` shows them");
                }
                eprintln!("token {name:?} revoked");
            }
        },
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

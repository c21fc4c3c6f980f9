//! The `lookout` binary: flags -> config -> tracing -> bind -> run -> exit code.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use lookout::auth::{self, TokenRef};
use lookout::config::{Cli, Command, Config, SessionAction, TokenAction};
use lookout::console::{print_line, printable, prompt, say};

/// After Ctrl-C or SIGTERM, the server gets this long to close its streams.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    // While the process has one thread: the zone for notifications' times.
    lookout::push::message::init_local_offset();
    let cli = Cli::parse();
    // The doctor's lines are its output: the sources' logs stay out of them.
    let log = if matches!(cli.command, Some(Command::Doctor)) {
        "off"
    } else {
        "info"
    };
    let logs = tracing_subscriber::fmt()
        // Colours only on a terminal: logs piped to a file or journald stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        // A line nobody can read is dropped and counted, never a panic.
        .with_writer(lookout::console::LogWriter)
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| log.into()),
        );
    // Under systemd the journal stamps each line: a second time is noise.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        logs.without_time().init();
    } else {
        logs.init();
    }
    let result = match &cli.command {
        Some(Command::Doctor) => lookout::doctor::run(&cli),
        // Needs no data directory: prints the file the package ships.
        Some(Command::ServiceConfig) => {
            print_line(format_args!("{}", lookout::conffile::service()))
                .map(|_| ())
                .map_err(Into::into)
        }
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
    let config = Config::from_cli(cli).map_err(|e| lookout::doctor::explain(cli, e))?;
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
    let config = Config::from_cli(cli).map_err(|e| lookout::doctor::explain(cli, e))?;
    lookout::datadir::create_dir(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let store = lookout::store::Store::open(&config.data_dir)?;
    match command {
        Command::ServiceConfig => anyhow::bail!("service-config opens no data directory"),
        Command::Passwd => {
            prompt(format_args!("new password for {:?}: ", config.user));
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            let ended = auth::set_stored_password(&store, password).await?;
            say(format_args!(
                "password stored in {} (used unless LOOKOUT_PASSWORD or --password-file is set)",
                config.data_dir.display()
            ));
            say(format_args!(
                "ended {ended} browser session(s) and one-hour API token(s); long-lived tokens \
                 stay valid (`lookout token list`, `lookout token revoke NAME`)"
            ));
        }
        Command::Sessions { action } => match action {
            SessionAction::List => {
                let sessions = auth::list_sessions(&store).await?;
                if sessions.is_empty() {
                    say(format_args!("no sessions"));
                }
                for s in sessions {
                    let expires = s.expires.map_or("never".to_string(), |e| format!("{e:.0}"));
                    if !print_line(format_args!(
                        "{}\t{}\tcreated {:.0}\texpires {expires}",
                        s.id,
                        printable(&s.kind),
                        s.created
                    ))? {
                        break;
                    }
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
                say(format_args!(
                    "ended {ended} session(s) (a running lookout refuses them at once); \
                     long-lived tokens stay (`lookout token revoke NAME`)"
                ));
            }
        },
        Command::Token { action } => match action {
            TokenAction::Create { name, scope } => {
                let token = auth::create_long_token(&store, name, *scope).await?;
                say(format_args!(
                    "token {name:?} with the {scope} scope (shown once; send it as \
                     `Authorization: Bearer <token>`):"
                ));
                // A secret nobody saw is of no use to anyone: not kept.
                if !print_line(format_args!("{token}")).unwrap_or(false) {
                    auth::forget_long_token(&store, &token).await?;
                    anyhow::bail!(
                        "cannot write the token to standard output, so it was not kept; \
                         run the command again with its output going to a terminal or a file"
                    );
                }
            }
            TokenAction::List => {
                for t in auth::list_long_tokens(&store).await? {
                    if !print_line(format_args!(
                        "{}\t{}\t{}\tcreated {:.0}",
                        t.shown_name(),
                        t.scope,
                        t.id,
                        t.created
                    ))? {
                        break;
                    }
                }
            }
            TokenAction::Revoke { name, id } => {
                let which = match (name, id) {
                    (_, Some(id)) => TokenRef::Id(id),
                    (Some(name), None) => TokenRef::Name(name),
                    (None, None) => anyhow::bail!("name a token, or give --id"),
                };
                let gone = auth::revoke_long_token(&store, which).await?;
                say(format_args!(
                    "token {} (id {}) revoked",
                    gone.shown_name(),
                    gone.id
                ));
            }
        },
        Command::Doctor => anyhow::bail!("the doctor runs from main"),
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

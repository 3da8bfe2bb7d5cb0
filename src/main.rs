//! lockwatch: watches the access policy of databases and search clusters and emails on-call when
//! protection is removed.

mod alerting;
mod config;
mod daemon;
mod diff;
#[cfg(test)]
mod fuzz;
mod mail;
mod metrics;
mod model;
mod net;
mod pipeline;
mod repeated;
mod revert;
mod secret;
mod sinks;
mod sources;
mod status;
mod store;

use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use model::Severity;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lockwatch",
    version,
    about = "Watches who can reach your databases and emails on-call when protection is removed."
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "LOCKWATCH_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: scan on the schedule, alert, serve metrics.
    Run,
    /// Run one scan and print what it finds (does not touch the state file).
    /// Exit 0: nothing at or above --fail-on; 1: something is; 2: an error (a source failed, bad config).
    Scan {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Lowest severity that makes the exit code 1.
        #[arg(long, default_value = "high", value_parser = parse_severity)]
        fail_on: Severity,
    },
    /// Show or approve baselines.
    Baseline {
        #[command(subcommand)]
        action: BaselineAction,
    },
    /// Every stored change of a resource, with its diff, and its alerts.
    History {
        resource: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Validate the configuration and show when the schedule fires next.
    CheckConfig,
    /// Send a test email through the configured transport.
    TestAlert,
    /// Declare a finding deliberate for a while: it stops alerting until the date, or until the
    /// resource changes again. Suppressions always expire (at most [alerts] max_suppression).
    Suppress {
        resource: String,
        rule: String,
        /// Why this is acceptable (shown in `suppressions` and in the email when it ends).
        #[arg(long)]
        reason: String,
        /// Last day it holds (UTC), e.g. 2026-12-31.
        #[arg(long, conflicts_with = "for_", required_unless_present = "for_")]
        expires: Option<String>,
        /// How long it holds, e.g. 14d, 12h.
        #[arg(long = "for")]
        for_: Option<String>,
    },
    /// Active suppressions (with --all, ended ones too).
    Suppressions {
        #[arg(long)]
        all: bool,
    },
    /// End a suppression now.
    Unsuppress { resource: String, rule: String },
    /// Put an AWS resource's weakened fields back to its baseline (access policy, anonymous
    /// auth, HTTPS enforcement; ingress rules added since; public accessibility). Prints the
    /// API calls first; needs the write permissions of config/iam-policy-revert.json.
    Revert {
        resource: String,
        /// Only what this rule is about (e.g. opensearch.policy.public).
        #[arg(long)]
        rule: Option<String>,
        /// Print the calls and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Alert emails not yet delivered (or, with --all, every one).
    Outbox {
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum BaselineAction {
    /// Show the baseline of one resource, or a summary of all.
    Show {
        resource: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Approve the current posture as the new baseline. Shows what it accepts and asks first.
    Accept {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        resource: Option<String>,
        #[arg(long)]
        all: bool,
        /// Accept without asking (required when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// Accept only if the resource's current snapshot is this one (a hash or its prefix,
        /// from `history`); refused, showing the newer changes, if it changed since.
        #[arg(long, conflicts_with = "all")]
        snapshot: Option<String>,
        /// Why this posture is right (kept in `history`, shown in the mail that follows).
        #[arg(long)]
        reason: Option<String>,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("{s:?}: use low, medium, high or critical"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run) {
        // A closed stdout (`lockwatch history … | head`) ends a command quietly, as Unix tools
        // do, instead of a panic on the failed write. (The daemon keeps EPIPE as an error.)
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let default_level = if matches!(cli.command, Command::Run) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCKWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One TLS crypto provider for every client (rustls panics if two are compiled in and none is chosen).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &config.warnings {
        if matches!(cli.command, Command::Run) {
            tracing::warn!("{w}");
        } else {
            eprintln!("warning: {w}");
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let build = || config.build().map_err(|e| anyhow::anyhow!("{e}"));
    match command {
        Command::Run => daemon::run(build()?, &config).await.map(|_| ExitCode::SUCCESS),
        Command::Scan { format, fail_on } => cli::scan(&config, &build()?, format, fail_on).await,
        Command::Revert {
            resource,
            rule,
            dry_run,
        } => cli::revert(&config, &build()?, &resource, rule.as_deref(), dry_run).await,
        Command::CheckConfig => {
            let runtime = build()?;
            store::Store::check_state_dir(&config.state_dir)?;
            println!("{}: OK", config.path.display());
            println!(
                "  sources: {}",
                if config.sources.is_empty() {
                    "none".to_string()
                } else {
                    runtime
                        .sources
                        .iter()
                        .map(|s| format!("{} ({}, {})", s.name, s.kind, s.source.target()))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            println!("  state:   {}", config.state_dir.join(store::DB_FILE).display());
            println!("  metrics: http://{}/metrics", config.metrics_listen);
            println!(
                "  alerts:  {}",
                match &config.email {
                    Some(e) => format!(
                        "email to {} via {}:{}",
                        e.to.iter().map(|m| m.email.to_string()).collect::<Vec<_>>().join(", "),
                        e.smtp_host,
                        e.smtp_port
                    ),
                    None => "log only (no [alerts.email])".into(),
                }
            );
            if let Some(a) = &config.alertmanager {
                println!(
                    "           and Alertmanager at {} (re-sent every {})",
                    a.urls.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", "),
                    config::show_duration(a.resend)
                );
            }
            println!("  schedule {:?} fires next at:", config.schedule_text);
            for t in config.next_runs(3) {
                println!("    {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline {
            action: BaselineAction::Show { resource, format },
        } => cli::baseline_show(&config, resource.as_deref(), format),
        Command::Baseline {
            action:
                BaselineAction::Accept {
                    resource,
                    all,
                    yes,
                    snapshot,
                    reason,
                },
        } => cli::baseline_accept(
            &config,
            if all { None } else { resource.as_deref() },
            yes,
            snapshot.as_deref(),
            reason.as_deref(),
        ),
        Command::History { resource, format } => cli::history(&config, &resource, format),
        Command::TestAlert => cli::test_alert(&build()?).await,
        Command::Outbox { all } => cli::outbox(&config, all),
        Command::Suppress {
            resource,
            rule,
            reason,
            expires,
            for_,
        } => cli::suppress(&config, &resource, &rule, &reason, expires.as_deref(), for_.as_deref()),
        Command::Suppressions { all } => cli::suppressions(&config, all),
        Command::Unsuppress { resource, rule } => cli::unsuppress(&config, &resource, &rule),
    }
}

mod cli;

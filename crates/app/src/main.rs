//! The `orgs` binary: `serve` (the default), `migrate` and the operator commands.
//!
//! Errors end the process with one line on standard error and a non-zero exit code;
//! admin commands print only the asked value on standard output.

use std::process::ExitCode;

use clap::Parser as _;

use app::config::{AdminCommand, Cli, Command, DatabaseArgs, LogFormat, ServeArgs};
use app::connections::ConnectionLimits;
use app::delivery::DeliveryPolicy;
use app::server::{self, ServiceSettings, Services, StartOptions, Storage};
use domain::{ErrorCode, FieldErrors, OrganizationId, ValidationErrors};
use ports::ErrorChain;
use ports::inbound::{OperatorOrganization, OperatorUseCases as _, OperatorUser, UseCaseError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Migrate(args)) => migrate(&args).await,
            Some(Command::Admin(command)) => admin(command).await,
        }
    });
    // Blocking work still running (a password hash) may not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(&reason),
    }
}

fn fail(reason: &str) -> ExitCode {
    eprintln!("orgs: {reason}");
    ExitCode::FAILURE
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    app::telemetry::init(&args.log, args.log_format)?;
    let mailer = server::mailer(args.smtp_url.as_deref(), &args.mail_from)
        .map_err(|error| ErrorChain(&error).to_string())?;
    match args.smtp_url.as_deref() {
        Some(url) => tracing::info!(smtp = %app::config::redact_url(url), "e-mail through SMTP"),
        None => tracing::info!("no SMTP server: e-mails are written to the log"),
    }
    let stopping = shutdown_signal();
    let running = server::start(StartOptions {
        database_url: args.database.database_url.clone(),
        pooler: args.database.pooler,
        listen: args.listen,
        settings: ServiceSettings {
            public_url: args.public_url(),
            invitation_ttl: args.invitation_ttl,
            session_ttl: args.session_ttl,
            limits: args.limits(),
            hashing: args.hashing(),
            webhook_allow_private: args.webhook_allow_private,
            idempotency_ttl: args.idempotency_ttl,
            key_use_flush: args
                .key_use_flush
                .to_std()
                .map_err(|_| "ORGS_KEY_USE_FLUSH must be positive".to_owned())?,
        },
        mailer,
        delivery: DeliveryPolicy {
            retention: args.outbox_retention,
            ..DeliveryPolicy::default()
        },
        connections: ConnectionLimits::default(),
        statement_timeout: args
            .statement_timeout
            .to_std()
            .map_err(|_| "ORGS_STATEMENT_TIMEOUT must be positive".to_owned())?,
        audit_retention: args.audit_retention,
        webhooks: app::webhooks::WebhookPolicy {
            schedule: args.webhook_retry.clone(),
            retention: args.webhook_retention,
            ..app::webhooks::WebhookPolicy::default()
        },
    })
    .await
    .map_err(|error| ErrorChain(&error).to_string())?;

    if let Some(bootstrapped) = &running.bootstrapped {
        let base = format!("http://{}", running.address);
        eprintln!(
            "\nFirst start: created organization {} with administrator {}.\n\
             Its API key, shown only this once:\n\n    {}\n\nTry it:\n\n    \
             curl -H 'Authorization: Bearer {}' {base}/organizations/\n",
            bootstrapped.organization.id,
            bootstrapped.administrator.identifier,
            bootstrapped.api_key.expose(),
            bootstrapped.api_key.expose(),
        );
    }

    stopping.await;
    running.request_stop();
    match tokio::time::timeout(server::shutdown_grace(), running.wait()).await {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Err(error)) => Err(format!("serving failed: {error}")),
        // Connections are dropped at their own deadline; what is left is background work
        // (an e-mail being sent is retried from the outbox by the next start).
        Err(_) => {
            tracing::warn!("background tasks were still running at the stop deadline");
            Ok(())
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM. The SIGTERM handler is installed when this is called,
/// not when the future is first polled: a SIGTERM that arrives right after the server
/// starts listening still stops it cleanly.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate_signal =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate_signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
}

async fn migrate(database: &DatabaseArgs) -> Result<(), String> {
    app::telemetry::init("warn", LogFormat::Pretty)?;
    Storage::open(&database.database_url, database.pooler)
        .await
        .map_err(|error| ErrorChain(&error).to_string())?;
    Ok(())
}

/// Opens the database for an operator command.
async fn operator(database: &DatabaseArgs) -> Result<Services, String> {
    app::telemetry::init("warn", LogFormat::Pretty)?;
    let storage = Storage::open(&database.database_url, database.pooler)
        .await
        .map_err(|error| ErrorChain(&error).to_string())?;
    Ok(Services::new(
        &storage,
        &ServiceSettings {
            public_url: String::new(),
            invitation_ttl: domain::Duration::days(7),
            session_ttl: domain::Duration::hours(12),
            limits: app::usecases::AbuseLimits::default(),
            hashing: app::security::HashingSettings::default(),
            webhook_allow_private: false,
            idempotency_ttl: domain::Duration::hours(24),
            key_use_flush: app::server::DEFAULT_KEY_USE_FLUSH,
        },
    ))
}

async fn admin(command: AdminCommand) -> Result<(), String> {
    match command {
        AdminCommand::CreateOrganization {
            database,
            name,
            contact_email,
            parent,
            can_attach_files,
            can_external_optout,
        } => {
            let services = operator(&database).await?;
            let organization = services
                .operator
                .create_organization(OperatorOrganization {
                    name,
                    contact_email,
                    parent: parent.map(OrganizationId::new),
                    can_attach_files,
                    can_external_optout,
                })
                .await
                .map_err(|error| describe(&error, "organization"))?;
            println!("{}", organization.id);
        }
        AdminCommand::CreateUser {
            database,
            organization,
            identifier,
            role,
            password,
        } => {
            let services = operator(&database).await?;
            let (_, api_key) = services
                .operator
                .create_user(OperatorUser {
                    organization: OrganizationId::new(organization),
                    identifier,
                    role,
                    password,
                })
                .await
                .map_err(|error| describe(&error, &format!("organization {organization}")))?;
            println!("{}", api_key.expose());
        }
        AdminCommand::SetFlags {
            database,
            organization,
            can_attach_files,
            can_external_optout,
        } => {
            let services = operator(&database).await?;
            services
                .operator
                .set_flags(
                    OrganizationId::new(organization),
                    can_attach_files,
                    can_external_optout,
                )
                .await
                .map_err(|error| describe(&error, &format!("organization {organization}")))?;
        }
        AdminCommand::RestoreOrganization {
            database,
            organization,
        } => {
            let services = operator(&database).await?;
            services
                .operator
                .restore_organization(OrganizationId::new(organization))
                .await
                .map_err(|error| {
                    describe(&error, &format!("archived organization {organization}"))
                })?;
        }
        AdminCommand::PurgeOrganizations {
            database,
            archived_before,
        } => {
            let services = operator(&database).await?;
            let purged = services
                .operator
                .purge_organizations(archived_before)
                .await
                .map_err(|error| describe(&error, "organization"))?;
            println!("{purged}");
        }
    }
    Ok(())
}

/// One line for an operator, naming what was not found.
fn describe(error: &UseCaseError, subject: &str) -> String {
    match error {
        UseCaseError::NotFound => format!("{subject} not found"),
        UseCaseError::Validation(errors) => describe_validation(errors),
        other => ErrorChain(other).to_string(),
    }
}

fn describe_validation(errors: &ValidationErrors) -> String {
    let mut parts: Vec<String> = errors
        .fields()
        .map(|(field, problems)| match problems {
            FieldErrors::Codes(codes) => format!("{field}: {}", describe_codes(codes)),
            FieldErrors::Nested(nested) => format!("{field}: {}", describe_validation(nested)),
        })
        .collect();
    if !errors.non_field_codes().is_empty() {
        parts.push(describe_codes(errors.non_field_codes()));
    }
    parts.join("; ")
}

fn describe_codes(codes: &[ErrorCode]) -> String {
    codes
        .iter()
        .map(|code| match code {
            ErrorCode::Blank => "may not be blank".to_owned(),
            ErrorCode::MaxLength { max } => format!("at most {max} characters"),
            ErrorCode::MinLength { min } => format!("at least {min} characters"),
            ErrorCode::InvalidEmail => "not a valid e-mail address".to_owned(),
            ErrorCode::IdentifierTaken => "a user with this identifier already exists".to_owned(),
            ErrorCode::ObjectDoesNotExist => "no such organization".to_owned(),
            ErrorCode::ParentAlreadyHasParent => {
                "that organization already has a parent".to_owned()
            }
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

//! `camgate user …`: create users, disable and re-enable them, set their passwords.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use camgate_core::users::UserInput;
use camgate_server::config::Config;

use super::{api_err, core_for, read_stdin_line, user_id};

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user. The password is read from stdin with --password-stdin, otherwise one is
    /// generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long)]
        admin: bool,
        /// The email address is known to be the user's (OpenID Connect `email_verified`).
        #[arg(long)]
        email_verified: bool,
        /// A dealer: creates customer accounts and may act for them (token exchange).
        #[arg(long)]
        dealer: bool,
        #[arg(long)]
        json: bool,
    },
    /// Change a user's marks: `camgate user set EMAIL --dealer` (or `--no-dealer`).
    Set {
        /// The user's email address.
        email: String,
        #[arg(long, conflicts_with = "no_dealer")]
        dealer: bool,
        #[arg(long)]
        no_dealer: bool,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their tokens, personal access tokens and sessions stop working.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Re-enable a disabled user.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (read from stdin); revokes the user's tokens.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// A user's TOTP authenticator.
    #[command(subcommand)]
    Totp(TotpCmd),
    /// A user's second factors.
    #[command(subcommand)]
    Mfa(MfaCmd),
}

#[derive(Subcommand)]
pub enum TotpCmd {
    /// Turn on two-factor sign-in with a new TOTP key, confirmed at once (for automation).
    /// Prints the key, the otpauth:// URI and ten recovery codes, once.
    Enable {
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum MfaCmd {
    /// Remove every second factor of a user (lost device); they sign in with the password
    /// alone until they set one up again.
    Reset {
        /// The user's email address.
        email: String,
    },
}

pub async fn run(cmd: UserCmd, cfg: &Config) -> anyhow::Result<()> {
    let core = core_for(cfg).await?;
    match cmd {
        UserCmd::Add {
            email,
            password_stdin,
            first_name,
            last_name,
            phone,
            admin,
            email_verified,
            dealer,
            json,
        } => {
            let (password, generated) = if password_stdin {
                (read_stdin_line("password")?, false)
            } else {
                (
                    camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30),
                    true,
                )
            };
            let u = core
                .create_user(UserInput {
                    email,
                    password: password.clone(),
                    first_name,
                    last_name,
                    phone,
                    is_admin: admin,
                    email_verified,
                })
                .await
                .map_err(api_err)?;
            if dealer {
                core.set_dealer(u.id, true).await.map_err(api_err)?;
            }
            let shown = generated.then_some(password);
            if json {
                println!(
                    "{}",
                    json!({"id": u.id, "email": u.email, "is_admin": u.is_admin, "is_dealer": dealer, "password": shown})
                );
            } else {
                println!("created user {} (id {})", u.email, u.id);
                if let Some(p) = shown {
                    println!("generated password (shown once): {p}");
                }
            }
        }
        UserCmd::Set {
            email,
            dealer,
            no_dealer,
            json,
        } => {
            if !dealer && !no_dealer {
                return Err(anyhow!("nothing to set: give --dealer or --no-dealer"));
            }
            let id = user_id(&core, &email).await?;
            core.set_dealer(id, dealer).await.map_err(api_err)?;
            if json {
                println!("{}", json!({"id": id, "email": email, "is_dealer": dealer}));
            } else if dealer {
                println!("{email} is a dealer");
            } else {
                println!("{email} is no longer a dealer");
            }
        }
        UserCmd::Disable { email } => {
            let id = user_id(&core, &email).await?;
            core.set_user_disabled(id, true).await.map_err(api_err)?;
            println!("disabled {email}");
        }
        UserCmd::Enable { email } => {
            let id = user_id(&core, &email).await?;
            core.set_user_disabled(id, false).await.map_err(api_err)?;
            println!("enabled {email}");
        }
        UserCmd::SetPassword { email, json } => {
            let id = user_id(&core, &email).await?;
            let pw = read_stdin_line("new password")?;
            core.change_password(id, pw).await.map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    json!({"id": id, "email": email, "tokens_revoked": true})
                );
            } else {
                println!("password changed for {email}; their tokens were revoked");
            }
        }
        UserCmd::Totp(TotpCmd::Enable { email, json }) => {
            let user = core
                .user_by_email(&email)
                .await
                .map_err(api_err)?
                .ok_or_else(|| anyhow!("no user with email {email}"))?;
            let (e, codes) = core.enable_totp_now(&user).await.map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    json!({"secret": e.secret_base32, "otpauth_uri": e.otpauth_uri, "recovery_codes": codes})
                );
            } else {
                println!("two-factor sign-in is on for {email} (shown once):");
                println!("  key:            {}", e.secret_base32);
                println!("  otpauth URI:    {}", e.otpauth_uri);
                println!("  recovery codes: {}", codes.join(" "));
            }
        }
        UserCmd::Mfa(MfaCmd::Reset { email }) => {
            let user = core
                .user_by_email(&email)
                .await
                .map_err(api_err)?
                .ok_or_else(|| anyhow!("no user with email {email}"))?;
            if core.reset_second_factors(&user).await.map_err(api_err)? {
                println!("second factors removed for {email}");
            } else {
                println!("{email} had no second factor");
            }
        }
    }
    Ok(())
}

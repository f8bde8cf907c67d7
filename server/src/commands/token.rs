//! `gengdi token`: create, list and revoke the API's bearer tokens.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gengdi_service::auth::{check_region_code, new_token, token_digest, Role};
use gengdi_service::store::{NewToken, Store};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Args, Debug)]
pub struct DataDir {
    /// The service's data dir [default: ./gengdi-data].
    #[arg(
        long,
        value_name = "DIR",
        env = "GENGDI_DATA_DIR",
        default_value = "./gengdi-data"
    )]
    pub data_dir: PathBuf,
    /// The service's PostgreSQL/PostGIS database, when it runs on one (as `gengdi serve --database`).
    #[arg(long, value_name = "URL", env = "GENGDI_DATABASE")]
    pub database: Option<String>,
}

impl DataDir {
    /// The store the service uses with these settings, and what it is.
    fn open(&self, rt: &tokio::runtime::Runtime) -> anyhow::Result<(Arc<dyn Store>, String)> {
        let config = gengdi_service::ServiceConfig {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            ..gengdi_service::ServiceConfig::default()
        };
        Ok(rt.block_on(gengdi_service::open_store(&config))?)
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line, and stored only as a digest.
    Create {
        #[command(flatten)]
        data: DataDir,
        /// admin, centre, inspector or researcher.
        #[arg(long)]
        role: String,
        /// An inspector's administrative code (county 6 digits, township 9, village 12: ZLDWDM prefixes).
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
        /// Who holds the token [default: the role].
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        id: i64,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    match args.command {
        TokenCommand::Create {
            data,
            role,
            region,
            name,
        } => {
            let role: Role = role.parse()?;
            match (role, &region) {
                (Role::Inspector, None) => {
                    bail!("an inspector's token needs --region CODE (the unit they inspect)")
                }
                (Role::Inspector, Some(r)) => check_region_code(r)?,
                (_, Some(_)) => bail!("--region is for inspector tokens only"),
                (_, None) => {}
            }
            let (store, described) = data.open(&rt)?;
            let token = new_token()?;
            let rec = rt.block_on(store.create_token(NewToken {
                name: name.unwrap_or_else(|| role.name().to_string()),
                role,
                region,
                digest: token_digest(&token),
            }))?;
            println!(
                "token {} for {} ({}{}) in {}; it is shown only now:",
                rec.id,
                rec.name,
                rec.role,
                rec.region
                    .as_deref()
                    .map(|r| format!(", region {r}"))
                    .unwrap_or_default(),
                described
            );
            println!("{token}");
        }
        TokenCommand::List { data } => {
            let (store, _) = data.open(&rt)?;
            let tokens = rt.block_on(store.list_tokens())?;
            println!(
                "{:>4}  {:<10}  {:<19}  {:<24}  {:<24}  name",
                "id", "role", "region", "created", "revoked"
            );
            for t in tokens {
                println!(
                    "{:>4}  {:<10}  {:<19}  {:<24}  {:<24}  {}",
                    t.id,
                    t.role.name(),
                    t.region.as_deref().unwrap_or("-"),
                    t.created_at,
                    t.revoked_at.as_deref().unwrap_or("-"),
                    t.name
                );
            }
        }
        TokenCommand::Revoke { data, id } => {
            let (store, described) = data.open(&rt)?;
            if !rt.block_on(store.revoke_token(id))? {
                bail!("no active token {id} in {described}");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}

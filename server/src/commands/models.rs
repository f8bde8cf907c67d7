//! `gengdi models list|show|activate|export`: the model registry (which one: see
//! `crate::registry`).

use std::path::PathBuf;

use crate::registry::{copy_registry, locate, REGISTRY_ENV};

/// Arguments of `gengdi models`.
#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    #[arg(long, global = true, value_name = "DIR", help = crate::registry::REGISTRY_HELP)]
    pub registry: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// `gengdi models` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ModelsCommand {
    /// Say which registry is used and list its model versions (`*` = active).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a model card.
    Show {
        /// Model id or unique prefix.
        id: String,
        /// The full card as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a model the active version of its task (not in the read-only built-in registry).
    Activate {
        /// Model id or unique prefix.
        id: String,
    },
    /// Copy the registry in use (e.g. the models built into gengdi) into a new folder, to train
    /// into and activate in: then pass --registry DIR or set GENGDI_REGISTRY=DIR.
    Export {
        /// The new registry folder (must not exist, or be empty).
        dir: PathBuf,
    },
}

/// Run `gengdi models ...`.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let located = locate(args.registry.as_deref())?.for_reading()?;
    let registry = &located.registry;
    match args.command {
        ModelsCommand::List { json } => {
            let entries = registry.list()?;
            if json {
                // stdout stays the JSON list.
                eprintln!("registry: {located}");
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!("registry: {located}");
                println!(
                    "{:<1} {:<10} {:<17} {:<21} {:>6} {:>7}",
                    "", "task", "id", "created", "OA", "n_test"
                );
                for e in entries {
                    println!(
                        "{:<1} {:<10} {:<17} {:<21} {:>6.3} {:>7}",
                        if e.active { "*" } else { "" },
                        e.task.name(),
                        e.id,
                        e.created,
                        e.overall_accuracy,
                        e.n_test
                    );
                }
            }
        }
        ModelsCommand::Show { id, json } => {
            let card = registry.show(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&card)?);
            } else {
                println!("{}\n\nheld-out metrics\n{}", card.summary(), card.metrics);
            }
        }
        ModelsCommand::Activate { id } => {
            let located = located.for_writing("gengdi models activate")?;
            let card = located.registry.activate(&id)?;
            println!("{} model {} is now active in {located}", card.task, card.id);
        }
        ModelsCommand::Export { dir } => {
            let n = copy_registry(registry.root(), &dir)?;
            println!(
                "copied {n} files of {located} to {}; use it with --registry {0} or {REGISTRY_ENV}={0}",
                dir.display()
            );
        }
    }
    Ok(())
}

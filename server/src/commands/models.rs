//! `gengdi models list|show|activate`: the model registry.

use std::path::PathBuf;

use gengdi_models::Registry;

/// Arguments of `gengdi models`.
#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    /// Registry folder.
    #[arg(long, default_value = "models/weights", global = true)]
    pub registry: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// `gengdi models` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ModelsCommand {
    /// List model versions (`*` = active).
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
    /// Make a model the active version of its task.
    Activate {
        /// Model id or unique prefix.
        id: String,
    },
}

/// Run `gengdi models ...`.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&args.registry);
    match args.command {
        ModelsCommand::List { json } => {
            let entries = registry.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
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
            let card = registry.activate(&id)?;
            println!("{} model {} is now active", card.task, card.id);
        }
    }
    Ok(())
}

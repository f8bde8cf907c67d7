//! `gengdi`: cropland monitoring from satellite imagery.

mod commands;
mod registry;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "gengdi", version, about = "Cropland monitoring from satellite imagery", long_about = None)]
struct Cli {
    /// Worker threads for tiled work (default: all cores).
    #[arg(long, global = true, env = "GENGDI_THREADS")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a scene: size, type, bands, nodata, CRS, affine, date; --stats adds per-band statistics.
    Info(commands::info::InfoArgs),
    /// Put scenes on one analysis grid, show the tile layout and time reading every tile.
    Tiles(commands::tiles::TilesArgs),
    /// Land-cover map of each date as a Cloud-Optimized GeoTIFF (class codes + confidence).
    Classify(commands::classify::ClassifyArgs),
    /// Season analysis: scenes x farmland layer -> suspected-change patches.
    Analyze(commands::analyze::AnalyzeArgs),
    /// Train a land-cover or crop-type model on labelled samples.
    Train(commands::train::TrainArgs),
    /// Evaluate a model on labelled samples (confusion matrix, kappa, per-class P/R/F1).
    Eval(commands::eval::EvalArgs),
    /// List, show and activate model versions in the registry.
    Models(commands::models::ModelsArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
        {
            eprintln!("error: cannot set up {n} worker threads: {e}");
            std::process::exit(1);
        }
    }
    let result = match cli.command {
        Command::Info(a) => commands::info::run(a),
        Command::Tiles(a) => commands::tiles::run(a),
        Command::Classify(a) => commands::classify::run(a),
        Command::Analyze(a) => commands::analyze::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Models(a) => commands::models::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

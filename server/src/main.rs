//! `gengdi`: cropland monitoring from satellite imagery.

mod commands;
mod logging;
mod registry;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "gengdi", version, about = "Cropland monitoring from satellite imagery", long_about = None)]
struct Cli {
    /// Worker threads for tiled work (default: all cores).
    #[arg(long, global = true, env = "GENGDI_THREADS")]
    threads: Option<usize>,
    /// More detail on stderr: -v debug (gengdi's steps and GDAL's failures), -vv trace. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only on stderr: no warnings (GDAL's included), summaries or progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
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
    /// The HTTP API: farmland layers, batches (analysed by a worker), changes and verdicts.
    Serve(commands::serve::ServeArgs),
    /// Create, list and revoke the API's bearer tokens.
    Token(commands::token::TokenArgs),
    /// Take tasks of batches (plan, tiles, merge) from the service's PostgreSQL database and run them.
    Worker(commands::worker::WorkerArgs),
}

fn main() {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
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
        Command::Serve(a) => commands::serve::run(a),
        Command::Token(a) => commands::token::run(a),
        Command::Worker(a) => commands::worker::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, `outer: inner`, each said once: a cause whose text
/// the line already holds (an error that prints its source) is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its source in its own message, as many of the crates' do.
    #[derive(Debug)]
    struct Unreadable(std::io::Error);

    impl std::fmt::Display for Unreadable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "x.tif: cannot read: {}", self.0)
        }
    }

    impl std::error::Error for Unreadable {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_the_line_already_holds_is_said_once() {
        let e = anyhow::Error::new(Unreadable(std::io::Error::other("is a directory")))
            .context("cannot open scene");
        assert_eq!(
            error_line(&e),
            "cannot open scene: x.tif: cannot read: is a directory"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner");
    }
}

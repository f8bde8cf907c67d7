//! One module per subcommand.

pub mod analyze;
pub mod classify;
pub mod eval;
pub mod info;
pub mod models;
pub mod sample_args;
pub mod scene_args;
pub mod serve;
pub mod tiles;
pub mod token;
pub mod train;
pub mod worker;

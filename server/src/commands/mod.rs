//! One module per subcommand.

pub mod info;
pub mod scene_args;
pub mod tiles;

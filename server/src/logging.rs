//! The CLI's log: one `tracing` subscriber writing to stderr, GDAL's messages routed into
//! it (`gengdi_tiling::gdal_log`), at the level `-v` / `-q` / `RUST_LOG` chooses.
//!
//! Lines look like the CLI's other output: informational ones bare, then `warning: …`,
//! `error: …`, `debug: TARGET: …`, `trace: TARGET: …`. Stdout is never written, so `--json`
//! output stays pure JSON.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Whether `-q` was given: errors only, no progress bars.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// gengdi's own crates (the binary's module paths start with `gengdi`).
const OURS: [&str; 5] = [
    "gengdi",
    "gengdi_tiling",
    "gengdi_inference",
    "gengdi_models",
    "gdal",
];

/// The filter of `-q` / no flag / `-v` / `-vv`: other crates stay at `warn` (then `info`,
/// `debug`) so that `-v` shows gengdi's and GDAL's detail, not every dependency's.
fn directives(verbose: u8, quiet: bool) -> String {
    let (ours, others) = match (quiet, verbose) {
        (true, _) => return "error".to_string(),
        (false, 0) => ("info", "warn"),
        (false, 1) => ("debug", "warn"),
        (false, 2) => ("trace", "info"),
        (false, _) => ("trace", "debug"),
    };
    let mut d = others.to_string();
    for crate_name in OURS {
        // Without -v, GDAL speaks at warn and above (its failures are debug, see gdal_log).
        let level = if crate_name == "gdal" && verbose == 0 {
            "warn"
        } else {
            ours
        };
        d.push_str(&format!(",{crate_name}={level}"));
    }
    d
}

/// Set up the log and install GDAL's handler. `RUST_LOG`, when set and not empty, replaces
/// the filter that `-v` / `-q` choose (`-q` still hides progress bars). It takes the usual
/// comma-separated `level` / `target=level` directives (`RUST_LOG=warn,gdal=debug`); one it
/// cannot read is reported and the flags' filter is used.
pub fn init(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    let flags_filter = || {
        directives(verbose, quiet)
            .parse::<Targets>()
            .unwrap_or_else(|_| Targets::new().with_default(Level::WARN))
    };
    let mut bad_rust_log = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match v.parse::<Targets>() {
            Ok(t) => t,
            Err(e) => {
                bad_rust_log = Some(format!("RUST_LOG={v:?} is not a list of level / target=level directives ({e}); using the -v / -q level"));
                flags_filter()
            }
        },
        _ => flags_filter(),
    };
    let installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(CliFormat),
        )
        .with(filter)
        .try_init();
    if installed.is_ok() {
        gengdi_tiling::gdal_log::install();
    }
    if let Some(warning) = bad_rust_log {
        tracing::warn!("{warning}");
    }
}

/// `warning: message`, bare informational lines, `debug: target: message`.
struct CliFormat;

impl<S, N> FormatEvent<S, N> for CliFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = *meta.level();
        if level == Level::ERROR {
            write!(writer, "error: ")?;
        } else if level == Level::WARN {
            write!(writer, "warning: ")?;
        } else if level == Level::DEBUG {
            write!(writer, "debug: {}: ", meta.target())?;
        } else if level == Level::TRACE {
            write!(writer, "trace: {}: ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_is_errors_only_and_each_v_shows_more_of_gengdi_and_gdal() {
        assert_eq!(directives(3, true), "error");
        let default = directives(0, false);
        assert!(default.starts_with("warn,gengdi=info,"), "{default}");
        assert!(default.ends_with(",gdal=warn"), "{default}");
        assert!(directives(1, false).ends_with(",gdal=debug"));
        assert!(directives(2, false).starts_with("info,gengdi=trace,"));
        for v in 0..4 {
            assert!(directives(v, false).parse::<Targets>().is_ok());
        }
    }
}

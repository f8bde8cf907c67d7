//! GDAL's own messages, routed into gengdi's log with what gengdi was doing.
//!
//! GDAL reports warnings and errors through its error handler (by default it prints them,
//! bare, as `Warning 1: …` / `ERROR 1: …` on stderr). [`install`] replaces that handler with
//! one that emits a `tracing` event (target `gdal`) whose message is prefixed with the
//! current **scope**: what this thread was doing when GDAL spoke — which file, which layer,
//! which feature. Scopes are a small thread-local stack: [`scope`] pushes one and returns a
//! guard that pops it; nested scopes join (`reading farmland layer "parcels" of f.gpkg,
//! feature 17`). Each thread has its own stack, so a rayon worker carries the scopes it set
//! itself; [`Context::capture`] / [`Context::enter`] hand the caller's scopes to a worker.
//!
//! Levels (see [`level_of`] for why): GDAL warnings are `WARN`, GDAL failures `DEBUG`
//! (the code returns them as errors, which the caller reports once), fatal errors `ERROR`,
//! GDAL's debug output (`CPL_DEBUG=ON`) `TRACE`.
//!
//! Without [`install`] (library use, tests) GDAL keeps its own handler and scopes cost only
//! a push and a pop.

use gdal::errors::CplErrType;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

thread_local! {
    static SCOPES: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the scope it was made for when dropped. Not `Send`: a scope belongs to its thread.
#[must_use = "the scope ends when the guard is dropped"]
#[derive(Debug)]
pub struct ScopeGuard {
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let _ = SCOPES.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                s.truncate(self.depth);
            }
        });
    }
}

fn push(frames: impl IntoIterator<Item = Arc<str>>) -> ScopeGuard {
    let depth = SCOPES
        .try_with(|s| match s.try_borrow_mut() {
            Ok(mut s) => {
                let depth = s.len();
                s.extend(frames);
                depth
            }
            Err(_) => usize::MAX,
        })
        .unwrap_or(usize::MAX);
    ScopeGuard {
        depth,
        _not_send: PhantomData,
    }
}

/// Say what this thread is doing until the guard drops, e.g.
/// `scope(format!("reading farmland layer {name:?} of {}", path.display()))`.
/// GDAL messages emitted meanwhile on this thread are prefixed with it.
pub fn scope(what: impl Into<String>) -> ScopeGuard {
    push([Arc::from(what.into())])
}

/// The current scopes of this thread joined (`outer, inner`), or `None` when there are none.
pub fn current() -> Option<String> {
    SCOPES
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            (!s.is_empty()).then(|| s.iter().map(|f| &**f).collect::<Vec<_>>().join(", "))
        })
        .ok()
        .flatten()
}

/// The scopes of one thread, to be entered on another (a rayon worker doing part of the
/// work the caller described).
#[derive(Clone, Debug, Default)]
pub struct Context(Vec<Arc<str>>);

impl Context {
    /// This thread's scopes now.
    pub fn capture() -> Context {
        Context(
            SCOPES
                .try_with(|s| s.try_borrow().map(|s| s.clone()).unwrap_or_default())
                .unwrap_or_default(),
        )
    }

    /// Push the captured scopes onto this thread's stack until the guard drops.
    pub fn enter(&self) -> ScopeGuard {
        push(self.0.iter().cloned())
    }
}

/// The `tracing` level of a GDAL message class.
///
/// - Warnings are `WARN`: GDAL carries on, and the user should hear that it had to (a
///   self-intersecting polygon, a missing codec option, a CRS guess).
/// - Failures are `DEBUG`, not `WARN`: every GDAL call that fails makes the gdal crate
///   return an `Err`, which gengdi turns into its own typed error naming the file (and, for
///   opening, what the file is), reported once as `error: …` by the CLI. Logging the failure
///   too would print the same fault twice, once raw. Where gengdi deliberately ignores a
///   failed call (an optional CRS, a band description), the failure is not the user's
///   problem either. `-v` (or `RUST_LOG=gdal=debug`) shows them all.
/// - Fatal errors are `ERROR` (GDAL aborts right after).
/// - GDAL's debug output (only with `CPL_DEBUG=ON`) is `TRACE`.
pub fn level_of(class: CplErrType) -> tracing::Level {
    match class {
        CplErrType::Warning => tracing::Level::WARN,
        CplErrType::Failure => tracing::Level::DEBUG,
        CplErrType::Fatal => tracing::Level::ERROR,
        CplErrType::Debug | CplErrType::None => tracing::Level::TRACE,
    }
}

/// The log line of a GDAL message: `GDAL: {scopes}: {message}`, GDAL's error number kept
/// when it is not the generic CPLE_AppDefined (1).
pub fn message(number: i32, text: &str) -> String {
    let text = text.trim_end();
    let code = if number > 1 {
        format!(" (CPLE {number})")
    } else {
        String::new()
    };
    match current() {
        Some(scope) => format!("GDAL: {scope}: {text}{code}"),
        None => format!("GDAL: {text}{code}"),
    }
}

/// Emit one GDAL message as a `tracing` event of target `gdal`.
pub fn emit(class: CplErrType, number: i32, text: &str) {
    let line = message(number, text);
    let level = level_of(class);
    if level == tracing::Level::ERROR {
        tracing::error!(target: "gdal", "{line}");
    } else if level == tracing::Level::WARN {
        tracing::warn!(target: "gdal", "{line}");
    } else if level == tracing::Level::DEBUG {
        tracing::debug!(target: "gdal", "{line}");
    } else {
        tracing::trace!(target: "gdal", "{line}");
    }
}

/// Route every GDAL message of the process through [`emit`] (call once, at start, after
/// the `tracing` subscriber is set up). GDAL no longer prints anything itself.
pub fn install() {
    gdal::config::set_error_handler(|class, number, text| {
        // A panic must not unwind into GDAL's C frames.
        let _ = std::panic::catch_unwind(|| emit(class, number, text));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_scopes_join_and_end_with_their_guards() {
        assert_eq!(current(), None);
        {
            let _file = scope("reading farmland layer \"p\" of f.gpkg");
            {
                let _feature = scope("feature 7");
                assert_eq!(
                    message(1, "Self-intersection at or near point 1 2\n"),
                    "GDAL: reading farmland layer \"p\" of f.gpkg, feature 7: Self-intersection at or near point 1 2"
                );
            }
            assert_eq!(
                current().as_deref(),
                Some("reading farmland layer \"p\" of f.gpkg")
            );
        }
        assert_eq!(current(), None);
        assert_eq!(message(4, "x"), "GDAL: x (CPLE 4)");
    }

    #[test]
    fn a_worker_thread_has_its_own_scopes_and_can_enter_the_callers() {
        let _outer = scope("warping a.tif");
        let ctx = Context::capture();
        let seen = std::thread::spawn(move || {
            let bare = current();
            let _g = ctx.enter();
            let _tile = scope("tile 3");
            (bare, current())
        })
        .join()
        .unwrap_or_default();
        assert_eq!(seen, (None, Some("warping a.tif, tile 3".to_string())));
        assert_eq!(current().as_deref(), Some("warping a.tif"));
    }
}

//! SIGINT/SIGTERM: remove the temporary output files, exit 130 — an
//! interrupted run leaves no partial output behind.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while a decoder of untrusted input runs under `catch_unwind`: its
    /// panic is reported as malformed input, so the panic hook stays quiet.
    pub static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wrap the panic hook (once) so that it stays quiet while [`QUIET_PANICS`]
/// is set; every other panic is reported as before.
pub fn quiet_guarded_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Install the handlers (once, at start-up): signals, and a panic hook that
/// is quiet for the guarded decoders.
pub fn install() {
    quiet_guarded_panics();
    #[cfg(not(target_arch = "wasm32"))]
    let _ = ctrlc::set_handler(|| {
        if let Ok(list) = TEMPS.lock() {
            for p in list.iter() {
                let _ = std::fs::remove_file(p);
            }
        }
        eprintln!("gaussdiv: interrupted; no output file was written");
        std::process::exit(130);
    });
}

/// A temporary file to delete if the run is interrupted.
pub fn register_temp(p: &Path) {
    if let Ok(mut list) = TEMPS.lock() {
        list.push(p.to_path_buf());
    }
}

/// Move the temporary file into place and stop tracking it, atomically with
/// respect to the signal handler (which holds the same lock while it deletes).
pub fn persist_temp<E>(p: &Path, persist: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    let mut list = match TEMPS.lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    persist()?;
    list.retain(|q| q != p);
    Ok(())
}

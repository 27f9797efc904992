//! gaussdiv in the browser: the JS API of the module `gaussdiv`
//! (wasm-bindgen, `--target web`; built by `scripts/build-web.sh` into
//! `web/dist/pkg/`), over the same library, WGSL kernels and CPU path as the
//! native build (docs/ARCHITECTURE.md §13).
//!
//! ```js
//! import init, { evaluate, adapterInfo } from "./pkg/gaussdiv.js";
//! await init();
//! // μ1, a1, μ2, a2 per pair
//! const pairs = new Float32Array([0, 1, 1, 2,   0.5, 1, 0.5, 1]);
//! const out = await evaluate(pairs, { metrics: ["kl", "cross_entropy"] });
//! // out: Float32Array [kl0, ce0, kl1, ce1]
//! ```
//!
//! Every function is async and returns a promise; bad input rejects it with
//! an `Error` whose message names the row, the field and the value. Nothing
//! here blocks or starts a thread: the GPU path awaits the browser's event
//! loop, the CPU path runs on the calling thread (single-threaded in wasm).
//!
//! Natively this crate is empty: everything is for `wasm32`.
#![cfg(target_arch = "wasm32")]

mod api;
mod device;
mod mvn;
mod options;
mod state;

pub use api::*;
pub use device::use_device;
pub use mvn::evaluate_mvn;

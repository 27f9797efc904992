//! The evaluators of this page: created on first use and kept (pipelines and
//! buffers are reused across calls, as natively), one per backend and chunk
//! size. wasm is single-threaded: thread-locals are the page's globals.

use crate::options::Choice;
use gaussdiv::{Backend, Error, Evaluator, Options};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsError;

/// What an evaluator was made for: GPU or CPU, and the chunk size asked for.
type Key = (bool, Option<u64>);

thread_local! {
    static EVALUATORS: RefCell<HashMap<Key, Rc<Evaluator>>> = RefCell::new(HashMap::new());
    /// Why the GPU could not be used (the first failure), for `adapterInfo`.
    static GPU_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// An app's own device and queue (`useDevice`): GPU evaluators run on it.
    static SHARED: RefCell<Option<(gaussdiv::wgpu::Device, gaussdiv::wgpu::Queue)>> =
        const { RefCell::new(None) };
}

fn options(chunk: Option<u64>) -> Options {
    let mut o = Options::default();
    if let Some(c) = chunk {
        o.max_chunk_pairs = c;
        o.host_chunk_pairs = c;
    }
    o
}

/// The message for "no WebGPU here", with what to do about it.
pub(crate) fn no_gpu_message(e: &Error) -> String {
    match e {
        Error::NoAdapter(_) => "no WebGPU adapter: this browser offers none (WebGPU disabled or \
             unsupported; headless Chromium needs --enable-unsafe-webgpu)"
            .to_string(),
        other => format!("WebGPU is not usable here: {other}"),
    }
}

async fn create(gpu: bool, chunk: Option<u64>) -> Result<Evaluator, Error> {
    if !gpu {
        return Evaluator::new_async(Backend::Cpu, Options::default()).await;
    }
    let shared = SHARED.with(|s| s.borrow().clone());
    match shared {
        Some((device, queue)) => {
            Evaluator::from_device_async(&device, &queue, options(chunk)).await
        }
        None => Evaluator::new_async(Backend::Gpu, options(chunk)).await,
    }
}

/// The evaluator for `choice` (the default: the GPU when there is one).
pub(crate) async fn evaluator(
    choice: Choice,
    chunk: Option<u64>,
) -> Result<Rc<Evaluator>, JsError> {
    let gpu = match choice {
        Choice::Cpu => false,
        Choice::Gpu => true,
        Choice::Default => GPU_FAILURE.with(|f| f.borrow().is_none()),
    };
    let key = (gpu, if gpu { chunk } else { None });
    if let Some(ev) = EVALUATORS.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(ev);
    }
    match create(gpu, chunk).await {
        Ok(ev) => {
            let ev = Rc::new(ev);
            EVALUATORS.with(|m| m.borrow_mut().insert(key, ev.clone()));
            Ok(ev)
        }
        Err(e) if gpu => {
            let message = no_gpu_message(&e);
            GPU_FAILURE.with(|f| *f.borrow_mut() = Some(message.clone()));
            if choice == Choice::Default {
                Box::pin(evaluator(Choice::Cpu, None)).await
            } else {
                Err(JsError::new(&message))
            }
        }
        Err(e) => Err(JsError::new(&e.to_string())),
    }
}

/// Use the app's device for every GPU evaluator from now on (the cached
/// ones are dropped).
pub(crate) fn share(device: gaussdiv::wgpu::Device, queue: gaussdiv::wgpu::Queue) {
    SHARED.with(|s| *s.borrow_mut() = Some((device, queue)));
    GPU_FAILURE.with(|f| *f.borrow_mut() = None);
    EVALUATORS.with(|m| m.borrow_mut().retain(|(gpu, _), _| !gpu));
}

/// Why the GPU is not used, if it failed.
pub(crate) fn gpu_failure() -> Option<String> {
    GPU_FAILURE.with(|f| f.borrow().clone())
}

//! `useDevice(device)`: run the GPU path on an app's own `GPUDevice` (the web
//! counterpart of `Evaluator::from_device`).
//!
//! wgpu 30 has no constructor that wraps an existing `GPUDevice`: its WebGPU
//! backend only gets devices from `navigator.gpu.requestAdapter()` and
//! `adapter.requestDevice()`. So for the length of one request, an own
//! property of `navigator.gpu` shadows `requestAdapter` with an adapter whose
//! features, limits and info are the device's and whose `requestDevice()`
//! resolves to that very device; the property is removed right after (also
//! on failure). wgpu then drives the app's device and queue: same buffers,
//! same queue order as the app's own work.

use gaussdiv::wgpu;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function gaussdiv_shim_install(device) {
    const gpu = globalThis.navigator && globalThis.navigator.gpu;
    if (!gpu) { throw new Error("navigator.gpu is missing: this browser has no WebGPU"); }
    if (!device || typeof device.createBuffer !== "function" || !device.queue) {
        throw new Error("useDevice expects a GPUDevice");
    }
    const info = device.adapterInfo || {
        vendor: "", architecture: "", device: "", description: "",
        isFallbackAdapter: false, subgroupMinSize: 0, subgroupMaxSize: 0,
    };
    const adapter = {
        features: device.features,
        limits: device.limits,
        info,
        isFallbackAdapter: !!info.isFallbackAdapter,
        requestDevice: async () => device,
    };
    Object.defineProperty(gpu, "requestAdapter", {
        configurable: true, writable: true, value: async () => adapter,
    });
}
export function gaussdiv_shim_remove() {
    const gpu = globalThis.navigator && globalThis.navigator.gpu;
    if (gpu && Object.prototype.hasOwnProperty.call(gpu, "requestAdapter")) {
        delete gpu.requestAdapter;
    }
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn gaussdiv_shim_install(device: &JsValue) -> Result<(), JsValue>;
    fn gaussdiv_shim_remove();
}

async fn wrap(device: &JsValue) -> Result<(wgpu::Device, wgpu::Queue), String> {
    gaussdiv_shim_install(device).map_err(|e| {
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "useDevice expects a GPUDevice".into())
    })?;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .map_err(|e| format!("could not wrap the device: {e}"))?;
    // The shim ignores the descriptor and returns the app's device as it is;
    // wgpu reads its features and limits from it.
    let desc = wgpu::DeviceDescriptor {
        label: Some("gaussdiv (app device)"),
        required_features: adapter.features(),
        required_limits: adapter.limits(),
        ..Default::default()
    };
    adapter
        .request_device(&desc)
        .await
        .map_err(|e| format!("could not wrap the device: {e}"))
}

/// Use `device` (a `GPUDevice` the app already has) for every GPU call from
/// now on. Resolves when the kernels are compiled and warmed up on it.
#[wasm_bindgen(js_name = useDevice)]
pub async fn use_device(device: JsValue) -> Result<(), JsError> {
    let wrapped = wrap(&device).await;
    gaussdiv_shim_remove();
    let (device, queue) = wrapped.map_err(|e| JsError::new(&e))?;
    crate::state::share(device, queue);
    // Build the evaluator now, so that an unusable device fails here.
    crate::state::evaluator(crate::options::Choice::Gpu, None).await?;
    Ok(())
}

//! Instance, adapter and device: honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`
//! and `WGPU_POWER_PREF`, and requests the adapter's own limits.

use crate::error::{Error, Result};
use std::fmt;

/// What gaussdiv knows of one adapter, for `gaussdiv info` and error messages.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's description from wgpu.
    pub info: wgpu::AdapterInfo,
    /// The features it offers.
    pub features: wgpu::Features,
    /// Its limits.
    pub limits: wgpu::Limits,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }
}

/// The adapters this machine offers, and the one gaussdiv would choose.
#[derive(Clone, Debug)]
pub struct Adapters {
    /// Every adapter wgpu can see.
    pub available: Vec<AdapterSummary>,
    /// The one a GPU [`crate::Evaluator`] uses and why, or why there is none.
    pub chosen: std::result::Result<(AdapterSummary, String), String>,
}

/// The adapters of this machine and the one gaussdiv chooses (honouring
/// `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`).
pub async fn adapters() -> Adapters {
    let instance = instance();
    let all = enumerate(&instance).await;
    let available = all.iter().map(summarize).collect();
    let chosen = choose_from(all)
        .map(|(a, why)| (summarize(&a), why))
        .map_err(|e| e.to_string());
    Adapters { available, chosen }
}

/// A wgpu instance configured from the environment (`WGPU_BACKEND` and the
/// other `WGPU_*` variables), without a display: suitable for headless use.
pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter the instance can see.
pub(crate) async fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    instance.enumerate_adapters(wgpu::Backends::all()).await
}

/// A summary of an adapter.
pub(crate) fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    AdapterSummary {
        info: adapter.get_info(),
        features: adapter.features(),
        limits: adapter.limits(),
    }
}

fn rank(info: &wgpu::AdapterInfo, power: Option<wgpu::PowerPreference>) -> (u8, u8) {
    use wgpu::DeviceType as D;
    // Native compute APIs first; GL lacks what we use best (and uploads slowly).
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::BrowserWebGpu => 1,
        _ => 2,
    };
    let device = match (power, info.device_type) {
        (Some(wgpu::PowerPreference::LowPower), D::IntegratedGpu) => 0,
        (Some(wgpu::PowerPreference::LowPower), D::DiscreteGpu) => 1,
        (_, D::DiscreteGpu) => 0,
        (_, D::IntegratedGpu) => 1,
        (_, D::VirtualGpu) => 2,
        (_, D::Cpu) => 3,
        (_, D::Other) => 4,
    };
    (backend, device)
}

/// Choose an adapter: the one named by `WGPU_ADAPTER_NAME` (case-insensitive
/// substring) if set, else the best by backend (Vulkan/Metal/DX12 before GL)
/// and device type (discrete, integrated, virtual, CPU; `WGPU_POWER_PREF=low`
/// puts integrated first). Returns the adapter and the reason it was chosen.
pub(crate) async fn choose_adapter(instance: &wgpu::Instance) -> Result<(wgpu::Adapter, String)> {
    let adapters = enumerate(instance).await;
    choose_from(adapters)
}

pub(crate) fn choose_from(adapters: Vec<wgpu::Adapter>) -> Result<(wgpu::Adapter, String)> {
    let names: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect();
    if adapters.is_empty() {
        return Err(Error::NoAdapter(
            "no adapter found (on Linux without a GPU, install Mesa's lavapipe: \
             apt-get install mesa-vulkan-drivers)"
                .into(),
        ));
    }
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let w = wanted.to_lowercase();
        let found = adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&w));
        return match found {
            Some(a) => Ok((a, format!("its name matches WGPU_ADAPTER_NAME={wanted}"))),
            None => Err(Error::NoAdapter(format!(
                "no adapter matches WGPU_ADAPTER_NAME={wanted}; found: {}",
                names.join(", ")
            ))),
        };
    }
    let power = wgpu::PowerPreference::from_env();
    let total = adapters.len();
    let best = adapters
        .into_iter()
        .enumerate()
        .min_by_key(|(i, a)| (rank(&a.get_info(), power), *i))
        .map(|(_, a)| a);
    match best {
        Some(a) => {
            let i = a.get_info();
            Ok((
                a,
                format!(
                    "best of {total} adapter(s) by backend ({:?}; Vulkan/Metal/DX12 before GL) \
                     and device type ({:?}; power preference {})",
                    i.backend,
                    i.device_type,
                    match power {
                        Some(p) => format!("{p:?} from WGPU_POWER_PREF"),
                        None => "default".into(),
                    }
                ),
            ))
        }
        None => Err(Error::NoAdapter("no adapter found".into())),
    }
}

/// Request a device with the adapter's own limits (the defaults cap buffers
/// at 256 MiB) and the optional features gaussdiv can use, when offered:
/// `MAPPABLE_PRIMARY_BUFFERS`, `TIMESTAMP_QUERY`, and `SHADER_F64` with
/// `SHADER_INT64` (the f64 kernel).
pub(crate) async fn request_device(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue)> {
    let offered = adapter.features();
    let wanted = wgpu::Features::MAPPABLE_PRIMARY_BUFFERS
        | wgpu::Features::TIMESTAMP_QUERY
        | super::kernel::f64_features();
    let desc = wgpu::DeviceDescriptor {
        label: Some("gaussdiv device"),
        required_features: offered & wanted,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    };
    adapter
        .request_device(&desc)
        .await
        .map_err(|e| Error::RequestDevice {
            adapter: adapter.get_info().name,
            message: e.to_string(),
        })
}

//! A small wgpu app that owns its device, produces Gaussian parameters in
//! its own compute shader, records gaussdiv's pass into the same command
//! encoder, submits once, and checks the results against the CPU f64
//! reference. Exits non-zero on a mismatch.
//!
//! ```text
//! cargo run --release --example wgpu_app
//! ```

use gaussdiv::wgpu;
use gaussdiv::{
    Batch, DeviceBatch, DeviceInput, Evaluator, GaussianPair, Options, Request, Tolerance,
};

/// The app's own kernel: writes N(μ, σ) parameters for each index.
const PRODUCER: &str = r#"
@group(0) @binding(0) var<storage, read_write> params: array<vec4<f32>>;

fn hash(x: u32) -> u32 {
    var h = x * 0x9e3779b9u;
    h = h ^ (h >> 16u);
    h = h * 0x85ebca6bu;
    h = h ^ (h >> 13u);
    h = h * 0xc2b2ae35u;
    return h ^ (h >> 16u);
}

fn unit(x: u32) -> f32 {
    return f32(hash(x) >> 8u) / 16777216.0;
}

@compute @workgroup_size(256)
fn produce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= arrayLength(&params)) {
        return;
    }
    let mu1 = unit(4u * i) * 20.0 - 10.0;
    let s1 = exp2(unit(4u * i + 1u) * 20.0 - 10.0);
    // every 8th pair: a near-equal partner (the case f32 textbook formulas get wrong)
    var mu2 = unit(4u * i + 2u) * 20.0 - 10.0;
    var s2 = exp2(unit(4u * i + 3u) * 20.0 - 10.0);
    if (i % 8u == 0u) {
        mu2 = mu1;
        s2 = s1 * (1.0 + 1e-5 * unit(4u * i + 3u));
    }
    params[i] = vec4<f32>(mu1, s1, mu2, s2);
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = 1 << 20;

    // The app's device, created with wgpu as any app does.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))?;
    println!("adapter: {}", adapter.get_info().name);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("app device"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;

    // gaussdiv on the app's device.
    let gaussdiv = Evaluator::from_device(&device, &queue, Options::default())?;
    // Cross-entropy, KL and entropy: 3 × f32 per pair.
    let request = Request::default();
    let out_bytes = n * 4 * request.values_per_pair() as u64;

    // The app's buffers and pipeline.
    let params = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app params"),
        size: n * 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let results = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app results"),
        size: out_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: n * 16 + out_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app producer"),
        source: wgpu::ShaderSource::Wgsl(PRODUCER.into()),
    });
    let producer = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("app producer"),
        layout: None,
        module: &module,
        entry_point: Some("produce"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("app producer bind group"),
        layout: &producer.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }],
    });

    // One encoder: produce, evaluate, copy out. One submit.
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("app frame"),
    });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&producer);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups((n / 256) as u32, 1, 1);
    }
    gaussdiv.encode(
        &mut encoder,
        DeviceBatch {
            input: DeviceInput::Pairs {
                pairs: params.slice(..),
                count: n,
            },
            output: results.slice(..),
        },
        &request,
    )?;
    encoder.copy_buffer_to_buffer(&params, 0, &readback, 0, n * 16);
    encoder.copy_buffer_to_buffer(&results, 0, &readback, n * 16, out_bytes);
    queue.submit([encoder.finish()]);

    let (tx, rx) = std::sync::mpsc::channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv()??;
    let (pairs, out) = {
        let view = readback.slice(..).get_mapped_range()?;
        let pairs: Vec<GaussianPair> = bytemuck::cast_slice(&view[..(n * 16) as usize]).to_vec();
        let out: Vec<f32> = bytemuck::cast_slice(&view[(n * 16) as usize..]).to_vec();
        (pairs, out)
    };
    readback.unmap();

    let report = gaussdiv::verify(Batch::Pairs(&pairs), &request, &out, Tolerance::GPU_F32)?;
    print!("{report}");
    let worst = report.worst_ratio() * Tolerance::GPU_F32.kl;
    println!("worst error against the CPU f64 reference: {worst:.3e} (bound 2e-6)");
    if !report.passed() {
        return Err("gaussdiv results out of tolerance".into());
    }
    Ok(())
}

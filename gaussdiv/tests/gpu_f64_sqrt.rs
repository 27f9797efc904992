//! The f64 kernel's own square root (`sqrt64` in shaders/prelude_f64.wgsl:
//! Newton from the f32 square root, residual correction) on the device:
//! within one ulp of the correctly rounded square root on a million inputs
//! over the whole f64 range (subnormals included) and next to the powers of
//! two, and correctly rounded on all but a few near-ties. The builtin f64
//! `sqrt` is probed too and its agreement printed (the kernel does not use
//! it, see the shader's header).
mod common;
use gaussdiv::wgpu;
use wgpu::util::DeviceExt;

/// The module sources, assembled exactly as `src/gpu/kernel.rs` does (the
/// f64 kernel's source is `MAIN_F64`).
#[allow(dead_code)]
mod sources {
    include!("../shaders/modules.rs");
}

/// `sqrt(x)` (builtin) or `sqrt64(x)` (the kernel's) of every input, on the device.
fn run(gpu: &gaussdiv::Evaluator, xs: &[u64], own: bool) -> Vec<u64> {
    let body = if own { "sqrt64" } else { "sqrt" };
    let probe = format!(
        "\n@compute @workgroup_size(64)\nfn probe(@builtin(global_invocation_id) id: vec3<u32>) {{\n    \
         let i = id.x;\n    if (i >= arrayLength(&pairs)) {{\n        return;\n    }}\n    \
         results[i] = {body}(bitcast<f64>(pairs[i].x));\n}}\n"
    );
    let src = format!("{}{probe}", sources::MAIN_F64);
    let (dev, queue) = gpu.device().expect("a GPU evaluator");
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("sqrt probe"),
        source: wgpu::ShaderSource::Wgsl(src.as_str().into()),
    });
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("sqrt probe"),
        layout: None,
        module: &module,
        entry_point: Some("probe"),
        compilation_options: Default::default(),
        cache: None,
    });
    let input: Vec<u64> = xs.iter().flat_map(|&x| [x, 0, 0, 0]).collect();
    let inb = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&input),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let size = (xs.len() * 8) as u64;
    let outb = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let rb = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: inb.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: outb.as_entire_binding(),
            },
        ],
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups((xs.len() as u32).div_ceil(64), 1, 1);
    }
    enc.copy_buffer_to_buffer(&outb, 0, &rb, 0, size);
    queue.submit([enc.finish()]);
    rb.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    dev.poll(wgpu::PollType::Wait {
        submission_index: None,
        timeout: None,
    })
    .unwrap();
    let data = rb.slice(..).get_mapped_range().unwrap();
    bytemuck::cast_slice::<u8, u64>(&data[..]).to_vec()
}

#[test]
fn sqrt64_within_one_ulp_on_the_device() {
    let Some(gpu) = common::gpu() else { return };
    if !gpu.gpu_info().expect("a GPU evaluator").supports_f64 {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let mut rng = common::Rng(7);
    let xs: Vec<u64> = (0..1_000_000u64)
        .map(|i| {
            let x = match i % 5 {
                0 => f64::from_bits(rng.next_u64() % 0x7fef_ffff_ffff_ffff + 1),
                1 => 1.0 + rng.unit() * 3.0,
                2 => {
                    let y = 1.0 + rng.unit();
                    y * y
                }
                3 => f64::from_bits(rng.next_u64() % 0x0010_0000_0000_0000 + 1),
                _ => 10f64.powf(rng.unit() * 600.0 - 300.0),
            };
            x.to_bits()
        })
        .chain([
            1u64,
            0x000f_ffff_ffff_ffff,
            0x7fef_ffff_ffff_ffff,
            1f64.to_bits(),
        ])
        // Mantissas next to 1, 2 and 4 (both exponent parities), where the
        // correction meets ties.
        .chain(
            (0..64u64)
                .flat_map(|d| {
                    [1.0f64, 2.0, 4.0, 0.5, 1e300, 1e-300].map(|b| {
                        let b = b.to_bits();
                        [b + d, b - 1 - d]
                    })
                })
                .flatten(),
        )
        .collect();
    for own in [true, false] {
        let ys = run(gpu, &xs, own);
        let mut off = 0usize;
        let mut worst = 0u64;
        let mut first = None;
        for (x, y) in xs.iter().zip(&ys) {
            let want = f64::from_bits(*x).sqrt().to_bits();
            if *y != want {
                off += 1;
                worst = worst.max(y.abs_diff(want));
                first.get_or_insert((f64::from_bits(*x), f64::from_bits(*y)));
            }
        }
        let name = if own { "sqrt64" } else { "builtin sqrt (f64)" };
        println!(
            "{name}: {} of {} correctly rounded, the others within {worst} ulp; first: {first:?}",
            xs.len() - off,
            xs.len()
        );
        if own {
            assert!(worst <= 1, "{name}: {worst} ulp, first {first:?}");
            assert!(
                off <= 10,
                "{name}: {off} not correctly rounded, first {first:?}"
            );
        }
    }
}

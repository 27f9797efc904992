//! The pairwise layout on the device: every p_i against every q_j from the
//! two arrays of Gaussians themselves (`shaders/pairwise.wgsl`), so only the
//! N × M output crosses the bus — on the host path ([`GpuEvaluator::pairwise_with`])
//! and into the caller's encoder ([`GpuEvaluator::encode_pairwise`]).

use super::host::InFlight;
use super::kernel::{grid, Layout, PAIRWISE_BLOCK_BYTES};
use super::{buffer_entry, now, Counters, GpuEvaluator, ResetUnlessDone, WaitMode};
use crate::batch::cell_pair;
use crate::cpu;
use crate::error::{Error, Result};
use crate::pair::{EvalOptions, Gaussian, GaussianPair};
use crate::validate::{self, OnInvalid};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// Bytes of one Gaussian in the p and q bindings.
const GAUSSIAN_BYTES: u64 = 8;

/// The uniform of one dispatch (see `shaders/pairwise.wgsl`).
/// KEEP IN SYNC with `struct PairwiseBlock` there.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct PairwiseBlock {
    row0: u32,
    col0: u32,
    cols: u32,
    cells: u32,
    out_base: u32,
    pad: [u32; 3],
}

const _: () = {
    assert!(size_of::<PairwiseBlock>() as u64 == PAIRWISE_BLOCK_BYTES);
    assert!(size_of::<Gaussian>() as u64 == GAUSSIAN_BYTES);
};

/// A block of cells: rows `row0..row0 + rows`, columns `col0..col0 + cols`
/// (whole rows, or a column range of one row), contiguous in the row-major output.
#[derive(Clone, Copy, Debug)]
struct Block {
    row0: u64,
    col0: u64,
    rows: u64,
    cols: u64,
}

impl Block {
    fn cells(&self) -> u64 {
        self.rows * self.cols
    }
    /// Index of the block's first cell in the N × M matrix.
    fn first_cell(&self, m: u64) -> u64 {
        self.row0 * m + self.col0
    }
}

/// Blocks of at most `max_cells` cells covering the N × M matrix: whole rows
/// when a row fits (`rows_multiple` rows at a time, except the last block),
/// else column ranges of one row (multiples of `cols_multiple`).
fn blocks(n: u64, m: u64, max_cells: u64, rows_multiple: u64) -> Vec<Block> {
    let mut out = Vec::new();
    if n == 0 || m == 0 {
        return out;
    }
    let whole = max_cells / m;
    let rows = if whole >= n {
        n
    } else {
        whole / rows_multiple * rows_multiple
    };
    if rows > 0 {
        let mut r = 0;
        while r < n {
            let len = rows.min(n - r);
            out.push(Block {
                row0: r,
                col0: 0,
                rows: len,
                cols: m,
            });
            r += len;
        }
    } else {
        let cols = max_cells.max(1);
        for r in 0..n {
            let mut c = 0;
            while c < m {
                let len = cols.min(m - c);
                out.push(Block {
                    row0: r,
                    col0: c,
                    rows: 1,
                    cols: len,
                });
                c += len;
            }
        }
    }
    out
}

impl GpuEvaluator {
    /// `options.metrics` of every (p_i, q_j) into `out`, row-major
    /// (`out[(i·M + j)·k + m]`), computed on the device from the two arrays
    /// themselves (`shaders/pairwise.wgsl`): only the N·M·k results are read back.
    pub(crate) async fn run_pairwise(
        &self,
        p: &[Gaussian],
        q: &[Gaussian],
        options: EvalOptions,
        out: &mut [f32],
        mode: WaitMode,
    ) -> Result<()> {
        let k = options.metrics.len();
        let (n, m) = (p.len(), q.len());
        let cells = crate::batch::pairwise_cells(n, m, k, out.len())?;
        if cells == 0 {
            return Ok(());
        }
        self.check_alive()?;
        if options.on_invalid == OnInvalid::Error {
            validate_cells(p, q, options)?;
        }
        let (n64, m64) = (n as u64, m as u64);
        let pipeline = self
            .kernel
            .pipeline(&self.device, Layout::Pairwise, options, &self.counters)
            .ok_or_else(|| Error::Unsupported("no pairwise pipeline".into()))?;
        let p_buf = self.gaussians_buffer("gaussdiv pairwise p", p)?;
        let q_buf = self.gaussians_buffer("gaussdiv pairwise q", q)?;

        let mut guard = self.scratch.lock().await;
        {
            let mut scratch = ResetUnlessDone {
                scratch: &mut guard,
                done: false,
            };
            let sc = self.ensure_scratch(scratch.scratch, u64::MAX)?;
            // Cells per block: what one slot's output holds (and one dispatch covers).
            let slot_values = sc
                .slots
                .first()
                .map_or(0, |s| s.output.size() / 4)
                .min(self.chunk_pairs);
            let max_cells = (slot_values / k as u64).max(1);
            let list = blocks(n64, m64, max_cells, 1);
            let params = self.block_params(&list, |_| 0)?;
            let stride = self.uniform_stride();

            let mut inflight = InFlight::default();
            for (b, block) in list.iter().enumerate() {
                let slot_index = b % self.slots;
                self.make_room(&mut inflight, &sc.slots, out, mode).await?;
                let slot = sc
                    .slots
                    .get_mut(slot_index)
                    .ok_or_else(|| Error::Gpu("staging slot missing".into()))?;
                let out_bytes = block.cells() * 4 * k as u64;
                let bind_group = self.pairwise_bind_group(
                    (&p_buf, 0, n64 * GAUSSIAN_BYTES),
                    (&q_buf, 0, m64 * GAUSSIAN_BYTES),
                    (&slot.output, 0, out_bytes),
                    &params,
                );
                let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
                let mut encoder =
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("gaussdiv pairwise block"),
                        });
                self.record_pairwise_pass(
                    &mut encoder,
                    &pipeline,
                    &bind_group,
                    b as u64 * stride,
                    block.cells(),
                )?;
                if let Some(down) = &slot.download {
                    encoder.copy_buffer_to_buffer(&slot.output, 0, down, 0, out_bytes);
                }
                let submission = self.queue.submit([encoder.finish()]);
                Counters::bump(&self.counters.submissions);
                if let Some(e) = scope.pop().await {
                    return Err(Error::Gpu(e.to_string()));
                }
                let first = block.first_cell(m64) as usize * k;
                self.queue_readback(
                    &mut inflight,
                    (slot, slot_index),
                    submission,
                    out_bytes,
                    first..first + block.cells() as usize * k,
                )?;
            }
            self.drain(&mut inflight, &sc.slots, out, mode).await?;
            scratch.done = true;
        }
        drop(guard);

        // Cells whose arithmetic may meet subnormals the device flushes
        // (subnormal μ or μ_i − μ_j; both means below 2^−100): the CPU.
        let tiny = |g: &Gaussian| g.mu != 0.0 && g.mu.abs() < f32::powi(2.0, -100);
        let small_p: Vec<usize> = (0..n).filter(|&i| p.get(i).is_some_and(tiny)).collect();
        let small_q: Vec<usize> = (0..m).filter(|&j| q.get(j).is_some_and(tiny)).collect();
        let mut fix = |i: usize, j: usize| {
            if let Some(pair) = cell_pair(p, q, i * q.len() + j) {
                if validate::needs_host_fixup(&pair) {
                    let all = cpu::measures32(&pair, options.param);
                    let at = (i * m + j) * k;
                    if let Some(row) = out.get_mut(at..at + k) {
                        for (dst, metric) in row.iter_mut().zip(options.metrics.iter()) {
                            if let Some(v) = all.get(metric.index()) {
                                *dst = *v;
                            }
                        }
                    }
                }
            }
        };
        for &i in &small_p {
            for j in 0..m {
                fix(i, j);
            }
        }
        for &j in &small_q {
            for i in 0..n {
                fix(i, j);
            }
        }
        Ok(())
    }

    /// Record the pairwise evaluation of `n` Gaussians p (8 bytes each: μ, a)
    /// against `m` Gaussians q that live on the device, into the caller's
    /// `encoder`: `options.metrics` of every (p_i, q_j), row-major, from the
    /// start of `output` (`n·m·k` f32). No submit, no host copies.
    ///
    /// Buffer checks as for the per-pair device path (STORAGE
    /// usage, aligned offsets, sizes; the output may not alias an input).
    /// p and q are bound whole, so each must fit one storage binding
    /// ([`max_binding_bytes`](Self::max_binding_bytes)); the output is
    /// split into as many dispatches as the binding size and the grid need.
    /// Each call creates one uniform buffer (the blocks' offsets, one
    /// `min_uniform_buffer_offset_alignment` stride per block: whole rows per
    /// block, or column ranges of one row when a row exceeds a block) and one
    /// bind group and pass per block; nothing is cached between calls. Device-path contract as for `encode`:
    /// invalid inputs give NaN; means must not be subnormal.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode_pairwise(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        p: wgpu::BufferSlice<'_>,
        n: u64,
        q: wgpu::BufferSlice<'_>,
        m: u64,
        output: wgpu::BufferSlice<'_>,
        options: EvalOptions,
    ) -> Result<()> {
        let k = options.metrics.len() as u64;
        self.check_slice("p", &p, n, GAUSSIAN_BYTES)?;
        self.check_slice("q", &q, m, GAUSSIAN_BYTES)?;
        let cells = n
            .checked_mul(m)
            .ok_or_else(|| Error::TooLarge(format!("{n} × {m} pairs")))?;
        self.check_slice("output", &output, cells, 4 * k)?;
        if output.buffer() == p.buffer() || output.buffer() == q.buffer() {
            return Err(Error::InvalidBuffer(
                "the output buffer is also an input buffer; a buffer cannot be bound both \
                 read-only and writable in one pass (use separate buffers)"
                    .into(),
            ));
        }
        for (what, count) in [("p", n), ("q", m)] {
            if count * GAUSSIAN_BYTES > self.max_binding {
                return Err(Error::TooLarge(format!(
                    "{what} holds {count} Gaussians ({} bytes); the device binds at most {} \
                     bytes (use the host path, pairwise_with, or split {what})",
                    count * GAUSSIAN_BYTES,
                    self.max_binding
                )));
            }
        }
        let pipeline = self
            .kernel
            .pipeline(&self.device, Layout::Pairwise, options, &self.counters)
            .ok_or_else(|| Error::Unsupported("no pairwise pipeline".into()))?;
        // Each block's output is bound from its offset rounded down to the
        // device's alignment; the remainder goes to the kernel as out_base.
        let align = self.offset_alignment.max(4);
        let max_cells = ((self.max_binding.saturating_sub(align)) / (4 * k))
            .min(self.chunk_pairs)
            .max(1);
        let list = blocks(n, m, max_cells, 1);
        let base = output.offset();
        let slack = |b: &Block| (base + b.first_cell(m) * 4 * k) % align;
        let params = self.block_params(&list, |b| (slack(b) / 4) as u32)?;
        let stride = self.uniform_stride();
        for (i, b) in list.iter().enumerate() {
            let start = base + b.first_cell(m) * 4 * k;
            let s = slack(b);
            let bind_group = self.pairwise_bind_group(
                (p.buffer(), p.offset(), n * GAUSSIAN_BYTES),
                (q.buffer(), q.offset(), m * GAUSSIAN_BYTES),
                (output.buffer(), start - s, s + b.cells() * 4 * k),
                &params,
            );
            self.record_pairwise_pass(
                encoder,
                &pipeline,
                &bind_group,
                i as u64 * stride,
                b.cells(),
            )?;
        }
        Ok(())
    }

    /// Distance between consecutive blocks' uniforms (dynamic offsets).
    fn uniform_stride(&self) -> u64 {
        u64::from(self.device.limits().min_uniform_buffer_offset_alignment)
            .max(PAIRWISE_BLOCK_BYTES)
    }

    /// One uniform buffer holding every block's parameters, a stride apart.
    fn block_params(
        &self,
        list: &[Block],
        out_base: impl Fn(&Block) -> u32,
    ) -> Result<wgpu::Buffer> {
        let stride = self.uniform_stride() as usize;
        let mut bytes = vec![0u8; list.len().max(1) * stride];
        for (b, chunk) in list.iter().zip(bytes.chunks_exact_mut(stride)) {
            let to32 = |v: u64| {
                u32::try_from(v).map_err(|_| Error::TooLarge(format!("index {v} beyond 2^32")))
            };
            let params = PairwiseBlock {
                row0: to32(b.row0)?,
                col0: to32(b.col0)?,
                cols: to32(b.cols)?,
                cells: to32(b.cells())?,
                out_base: out_base(b),
                pad: [0; 3],
            };
            if let Some(dst) = chunk.get_mut(..PAIRWISE_BLOCK_BYTES as usize) {
                dst.copy_from_slice(bytemuck::bytes_of(&params));
            }
        }
        Counters::bump(&self.counters.buffers);
        // In error scopes: a failure is an error here, not wgpu's uncaptured-error handler.
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("gaussdiv pairwise blocks"),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let v = now(validation.pop()).flatten();
        let o = now(oom.pop()).flatten();
        match v.or(o) {
            Some(e) => Err(Error::Gpu(format!(
                "could not allocate the parameters of {} pairwise blocks: {e}",
                list.len()
            ))),
            None => Ok(buffer),
        }
    }

    /// A storage buffer holding `g` (at least 8 bytes).
    fn gaussians_buffer(&self, label: &str, g: &[Gaussian]) -> Result<wgpu::Buffer> {
        let bytes = g.len() as u64 * GAUSSIAN_BYTES;
        if bytes > self.max_binding {
            return Err(Error::TooLarge(format!(
                "{} Gaussians ({bytes} bytes) exceed one storage binding ({} bytes)",
                g.len(),
                self.max_binding
            )));
        }
        Counters::bump(&self.counters.buffers);
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(g),
                usage: wgpu::BufferUsages::STORAGE,
            }))
    }

    fn pairwise_bind_group(
        &self,
        (pb, po, ps): (&wgpu::Buffer, u64, u64),
        (qb, qo, qs): (&wgpu::Buffer, u64, u64),
        (ob, oo, os): (&wgpu::Buffer, u64, u64),
        params: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        Counters::bump(&self.counters.bind_groups);
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gaussdiv pairwise bind group"),
            layout: &self.kernel.pairwise_layout,
            entries: &[
                buffer_entry(1, ob, oo, os),
                buffer_entry(6, pb, po, ps),
                buffer_entry(7, qb, qo, qs),
                buffer_entry(8, params, 0, PAIRWISE_BLOCK_BYTES),
            ],
        })
    }

    fn record_pairwise_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        uniform_offset: u64,
        cells: u64,
    ) -> Result<()> {
        let offset = u32::try_from(uniform_offset)
            .map_err(|_| Error::TooLarge("too many pairwise blocks in one call".into()))?;
        let groups = cells.div_ceil(u64::from(self.kernel.workgroup_size));
        let (x, y) = grid(groups, self.max_groups_x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gaussdiv pairwise pass"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[offset]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
    }
}

/// The first invalid cell in row-major order, as [`Error::InvalidInput`]
/// indexed `i·M + j`: cell (0, j) if q_j is the first invalid q (or p_0 is
/// invalid: cell 0), else (i, 0) for the first invalid p_i.
fn validate_cells(p: &[Gaussian], q: &[Gaussian], options: EvalOptions) -> Result<()> {
    let m = q.len();
    let bad = |g: &Gaussian, side_p: bool| {
        let pair = if side_p {
            GaussianPair::from_gaussians(
                *g,
                Gaussian {
                    mu: 0.0,
                    sigma: ok_a(options),
                },
            )
        } else {
            GaussianPair::from_gaussians(
                Gaussian {
                    mu: 0.0,
                    sigma: ok_a(options),
                },
                *g,
            )
        };
        validate::check_param(&pair, options.param).is_some()
    };
    let first_p = p.iter().position(|g| bad(g, true));
    let first_q = q.iter().position(|g| bad(g, false));
    let cell = match (first_p, first_q) {
        (Some(0), _) => Some((0, 0)),
        (_, Some(j)) => Some((0, j)),
        (Some(i), None) => Some((i, 0)),
        (None, None) => None,
    };
    if let Some((i, j)) = cell {
        if let Some(pair) = cell_pair(p, q, i * q.len() + j) {
            return validate::validate_param_at(&[pair], options.param, i * m + j);
        }
    }
    Ok(())
}

/// A valid parameter value in every parameterisation (σ = 1).
fn ok_a(options: EvalOptions) -> f32 {
    match options.param {
        crate::pair::Param::LogStd | crate::pair::Param::LogVar => 0.0,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::blocks;

    #[test]
    fn blocks_cover_the_matrix_once() {
        for (n, m, max) in [
            (1, 1, 1),
            (7, 5, 12),
            (100, 3, 64),
            (3, 1000, 64),
            (5, 64, 64),
        ] {
            let list = blocks(n, m, max, 1);
            let mut seen = vec![0u8; (n * m) as usize];
            let mut next = 0;
            for b in &list {
                assert!(b.cells() <= max.max(1), "{b:?}");
                // Contiguous and in order.
                assert_eq!(b.first_cell(m), next);
                next += b.cells();
                for r in b.row0..b.row0 + b.rows {
                    for c in b.col0..b.col0 + b.cols {
                        seen[(r * m + c) as usize] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{n}×{m} max {max}");
        }
    }
}

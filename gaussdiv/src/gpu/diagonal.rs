//! The diagonal multivariate layout on the GPU: rows of D pairs reduced by
//! the kernels of `shaders/diagonal.wgsl` (the sums over dims are formed on
//! the device; only `rows × k` values are read back).

use super::kernel::{grid, Counters, Layout, WIDE_DIMS};
use super::{buffer_entry, ChunkShape, DiagonalPair, GpuEvaluator, ResetUnlessDone, WaitMode};
use crate::diagonal;
use crate::error::{Error, Result};
use crate::pair::EvalOptions;

use super::{CHUNK_GRANULE, MAX_CHUNK_PAIRS, PAIR_BYTES};

impl GpuEvaluator {
    /// Record the diagonal multivariate layout for `rows` rows of `dims`
    /// pairs that live on the device (row `r`, dim `d` at pair `r·dims + d`
    /// of `input`, 16 bytes each) into the caller's `encoder`:
    /// `options.metrics` of every row (`rows × k` f32 from the start of
    /// `output`, canonical order), the sums over dims formed by the kernel.
    /// No submit, no host copies: the KL term of a VAE over its latent dims,
    /// inside the app's own command stream.
    ///
    /// Buffer checks as for the per-pair device path; rows
    /// are split into dispatches whose bindings fit the device's limits and
    /// start at aligned offsets — a row too large for that is
    /// [`Error::TooLarge`] (use a host diagonal batch or the CPU). One bind group per dispatch (not cached). Device-path
    /// contract as for `encode`: invalid elements give NaN rows; means must
    /// not be subnormal.
    pub(crate) fn encode_diagonal(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        rows: u64,
        dims: u64,
        options: EvalOptions,
    ) -> Result<()> {
        let k = options.metrics.len() as u64;
        if dims == 0 {
            return Err(Error::InvalidBuffer("dims is 0".into()));
        }
        let pairs = rows
            .checked_mul(dims)
            .ok_or_else(|| Error::TooLarge(format!("{rows} rows × {dims} dims")))?;
        self.check_slice("input", &input, pairs, PAIR_BYTES)?;
        self.check_slice("output", &output, rows, 4 * k)?;
        if input.buffer() == output.buffer() {
            return Err(Error::InvalidBuffer(
                "the output buffer is also the input buffer; a buffer cannot be bound both \
                 read-only and writable in one pass (use separate buffers)"
                    .into(),
            ));
        }
        // Rows per dispatch: within one binding and the grid, and a multiple
        // of `step` so that every dispatch's bindings start at aligned offsets.
        let align = self.offset_alignment.max(1);
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let s_in = align / gcd(align, dims.saturating_mul(PAIR_BYTES) % align);
        let s_out = align / gcd(align, (4 * k) % align);
        let step = s_in / gcd(s_in, s_out) * s_out;
        let row_bytes = dims.saturating_mul(PAIR_BYTES);
        let fit = (self.max_binding.min(self.chunk_pairs * PAIR_BYTES) / row_bytes)
            .min(self.max_binding / (4 * k));
        let wide = dims as usize >= WIDE_DIMS;
        let layout = if wide {
            Layout::DiagonalWide
        } else {
            Layout::Diagonal
        };
        let max_x = u64::from(self.max_groups_x);
        let per_group = if wide {
            1
        } else {
            u64::from(self.kernel.workgroup_size)
        };
        let fit = fit.min(max_x * max_x * per_group);
        let chunk = if fit >= rows { rows } else { fit / step * step };
        if chunk == 0 {
            return Err(Error::TooLarge(format!(
                "rows of {dims} pairs do not fit this device's bindings at aligned offsets \
                 (use a host diagonal batch or the CPU)"
            )));
        }
        let pipeline = self
            .kernel
            .pipeline_lazy(&self.device, layout, options, &self.counters)?;
        let mut r0 = 0;
        while r0 < rows {
            let n = chunk.min(rows - r0);
            Counters::bump(&self.counters.bind_groups);
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gaussdiv diagonal encode bind group"),
                layout: &self.kernel.layout,
                entries: &[
                    buffer_entry(
                        0,
                        input.buffer(),
                        input.offset() + r0 * row_bytes,
                        n * row_bytes,
                    ),
                    buffer_entry(1, output.buffer(), output.offset() + r0 * 4 * k, n * 4 * k),
                ],
            });
            let groups = if wide {
                n
            } else {
                n.div_ceil(u64::from(self.kernel.workgroup_size))
            };
            let (x, y) = grid(groups, self.max_groups_x);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gaussdiv diagonal pass"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
            drop(pass);
            r0 += n;
        }
        Ok(())
    }

    /// Rows per chunk for rows of `dims` pairs of `pair_bytes` each, or `TooLarge`.
    fn diagonal_chunk_rows(&self, dims: usize, pair_bytes: u64) -> Result<usize> {
        let row_pairs = dims as u64;
        let row_bytes = row_pairs
            .checked_mul(pair_bytes)
            .ok_or_else(|| Error::TooLarge(format!("a diagonal row of {dims} pairs")))?;
        let binding_pairs = (self.max_binding / pair_bytes).min(MAX_CHUNK_PAIRS);
        if row_pairs > binding_pairs {
            return Err(Error::TooLarge(format!(
                "a diagonal row of {dims} pairs ({row_bytes} bytes) does not fit one storage \
                 binding of this device (at most {} pairs); use the CPU backend for such rows",
                binding_pairs
            )));
        }
        // Whole rows per chunk: about one host chunk, at least one row.
        let rows = (self.host_chunk_pairs / row_pairs).max(1);
        // The dispatch grid: one workgroup per row (wide) or per WORKGROUP_SIZE rows.
        let max_x = u64::from(self.max_groups_x);
        let per_group = if dims >= WIDE_DIMS {
            1
        } else {
            u64::from(self.kernel.workgroup_size)
        };
        let rows = rows.min(max_x * max_x * per_group);
        Ok(usize::try_from(rows).unwrap_or(usize::MAX).max(1))
    }

    /// The diagonal layout on the GPU: rows of `dims` pairs reduced by the
    /// kernel (one invocation per row below 256 dims, a workgroup per row
    /// from 256 on); rows with elements the device may flush are recomputed
    /// on the CPU.
    pub(crate) async fn run_diagonal<P: DiagonalPair>(
        &self,
        pairs: &[P],
        dims: usize,
        options: EvalOptions,
        out: &mut [P::Value],
        mode: WaitMode,
    ) -> Result<()> {
        let k = options.metrics.len();
        let rows = diagonal::rows(pairs.len(), dims, k, out.len())?;
        if rows == 0 {
            return Ok(());
        }
        self.check_alive()?;
        let chunk_rows = self.diagonal_chunk_rows(dims, P::PAIR_BYTES)?;
        let wide = dims >= WIDE_DIMS;
        let (narrow_layout, wide_layout) = P::DIAGONAL;
        let layout = if wide { wide_layout } else { narrow_layout };
        if matches!(layout, Layout::Diagonal64 | Layout::DiagonalWide64) {
            self.require_f64()?;
        }
        let pipeline = self
            .kernel
            .pipeline_lazy(&self.device, layout, options, &self.counters)?;
        let mut fixups = Vec::new();
        let mut guard = self.scratch.lock().await;
        {
            let mut scratch = ResetUnlessDone {
                scratch: &mut guard,
                done: false,
            };
            let chunk_bytes = (chunk_rows.min(rows) * dims) as u64 * P::PAIR_BYTES;
            let row_bytes = (dims as u64 * P::PAIR_BYTES).div_ceil(CHUNK_GRANULE * P::PAIR_BYTES)
                * (CHUNK_GRANULE * P::PAIR_BYTES);
            let s = self.ensure_scratch_at_least(scratch.scratch, chunk_bytes, row_bytes)?;
            // The per-pair path's chunk driver, with rows of `dims` pairs.
            let shape = ChunkShape {
                per_row: dims,
                workgroup_per_row: wide,
            };
            let mut pair_fix = Vec::new();
            self.run_chunks(
                s,
                &pipeline,
                pairs,
                (chunk_rows * dims, shape),
                k,
                out,
                mode,
                (options.param, options.on_invalid, 0),
                &mut pair_fix,
            )
            .await
            .map_err(|e| diagonal::element_error(e, dims))?;
            fixups.extend(pair_fix.iter().map(|i| i / dims));
            scratch.done = true;
        }
        drop(guard);

        // Rows with an element the device may flush (subnormal μ or μ1 − μ2): the CPU mirror.
        fixups.dedup();
        for row in fixups {
            let (Some(p), Some(dst)) = (
                pairs.get(row * dims..(row + 1) * dims),
                out.chunks_exact_mut(k).nth(row),
            ) else {
                continue;
            };
            let all = P::diagonal_row(p, options.param);
            for (d, m) in dst.iter_mut().zip(options.metrics.iter()) {
                if let Some(v) = all.get(m.index()) {
                    *d = *v;
                }
            }
        }
        Ok(())
    }
}

//! The device path of full-covariance pairs: record `shaders/mvn.wgsl` into
//! the app's command encoder on the app's packed pairs
//! ([`DeviceInput::Mvn`](crate::DeviceInput::Mvn)). Nothing is read back:
//! the rows the kernel leaves stay NaN (see that variant), and
//! [`crate::Evaluator::complete`] evaluates them on the CPU from a host copy.

use super::mvn::{pair_stride, scratch_per_pair, CHUNK_CAP, WORKGROUP};
use super::{buffer_entry, chunk_ranges, grid, now, Counters, GpuEvaluator};
use crate::error::{Error, Result};
use crate::pair::EvalOptions;
use crate::MatrixForm;

/// Bytes of one f32 value.
const F32: u64 = 4;

impl GpuEvaluator {
    /// Records the full-covariance kernel over `count` packed pairs of
    /// dimension `dims` into `encoder`, results into `output`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encode_mvn(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pairs: wgpu::BufferSlice<'_>,
        count: u64,
        dims: u32,
        forms: [MatrixForm; 2],
        output: wgpu::BufferSlice<'_>,
        options: EvalOptions,
    ) -> Result<()> {
        let d = dims as usize;
        if d == 0 || d > super::mvn::MAX_GPU_DIMS {
            return Err(Error::Unsupported(format!(
                "full-covariance pairs of dims {d} on the device path: the kernel takes dims \
                 1 to {}",
                super::mvn::MAX_GPU_DIMS
            )));
        }
        let k = options.metrics.len() as u64;
        let in_bytes = pair_stride(d) as u64 * F32;
        let out_bytes = k * F32;
        let scratch_bytes = scratch_per_pair(d) as u64 * F32;
        self.check_slice("input", &pairs, count, in_bytes)?;
        self.check_slice("output", &output, count, out_bytes.max(1))?;
        if pairs.buffer() == output.buffer() {
            return Err(Error::InvalidBuffer(
                "the output buffer is also the input buffer; a buffer cannot be bound both \
                 read-only and writable in one pass (use separate buffers)"
                    .into(),
            ));
        }
        if k == 0 {
            return Ok(());
        }
        self.check_alive()?;
        if self.device.limits().max_storage_buffers_per_shader_stage < 3 {
            return Err(Error::Unsupported(
                "the full-covariance kernel needs 3 storage buffers per shader stage".into(),
            ));
        }
        // Chunks of a whole number of alignment units, so that every chunk's
        // offsets stay aligned; each binding must hold its chunk.
        let align = self.offset_alignment.max(1);
        let widest = in_bytes.max(out_bytes).max(scratch_bytes);
        let max_x = u64::from(self.max_groups_x);
        let chunk = (self.max_binding / widest)
            .min(CHUNK_CAP)
            .min(max_x * max_x * u64::from(WORKGROUP))
            / align
            * align;
        if chunk == 0 {
            return Err(Error::TooLarge(format!(
                "{align} full-covariance pairs of dims {d} (one aligned chunk) do not fit this \
                 device's bindings"
            )));
        }
        let codes = (forms[0].code(), forms[1].code());
        let (pipeline, layout, header) = self.mvn_kernel(false, options.metrics, d, codes)?;
        let scratch = self.device_scratch(chunk.min(count) * scratch_bytes)?;
        for (start, len) in chunk_ranges(count, chunk) {
            Counters::bump(&self.counters.bind_groups);
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gaussdiv mvn device bind group"),
                layout: &layout,
                entries: &[
                    buffer_entry(
                        0,
                        pairs.buffer(),
                        pairs.offset() + start * in_bytes,
                        len * in_bytes,
                    ),
                    buffer_entry(
                        1,
                        output.buffer(),
                        output.offset() + start * out_bytes,
                        len * out_bytes,
                    ),
                    buffer_entry(2, &scratch, 0, len * scratch_bytes),
                    buffer_entry(3, &header, 0, super::mvn::HEADER_BYTES),
                ],
            });
            let (x, y) = grid(len.div_ceil(u64::from(WORKGROUP)), self.max_groups_x);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gaussdiv mvn device pass"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        Ok(())
    }

    /// The device path's scratch buffer, of at least `bytes` (grown, never
    /// shrunk; a pass recorded earlier keeps its old buffer alive).
    fn device_scratch(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let mut guard = match self.mvn_kernel.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let state = guard
            .as_mut()
            .ok_or_else(|| Error::Gpu("full-covariance kernel state missing".into()))?;
        if let Some(b) = &state.device_scratch {
            if b.size() >= bytes {
                return Ok(b.clone());
            }
        }
        state.device_scratch = None;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let b = self.buffer(
            "gaussdiv mvn device scratch",
            bytes,
            wgpu::BufferUsages::STORAGE,
        );
        let v = now(validation.pop()).flatten();
        let o = now(oom.pop()).flatten();
        if let Some(e) = v.or(o) {
            return Err(Error::Gpu(format!(
                "could not allocate the full-covariance scratch: {e}"
            )));
        }
        state.device_scratch = Some(b.clone());
        Ok(b)
    }
}

//! Staging: the reused per-slot buffers of the host path (storage buffers,
//! upload and readback staging or mapped storage), grown by size class and
//! never shrunk, and the copies out of them.

use super::*;

impl GpuEvaluator {
    pub(super) fn slot(slots: &[Slot], i: usize) -> Result<&Slot> {
        slots
            .get(i)
            .ok_or_else(|| Error::Gpu("staging slot missing".into()))
    }

    /// Copy `count` values from the slot's (mapped) output to `out[first..]`.
    pub(super) fn read_back<V: bytemuck::Pod>(
        slot: &Slot,
        first: usize,
        count: usize,
        out: &mut [V],
    ) -> Result<()> {
        let bytes = (count * size_of::<V>()) as u64;
        let down = slot.download.as_ref().unwrap_or(&slot.output);
        {
            let view = down
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Map(e.to_string()))?;
            let dst = out
                .get_mut(first..first + count)
                .ok_or_else(|| Error::Gpu("readback range outside the output".into()))?;
            let dst: &mut [u8] = bytemuck::cast_slice_mut(dst);
            if dst.len() != view.len() {
                return Err(Error::Gpu("readback size mismatch".into()));
            }
            dst.copy_from_slice(&view);
        }
        down.unmap();
        Ok(())
    }

    /// Scratch buffers for an input of `n_bytes`: a power of two from
    /// `MIN_CAPACITY` f32 pairs up to one host chunk (`host_chunk_pairs` f32
    /// pairs; f64 chunks hold the same bytes, half the pairs).
    pub(super) fn ensure_scratch<'a>(
        &self,
        guard: &'a mut Option<Scratch>,
        n_bytes: u64,
    ) -> Result<&'a mut Scratch> {
        self.ensure_scratch_at_least(guard, n_bytes, 0)
    }

    /// [`ensure_scratch`](Self::ensure_scratch), but with room for at least
    /// `at_least` bytes even beyond one host chunk (a diagonal row longer than
    /// a chunk; the caller keeps it within one binding).
    pub(super) fn ensure_scratch_at_least<'a>(
        &self,
        guard: &'a mut Option<Scratch>,
        n_bytes: u64,
        at_least: u64,
    ) -> Result<&'a mut Scratch> {
        let want = n_bytes
            .max(MIN_CAPACITY * PAIR_BYTES)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
            .min(self.host_chunk_pairs * PAIR_BYTES)
            .max(at_least);
        let enough = matches!(guard, Some(s) if s.in_bytes >= want);
        if !enough {
            *guard = None; // release the old buffers first
            let slots = (0..self.slots)
                .map(|_| self.make_slot(want))
                .collect::<Result<Vec<_>>>()?;
            *guard = Some(Scratch {
                in_bytes: want,
                slots,
            });
        }
        guard
            .as_mut()
            .ok_or_else(|| Error::Gpu("scratch buffers missing".into()))
    }

    pub(super) fn make_slot(&self, in_bytes: u64) -> Result<Slot> {
        use wgpu::BufferUsages as U;
        // Room for every measure: 4 bytes each per f32 pair (16 bytes in);
        // f64 pairs (32 bytes in) write at most 10 × 8 bytes, the same ratio.
        let out_bytes = in_bytes / PAIR_BYTES * 4 * Metric::COUNT as u64;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let (input, output, upload, download) = if self.mapped_storage {
            // Unified memory: map the storage buffers themselves, no staging copies.
            let input = self.buffer(
                "gaussdiv input (mapped)",
                in_bytes,
                U::STORAGE | U::MAP_WRITE,
            );
            let output = self.buffer(
                "gaussdiv output (mapped)",
                out_bytes,
                U::STORAGE | U::MAP_READ,
            );
            (input, output, None, None)
        } else {
            let input = self.buffer("gaussdiv input", in_bytes, U::STORAGE | U::COPY_DST);
            let output = self.buffer("gaussdiv output", out_bytes, U::STORAGE | U::COPY_SRC);
            let upload = self.buffer(
                "gaussdiv upload staging",
                in_bytes,
                U::MAP_WRITE | U::COPY_SRC,
            );
            let download = self.buffer(
                "gaussdiv readback staging",
                out_bytes,
                U::MAP_READ | U::COPY_DST,
            );
            (input, output, Some(upload), Some(download))
        };
        let v = now(validation.pop()).flatten();
        let o = now(oom.pop()).flatten();
        if let Some(e) = v.or(o) {
            return Err(Error::Gpu(format!(
                "could not allocate staging for {} pairs: {e}",
                in_bytes / PAIR_BYTES
            )));
        }
        Ok(Slot {
            input,
            output,
            upload,
            download,
            last_submission: None,
            bind_groups: HashMap::new(),
        })
    }

    pub(super) fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        Counters::bump(&self.counters.buffers);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }
}

//! The host engine's chunk driver: chunks of the caller's pairs go through
//! the staging slots — upload with the fused input screen, dispatch, readback
//! — with several chunks in flight. Every host-memory layout (pairs, columns,
//! diagonal rows, gradients; f32 and f64) runs through it.

use super::*;

impl GpuEvaluator {
    #[allow(clippy::too_many_arguments)]
    /// The host path's chunk driver, shared by every layout that uploads
    /// pairs: chunks of `chunk` pairs (whole output rows of `shape.per_row`
    /// pairs) go through the slots — upload with the fused screen, dispatch,
    /// readback — with up to `self.slots` chunks in flight. `k` values per
    /// output row; `fixups` receives pair indices (relative to `pairs`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_chunks<P: HostPair>(
        &self,
        scratch: &mut Scratch,
        pipeline: &wgpu::ComputePipeline,
        pairs: &[P],
        (chunk, shape): (usize, ChunkShape),
        k: usize,
        out: &mut [P::Value],
        mode: WaitMode,
        (param, on_invalid, offset): (Param, OnInvalid, usize),
        fixups: &mut Vec<usize>,
    ) -> Result<()> {
        let per_row = shape.per_row.max(1);
        let chunk = (chunk / per_row).max(1) * per_row;
        let full_in_bytes = chunk as u64 * P::PAIR_BYTES;
        let value_bytes = P::VALUE_BYTES * k as u64;

        /// A chunk in flight: its slot, first output row and row count.
        struct InFlight {
            slot: usize,
            start: usize,
            len: usize,
            outcome: MapOutcome,
            submission: wgpu::SubmissionIndex,
        }
        let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(self.slots);

        for (c, chunk_pairs) in pairs.chunks(chunk).enumerate() {
            let slot_index = c % self.slots;
            if inflight.len() == self.slots {
                if let Some(done) = inflight.pop_front() {
                    let slot = Self::slot(&scratch.slots, done.slot)?;
                    self.wait(&done.outcome, Some(done.submission), mode)
                        .await?;
                    Self::read_back(slot, done.start * k, done.len * k, out)?;
                }
            }
            let slot = scratch
                .slots
                .get_mut(slot_index)
                .ok_or_else(|| Error::Gpu("staging slot missing".into()))?;
            let len = chunk_pairs.len() as u64;
            let rows = len / per_row as u64;
            let in_bytes = len * P::PAIR_BYTES;
            let out_bytes = rows * value_bytes;

            // Upload through the reused, mapped staging buffer.
            let up = slot.upload.as_ref().unwrap_or(&slot.input);
            let upload = self.request_map(up, in_bytes, wgpu::MapMode::Write)?;
            self.wait(&upload, slot.last_submission.clone(), mode)
                .await?;
            // The screen fused with the copy (one pass over the caller's input).
            let screened = {
                let mut view = up
                    .slice(..in_bytes)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::Map(e.to_string()))?;
                P::screen_copy(chunk_pairs, param, view.slice(..))
            };
            up.unmap();
            self.screened_chunk(
                chunk_pairs,
                screened?,
                (param, on_invalid),
                offset + c * chunk,
                c * chunk,
                fixups,
            )?;

            let bind_group = {
                let key = (in_bytes, out_bytes);
                if !slot.bind_groups.contains_key(&key) {
                    // Bounded: every distinct tail length would otherwise stay
                    // cached. Full-chunk entries survive the pruning.
                    if slot.bind_groups.len() >= SLOT_BIND_GROUPS {
                        slot.bind_groups.retain(|(b, _), _| *b == full_in_bytes);
                    }
                    let bg = self.pairs_bind_group(&slot.input, in_bytes, &slot.output, out_bytes);
                    slot.bind_groups.insert(key, bg);
                }
                slot.bind_groups.get(&key).cloned()
            };
            let bind_group = bind_group.ok_or_else(|| Error::Gpu("bind group cache".into()))?;

            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("gaussdiv host chunk"),
                });
            if let Some(up) = &slot.upload {
                encoder.copy_buffer_to_buffer(up, 0, &slot.input, 0, in_bytes);
            }
            let groups = if shape.workgroup_per_row {
                rows
            } else {
                rows.div_ceil(u64::from(self.kernel.workgroup_size))
            };
            self.record_groups(&mut encoder, pipeline, &bind_group, groups);
            if let Some(down) = &slot.download {
                encoder.copy_buffer_to_buffer(&slot.output, 0, down, 0, out_bytes);
            }
            let submission = self.queue.submit([encoder.finish()]);
            Counters::bump(&self.counters.submissions);
            let error = scope.pop();
            if let Some(e) = error.await {
                return Err(Error::Gpu(e.to_string()));
            }
            slot.last_submission = Some(submission.clone());
            let down = slot.download.as_ref().unwrap_or(&slot.output);
            let outcome = self.request_map(down, out_bytes, wgpu::MapMode::Read)?;
            inflight.push_back(InFlight {
                slot: slot_index,
                start: c * chunk / per_row,
                len: rows as usize,
                outcome,
                submission,
            });
        }
        while let Some(done) = inflight.pop_front() {
            let slot = Self::slot(&scratch.slots, done.slot)?;
            self.wait(&done.outcome, Some(done.submission), mode)
                .await?;
            Self::read_back(slot, done.start * k, done.len * k, out)?;
        }
        Ok(())
    }
}

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
        let mut inflight = InFlight::default();

        for (c, chunk_pairs) in pairs.chunks(chunk).enumerate() {
            let slot_index = c % self.slots;
            self.make_room(&mut inflight, &scratch.slots, out, mode)
                .await?;
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
            let first = c * chunk / per_row * k;
            self.queue_readback(
                &mut inflight,
                (slot, slot_index),
                submission,
                out_bytes,
                first..first + rows as usize * k,
            )?;
        }
        self.drain(&mut inflight, &scratch.slots, out, mode).await
    }

    /// When every slot has a chunk in flight: wait for the oldest and copy
    /// its values out, so that its slot can be reused.
    pub(super) async fn make_room<V: bytemuck::Pod>(
        &self,
        inflight: &mut InFlight,
        slots: &[Slot],
        out: &mut [V],
        mode: WaitMode,
    ) -> Result<()> {
        if inflight.0.len() >= self.slots {
            if let Some(done) = inflight.0.pop_front() {
                self.retire(done, slots, out, mode).await?;
            }
        }
        Ok(())
    }

    /// A chunk just submitted on slot `index`: map its `out_bytes` of results
    /// for reading and queue it; they go to `out[values]` when it completes.
    pub(super) fn queue_readback(
        &self,
        inflight: &mut InFlight,
        (slot, index): (&mut Slot, usize),
        submission: wgpu::SubmissionIndex,
        out_bytes: u64,
        values: std::ops::Range<usize>,
    ) -> Result<()> {
        slot.last_submission = Some(submission.clone());
        let down = slot.download.as_ref().unwrap_or(&slot.output);
        let outcome = self.request_map(down, out_bytes, wgpu::MapMode::Read)?;
        inflight.0.push_back(Pending {
            slot: index,
            values,
            outcome,
            submission,
        });
        Ok(())
    }

    /// Wait for every chunk still in flight, oldest first, and copy its values out.
    pub(super) async fn drain<V: bytemuck::Pod>(
        &self,
        inflight: &mut InFlight,
        slots: &[Slot],
        out: &mut [V],
        mode: WaitMode,
    ) -> Result<()> {
        while let Some(done) = inflight.0.pop_front() {
            self.retire(done, slots, out, mode).await?;
        }
        Ok(())
    }

    async fn retire<V: bytemuck::Pod>(
        &self,
        done: Pending,
        slots: &[Slot],
        out: &mut [V],
        mode: WaitMode,
    ) -> Result<()> {
        let slot = Self::slot(slots, done.slot)?;
        self.wait(&done.outcome, Some(done.submission), mode)
            .await?;
        Self::read_back(slot, done.values.start, done.values.len(), out)
    }
}

/// The chunks of one host call that are submitted and not yet read back,
/// oldest first (at most one per slot).
#[derive(Default)]
pub(super) struct InFlight(VecDeque<Pending>);

/// One chunk in flight: its slot, where its values go, its mapping and submission.
pub(super) struct Pending {
    slot: usize,
    values: std::ops::Range<usize>,
    outcome: MapOutcome,
    submission: wgpu::SubmissionIndex,
}

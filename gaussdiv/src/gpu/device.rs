//! The device path: record an evaluation into the app's command encoder,
//! on buffers that already live on the device (no submit, no host copies).
//! Every misuse of a buffer is an [`Error::InvalidBuffer`] found here, so
//! wgpu never sees an invalid binding.

use super::kernel::{Layout, PAIR_BYTES};
use super::{chunk_ranges, BindInputs, BindKey, GpuEvaluator, CHUNK_GRANULE, ENCODE_CACHE_ENTRIES};
use crate::batch::{DeviceBatch, DeviceInput};
use crate::error::{Error, Result};
use crate::pair::EvalOptions;
use crate::request::{Output, Request};

impl GpuEvaluator {
    /// Drop the bind groups cached by [`encode`](Self::encode) and friends.
    /// Each cached bind group keeps its buffers alive (at most 16 are kept);
    /// call this after dropping large buffers used with `encode` to release
    /// their memory at once.
    pub(crate) fn clear_encode_cache(&self) {
        match self.encode_cache.lock() {
            Ok(mut c) => c.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    /// The device path of [`crate::Evaluator::encode`]: one request on one
    /// device batch, recorded into the caller's encoder.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: DeviceBatch<'_>,
        request: &Request,
    ) -> Result<()> {
        let options = request.options()?;
        let output = batch.output;
        match (batch.input, request.output) {
            (DeviceInput::Pairs { pairs, count }, out) => {
                self.check_slice("input", &pairs, count, PAIR_BYTES)?;
                let inputs = BindInputs::Pairs(pairs.buffer().clone(), pairs.offset());
                let layout = match out {
                    Output::Gradients(_) => Layout::Grad,
                    Output::Measures(_) => Layout::Pairs,
                };
                self.encode_chunks(encoder, layout, inputs, output, count, options)
            }
            (DeviceInput::Columns { columns, count }, Output::Measures(_)) => {
                let names = ["mu1", "a1", "mu2", "a2"];
                for (name, slice) in names.iter().zip(&columns) {
                    self.check_slice(name, slice, count, 4)?;
                }
                let inputs = BindInputs::Soa(columns.map(|s| (s.buffer().clone(), s.offset())));
                self.encode_chunks(encoder, Layout::Soa, inputs, output, count, options)
            }
            (DeviceInput::Pairwise { p, n, q, m }, Output::Measures(_)) => {
                self.encode_pairwise(encoder, p, n, q, m, output, options)
            }
            (DeviceInput::Diagonal { pairs, rows, dims }, Output::Measures(_)) => {
                self.encode_diagonal(encoder, pairs, output, rows, dims, options)
            }
            (
                DeviceInput::Mvn {
                    pairs,
                    count,
                    dims,
                    forms,
                },
                Output::Measures(_),
            ) => self.encode_mvn(encoder, pairs, count, dims, forms, output, options),
            (_, Output::Gradients(_)) => Err(Error::Unsupported(
                "gradients on the device path are available for arrays of pairs".into(),
            )),
        }
    }

    fn encode_chunks(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        layout: Layout,
        inputs: BindInputs,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        options: EvalOptions,
    ) -> Result<()> {
        let per_metric = match layout {
            Layout::Grad => crate::gradient::PER_MEASURE,
            _ => 1,
        };
        let k = options.metrics.len() * per_metric;
        let value_bytes = 4 * k as u64;
        self.check_slice("output", &output, count, value_bytes)?;
        let aliased = match &inputs {
            BindInputs::Pairs(b, _) => b == output.buffer(),
            BindInputs::Soa(a) => a.iter().any(|(b, _)| b == output.buffer()),
        };
        if aliased {
            return Err(Error::InvalidBuffer(
                "the output buffer is also an input buffer; a buffer cannot be bound both \
                 read-only and writable in one pass (use separate buffers)"
                    .into(),
            ));
        }
        let pipeline = self
            .kernel
            .pipeline(&self.device, layout, options, &self.counters)
            .ok_or_else(|| {
                Error::Unsupported(
                    "structure-of-arrays input needs 5 storage buffers per shader stage; \
                     this device has fewer (use the array-of-pairs layout)"
                        .into(),
                )
            })?;
        // A chunk's input and output must each fit one binding (with many
        // measures the output is the larger).
        let per_binding =
            (self.max_binding / value_bytes.max(PAIR_BYTES)) / CHUNK_GRANULE * CHUNK_GRANULE;
        let chunk = self.chunk_pairs.min(per_binding.max(CHUNK_GRANULE));
        for (start, len) in chunk_ranges(count, chunk) {
            let key = BindKey {
                inputs: inputs.advanced(start),
                output: output.buffer().clone(),
                output_offset: output.offset() + start * value_bytes,
                pairs: len,
                k,
            };
            let bind_group = {
                let mut cache = match self.encode_cache.lock() {
                    Ok(c) => c,
                    Err(p) => p.into_inner(),
                };
                match cache.get(&key) {
                    Some(bg) => bg.clone(),
                    None => {
                        if cache.len() >= ENCODE_CACHE_ENTRIES {
                            cache.clear();
                        }
                        let bg =
                            self.bind_group(&key.inputs, &key.output, key.output_offset, len, k);
                        cache.insert(key, bg.clone());
                        bg
                    }
                }
            };
            self.record_pass(encoder, &pipeline, &bind_group, len);
        }
        Ok(())
    }

    pub(crate) fn check_slice(
        &self,
        what: &str,
        slice: &wgpu::BufferSlice<'_>,
        count: u64,
        bytes_per_pair: u64,
    ) -> Result<()> {
        if count == 0 {
            return Err(Error::InvalidBuffer(
                "count is 0: there is nothing to encode".into(),
            ));
        }
        let usage = slice.buffer().usage();
        if !usage.contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidBuffer(format!(
                "the {what} buffer lacks STORAGE usage (has {usage:?})"
            )));
        }
        let offset = slice.offset();
        if !offset.is_multiple_of(self.offset_alignment) {
            return Err(Error::InvalidBuffer(format!(
                "the {what} offset {offset} is not a multiple of \
                 min_storage_buffer_offset_alignment ({})",
                self.offset_alignment
            )));
        }
        match count.checked_mul(bytes_per_pair) {
            Some(need) if need <= slice.size() => Ok(()),
            need => Err(Error::InvalidBuffer(format!(
                "the {what} slice holds {} bytes; {count} pairs need {}",
                slice.size(),
                need.map_or("more than 2^64".to_string(), |b| b.to_string())
            ))),
        }
    }
}

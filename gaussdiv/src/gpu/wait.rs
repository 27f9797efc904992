//! Waiting for the GPU: buffer mappings and their callbacks, polling on this
//! thread (blocking calls) or on a helper thread (async calls), timeouts,
//! device loss, and the injected faults of the fault tests.

use super::*;

impl GpuEvaluator {
    /// Request a mapping; a validation error (e.g. on a lost device) is
    /// returned here instead of reaching the device's uncaptured-error handler.
    pub(super) fn request_map(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        mode: wgpu::MapMode,
    ) -> Result<MapOutcome> {
        if self.fault.load(Ordering::SeqCst) == Fault::MapFailure as u8 {
            self.fault.store(0, Ordering::SeqCst);
            return Err(self.map_failure("injected mapping failure".into()));
        }
        #[cfg(target_arch = "wasm32")]
        let (fire, fired) = futures_intrusive::channel::shared::oneshot_channel();
        let outcome: MapOutcome = Arc::new(MapSignal {
            slot: Mutex::new(None),
            signal: std::sync::Condvar::new(),
            #[cfg(target_arch = "wasm32")]
            fired,
        });
        let sink = outcome.clone();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        buffer.slice(..bytes).map_async(mode, move |r| {
            if let Ok(mut s) = sink.slot.lock() {
                *s = Some(r);
            }
            sink.signal.notify_all();
            #[cfg(target_arch = "wasm32")]
            let _ = fire.send(());
        });
        match now(scope.pop()).flatten() {
            None => Ok(outcome),
            Some(e) => Err(self.map_failure(e.to_string())),
        }
    }

    /// A mapping failed: on a lost device that is the reason to report.
    pub(super) fn map_failure(&self, message: String) -> Error {
        if self.is_lost() {
            Error::DeviceLost(format!(
                "{message} (the device was lost; create a new evaluator)"
            ))
        } else {
            Error::Map(message)
        }
    }

    /// Wait until `until` (or the latest submission) has completed and the
    /// mapping in `outcome` has resolved.
    pub(super) async fn wait(
        &self,
        outcome: &MapOutcome,
        until: Option<wgpu::SubmissionIndex>,
        mode: WaitMode,
    ) -> Result<()> {
        let lost = self.lost.clone();
        let poll = move |device: &wgpu::Device, timeout: Option<Duration>| -> Result<()> {
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: until,
                    timeout,
                })
                .map(|_| ())
                .map_err(|e| match e {
                    wgpu::PollError::Timeout => Error::Timeout {
                        waited: timeout.unwrap_or_default(),
                    },
                    other => {
                        lost.store(true, Ordering::SeqCst);
                        Error::DeviceLost(other.to_string())
                    }
                })
        };
        let lost = self.lost.clone();
        let take = move |outcome: &MapOutcome| -> Result<()> {
            // Our poll has seen the submission complete; the callback has run or
            // is running on the thread that collected it.
            #[cfg(not(target_arch = "wasm32"))]
            let got = outcome.slot.lock().ok().and_then(|guard| {
                outcome
                    .signal
                    .wait_timeout_while(guard, CALLBACK_GRACE, |s| s.is_none())
                    .ok()
                    .and_then(|(mut s, _)| s.take())
            });
            // On the web the callback has fired (or was dropped): never wait.
            #[cfg(target_arch = "wasm32")]
            let got = outcome.slot.lock().ok().and_then(|mut s| s.take());
            let lost = lost.load(Ordering::SeqCst);
            match got {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) if lost => Err(Error::DeviceLost(format!(
                    "{e} (the device was lost; create a new evaluator)"
                ))),
                Some(Err(e)) => Err(Error::Map(e.to_string())),
                None => Err(Error::Map(
                    "the mapping did not complete after the GPU finished".into(),
                )),
            }
        };
        let timeout = self.timeout();
        if self.fault.load(Ordering::SeqCst) == Fault::Hang as u8 {
            self.fault.store(0, Ordering::SeqCst);
            let waited = timeout.unwrap_or_default();
            #[cfg(not(target_arch = "wasm32"))]
            {
                if mode == WaitMode::Block {
                    std::thread::sleep(waited);
                } else {
                    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                    std::thread::Builder::new()
                        .name("gaussdiv-hang".into())
                        .spawn(move || {
                            std::thread::sleep(waited);
                            let _ = tx.send(());
                        })
                        .map_err(|e| Error::Gpu(format!("could not start a thread: {e}")))?;
                    let _ = rx.receive().await;
                }
            }
            return Err(Error::Timeout { waited });
        }
        // On the web the browser resolves mappings from its event loop (a
        // device poll does nothing there, and nothing may block): await it.
        // No timeout applies there; a lost device fails the mapping instead.
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (mode, &poll, timeout);
            let _ = outcome.fired.receive().await;
            take(outcome)
        }
        #[cfg(not(target_arch = "wasm32"))]
        match mode {
            WaitMode::Block => {
                poll(&self.device, timeout)?;
                take(outcome)
            }
            WaitMode::Offload => {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                let device = self.device.clone();
                let outcome = outcome.clone();
                std::thread::Builder::new()
                    .name("gaussdiv-poll".into())
                    .spawn(move || {
                        let r = poll(&device, timeout).and_then(|_| take(&outcome));
                        let _ = tx.send(r);
                    })
                    .map_err(|e| Error::Gpu(format!("could not start a polling thread: {e}")))?;
                match rx.receive().await {
                    Some(r) => r,
                    None => Err(Error::DeviceLost("the polling thread ended".into())),
                }
            }
        }
    }
}

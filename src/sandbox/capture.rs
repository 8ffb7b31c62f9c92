//! The guest's stdout and stderr as the host receives them: one buffer per stream, emptied before every call,
//! holding at most the output cap.
//!
//! The cap lives here, on the host side of the WASI boundary, so no guest code can raise, reset or bypass it:
//! a write past the cap keeps the bytes that fit and traps the instance ([`super::Fault::Output`]). A guest
//! that prints without end therefore costs the host at most the cap per stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much a guest may write in one go (WASI's `check-write` permit); the cap is checked on every write.
const WRITE_PERMIT: usize = 64 << 10;

/// One captured stream; clones share the buffer (the WASI context holds one, the session another).
#[derive(Clone)]
pub struct Capture {
    buffer: Arc<Mutex<Buffer>>,
}

struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    /// A write did not fit: the call that made it trapped.
    over: bool,
}

impl Capture {
    pub fn new(cap: usize) -> Self {
        Self { buffer: Arc::new(Mutex::new(Buffer { bytes: Vec::new(), cap, over: false })) }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock cannot leave the buffer inconsistent: take it anyway.
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Empty the buffer for the next call.
    pub fn reset(&self) {
        let mut buffer = self.lock();
        buffer.bytes = Vec::new();
        buffer.over = false;
    }

    /// What was written since the last reset (at most the cap), and whether a write went past the cap.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut buffer = self.lock();
        (std::mem::take(&mut buffer.bytes), buffer.over)
    }

    pub fn over(&self) -> bool {
        self.lock().over
    }

    /// Keep what fits; `false` when something did not.
    fn append(&self, data: &[u8]) -> bool {
        let mut buffer = self.lock();
        let room = buffer.cap.saturating_sub(buffer.bytes.len());
        let fits = data.len() <= room;
        buffer.bytes.extend_from_slice(&data[..data.len().min(room)]);
        buffer.over |= !fits;
        fits
    }
}

#[async_trait::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if self.append(&bytes) { Ok(()) } else { Err(StreamError::trap("output limit exceeded")) }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

/// The asynchronous view WASI's other interfaces use; a write past the cap fails (and is remembered as over).
impl tokio::io::AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(if self.append(data) {
            Ok(data.len())
        } else {
            Err(std::io::Error::other("output limit exceeded"))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_cap_keeps_what_fits_and_traps() {
        let mut capture = Capture::new(5);
        assert!(OutputStream::write(&mut capture, Bytes::from_static(b"abc")).is_ok());
        let err = OutputStream::write(&mut capture, Bytes::from_static(b"defg")).expect_err("over the cap");
        assert!(matches!(err, StreamError::Trap(_)), "a write past the cap traps the instance: {err}");
        assert_eq!(capture.take(), (b"abcde".to_vec(), true));
        capture.reset();
        assert_eq!(capture.take(), (Vec::new(), false), "reset empties the buffer and clears the flag");
    }
}

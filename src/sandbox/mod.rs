//! The sandbox: CPython compiled to WASI, as a pre-initialized component, under wasmtime.
//!
//! It knows nothing about doctests. It offers an [`InstancePre`] built once and [`Session`]s: one fresh
//! instance of the snapshot each (copy-on-write memory, so nothing leaks between sessions), with no
//! preopened directory, an empty environment, closed stdin, no network, deterministic clocks and randomness,
//! a memory cap, an output cap, and a deadline on every call into the guest. Every limit is enforced by the host
//! (the store's limiter, the epoch, the captured output streams), out of reach of the code it limits.
//!
//! Time limits use two mechanisms: epoch interruption traps a guest that computes past its deadline (the store's
//! epoch callback checks the call's deadline, and its [`Cancel`], every tick), and a tokio timeout ends a guest
//! blocked in a WASI call (`time.sleep`), which never reaches an epoch check.

mod capture;
mod guest;
pub mod runtime;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::{Component, InstancePre, Linker, WasmStr};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

pub use guest::{GuestState, Output, TEXT_KEPT, TEXT_SLOTS};
pub use runtime::{Runtime, RuntimeMissing};

/// How often the engine's epoch advances: the granularity of every deadline and of cancellation.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each pooled linear memory kept mapped between sessions and reset in place. Where the kernel has
/// `PAGEMAP_SCAN` (Linux 6.7 and later), only the pages the last session wrote are copied back from the snapshot,
/// up to this much; elsewhere the first this-many bytes are copied whatever was written. Pages past it are
/// decommitted, and every instance re-faults them copy-on-write, each fault a TLB-shootdown interrupt to the other
/// cores (grading with 2 threads was slower than with 1). 32 MiB covers the 17 MiB snapshot plus a typical
/// submission's heap (Refactory: 20-128 MiB give the same throughput, 16 MiB is 1.6x slower, 12 MiB 3x).
const KEEP_RESIDENT: usize = 32 << 20;

/// Resource limits for one session.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit of one call into the guest (one doctest example).
    pub per_call: Duration,
    /// Wall-clock limit of a whole session (one submission), across calls.
    pub per_session: Duration,
    /// Largest linear memory the guest may grow to.
    pub memory_bytes: usize,
    /// Fuel (roughly, wasm instructions) per call; `None` turns metering off.
    pub fuel: Option<u64>,
    /// Bytes the guest may write to stdout, and separately to stderr, in one call; one more traps the call
    /// ([`Fault::Output`]). The host holds at most this much per stream.
    pub output_bytes: usize,
    /// The most sessions alive at once (slots of the pooling allocator); more fail to instantiate.
    pub max_sessions: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_call: Duration::from_secs(2),
            per_session: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            fuel: None,
            output_bytes: 64 << 10,
            max_sessions: 64,
        }
    }
}

/// Why a call into the guest did not return a value. The session is unusable afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("time limit exceeded")]
    Timeout,
    #[error("memory limit exceeded")]
    Memory,
    #[error("output limit exceeded")]
    Output,
    #[error("fuel exhausted")]
    Fuel,
    #[error("guest exited with status {0}")]
    Exit(i32),
    #[error("guest stack overflow")]
    StackOverflow,
    #[error("guest trapped: {0}")]
    Trap(String),
    /// Stopped through its [`Cancel`]: nobody waits for the result any more.
    #[error("cancelled")]
    Cancelled,
}

impl Fault {
    /// The limit this fault reports as (fuel running out is a timeout).
    pub fn limit(&self) -> Limit {
        match self {
            Fault::Timeout | Fault::Fuel => Limit::Timeout,
            Fault::Memory => Limit::Memory,
            Fault::Output => Limit::Output,
            Fault::Exit(_) => Limit::Exit,
            Fault::StackOverflow => Limit::StackOverflow,
            Fault::Trap(_) => Limit::Trap,
            Fault::Cancelled => Limit::Cancelled,
        }
    }
}

/// What stopped a call, by the machine-readable name records, labels' sub-reasons and telemetry use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Timeout,
    Memory,
    #[serde(rename = "output_limit")]
    Output,
    Exit,
    StackOverflow,
    Trap,
    Cancelled,
}

impl Limit {
    pub const ALL: [Limit; 7] = [
        Limit::Timeout,
        Limit::Memory,
        Limit::Output,
        Limit::Exit,
        Limit::StackOverflow,
        Limit::Trap,
        Limit::Cancelled,
    ];

    /// The name serde writes, as a `&'static str`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Timeout => "timeout",
            Limit::Memory => "memory",
            Limit::Output => "output_limit",
            Limit::Exit => "exit",
            Limit::StackOverflow => "stack_overflow",
            Limit::Trap => "trap",
            Limit::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|limit| limit.name() == name)
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Stops the calls of every session made with it (see [`Sandbox::session`]): a computing guest at its next epoch
/// tick, one blocked in the host within a few milliseconds. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Resolves once cancelled.
    async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(EPOCH_TICK).await;
        }
    }
}

/// An engine with the component compiled and linked once; cheap to share between threads.
pub struct Sandbox {
    engine: Engine,
    pre: InstancePre<GuestState>,
    limits: Limits,
    ticker: Arc<AtomicBool>,
}

impl Sandbox {
    pub fn new(runtime: &Runtime, limits: Limits) -> Result<Self> {
        let slots = limits.max_sessions.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 20)
            .total_memories(slots * 4)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_memory_size(limits.memory_bytes)
            .table_elements(100_000)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(1 << 20)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .max_wasm_stack(1 << 20);
        let engine = Engine::new(&config)?;
        let component: Component = runtime.load(&engine)?;
        let mut linker = Linker::<GuestState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from).context("linking WASI")?;
        linker
            .root()
            .func_wrap("report-text", keep_reported_text)
            .map_err(anyhow::Error::from)
            .context("linking report-text")?;
        let pre =
            linker.instantiate_pre(&component).map_err(anyhow::Error::from).context("linking the grader component")?;
        let ticker = Arc::new(AtomicBool::new(true));
        spawn_epoch_ticker(engine.clone(), ticker.clone());
        Ok(Self { engine, pre, limits, ticker })
    }

    pub fn instance_pre(&self) -> &InstancePre<GuestState> {
        &self.pre
    }

    /// A fresh store for one submission whose time started at `started` (a submission may need several
    /// instances when one is killed), stopped early by `cancel`; instantiate into it with [`Session::call`].
    pub fn session(&self, started: Instant, cancel: &Cancel) -> Session {
        let mut store = Store::new(&self.engine, GuestState::new(self.limits.memory_bytes, self.limits.output_bytes));
        store.limiter(|state| state.limiter());
        let flag = cancel.clone();
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            if flag.is_cancelled() {
                state.cancelled = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(if Instant::now() >= state.deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Continue(1) })
        });
        Session { store, started, limits: self.limits.clone(), cancel: cancel.clone() }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

/// The `report-text` import: the guest's text is read where it lies in the guest's memory, and only what the host
/// keeps is copied, so a text as large as the guest's memory costs the host at most [`TEXT_KEPT`] bytes.
fn keep_reported_text(
    mut store: wasmtime::StoreContextMut<'_, GuestState>,
    (slot, text): (u8, WasmStr),
) -> wasmtime::Result<()> {
    let kept = crate::text::cut_str(&text.to_str(&store)?, TEXT_KEPT);
    store.data_mut().keep_text(slot, kept)
}

fn spawn_epoch_ticker(engine: Engine, running: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("studentsim-epoch".into())
        .spawn(move || {
            while running.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}

/// One submission's store. Every call is bounded by the per-call limit and by what is left of the session's.
pub struct Session {
    store: Store<GuestState>,
    started: Instant,
    limits: Limits,
    cancel: Cancel,
}

impl Session {
    /// Run `f` (an instantiation or an export call) under the limits, classifying any failure.
    pub async fn call<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Store<GuestState>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        self.call_within(self.limits.per_call, f).await
    }

    /// [`Session::call`] with a tighter wall-clock limit for this call (never looser than the per-call one).
    pub async fn call_within<T>(
        &mut self,
        limit: Duration,
        f: impl AsyncFnOnce(&mut Store<GuestState>) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let left = self.limits.per_session.saturating_sub(self.started.elapsed());
        let budget = self.limits.per_call.min(limit).min(left);
        if self.cancel.is_cancelled() {
            return Err(Fault::Cancelled);
        }
        if budget.is_zero() {
            return Err(Fault::Timeout);
        }
        // The epoch callback runs every tick and interrupts the guest once this deadline has passed.
        self.store.data_mut().deadline = Instant::now() + budget;
        self.store.set_epoch_deadline(1);
        self.store.data_mut().reset_output();
        if let Some(fuel) = self.limits.fuel {
            self.store.set_fuel(fuel).expect("fuel is enabled");
        }
        // The timeout sits a tick past the epoch deadline so a computing guest is stopped by its trap; this
        // one, and the cancellation branch, only fire for a guest blocked in the host (a sleep).
        let cancel = self.cancel.clone();
        let result = tokio::select! {
            result = tokio::time::timeout(budget + 2 * EPOCH_TICK, f(&mut self.store)) => result,
            () = cancel.cancelled() => return Err(Fault::Cancelled),
        };
        match result {
            Err(_elapsed) => Err(Fault::Timeout),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(error)),
        }
    }

    /// What the guest wrote during the last call, at most [`Limits::output_bytes`] of each stream.
    pub fn take_output(&mut self) -> Output {
        self.store.data_mut().take_output()
    }

    fn classify(&self, error: wasmtime::Error) -> Fault {
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Fault::Exit(exit.0);
        }
        if self.store.data().memory_limit_hit() {
            return Fault::Memory;
        }
        if self.store.data().output_limit_hit() {
            return Fault::Output;
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) if self.store.data().cancelled => Fault::Cancelled,
            Some(Trap::Interrupt) => Fault::Timeout,
            Some(Trap::OutOfFuel) => Fault::Fuel,
            Some(Trap::StackOverflow) => Fault::StackOverflow,
            Some(trap) => Fault::Trap(trap.to_string()),
            None => Fault::Trap(format!("{error:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn every_limit_name_is_what_serde_writes_and_reads() {
        for limit in Limit::ALL {
            let json = serde_json::to_string(&limit).unwrap();
            assert_eq!(json, format!("\"{}\"", limit.name()), "serde's name for {limit:?}");
            assert_eq!(serde_json::from_str::<Limit>(&json).unwrap(), limit, "{json} reads back");
            assert_eq!(Limit::from_name(limit.name()), Some(limit), "from_name({})", limit.name());
        }
        assert_eq!(Limit::from_name("ValueError"), None, "an exception name is no limit");
    }
}

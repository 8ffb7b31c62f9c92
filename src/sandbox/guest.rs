//! What a guest instance can see of the host: a locked-down WASI context and a memory limiter.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::capture::Capture;
use rand::rngs::StdRng;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The guest's wall clock starts here: 2025-09-01T09:00:00Z, so `time.time()` is the same in every run.
const CLOCK_START: Duration = Duration::from_secs(1_756_717_200);
/// Every clock read advances virtual time by this much, so busy-waits on the clock end (deterministically).
const CLOCK_STEP: Duration = Duration::from_millis(1);
const RANDOM_SEED: u64 = 0x5eed_5747_d3e7;

pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stdout: Capture,
    stderr: Capture,
    /// What the guest handed over through `report-text` during the running call, each cut at [`TEXT_KEPT`].
    texts: [Option<String>; TEXT_SLOTS],
    /// When the running call must stop (the epoch callback compares it with the clock every tick).
    pub(super) deadline: Instant,
    /// The call was interrupted because its session was cancelled.
    pub(super) cancelled: bool,
}

/// How many texts a guest can hand over in one call (`report-text`'s slots).
pub const TEXT_SLOTS: usize = 4;
/// The most bytes of each handed-over text the host keeps (a longer one is cut, with a marker saying so). The host
/// reads the text in place in the guest's memory and copies only this much, so a guest-sized text costs the host
/// nothing beyond this.
pub const TEXT_KEPT: usize = 32 << 10;

/// What the guest wrote to its standard streams during one call (each cut at the cap), and the texts it handed
/// over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// A write went past the cap (and trapped the call).
    pub over: bool,
    /// What the guest handed over through `report-text`, by slot; what it means is the caller's business.
    pub texts: [Option<String>; TEXT_SLOTS],
}

impl GuestState {
    pub(super) fn new(memory_bytes: usize, output_bytes: usize) -> Self {
        let (stdout, stderr) = (Capture::new(output_bytes), Capture::new(output_bytes));
        // Defaults already give no preopens, no environment, no arguments and a closed stdin; spell out the rest.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(VirtualClock::default())
            .monotonic_clock(VirtualClock::default())
            .secure_random(StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random(StdRng::seed_from_u64(RANDOM_SEED + 1))
            .insecure_random_seed(u128::from(RANDOM_SEED))
            .build();
        let limiter = MemoryLimiter { max: memory_bytes, hit: false };
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            stdout,
            stderr,
            texts: Default::default(),
            deadline: Instant::now(),
            cancelled: false,
        }
    }

    pub(super) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    pub(super) fn memory_limit_hit(&self) -> bool {
        self.limiter.hit
    }

    pub(super) fn output_limit_hit(&self) -> bool {
        self.stdout.over() || self.stderr.over()
    }

    pub(super) fn reset_output(&mut self) {
        self.stdout.reset();
        self.stderr.reset();
        self.texts = Default::default();
    }

    pub(super) fn take_output(&mut self) -> Output {
        let ((stdout, out_over), (stderr, err_over)) = (self.stdout.take(), self.stderr.take());
        Output { stdout, stderr, over: out_over || err_over, texts: std::mem::take(&mut self.texts) }
    }

    /// Keep `text`, already cut to [`TEXT_KEPT`], in `slot`; an unknown slot traps the call.
    pub(super) fn keep_text(&mut self, slot: u8, text: String) -> wasmtime::Result<()> {
        let kept = self.texts.get_mut(usize::from(slot)).ok_or_else(|| wasmtime::format_err!("no text slot {slot}"))?;
        *kept = Some(text);
        Ok(())
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Refuses memory growth past `max` and remembers that it did, so a resulting trap reads as "memory".
struct MemoryLimiter {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max;
        self.hit |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// A clock that starts at a fixed instant and ticks one step per read.
#[derive(Default)]
struct VirtualClock {
    reads: Cell<u32>,
}

impl VirtualClock {
    fn tick(&self) -> Duration {
        let n = self.reads.get();
        self.reads.set(n.saturating_add(1));
        CLOCK_STEP * n
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        CLOCK_STEP
    }

    fn now(&self) -> Duration {
        CLOCK_START + self.tick()
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        CLOCK_STEP.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        self.tick().as_nanos() as u64
    }
}

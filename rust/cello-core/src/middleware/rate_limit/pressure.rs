//! Server pressure for the adaptive limit: the share of 5xx responses and
//! the mean handler latency over the last ten to twenty seconds, and the
//! machine's CPU load and memory use, read at most once a second.
//!
//! Each signal over its threshold pushes the limit from its capacity
//! toward its floor, in proportion to how far over it is; the strongest
//! signal wins. Each worker process measures the requests it serves.

use std::sync::Mutex;

use super::algorithms::MICROS;

/// How long one bucket of response statistics lasts; the last two count.
const STATS_PERIOD: u64 = 10 * MICROS;
/// Fewer responses than this say nothing about an error rate.
pub const MIN_SAMPLES: u64 = 10;

/// The thresholds; None turns a signal off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Share of 5xx responses, 0 to 1.
    pub error_rate: Option<f64>,
    /// Mean latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// One-minute load average per CPU, 0 to 1 (and beyond).
    pub cpu: Option<f64>,
    /// Share of memory in use, 0 to 1.
    pub memory: Option<f64>,
}

/// Where CPU and memory readings come from (the system, or a test).
pub trait SystemLoad: Send + Sync {
    /// One-minute load average divided by the CPU count.
    fn cpu(&self) -> Option<f64>;
    /// Share of memory in use.
    fn memory(&self) -> Option<f64>;
}

/// Readings from `/proc` (Linux); elsewhere there are none.
pub struct ProcLoad;

impl SystemLoad for ProcLoad {
    fn cpu(&self) -> Option<f64> {
        let text = std::fs::read_to_string("/proc/loadavg").ok()?;
        let load: f64 = text.split_whitespace().next()?.parse().ok()?;
        let cpus = std::thread::available_parallelism().ok()?.get() as f64;
        Some(load / cpus)
    }

    fn memory(&self) -> Option<f64> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = text.lines().find(|l| l.starts_with(name))?;
            line[name.len()..].split_whitespace().next()?.parse().ok()
        };
        let total = field("MemTotal:")?;
        let available = field("MemAvailable:")?;
        (total > 0.0).then(|| 1.0 - available / total)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Period {
    id: u64,
    responses: u64,
    errors: u64,
    latency_micros: u64,
}

#[derive(Debug, Default)]
struct Readings {
    /// When CPU and memory were last read (0: never).
    read_at: u64,
    cpu: Option<f64>,
    memory: Option<f64>,
}

pub struct Pressure {
    thresholds: Thresholds,
    load: Box<dyn SystemLoad>,
    periods: Mutex<[Period; 2]>,
    readings: Mutex<Readings>,
}

impl Pressure {
    pub fn new(thresholds: Thresholds, load: Box<dyn SystemLoad>) -> Self {
        Pressure {
            thresholds,
            load,
            periods: Mutex::new([Period::default(); 2]),
            readings: Mutex::new(Readings::default()),
        }
    }

    /// Records one response the limit let through.
    pub fn observe(&self, status: u16, latency_micros: u64, now: u64) {
        let id = now / STATS_PERIOD + 1;
        let mut periods = self.periods.lock().unwrap_or_else(|p| p.into_inner());
        if periods[1].id != id {
            periods[0] = if periods[1].id + 1 == id {
                periods[1]
            } else {
                Period::default()
            };
            periods[1] = Period {
                id,
                ..Period::default()
            };
        }
        let period = &mut periods[1];
        period.responses += 1;
        period.errors += u64::from(status >= 500);
        period.latency_micros = period.latency_micros.saturating_add(latency_micros);
    }

    /// The share of 5xx and the mean latency in ms over the last two
    /// periods, once there are enough responses to tell.
    fn response_stats(&self, now: u64) -> Option<(f64, f64)> {
        let id = now / STATS_PERIOD + 1;
        let periods = self.periods.lock().unwrap_or_else(|p| p.into_inner());
        let (mut responses, mut errors, mut latency) = (0, 0, 0);
        for period in periods.iter().filter(|p| p.id + 1 >= id && p.id <= id) {
            responses += period.responses;
            errors += period.errors;
            latency += period.latency_micros;
        }
        (responses >= MIN_SAMPLES).then(|| {
            (
                errors as f64 / responses as f64,
                latency as f64 / responses as f64 / 1000.0,
            )
        })
    }

    fn system(&self, now: u64) -> (Option<f64>, Option<f64>) {
        if self.thresholds.cpu.is_none() && self.thresholds.memory.is_none() {
            return (None, None);
        }
        let mut readings = self.readings.lock().unwrap_or_else(|p| p.into_inner());
        if readings.read_at == 0 || now.saturating_sub(readings.read_at) >= MICROS {
            readings.read_at = now.max(1);
            readings.cpu = self.thresholds.cpu.and_then(|_| self.load.cpu());
            readings.memory = self.thresholds.memory.and_then(|_| self.load.memory());
        }
        (readings.cpu, readings.memory)
    }

    /// From 0 (no pressure) to 1 (every bit of slack gone).
    pub fn level(&self, now: u64) -> f64 {
        let over_share = |value: f64, threshold: f64| {
            if value <= threshold {
                0.0
            } else if threshold >= 1.0 {
                1.0
            } else {
                ((value - threshold) / (1.0 - threshold)).min(1.0)
            }
        };
        let mut level: f64 = 0.0;
        if let Some((error_rate, latency_ms)) = self.response_stats(now) {
            if let Some(threshold) = self.thresholds.error_rate {
                level = level.max(over_share(error_rate, threshold));
            }
            if let Some(threshold) = self.thresholds.latency_ms {
                if latency_ms > threshold {
                    // Twice the threshold is full pressure.
                    level = level.max(((latency_ms - threshold) / threshold.max(1.0)).min(1.0));
                }
            }
        }
        let (cpu, memory) = self.system(now);
        if let (Some(value), Some(threshold)) = (cpu, self.thresholds.cpu) {
            level = level.max(over_share(value, threshold));
        }
        if let (Some(value), Some(threshold)) = (memory, self.thresholds.memory) {
            level = level.max(over_share(value, threshold));
        }
        level
    }

    /// The limit between `capacity` (no pressure) and `floor` (full pressure).
    pub fn capacity(&self, capacity: u64, floor: u64, now: u64) -> u64 {
        let floor = floor.clamp(1, capacity.max(1));
        let slack = (capacity - floor) as f64;
        capacity - (slack * self.level(now)).round() as u64
    }
}

impl std::fmt::Debug for Pressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pressure")
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

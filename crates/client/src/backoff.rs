//! The reconnection delay: the official client's exponential backoff with jitter, computed with
//! saturating arithmetic.
//!
//! For the `n`-th delay of one reconnection loop (`n` counted from 0):
//!
//! ```text
//! base  = delay · 2ⁿ
//! r     = uniform in [0, 1)
//! dev   = floor(r · factor · base)
//! value = base − dev  if floor(10·r) is even,  base + dev  otherwise
//! delay = min(value, max)
//! ```
//!
//! That is what socket.io-client 4.x computes (`randomizationFactor` outside `(0, 1]` turns
//! the jitter off). Unlike JavaScript, nothing here overflows: `2ⁿ` saturates, so after any
//! number of failures every delay stays in `[delay · (1 − factor), max]`, never zero and never
//! negative (JavaScript's delay becomes `NaN | 0 = 0` after about 1015 failures).
//!
//! With the defaults (1 s, 5 s, 0.5) the delays are about 0.5–1.5 s, 1–3 s, 2–5 s, then 5 s.
//! [`Backoff::jitter_after_cap`] keeps capped delays spread over `[max · (1 − factor), max]`
//! so that many clients do not retry in lockstep once they all reach the cap.

use std::time::Duration;

/// A small, seedable pseudo-random generator (SplitMix64) for the jitter.
///
/// Not cryptographic: it only spreads reconnections over time. Seed it with
/// [`ManagerBuilder::reconnection_seed`](crate::ManagerBuilder::reconnection_seed) for
/// reproducible tests.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed.
    pub fn seeded(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded from the operating system (or the clock if that fails).
    pub fn from_entropy() -> Self {
        let mut buf = [0u8; 8];
        let seed = match getrandom::fill(&mut buf) {
            Ok(()) => u64::from_le_bytes(buf),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9e37_79b9_7f4a_7c15),
        };
        Self::seeded(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // 53 random bits: every value is exactly representable, and 1.0 is never reached.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The reconnection backoff of one manager; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    factor: f64,
    jitter_after_cap: bool,
    attempts: u32,
    rng: Rng,
}

/// The shortest delay a backoff accepts: a zero delay would spin.
const FLOOR: Duration = Duration::from_millis(1);

impl Backoff {
    /// A backoff from `min` growing by 2 up to `max`, with `factor` jitter (used only when it
    /// is in `(0, 1]`, as in JavaScript). `min` is at least 1 ms; `max` at least `min`.
    pub fn new(min: Duration, max: Duration, factor: f64, rng: Rng) -> Self {
        let min = min.max(FLOOR);
        Self {
            min,
            max: max.max(min),
            factor: if factor > 0.0 && factor <= 1.0 {
                factor
            } else {
                0.0
            },
            jitter_after_cap: false,
            attempts: 0,
            rng,
        }
    }

    /// Keeps jitter on delays that reached the cap: they spread over `[max · (1 − factor),
    /// max]` instead of all being exactly `max` (a departure from JavaScript, off by default).
    pub fn jitter_after_cap(mut self, yes: bool) -> Self {
        self.jitter_after_cap = yes;
        self
    }

    /// How many delays were computed since the last [`reset`](Self::reset): the number of the
    /// reconnection attempt the last delay was for.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from the shortest delay (after a successful connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The next delay. Never zero, never more than the maximum, whatever the number of calls.
    pub fn duration(&mut self) -> Duration {
        let n = self.attempts;
        self.attempts = self.attempts.saturating_add(1);
        let min_ms = self.min.as_secs_f64() * 1000.0;
        let max_ms = self.max.as_secs_f64() * 1000.0;
        // 2ⁿ saturates: past 2¹⁰²³ f64 would be infinite, and the cap is reached long before.
        let base = min_ms * 2f64.powi(n.min(1000) as i32);
        let mut value = base;
        if self.factor > 0.0 {
            let r = self.rng.next_f64();
            let dev = (r * self.factor * base).floor();
            if ((r * 10.0).floor() as u64) % 2 == 0 {
                value -= dev;
            } else {
                value += dev;
            }
            if value >= max_ms && self.jitter_after_cap {
                // Spread capped delays below the cap instead of all landing on it.
                value = max_ms - (r * self.factor * max_ms).floor();
            }
        }
        let value = value.clamp(0.0, max_ms);
        Duration::try_from_secs_f64(value / 1000.0)
            .unwrap_or(self.max)
            .clamp(FLOOR, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn rng_is_uniform_enough_and_reproducible() {
        let mut a = Rng::seeded(7);
        let mut b = Rng::seeded(7);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
    }

    #[test]
    fn defaults_match_the_official_ranges() {
        // Measured ranges of socket.io-client 4.8 (research/client.md §3).
        let ranges = [
            (550.0, 1500.0),
            (1100.0, 3000.0),
            (2200.0, 5000.0),
            (4400.0, 5000.0),
        ];
        for seed in 0..500 {
            let mut b = Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(5),
                0.5,
                Rng::seeded(seed),
            );
            for (lo, hi) in ranges {
                let d = ms(b.duration());
                assert!(d >= lo && d <= hi, "{d} not in [{lo}, {hi}]");
            }
            for _ in 0..10 {
                assert_eq!(b.duration(), Duration::from_secs(5));
            }
        }
    }
}

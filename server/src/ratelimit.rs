//! Per-IP request rate limiting (beyond Redis; from the seed stores): at most `limit`
//! requests per `window` from one address. A client over its budget gets an error reply
//! instead of service and keeps its connection.
//!
//! The budget is a sliding window approximated from two fixed windows: the count of the
//! current window plus the previous window's count weighted by how much of it still
//! overlaps. That avoids the double burst a plain fixed window allows at its boundary, and
//! needs two counters per address. Off (the default), a command costs one relaxed load.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sync::Mutex;

/// The reply to a request over the budget.
pub const RATE_LIMITED: &str = "RATELIMIT too many requests from this address, try again later";

/// Addresses not seen for this many windows are forgotten (the table stays bounded by the
/// addresses active recently).
const FORGET_AFTER_WINDOWS: u64 = 2;

/// One address's two windows.
#[derive(Debug, Default)]
struct Window {
    /// Index of the current fixed window (`now / window`).
    index: u64,
    current: u64,
    previous: u64,
}

/// Budget of one address, shared by its connections.
#[derive(Debug, Default)]
pub struct Budget {
    window: Mutex<Window>,
}

/// The limiter: settings and the per-address budgets.
pub struct RateLimiter {
    enabled: AtomicBool,
    limit: AtomicU64,
    window_ms: AtomicU64,
    exempt_loopback: AtomicBool,
    budgets: Mutex<HashMap<IpAddr, Arc<Budget>>>,
    /// Requests refused since start (INFO `rate_limited_requests`).
    refused: AtomicU64,
    /// When the table was last swept of idle addresses (window index).
    swept: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `limit` requests per `window_ms` per address (0: off).
    pub fn new(limit: u64, window_ms: u64, exempt_loopback: bool) -> RateLimiter {
        let limiter = RateLimiter {
            enabled: AtomicBool::new(false),
            limit: AtomicU64::new(0),
            window_ms: AtomicU64::new(1),
            exempt_loopback: AtomicBool::new(exempt_loopback),
            budgets: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            swept: AtomicU64::new(0),
        };
        limiter.configure(limit, window_ms);
        limiter
    }

    /// Changes the budget (CONFIG SET rate-limit / rate-window); 0 turns limiting off.
    pub fn configure(&self, limit: u64, window_ms: u64) {
        self.limit.store(limit, Ordering::Relaxed);
        self.window_ms.store(window_ms.max(1), Ordering::Relaxed);
        self.enabled.store(limit > 0, Ordering::Relaxed);
    }

    /// Whether loopback clients are exempt.
    pub fn set_exempt_loopback(&self, exempt: bool) {
        self.exempt_loopback.store(exempt, Ordering::Relaxed);
    }

    /// Current settings: (limit, window in ms, loopback exempt).
    pub fn settings(&self) -> (u64, u64, bool) {
        (
            self.limit.load(Ordering::Relaxed),
            self.window_ms.load(Ordering::Relaxed),
            self.exempt_loopback.load(Ordering::Relaxed),
        )
    }

    /// True if limiting is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Requests refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The budget of `ip`, or `None` if it is exempt.
    pub fn budget_for(&self, ip: IpAddr) -> Option<Arc<Budget>> {
        if ip.is_loopback() && self.exempt_loopback.load(Ordering::Relaxed) {
            return None;
        }
        let mut budgets = self.budgets.lock();
        Some(Arc::clone(budgets.entry(ip).or_default()))
    }

    /// Counts one request against `budget` at `now_ms`; false if it is over the limit (the
    /// refusal is counted, and does not use up budget).
    pub fn admit(&self, budget: &Budget, now_ms: u64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            return true;
        }
        let window_ms = self.window_ms.load(Ordering::Relaxed);
        let index = now_ms / window_ms;
        let admitted = {
            let mut window = budget.window.lock();
            if window.index != index {
                window.previous = if window.index + 1 == index {
                    window.current
                } else {
                    0
                };
                window.current = 0;
                window.index = index;
            }
            // The part of the previous window that still lies within the last `window_ms`.
            let elapsed = now_ms % window_ms;
            let overlap = window.previous * (window_ms - elapsed) / window_ms;
            if window.current + overlap < limit {
                window.current += 1;
                true
            } else {
                false
            }
        };
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.sweep(index);
        admitted
    }

    /// Drops addresses idle for a while, at most once per window.
    fn sweep(&self, index: u64) {
        let swept = self.swept.load(Ordering::Relaxed);
        if swept >= index
            || self
                .swept
                .compare_exchange(swept, index, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.budgets.lock().retain(|_, budget| {
            // Still used by a connection, or active recently.
            Arc::strong_count(budget) > 1
                || budget.window.lock().index + FORGET_AFTER_WINDOWS > index
        });
    }

    /// Addresses tracked now (tests).
    pub fn tracked(&self) -> usize {
        self.budgets.lock().len()
    }
}

/// Parses a duration as the seed stores wrote it: `500ms`, `30s`, `1m`, `2h`, or plain
/// milliseconds.
pub fn parse_window(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration '{text}': use 500ms, 30s, 1m or 2h"))?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "invalid duration '{text}': use 500ms, 30s, 1m or 2h"
            ))
        }
    };
    number
        .checked_mul(scale)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| format!("invalid duration '{text}': must be positive"))
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refills_as_the_window_slides() {
        let limiter = RateLimiter::new(10, 1000, false);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let budget = limiter.budget_for(ip).expect("not exempt");
        let admitted = (0..15).filter(|_| limiter.admit(&budget, 5_000)).count();
        assert_eq!(admitted, 10);
        assert_eq!(limiter.refused(), 5);
        // Half a window later, half of the previous window still counts.
        let admitted = (0..15).filter(|_| limiter.admit(&budget, 6_500)).count();
        assert_eq!(admitted, 5);
        // Two windows later, the whole budget again.
        let admitted = (0..15).filter(|_| limiter.admit(&budget, 9_000)).count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn loopback_is_exempt_only_when_asked_and_idle_addresses_are_forgotten() {
        let limiter = RateLimiter::new(1, 1000, true);
        assert!(limiter
            .budget_for("127.0.0.1".parse().expect("ip"))
            .is_none());
        limiter.set_exempt_loopback(false);
        assert!(limiter.budget_for("::1".parse().expect("ip")).is_some());
        let budget = limiter
            .budget_for("10.0.0.2".parse().expect("ip"))
            .expect("budget");
        assert!(limiter.admit(&budget, 1_000));
        drop(budget);
        assert_eq!(limiter.tracked(), 2);
        let other = limiter
            .budget_for("10.0.0.3".parse().expect("ip"))
            .expect("budget");
        assert!(limiter.admit(&other, 10_000));
        assert_eq!(
            limiter.tracked(),
            1,
            "idle addresses dropped, the one in use kept"
        );
    }

    #[test]
    fn windows_parse_as_the_seed_wrote_them() {
        assert_eq!(parse_window("1m"), Ok(60_000));
        assert_eq!(parse_window("30s"), Ok(30_000));
        assert_eq!(parse_window("250ms"), Ok(250));
        assert_eq!(parse_window("2h"), Ok(7_200_000));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("1d").is_err());
        assert!(parse_window("x").is_err());
    }
}

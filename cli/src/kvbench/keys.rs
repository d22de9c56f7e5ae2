//! Key choice: a small fast PRNG, the uniform and Zipf key distributions, and writing a key
//! number as the 12 zero-padded digits of `key:NNNNNNNNNNNN` in place.
//!
//! Everything here runs once per key per request on the hot path, so nothing allocates and a
//! Zipf draw costs O(1) whatever the keyspace (rejection-inversion, no table of weights).

/// Digits in a key number: keys are `key:NNNNNNNNNNNN`, like redis-benchmark's `-r`.
pub const KEY_DIGITS: usize = 12;

/// Keyspace limit: key numbers must fit in [`KEY_DIGITS`] decimal digits.
pub const MAX_KEYSPACE: u64 = 1_000_000_000_000;

/// wyrand: a 64-bit PRNG with a single word of state, fast and good enough to pick keys
/// (not for anything that needs unpredictability).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        // Folding the 128-bit product: truncation to the low half is the point.
        ((t >> 64) ^ t) as u64
    }

    /// A number in `0..n` (`n > 0`), by a widening multiply (Lemire); the bias, at most
    /// `n / 2^64`, is far below anything a benchmark could notice.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The seed of connection `index`'s generator: `seed` and `index` mixed by SplitMix64's
/// finaliser, so neighbouring connections get unrelated sequences.
pub fn seed_for(seed: u64, index: usize) -> u64 {
    let mut z = seed.wrapping_add(
        (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How key numbers are drawn from `0..keyspace`.
#[derive(Debug, Clone)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform {
        /// Number of keys.
        keyspace: u64,
    },
    /// Key `k` (0-based) drawn with probability proportional to `1 / (k + 1)^s`: key 0 is the
    /// hottest.
    Zipf(Zipf),
}

impl KeyDist {
    /// The number of keys drawn from.
    pub fn keyspace(&self) -> u64 {
        match self {
            Self::Uniform { keyspace } => *keyspace,
            Self::Zipf(zipf) => zipf.n,
        }
    }

    /// Draws a key number in `0..keyspace`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            Self::Uniform { keyspace } => rng.below(*keyspace),
            Self::Zipf(zipf) => zipf.sample(rng) - 1,
        }
    }
}

/// Zipf sampler over `1..=n` with exponent `s > 0`, by rejection-inversion (W. Hörmann and
/// G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
/// distributions", 1996), as in Apache Commons RNG's `RejectionInversionZipfSampler`: O(1)
/// set-up and O(1) expected time per draw, for any `n` and any `s` (including 1).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// A sampler over `1..=n`; `None` unless `n >= 1` and `exponent` is finite and positive.
    pub fn new(n: u64, exponent: f64) -> Option<Self> {
        if n == 0 || !exponent.is_finite() || exponent <= 0.0 {
            return None;
        }
        let mut zipf = Self {
            n,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(n as f64 + 0.5);
        zipf.threshold = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        Some(zipf)
    }

    /// Draws a rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            // Float to int casts saturate; the clamp keeps the rank in range whatever the
            // rounding at the ends.
            let k = ((x + 0.5) as u64).clamp(1, self.n);
            let kf = k as f64;
            if kf - x <= self.threshold || u >= self.h_integral(kf + 0.5) - self.h(kf) {
                return k;
            }
        }
    }

    /// `h(x) = 1 / x^s`, the unnormalised probability of rank `x`.
    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// An antiderivative of `h`: `(x^(1-s) - 1) / (1 - s)`, or `ln x` when `s = 1`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    /// The inverse of [`Zipf::h_integral`].
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// Writes `n` as zero-padded decimal digits filling `out` (its low digits if `n` is larger).
pub fn write_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        // `n % 10` is one digit, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_written_in_place() {
        let mut key = *b"key:000000000000\r\n";
        write_digits(&mut key[4..4 + KEY_DIGITS], 42);
        assert_eq!(&key, b"key:000000000042\r\n");
        write_digits(&mut key[4..4 + KEY_DIGITS], MAX_KEYSPACE - 1);
        assert_eq!(&key, b"key:999999999999\r\n");
        write_digits(&mut key[4..4 + KEY_DIGITS], 0);
        assert_eq!(&key, b"key:000000000000\r\n");
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(7);
        let dist = KeyDist::Uniform { keyspace: 10 };
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let k = dist.sample(&mut rng);
            seen[usize::try_from(k).unwrap_or(usize::MAX)] += 1;
        }
        // Each bucket expects 1000; 5 sigma is about 150.
        assert!(seen.iter().all(|&c| (850..=1150).contains(&c)), "{seen:?}");
    }

    #[test]
    fn rng_is_deterministic() {
        let a: Vec<u64> = (0..4)
            .scan(Rng::new(1), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(Rng::new(1), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        let mut rng = Rng::new(3);
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.unit())));
    }

    /// Empirical frequencies of the first ranks match `1 / (k^s H(n, s))`.
    fn check_zipf(n: u64, s: f64) {
        const DRAWS: u32 = 200_000;
        let zipf = Zipf::new(n, s).expect("valid parameters");
        let mut rng = Rng::new(0x5eed);
        let mut counts = vec![0u32; usize::try_from(n).unwrap_or(0)];
        for _ in 0..DRAWS {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} out of 1..={n}");
            counts[usize::try_from(k - 1).unwrap_or(0)] += 1;
        }
        let harmonic: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        for k in 1..=5u32 {
            let expected = f64::from(DRAWS) * f64::from(k).powf(-s) / harmonic;
            let got = f64::from(counts[k as usize - 1]);
            let sigma = expected.sqrt();
            assert!(
                (got - expected).abs() < 6.0 * sigma,
                "n={n} s={s} rank {k}: {got} draws, expected {expected:.0}"
            );
        }
        // Monotone on average: the first rank beats the tenth by about 10^s.
        assert!(counts[0] > counts[9] * 5, "{:?}", &counts[..10]);
    }

    #[test]
    fn zipf_matches_its_distribution() {
        check_zipf(1000, 0.99);
        check_zipf(1000, 1.0);
        check_zipf(100, 1.5);
    }

    #[test]
    fn zipf_edges() {
        assert!(Zipf::new(0, 1.0).is_none());
        assert!(Zipf::new(10, 0.0).is_none());
        assert!(Zipf::new(10, f64::NAN).is_none());
        let one = Zipf::new(1, 0.99).expect("valid");
        let mut rng = Rng::new(1);
        assert!((0..100).all(|_| one.sample(&mut rng) == 1));
        let huge = KeyDist::Zipf(Zipf::new(MAX_KEYSPACE, 0.99).expect("valid"));
        assert!((0..1000).all(|_| huge.sample(&mut rng) < MAX_KEYSPACE));
    }
}

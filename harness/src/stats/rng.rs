//! The harness's one pseudo-random generator: splitmix64 (Steele, Lea & Flood 2014).
//!
//! Tiny, fast, good enough for shuffles and simulation, and ours, so a stream never changes under
//! us with a dependency update: the same seed gives the same numbers on every machine, which makes
//! Monte Carlo tests replayable and the reference workload's inputs identical across builds. Not
//! for anything that must be unpredictable.

/// A splitmix64 generator; the state is the seed advanced by a fixed odd constant per draw.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed` (any value, zero included).
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n >= 1`). Modulo reduction: the bias, below `n / 2^64`, is far under
    /// anything a shuffle of a few scenarios or a simulation could notice.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n >= 1, "below(0) has no value to return");
        self.next_u64() % n.max(1)
    }

    /// Uniform in the open interval (0, 1): 53 random bits, offset by half a step so that
    /// neither 0 nor 1 occurs (the logarithm of a draw is always finite).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller, one of the pair): for simulations in tests.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_splitmix64_known_values() {
        // The reference implementation's first outputs for seed 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn stats_splitmix64_shuffle_is_a_permutation_and_uniform_stays_open() {
        let mut r = SplitMix64::new(7);
        let mut v: Vec<u32> = (0..50).collect();
        r.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(v, sorted, "50 elements left in order by chance: 1 in 50!");
        for _ in 0..10_000 {
            let u = r.uniform();
            assert!(u > 0.0 && u < 1.0);
        }
    }
}

//! A tiny deterministic random number generator (xorshift32) for the
//! motion tests' noise and corruptions, so they need no extra crate.

/// xorshift32 from a seed (not 0).
pub(crate) struct Rng(pub(crate) u32);

impl Rng {
    /// The next number.
    pub(crate) fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// Uniform in -r..=r.
    pub(crate) fn pm(&mut self, r: i32) -> i32 {
        (self.next() % (2 * r as u32 + 1)) as i32 - r
    }
}

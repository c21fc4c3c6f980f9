//! Load generator for scripts/bench (placeholder until the bench lands).
fn main() {}

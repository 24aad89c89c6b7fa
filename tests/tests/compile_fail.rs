//! What a user who forgets a runtime piece is told: each program under
//! `tests/ui/` must fail to compile with the message next to it, which names
//! the missing piece and says what to do.
//!
//! The expected messages come from the stable compiler the test command
//! uses; `TRYBUILD=overwrite cargo test -p stormguard-tests --test
//! compile_fail` rewrites them after a compiler upgrade (read the diff).

#[test]
fn a_missing_sleeper_or_clock_says_what_to_do() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/missing_sleeper.rs");
    t.compile_fail("ui/missing_clock.rs");
}

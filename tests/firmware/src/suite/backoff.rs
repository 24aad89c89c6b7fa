//! Backoff schedules: the same seed gives the same delays, to the
//! nanosecond, on the chip and on the host.
//!
//! The tables were computed on x86-64; the host runs this same module
//! (`tests/tests/firmware_suite.rs`), so a table that stopped matching one
//! side fails there too. On the Cortex-M0 the arithmetic behind them — the
//! 96.32 fixed-point factor, the u128 products, wyrand's 64×64→128 multiply
//! and the range reduction of a uniform draw — runs in software.

use core::time::Duration;

use stormguard::{Backoff, Jitter, Random};

use super::Checks;

const MS: Duration = Duration::from_millis(1);

/// A backoff from constant settings (checked when the crate compiles).
const fn build(builder: stormguard::BackoffBuilder) -> Backoff {
    match builder.build() {
        Ok(backoff) => backoff,
        Err(_) => panic!("invalid backoff"),
    }
}

/// Exponential from 100 ms, doubling, capped at 5 s, with `jitter`.
const fn doubling(jitter: Jitter) -> Backoff {
    build(
        Backoff::exponential(Duration::from_millis(100), 2.0)
            .max_delay(Duration::from_secs(5))
            .jitter(jitter),
    )
}

/// One schedule: a backoff, a seed, and the first eight delays it gives, in
/// nanoseconds.
pub struct Schedule {
    /// What the row is.
    pub name: &'static str,
    /// The backoff.
    pub backoff: Backoff,
    /// The seed of its generator.
    pub seed: u64,
    /// `backoff.delays(Random::with_seed(seed)).take(8)`, in nanoseconds.
    pub nanos: [u64; 8],
}

/// Every jitter on the doubling schedule, plus the other shapes and a
/// non-binary factor.
pub const SCHEDULES: &[Schedule] = &[
    Schedule {
        name: "exponential, no jitter",
        backoff: doubling(Jitter::None),
        seed: 7,
        nanos: [
            100_000_000,
            200_000_000,
            400_000_000,
            800_000_000,
            1_600_000_000,
            3_200_000_000,
            5_000_000_000,
            5_000_000_000,
        ],
    },
    Schedule {
        name: "exponential, full jitter",
        backoff: doubling(Jitter::Full),
        seed: 7,
        nanos: [
            77_338_181,
            44_497_195,
            287_316_164,
            384_901_524,
            186_368_945,
            529_717_956,
            3_958_147_606,
            462_754_591,
        ],
    },
    Schedule {
        name: "exponential, equal jitter",
        backoff: doubling(Jitter::Equal),
        seed: 7,
        nanos: [
            88_669_090,
            122_248_597,
            343_658_082,
            592_450_762,
            893_184_472,
            1_864_858_978,
            4_479_073_803,
            2_731_377_295,
        ],
    },
    Schedule {
        name: "exponential, decorrelated jitter",
        backoff: doubling(Jitter::Decorrelated),
        seed: 7,
        nanos: [
            254_676_361,
            247_737_159,
            562_012_635,
            863_085_509,
            389_950_071,
            277_099_646,
            678_917_828,
            279_248_313,
        ],
    },
    Schedule {
        name: "exponential, gRPC A6 jitter (x U(0.8, 1.2))",
        backoff: doubling(Jitter::GRPC),
        seed: 7,
        nanos: [
            110_935_272,
            177_798_878,
            434_926_466,
            793_960_610,
            1_354_547_578,
            2_771_887_182,
            5_000_000_000,
            4_185_101_836,
        ],
    },
    Schedule {
        name: "exponential, proportional jitter 1000 per mille",
        backoff: doubling(Jitter::Proportional(1000)),
        seed: 0xdead_beef,
        nanos: [
            125_497_811,
            350_802_332,
            594_903_766,
            921_499_300,
            1_470_228_743,
            1_871_335_993,
            1_910_042_117,
            935_892_447,
        ],
    },
    Schedule {
        name: "exponential x1.6, full jitter, another seed",
        backoff: build(
            Backoff::exponential(Duration::from_millis(3), 1.6)
                .max_delay(Duration::from_millis(90))
                .jitter(Jitter::Full),
        ),
        seed: u64::MAX,
        nanos: [
            196_018, 607_010, 4_795_654, 2_300_523, 11_895_966, 17_732_662, 8_732_413, 68_877_492,
        ],
    },
    Schedule {
        name: "linear 10 ms + 25 ms, equal jitter",
        backoff: build(
            Backoff::linear(Duration::from_millis(10), Duration::from_millis(25))
                .max_delay(Duration::from_millis(120))
                .jitter(Jitter::Equal),
        ),
        seed: 42,
        nanos: [
            8_953_999,
            26_137_754,
            54_133_762,
            44_196_567,
            84_810_140,
            87_349_242,
            113_730_020,
            83_307_680,
        ],
    },
    Schedule {
        name: "constant 250 ms, decorrelated jitter",
        backoff: build(
            Backoff::constant(Duration::from_millis(250))
                .max_delay(Duration::from_secs(2))
                .jitter(Jitter::Decorrelated),
        ),
        seed: 0,
        nanos: [
            551_313_804,
            256_948_522,
            299_354_846,
            447_082_467,
            326_949_206,
            471_387_665,
            1_019_428_929,
            1_200_699_708,
        ],
    },
];

/// Every row of [`SCHEDULES`], computed here.
pub fn schedules_for_every_jitter(c: &mut Checks<'_>) {
    for schedule in SCHEDULES {
        let mut got = [0u64; 8];
        let delays = schedule.backoff.delays(Random::with_seed(schedule.seed));
        for (slot, delay) in got.iter_mut().zip(delays) {
            *slot = delay.as_nanos() as u64;
        }
        check!(c, got == schedule.nanos, "{}: got {:?}", schedule.name, got);
        // Never above the cap, jitter included.
        let cap = schedule.backoff.max_delay().as_nanos() as u64;
        check!(c, got.iter().all(|&d| d <= cap), "{}", schedule.name);
    }
    // Full jitter is uniform in [0, d]: over many draws of retry 3 (nominal
    // 800 ms) the mean is near 400 ms. 1000 draws of the chip's generator.
    let backoff = doubling(Jitter::Full);
    let mut rng = Random::with_seed(1);
    let mut sum: u64 = 0;
    for _ in 0..1000 {
        sum += backoff.delay(3, Duration::ZERO, &mut rng).as_nanos() as u64;
    }
    let mean_ms = sum / 1000 / 1_000_000;
    check!(c, (360..=440).contains(&mean_ms), "mean {mean_ms} ms");
}

/// Retry numbers no call reaches, and the largest factor: capped, no
/// overflow (the firmware runs with overflow checks on), no panic.
pub fn extreme_retry_numbers(c: &mut Checks<'_>) {
    let backoff = doubling(Jitter::None);
    let mut rng = Random::with_seed(3);
    for n in [31, 32, 63, 64, 65, 1000, u32::MAX - 1, u32::MAX] {
        check_eq!(
            c,
            backoff.delay(n, Duration::ZERO, &mut rng),
            Duration::from_secs(5)
        );
    }
    check_eq!(c, backoff.nominal(0), MS * 100);
    check_eq!(c, backoff.nominal(5), MS * 3200);

    let huge = build(
        Backoff::exponential(Duration::from_secs(1), 1e9)
            .max_delay(Duration::from_secs(u64::MAX))
            .jitter(Jitter::Decorrelated),
    );
    let mut prev = Duration::ZERO;
    for n in [0, 1, 2, 3, u32::MAX] {
        let d = huge.delay(n, prev, &mut rng);
        check!(c, d >= Duration::from_secs(1) && d <= huge.max_delay());
        prev = d;
    }
    // A previous delay of the largest duration: 3·prev saturates.
    let d = huge.delay(7, Duration::MAX, &mut rng);
    check!(c, d <= huge.max_delay());

    let proportional = build(
        Backoff::exponential(Duration::from_nanos(1), 10.0)
            .max_delay(Duration::from_secs(u64::MAX))
            .jitter(Jitter::Proportional(1000)),
    );
    for n in [0, 10, 19, 20, 21, u32::MAX] {
        let d = proportional.delay(n, Duration::ZERO, &mut rng);
        check!(c, d <= proportional.max_delay());
    }
}

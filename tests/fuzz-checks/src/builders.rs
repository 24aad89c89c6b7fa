//! Every builder from arbitrary numbers: `Ok` exactly when the documented
//! rules allow it, a `ConfigError` naming a field otherwise, and a built
//! value that keeps its promises.

use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use stormguard::{
    AdaptiveThrottle, Backoff, BackoffBuilder, Budget, CircuitBreaker, ConfigError, CostBucket,
    DecisionOrder, Failure, FailureClass, HedgingPolicy, Instant, Jitter, Random, RateBudget,
    RetryBudget, RetryPolicy, Throttle,
};

use crate::arbitrary_values::{idempotency, Count, Float, Span};

/// A backoff's settings.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct BackoffSpec {
    shape: ShapeSpec,
    max_delay: Option<Span>,
    jitter: Option<JitterSpec>,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum ShapeSpec {
    Constant(Span),
    Linear(Span, Span),
    Exponential(Span, Float),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum JitterSpec {
    None,
    Full,
    Equal,
    Decorrelated,
    Proportional(u16),
}

impl JitterSpec {
    fn jitter(self) -> Jitter {
        match self {
            JitterSpec::None => Jitter::None,
            JitterSpec::Full => Jitter::Full,
            JitterSpec::Equal => Jitter::Equal,
            JitterSpec::Decorrelated => Jitter::Decorrelated,
            JitterSpec::Proportional(p) => Jitter::Proportional(p),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl BackoffSpec {
    pub(crate) fn builder(self) -> BackoffBuilder {
        let mut builder = match self.shape {
            ShapeSpec::Constant(Span(d)) => Backoff::constant(d),
            ShapeSpec::Linear(Span(base), Span(step)) => Backoff::linear(base, step),
            ShapeSpec::Exponential(Span(base), Float(factor)) => Backoff::exponential(base, factor),
        };
        if let Some(Span(max)) = self.max_delay {
            builder = builder.max_delay(max);
        }
        if let Some(jitter) = self.jitter {
            builder = builder.jitter(jitter.jitter());
        }
        builder
    }

    /// The field `build()` must name, or `None` when the settings are
    /// valid, from the rules in `BackoffBuilder::build`'s docs.
    fn expected_error(self) -> Option<&'static str> {
        let (base, default_jitter) = match self.shape {
            ShapeSpec::Constant(Span(d)) => (nanos(d), Jitter::None),
            ShapeSpec::Linear(Span(base), _) => (nanos(base), Jitter::None),
            ShapeSpec::Exponential(Span(base), Float(factor)) => {
                if !factor.is_finite() || factor <= 0.0 {
                    return Some("backoff.factor");
                }
                if base == Duration::ZERO {
                    return Some("backoff.base");
                }
                (nanos(base), Jitter::Full)
            }
        };
        let jitter = self.jitter.map_or(default_jitter, JitterSpec::jitter);
        if base == 0 && jitter == Jitter::Decorrelated {
            return Some("backoff.base");
        }
        if matches!(jitter, Jitter::Proportional(p) if p > 1000) {
            return Some("backoff.jitter");
        }
        let max = match (self.max_delay, self.shape) {
            (Some(Span(max)), _) => nanos(max),
            (None, ShapeSpec::Constant(_)) => base,
            (None, _) => base.max(10_000_000_000),
        };
        (max < base).then_some("backoff.max_delay")
    }
}

/// A retry policy's settings, by the builder or by `RetryPolicy::grpc`.
#[derive(Arbitrary, Clone, Debug)]
pub(crate) enum PolicySpec {
    Builder {
        max_attempts: Count,
        class_limits: Vec<(u8, Count)>,
        backoff: Option<BackoffSpec>,
        deadline: Option<Span>,
        max_server_delay: Option<Span>,
        idempotency: u8,
        grpc_order: bool,
    },
    Grpc {
        max_attempts: Count,
        initial: Span,
        max: Span,
        multiplier: Float,
        deadline: Option<Span>,
    },
}

const CLASSES: [FailureClass; 4] = [
    FailureClass::Transient,
    FailureClass::Timeout,
    FailureClass::Overloaded,
    FailureClass::Permanent,
];

impl PolicySpec {
    pub(crate) fn build(&self) -> Result<RetryPolicy, ConfigError> {
        match self {
            PolicySpec::Builder {
                max_attempts,
                class_limits,
                backoff,
                deadline,
                max_server_delay,
                idempotency: which,
                grpc_order,
            } => {
                let mut builder = RetryPolicy::builder().max_attempts(max_attempts.0);
                for (class, Count(limit)) in class_limits.iter().take(4) {
                    builder = builder.max_attempts_for(CLASSES[usize::from(class % 4)], *limit);
                }
                if let Some(backoff) = backoff {
                    builder = builder.backoff(backoff.builder());
                }
                if let Some(Span(deadline)) = deadline {
                    builder = builder.deadline(*deadline);
                }
                if let Some(Span(max)) = max_server_delay {
                    builder = builder.max_server_delay(*max);
                }
                let bytes = [*which];
                let mut u = Unstructured::new(&bytes);
                builder = builder.idempotency(idempotency(&mut u).unwrap_or_default());
                if *grpc_order {
                    builder = builder.decision_order(DecisionOrder::Grpc);
                }
                builder.build()
            }
            PolicySpec::Grpc {
                max_attempts,
                initial,
                max,
                multiplier,
                deadline,
            } => {
                let policy = RetryPolicy::grpc(max_attempts.0, initial.0, max.0, multiplier.0)?;
                match deadline {
                    // A service config's timeout: the same builder, one more field.
                    Some(Span(deadline)) => RetryPolicy::builder()
                        .max_attempts(policy.max_attempts())
                        .backoff((*policy.backoff()).into())
                        .decision_order(DecisionOrder::Grpc)
                        .deadline(*deadline)
                        .build(),
                    None => Ok(policy),
                }
            }
        }
    }
}

/// A circuit breaker's settings.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct BreakerSpec {
    threshold: Count,
    rate: Option<(Float, Count, Count)>,
    recovery: Span,
    probes: Count,
    probe_timeout: Option<Span>,
}

impl BreakerSpec {
    pub(crate) fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let mut builder = CircuitBreaker::builder()
            .failure_threshold(self.threshold.0)
            .recovery_timeout(self.recovery.0)
            .half_open_probes(self.probes.0);
        if let Some((Float(rate), Count(window), Count(min_calls))) = self.rate {
            builder = builder.failure_rate(rate, window, min_calls);
        }
        if let Some(Span(timeout)) = self.probe_timeout {
            builder = builder.probe_timeout(timeout);
        }
        builder.build()
    }

    /// The longest a refusal may ask to wait: the longer of the two
    /// timeouts, rounded up to the millisecond the breaker stores.
    pub(crate) fn longest_wait(self) -> Duration {
        let probe = self.probe_timeout.map_or(self.recovery.0, |s| s.0);
        let longest = nanos(self.recovery.0).max(nanos(probe));
        Duration::from_nanos(longest).saturating_add(Duration::from_millis(1))
    }
}

/// One of the budgets, or none.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) enum BudgetSpec {
    None,
    Throttle(Count, Float),
    Ratio(Float, Count, Span),
    Rate(Float, Count),
    Cost(Count, u16, u16, u16, u16),
}

/// A budget as built, kept by its type so its state can be checked.
pub(crate) enum BuiltBudget {
    None(stormguard::NoBudget),
    Throttle(Throttle),
    Ratio(RetryBudget),
    Rate(RateBudget),
    Cost(CostBucket),
}

impl BudgetSpec {
    pub(crate) fn build(self) -> Result<BuiltBudget, ConfigError> {
        Ok(match self {
            BudgetSpec::None => BuiltBudget::None(stormguard::NoBudget),
            BudgetSpec::Throttle(Count(max), Float(ratio)) => {
                BuiltBudget::Throttle(Throttle::new(max, ratio)?)
            }
            BudgetSpec::Ratio(Float(ratio), Count(min), Span(ttl)) => {
                BuiltBudget::Ratio(RetryBudget::new(ratio, min, ttl)?)
            }
            BudgetSpec::Rate(Float(per_second), Count(burst)) => {
                BuiltBudget::Rate(RateBudget::new(per_second, burst)?)
            }
            BudgetSpec::Cost(Count(capacity), retry, timeout, throttling, reward) => {
                BuiltBudget::Cost(CostBucket::new(
                    capacity, retry, timeout, throttling, reward,
                )?)
            }
        })
    }
}

impl BuiltBudget {
    pub(crate) fn as_dyn(&self) -> &dyn Budget {
        match self {
            BuiltBudget::None(b) => b,
            BuiltBudget::Throttle(b) => b,
            BuiltBudget::Ratio(b) => b,
            BuiltBudget::Rate(b) => b,
            BuiltBudget::Cost(b) => b,
        }
    }

    /// Token counts within their bounds: a throttle in `[0, max]`, a cost
    /// bucket in `[0, capacity]`.
    pub(crate) fn check_tokens(&self, spec: BudgetSpec) {
        match (self, spec) {
            (BuiltBudget::Throttle(t), _) => {
                assert!(t.tokens_milli() <= t.max_tokens_milli());
                assert_eq!(
                    t.allows_retry(),
                    t.tokens_milli() > t.max_tokens_milli() / 2
                );
            }
            (BuiltBudget::Cost(c), BudgetSpec::Cost(Count(capacity), ..)) => {
                assert!(c.tokens() <= capacity);
            }
            _ => {}
        }
    }
}

/// A hedging policy's settings.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct HedgingSpec {
    max_attempts: Count,
    cap: Option<Count>,
    delay: Span,
    deadline: Option<Span>,
    max_server_delay: Option<Span>,
    idempotency: u8,
}

impl HedgingSpec {
    pub(crate) fn build(self) -> Result<HedgingPolicy, ConfigError> {
        let bytes = [self.idempotency];
        let mut u = Unstructured::new(&bytes);
        let mut builder = HedgingPolicy::builder()
            .max_attempts(self.max_attempts.0)
            .hedging_delay(self.delay.0)
            .idempotency(idempotency(&mut u).unwrap_or_default());
        if let Some(Count(cap)) = self.cap {
            builder = builder.attempts_cap(cap);
        }
        if let Some(Span(deadline)) = self.deadline {
            builder = builder.deadline(deadline);
        }
        if let Some(Span(max)) = self.max_server_delay {
            builder = builder.max_server_delay(max);
        }
        builder.build()
    }

    pub(crate) fn max_server_delay(self) -> Duration {
        self.max_server_delay
            .map_or(Duration::from_secs(60), |s| s.0)
    }
}

/// An adaptive throttle's settings.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct AdaptiveSpec {
    k: Option<Float>,
    window: Option<Span>,
    min_requests: Option<Count>,
    max_reject: Option<Float>,
}

impl AdaptiveSpec {
    pub(crate) fn build(self) -> Result<AdaptiveThrottle, ConfigError> {
        let mut builder = AdaptiveThrottle::builder();
        if let Some(Float(k)) = self.k {
            builder = builder.k(k);
        }
        if let Some(Span(window)) = self.window {
            builder = builder.window(window);
        }
        if let Some(Count(n)) = self.min_requests {
            builder = builder.min_requests(n);
        }
        if let Some(Float(max)) = self.max_reject {
            builder = builder.max_reject(max);
        }
        builder.build()
    }

    pub(crate) fn max_reject(self) -> f64 {
        self.max_reject.map_or(1.0, |f| f.0)
    }
}

/// One builder and what to do with what it built.
#[derive(Arbitrary, Debug)]
enum Item {
    Backoff(BackoffSpec, u64, Vec<(u32, u64)>),
    Policy(PolicySpec),
    Breaker(BreakerSpec),
    Budget(BudgetSpec, Vec<(u8, u32)>),
    Hedging(HedgingSpec),
    Adaptive(AdaptiveSpec, Vec<(u32, u32, bool)>),
}

/// Builders from arbitrary numbers: `Backoff`, `RetryPolicy` (by the
/// builder and by `grpc`), `CircuitBreaker`, `Throttle`, `RetryBudget`,
/// `RateBudget`, `CostBucket`, `HedgingPolicy` and `AdaptiveThrottle`.
/// None panics; each returns `Ok` or a `ConfigError` naming one of its
/// fields; and a built value keeps its promises under a sequence of uses.
///
/// ```
/// stormguard_fuzz_checks::check_builders(&[0, 1, 2, 3, 255, 254, 7, 9]);
/// ```
pub fn check_builders(data: &[u8]) {
    let mut u = Unstructured::new(data);
    while !u.is_empty() {
        let Ok(item) = u.arbitrary::<Item>() else {
            return;
        };
        match item {
            Item::Backoff(spec, seed, uses) => check_backoff(spec, seed, &uses),
            Item::Policy(spec) => check_policy(&spec),
            Item::Breaker(spec) => match spec.build() {
                Ok(breaker) => {
                    assert_eq!(breaker.failure_threshold(), spec.threshold.0);
                    assert_eq!(breaker.half_open_probes(), spec.probes.0);
                    assert!((1..=1000).contains(&breaker.half_open_probes()));
                    assert_eq!(
                        breaker.recovery_timeout(),
                        Duration::from_nanos(nanos(spec.recovery.0))
                    );
                }
                Err(error) => assert_field(
                    &error,
                    &[
                        "failure_threshold",
                        "failure_rate",
                        "failure_rate.window",
                        "failure_rate.min_calls",
                        "recovery_timeout",
                        "half_open_probes",
                        "probe_timeout",
                    ],
                ),
            },
            Item::Budget(spec, uses) => check_budget(spec, &uses),
            Item::Hedging(spec) => match spec.build() {
                Ok(policy) => {
                    let cap = spec.cap.map_or(5, |c| c.0);
                    assert!((2..=5).contains(&policy.max_attempts()));
                    assert_eq!(policy.max_attempts(), spec.max_attempts.0.min(cap));
                    assert_eq!(
                        policy.hedging_delay(),
                        Duration::from_nanos(nanos(spec.delay.0))
                    );
                }
                Err(error) => assert_field(&error, &["maxAttempts", "attempts_cap", "deadline"]),
            },
            Item::Adaptive(spec, uses) => check_adaptive(spec, &uses),
        }
    }
}

fn assert_field(error: &ConfigError, fields: &[&str]) {
    assert!(
        fields.contains(&error.field()),
        "unexpected field in {error:?}"
    );
    assert!(error.to_string().contains(error.field()));
}

fn check_backoff(spec: BackoffSpec, seed: u64, uses: &[(u32, u64)]) {
    let built = spec.builder().build();
    match (built, spec.expected_error()) {
        (Ok(backoff), None) => {
            let may_shrink = matches!(spec.shape, ShapeSpec::Exponential(_, Float(f)) if f < 1.0);
            check_built_backoff(&backoff, seed, uses, may_shrink)
        }
        (Err(error), Some(field)) => assert_eq!(error.field(), field, "{spec:?}"),
        (built, expected) => panic!("{spec:?}: built {built:?}, expected an error at {expected:?}"),
    }
}

/// A built backoff: every delay within its cap and its jitter's range.
pub(crate) fn check_built_backoff(
    backoff: &Backoff,
    seed: u64,
    uses: &[(u32, u64)],
    may_shrink: bool,
) {
    let cap = backoff.max_delay();
    assert!(backoff.base() <= cap);
    let mut rng = Random::with_seed(seed);
    let fixed = [0, 1, 2, 31, 32, 63, 64, 65_535, u32::MAX - 1, u32::MAX].map(|n| (n, 0u64));
    for &(n, prev) in fixed.iter().chain(uses.iter().take(64)) {
        let nominal = backoff.nominal(n);
        assert!(nominal <= cap, "nominal({n}) = {nominal:?} > {cap:?}");
        let delay = backoff.delay(n, Duration::from_nanos(prev), &mut rng);
        assert!(delay <= cap, "delay({n}) = {delay:?} > {cap:?}");
        match backoff.jitter() {
            Jitter::None => assert_eq!(delay, nominal),
            Jitter::Full => assert!(delay <= nominal),
            Jitter::Equal => {
                assert!(delay <= nominal && delay >= Duration::from_nanos(nanos(nominal) / 2))
            }
            Jitter::Decorrelated => assert!(delay >= backoff.base()),
            Jitter::Proportional(per_mille) => {
                let spread = u128::from(nanos(nominal)) * u128::from(per_mille) / 1000;
                assert!(delay.as_nanos() + spread >= nominal.as_nanos());
            }
            _ => {}
        }
        if n < u32::MAX && !may_shrink {
            // Constant and linear never shrink; neither does a factor ≥ 1.
            let next = backoff.nominal(n + 1);
            assert!(next >= nominal, "nominal({n}) {nominal:?} > next {next:?}");
        }
    }
    for delay in backoff.delays(Random::with_seed(seed)).take(16) {
        assert!(delay <= cap);
    }
}

fn check_policy(spec: &PolicySpec) {
    match (spec.build(), spec) {
        (Ok(policy), PolicySpec::Builder { max_attempts, .. }) => {
            assert_eq!(policy.max_attempts(), max_attempts.0);
            assert!(policy.max_attempts() >= 1);
            check_built_backoff(policy.backoff(), 0, &[], true);
            if let Some(deadline) = policy.deadline() {
                assert!(!deadline.is_zero());
            }
            for class in CLASSES {
                match policy.max_attempts_for(class) {
                    _ if !class.is_retryable() => {
                        assert_eq!(policy.max_attempts_for(class), Some(1))
                    }
                    Some(limit) => assert!((1..=255).contains(&limit)),
                    None => {}
                }
            }
        }
        (Ok(policy), PolicySpec::Grpc { max_attempts, .. }) => {
            assert!((2..=5).contains(&policy.max_attempts()));
            assert_eq!(policy.max_attempts(), max_attempts.0.min(5));
            assert_eq!(policy.backoff().jitter(), Jitter::GRPC);
            assert_eq!(policy.decision_order(), DecisionOrder::Grpc);
            check_built_backoff(policy.backoff(), 0, &[], true);
        }
        (Err(error), PolicySpec::Builder { .. }) => {
            let field = error.field();
            assert!(
                ["max_attempts", "max_attempts_for", "deadline"].contains(&field)
                    || field.starts_with("backoff."),
                "{error:?}"
            );
        }
        (Err(error), PolicySpec::Grpc { .. }) => assert_field(
            &error,
            &[
                "maxAttempts",
                "initialBackoff",
                "maxBackoff",
                "backoffMultiplier",
                "deadline",
            ],
        ),
    }
}

fn check_budget(spec: BudgetSpec, uses: &[(u8, u32)]) {
    let budget = match spec.build() {
        Ok(budget) => budget,
        Err(error) => {
            return assert_field(
                &error,
                &[
                    "max_tokens",
                    "token_ratio",
                    "ratio",
                    "min_per_second",
                    "ttl",
                    "per_second",
                    "burst",
                    "capacity",
                    "retry_cost",
                    "timeout_cost",
                    "throttling_cost",
                ],
            )
        }
    };
    let failures = [
        Failure::transient(),
        Failure::timeout(),
        Failure::overloaded(),
    ];
    let mut model = match (&budget, spec) {
        (BuiltBudget::Cost(c), _) => Some(u64::from(c.tokens())),
        (BuiltBudget::Throttle(t), _) => Some(u64::from(t.tokens_milli())),
        _ => None,
    };
    let mut granted = 0u64;
    let mut requests = 0u64;
    let mut latest = Instant::ZERO;
    let budget_dyn = budget.as_dyn();
    for &(op, millis) in uses.iter().take(256) {
        // The clock moves forward by up to ~50 days, or jumps back.
        let now = if op & 0x80 == 0 {
            latest.saturating_add(Duration::from_millis(u64::from(millis)))
        } else {
            Instant::from_millis(u64::from(millis))
        };
        latest = latest.max(now);
        let failure = failures[usize::from(op % 3)];
        match (op >> 2) % 4 {
            0 => {
                budget_dyn.on_request(now);
                requests += 1;
            }
            1 => budget_dyn.on_failure(&failure, now),
            2 => {
                let withdrawal = budget_dyn.try_retry(&failure, now);
                granted += u64::from(withdrawal.is_some());
                if let (BuiltBudget::Cost(c), Some(tokens)) = (&budget, model.as_mut()) {
                    let cost = u64::from(c.cost_of(failure.class()));
                    match withdrawal {
                        Some(w) => {
                            assert_eq!(u64::from(w.cost()), cost);
                            *tokens -= cost;
                        }
                        None => assert!(*tokens < cost),
                    }
                }
            }
            _ => {
                let last = (op & 0x40 != 0).then(|| stormguard::Withdrawal::new(5));
                budget_dyn.on_success(last, now);
            }
        }
        budget.check_tokens(spec);
        match (&budget, spec, model.as_mut()) {
            (BuiltBudget::Throttle(t), _, Some(tokens)) => {
                // A6: a failure takes 1000 milli-tokens, a success earns the ratio.
                match (op >> 2) % 4 {
                    1 => *tokens = tokens.saturating_sub(1000),
                    3 => {
                        *tokens = (*tokens + u64::from(t.token_ratio_milli()))
                            .min(u64::from(t.max_tokens_milli()))
                    }
                    _ => {}
                }
                assert_eq!(u64::from(t.tokens_milli()), *tokens);
            }
            (BuiltBudget::Cost(c), BudgetSpec::Cost(Count(capacity), .., reward), Some(tokens)) => {
                if (op >> 2) % 4 == 3 {
                    let earned = if op & 0x40 != 0 { 5 } else { u64::from(reward) };
                    *tokens = (*tokens + earned).min(u64::from(capacity));
                }
                assert_eq!(u64::from(c.tokens()), *tokens);
            }
            (BuiltBudget::Ratio(b), BudgetSpec::Ratio(Float(ratio), Count(min), Span(ttl)), _) => {
                // Never more than the full reserve, what the floor refilled
                // since the origin, and every deposit.
                let deposit = (ratio * 1000.0 + 1.0) as u64;
                let reserve = u128::from(min) * nanos(ttl) as u128 / 1_000_000;
                let refill = u128::from(min) * u128::from(nanos(latest.since_origin())) / 1_000_000;
                let bound = reserve + refill + u128::from(deposit * requests) + 1000;
                assert!(
                    u128::from(granted) * 1000 <= bound,
                    "{granted} retries granted, at most {bound} milli-retries allowed"
                );
                assert!(
                    u128::from(b.available_milli(latest))
                        <= reserve + u128::from(deposit * requests)
                );
            }
            (BuiltBudget::Rate(b), _, _) => {
                // GCRA from an empty start: the burst, then one per interval.
                let interval = b.interval().as_nanos().max(1);
                let bound =
                    u128::from(spec_burst(spec)) + latest.since_origin().as_nanos() / interval + 1;
                assert!(u128::from(granted) <= bound, "{granted} > {bound}");
            }
            _ => {}
        }
    }
}

fn spec_burst(spec: BudgetSpec) -> u32 {
    match spec {
        BudgetSpec::Rate(_, Count(burst)) => burst,
        _ => 0,
    }
}

fn check_adaptive(spec: AdaptiveSpec, uses: &[(u32, u32, bool)]) {
    let throttle = match spec.build() {
        Ok(throttle) => throttle,
        Err(error) => return assert_field(&error, &["k", "window", "max_reject"]),
    };
    let k = throttle.k();
    assert!((1.0..=1000.0).contains(&k), "k = {k}");
    let cap = spec.max_reject();
    let (mut requests, mut accepts) = (0u64, 0u64);
    for &(millis, draw, accept) in uses.iter().take(256) {
        let now = Instant::from_millis(u64::from(millis) * 16);
        if accept {
            throttle.on_accept(now);
            accepts += 1;
        } else {
            let _ = throttle.admit(now, draw);
            requests += 1;
        }
        let p = throttle.reject_probability(now);
        assert!((0.0..=cap + 1e-6).contains(&p), "p = {p}, cap {cap}");
        let (r, a) = throttle.totals(now);
        assert!(
            r <= requests && a <= accepts,
            "({r}, {a}) > ({requests}, {accepts})"
        );
    }
}

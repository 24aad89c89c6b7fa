//! gRPC service configs (`stormguard::grpc_config`): the examples of gRPC
//! proposal A6 and the grpc.io guides load with the numbers they say; every
//! validation rule (grpc-go's for retries and throttling, A6's for hedging)
//! refuses what it should with the JSON path of the value; hostile JSON is an
//! error, never a panic.

use core::time::Duration;

use proptest::prelude::*;
use stormguard::classify::grpc::{Code, CodeSet};
use stormguard::grpc_config::{
    MethodPolicy, ServiceConfig, ServiceConfigError, ServiceConfigErrorKind,
};
use stormguard::{ConfigErrorKind, DecisionOrder, FailureClass, Jitter};

fn error(json: &str) -> ServiceConfigError {
    ServiceConfig::from_json(json).expect_err("the config must be refused")
}

/// A method config with `retryPolicy` fields replaced or removed.
fn retry_config(fields: &[(&str, Option<&str>)]) -> String {
    let mut policy: Vec<(String, String)> = [
        ("maxAttempts", "4"),
        ("initialBackoff", "\"0.1s\""),
        ("maxBackoff", "\"1s\""),
        ("backoffMultiplier", "2"),
        ("retryableStatusCodes", "[\"UNAVAILABLE\"]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (key, value) in fields {
        policy.retain(|(k, _)| k != key);
        if let Some(value) = value {
            policy.push((key.to_string(), value.to_string()));
        }
    }
    let body: Vec<String> = policy
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "pkg.Svc"}}], "retryPolicy": {{{}}}}}]}}"#,
        body.join(", ")
    )
}

fn retry_error(fields: &[(&str, Option<&str>)]) -> ServiceConfigError {
    error(&retry_config(fields))
}

mod examples {
    use super::*;

    /// gRPC A6, "Integration with Service Config", and the grpc.io retry
    /// guide: a retry policy with throttling.
    #[test]
    fn the_a6_retry_example_loads_with_its_numbers() {
        let config = ServiceConfig::from_json(
            r#"{
              "loadBalancingPolicy": "round_robin",
              "methodConfig": [{
                "name": [{ "service": "helloworld.Greeter", "method": "SayHello" }],
                "retryPolicy": {
                  "maxAttempts": 4,
                  "initialBackoff": "0.1s",
                  "maxBackoff": "1s",
                  "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE"]
                }
              }],
              "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
            }"#,
        )
        .unwrap();
        let method = config.method("helloworld.Greeter", "SayHello").unwrap();
        let Some(MethodPolicy::Retry { policy, retryable }) = method.policy() else {
            panic!("a retry policy: {method:?}");
        };
        assert_eq!(policy.max_attempts(), 4);
        assert_eq!(policy.decision_order(), DecisionOrder::Grpc);
        assert_eq!(policy.backoff().jitter(), Jitter::GRPC);
        assert_eq!(policy.backoff().base(), Duration::from_millis(100));
        assert_eq!(policy.backoff().max_delay(), Duration::from_secs(1));
        assert_eq!(policy.deadline(), None);
        assert_eq!(*retryable, CodeSet::EMPTY.with(Code::Unavailable));
        let throttling = config.retry_throttling().unwrap();
        assert_eq!(throttling.max_tokens(), 10);
        assert_eq!(throttling.token_ratio_milli(), 100);
        // The A6 throttle test vector on the loaded throttle.
        let throttle = config.throttle().unwrap();
        for _ in 0..4 {
            throttle.record_failure();
            assert!(throttle.allows_retry());
        }
        throttle.record_failure();
        assert!(!throttle.allows_retry());
        // Another method of the service has no config.
        assert!(config.method("helloworld.Greeter", "SayGoodbye").is_none());
    }

    /// gRPC A6 "Hedging Policy" and the grpc.io request-hedging guide.
    #[test]
    fn the_a6_hedging_example_loads_with_its_numbers() {
        let config = ServiceConfig::from_json(
            r#"{
              "methodConfig": [{
                "name": [{ "service": "helloworld.Greeter" }],
                "timeout": "10s",
                "hedgingPolicy": {
                  "maxAttempts": 4,
                  "hedgingDelay": "0.5s",
                  "nonFatalStatusCodes": ["UNAVAILABLE", "INTERNAL", "ABORTED"]
                }
              }],
              "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 }
            }"#,
        )
        .unwrap();
        let method = config.method("helloworld.Greeter", "SayHello").unwrap();
        let Some(MethodPolicy::Hedging { policy, non_fatal }) = method.policy() else {
            panic!("a hedging policy: {method:?}");
        };
        assert_eq!(policy.max_attempts(), 4);
        assert_eq!(policy.hedging_delay(), Duration::from_millis(500));
        assert_eq!(policy.deadline(), Some(Duration::from_secs(10)));
        assert_eq!(
            *non_fatal,
            CodeSet::EMPTY
                .with(Code::Unavailable)
                .with(Code::Internal)
                .with(Code::Aborted)
        );
        assert!(method
            .failure_for(Code::Internal)
            .unwrap()
            .class()
            .is_retryable());
        assert_eq!(
            method.failure_for(Code::NotFound).unwrap().class(),
            FailureClass::Permanent
        );
    }

    /// grpc-go's retry example (examples/features/retry), as the grpc.io
    /// retry guide shows it: capitalised keys and durations without the
    /// leading zero, both of which grpc-go reads.
    #[test]
    fn the_grpc_go_retry_example_loads() {
        let config = ServiceConfig::from_json(
            r#"{
              "methodConfig": [{
                "name": [{"service": "grpc.examples.echo.Echo"}],
                "waitForReady": true,
                "retryPolicy": {
                  "MaxAttempts": 4,
                  "InitialBackoff": ".01s",
                  "MaxBackoff": ".01s",
                  "BackoffMultiplier": 1.0,
                  "RetryableStatusCodes": [ "UNAVAILABLE" ]
                }
              }]
            }"#,
        )
        .unwrap();
        let method = config
            .method("grpc.examples.echo.Echo", "UnaryEcho")
            .unwrap();
        assert_eq!(method.wait_for_ready(), Some(true));
        let policy = method.retry_policy().unwrap();
        assert_eq!(policy.max_attempts(), 4);
        assert_eq!(policy.backoff().base(), Duration::from_millis(10));
        assert_eq!(policy.backoff().max_delay(), Duration::from_millis(10));
    }

    /// grpc's C++ retry example: 1 s to 120 s, multiplier 1.0.
    #[test]
    fn the_grpc_cpp_retry_example_loads() {
        let config = ServiceConfig::from_json(
            r#"{"methodConfig" : [{
               "name" : [{"service": "helloworld.Greeter"}],
               "waitForReady": true,
               "retryPolicy": {
                 "maxAttempts": 4,
                 "initialBackoff": "1s",
                 "maxBackoff": "120s",
                 "backoffMultiplier": 1.0,
                 "retryableStatusCodes": ["UNAVAILABLE"]
               }
            }]}"#,
        )
        .unwrap();
        let policy = *config
            .method("helloworld.Greeter", "SayHello")
            .unwrap()
            .retry_policy()
            .unwrap();
        assert_eq!(policy.backoff().base(), Duration::from_secs(1));
        assert_eq!(policy.backoff().max_delay(), Duration::from_secs(120));
    }

    /// grpc-java's hedging example (examples/.../hedging/hedging_service_config.json).
    #[test]
    fn the_grpc_java_hedging_example_loads() {
        let config = ServiceConfig::from_json(
            r#"{
              "methodConfig": [{
                "name": [{ "service": "helloworld.Greeter", "method": "SayHello" }],
                "hedgingPolicy": {
                  "maxAttempts": 3,
                  "hedgingDelay": "1s"
                }
              }]
            }"#,
        )
        .unwrap();
        let method = config.method("helloworld.Greeter", "SayHello").unwrap();
        let hedging = method.hedging_policy().unwrap();
        assert_eq!(hedging.max_attempts(), 3);
        assert_eq!(hedging.hedging_delay(), Duration::from_secs(1));
        // nonFatalStatusCodes left out: every failure is fatal.
        assert_eq!(method.codes(), CodeSet::EMPTY);
    }
}

mod names {
    use super::*;

    const CONFIG: &str = r#"{"methodConfig": [
        {"name": [{"service": "s", "method": "exact"}], "timeout": "1s"},
        {"name": [{"service": "s"}, {"service": "t", "method": "also"}], "timeout": "2s"},
        {"name": [{}], "timeout": "3s"}
    ]}"#;

    fn timeout(service: &str, method: &str) -> Option<u64> {
        ServiceConfig::from_json(CONFIG)
            .unwrap()
            .method(service, method)
            .and_then(|m| m.timeout())
            .map(|t| t.as_secs())
    }

    #[test]
    fn the_exact_method_wins_over_its_service_and_the_service_over_the_default() {
        assert_eq!(timeout("s", "exact"), Some(1));
        assert_eq!(timeout("s", "other"), Some(2));
        assert_eq!(timeout("t", "also"), Some(2));
        assert_eq!(timeout("t", "other"), Some(3));
        assert_eq!(timeout("u", "x"), Some(3));
    }

    #[test]
    fn without_a_default_an_unnamed_method_has_no_config() {
        let config =
            ServiceConfig::from_json(r#"{"methodConfig": [{"name": [{"service": "s"}]}]}"#)
                .unwrap();
        assert!(config.method("s", "m").is_some());
        assert!(config.method("t", "m").is_none());
        // A method config without names applies to nothing.
        let config = ServiceConfig::from_json(r#"{"methodConfig": [{"timeout": "1s"}]}"#).unwrap();
        assert!(config.method("s", "m").is_none());
        assert_eq!(config.method_configs().len(), 1);
    }

    #[test]
    fn a_name_used_twice_is_refused() {
        let err = error(
            r#"{"methodConfig": [
                {"name": [{"service": "s", "method": "m"}]},
                {"name": [{"service": "s", "method": "m"}]}
            ]}"#,
        );
        assert_eq!(err.kind(), &ServiceConfigErrorKind::DuplicateName);
        assert_eq!(err.path(), "methodConfig[1].name[0]");
        // Two defaults (an empty object and an explicit empty service).
        let err = error(r#"{"methodConfig": [{"name": [{}, {"service": ""}]}]}"#);
        assert_eq!(err.path(), "methodConfig[0].name[1]");
    }

    #[test]
    fn a_method_without_a_service_is_refused() {
        let err = error(r#"{"methodConfig": [{"name": [{"method": "m"}]}]}"#);
        assert_eq!(err.kind(), &ServiceConfigErrorKind::MethodWithoutService);
        assert_eq!(err.path(), "methodConfig[0].name[0].method");
    }
}

mod retry_validation {
    use super::*;

    #[test]
    fn the_base_config_is_valid() {
        ServiceConfig::from_json(&retry_config(&[])).unwrap();
    }

    #[test]
    fn max_attempts_must_be_two_or_more() {
        for bad in ["1", "0"] {
            let err = retry_error(&[("maxAttempts", Some(bad))]);
            assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
            assert_eq!(
                err.kind(),
                &ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("greater than 1"))
            );
        }
        let err = retry_error(&[("maxAttempts", Some("-3"))]);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
        let err = retry_error(&[("maxAttempts", Some("2.5"))]);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
        let err = retry_error(&[("maxAttempts", Some("\"4\""))]);
        assert!(matches!(
            err.kind(),
            ServiceConfigErrorKind::WrongType { .. }
        ));
        let err = retry_error(&[("maxAttempts", None)]);
        assert_eq!(err.kind(), &ServiceConfigErrorKind::Missing);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
    }

    #[test]
    fn counts_are_whole_non_negative_numbers_below_2_to_the_64() {
        let range = |what| ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange(what));
        for (value, kind) in [
            ("-1", range("at least 0")),
            ("-2.5", range("at least 0")),
            ("-0.5", range("at least 0")),
            ("2.5", range("a whole number")),
            ("1e20", range("an integer below 2^64")),
            ("18446744073709551616.0", range("an integer below 2^64")),
            (
                "\"3\"",
                ServiceConfigErrorKind::WrongType {
                    expected: "an integer",
                    found: "a string",
                },
            ),
        ] {
            let err = retry_error(&[("maxAttempts", Some(value))]);
            assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
            assert_eq!(err.kind(), &kind, "maxAttempts {value}");
        }
        // A whole float is a count (proto3 JSON), up to just below 2^64.
        let throttling = |value: &str| {
            ServiceConfig::from_json(&format!(
                r#"{{"retryThrottling": {{"maxTokens": {value}, "tokenRatio": 1}}}}"#
            ))
        };
        for (value, expected) in [("3.0", 3), ("1000.0", 1000)] {
            let config = throttling(value).unwrap();
            assert_eq!(config.retry_throttling().unwrap().max_tokens(), expected);
        }
        // 1e19 is a count (below 2^64), then too many tokens.
        let err = throttling("1e19").unwrap_err();
        assert_eq!(err.path(), "retryThrottling.maxTokens");
        assert_ne!(err.kind(), &range("an integer below 2^64"));
        assert!(matches!(err.kind(), ServiceConfigErrorKind::Invalid(_)));
        let config = ServiceConfig::from_json(&retry_config(&[("maxAttempts", Some("3.0"))]));
        let method = config.unwrap();
        let policy = method
            .method("pkg.Svc", "M")
            .unwrap()
            .retry_policy()
            .unwrap();
        assert_eq!(policy.max_attempts(), 3);
    }

    #[test]
    fn the_cap_on_max_attempts_is_at_least_two() {
        let json = retry_config(&[("maxAttempts", Some("4"))]);
        assert!(ServiceConfig::from_json_capped(&json, 2).is_ok());
        for cap in [0, 1] {
            let err = ServiceConfig::from_json_capped(&json, cap).unwrap_err();
            assert_eq!(err.path(), "max_attempts_cap");
        }
    }

    #[test]
    fn wait_for_ready_is_read_when_present() {
        let json = |flag: &str| format!(r#"{{"methodConfig": [{{"name": [{{}}]{flag}}}]}}"#);
        for (flag, expected) in [
            (r#", "waitForReady": false"#, Some(false)),
            (r#", "waitForReady": true"#, Some(true)),
            ("", None),
        ] {
            let config = ServiceConfig::from_json(&json(flag)).unwrap();
            assert_eq!(config.method("a", "b").unwrap().wait_for_ready(), expected);
        }
    }

    #[test]
    fn max_attempts_above_the_cap_is_the_cap() {
        for (value, cap, expected) in [
            ("5", 5, 5),
            ("6", 5, 5),
            ("18446744073709551615", 5, 5),
            ("9", 7, 7),
            ("6", 7, 6),
        ] {
            let json = retry_config(&[("maxAttempts", Some(value))]);
            let config = ServiceConfig::from_json_capped(&json, cap).unwrap();
            let policy = config
                .method("pkg.Svc", "M")
                .unwrap()
                .retry_policy()
                .unwrap();
            assert_eq!(
                policy.max_attempts(),
                expected,
                "maxAttempts {value}, cap {cap}"
            );
        }
        // Beyond the integers (grpc-go reads maxAttempts into an int).
        let err = retry_error(&[("maxAttempts", Some("1e30"))]);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxAttempts");
    }

    #[test]
    fn backoffs_must_be_positive_proto3_durations() {
        for key in ["initialBackoff", "maxBackoff"] {
            let path = format!("methodConfig[0].retryPolicy.{key}");
            for (value, kind) in [
                (
                    "\"0s\"",
                    ServiceConfigErrorKind::Invalid(ConfigErrorKind::Zero),
                ),
                (
                    "\"0.000000000s\"",
                    ServiceConfigErrorKind::Invalid(ConfigErrorKind::Zero),
                ),
                (
                    "\"-1s\"",
                    ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("greater than 0")),
                ),
                ("\"1\"", ServiceConfigErrorKind::Duration),
                ("\"1ms\"", ServiceConfigErrorKind::Duration),
                ("\"s\"", ServiceConfigErrorKind::Duration),
                ("\".s\"", ServiceConfigErrorKind::Duration),
                ("\"1.0000000001s\"", ServiceConfigErrorKind::Duration),
                ("\"+1s\"", ServiceConfigErrorKind::Duration),
                ("\" 1s\"", ServiceConfigErrorKind::Duration),
                ("\"1e3s\"", ServiceConfigErrorKind::Duration),
                ("\"315576000001s\"", ServiceConfigErrorKind::Duration),
                (
                    "\"99999999999999999999999s\"",
                    ServiceConfigErrorKind::Duration,
                ),
            ] {
                let err = retry_error(&[(key, Some(value))]);
                assert_eq!(err.path(), path, "{key}: {value}");
                assert_eq!(err.kind(), &kind, "{key}: {value}");
            }
            let err = retry_error(&[(key, Some("0.1"))]);
            assert!(matches!(
                err.kind(),
                ServiceConfigErrorKind::WrongType { .. }
            ));
            assert_eq!(
                retry_error(&[(key, None)]).kind(),
                &ServiceConfigErrorKind::Missing
            );
        }
        // The forms grpc-go accepts.
        for (value, nanos) in [
            ("\"1.s\"", 1_000_000_000),
            ("\".5s\"", 500_000_000),
            ("\"0.000000001s\"", 1),
            ("\"2.25s\"", 2_250_000_000u64),
        ] {
            let json = retry_config(&[
                ("initialBackoff", Some(value)),
                ("maxBackoff", Some("\"9s\"")),
            ]);
            let config = ServiceConfig::from_json(&json).unwrap();
            let policy = config
                .method("pkg.Svc", "M")
                .unwrap()
                .retry_policy()
                .unwrap();
            assert_eq!(
                policy.backoff().base().as_nanos(),
                u128::from(nanos),
                "{value}"
            );
        }
    }

    #[test]
    fn durations_reach_proto3_s_ten_thousand_years_and_no_further() {
        let longest = retry_config(&[("maxBackoff", Some("\"315576000000s\""))]);
        let config = ServiceConfig::from_json(&longest).unwrap();
        let policy = config
            .method("pkg.Svc", "M")
            .unwrap()
            .retry_policy()
            .unwrap();
        // Read, then held in the backoff's nanoseconds (about 584 years).
        assert_eq!(policy.backoff().max_delay(), Duration::from_nanos(u64::MAX));
        let err = retry_error(&[("maxBackoff", Some("\"315576000001s\""))]);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy.maxBackoff");
        assert_eq!(err.kind(), &ServiceConfigErrorKind::Duration);
    }

    #[test]
    fn the_multiplier_must_be_a_positive_number() {
        for bad in ["0", "-2", "0.0", "-0.5"] {
            let err = retry_error(&[("backoffMultiplier", Some(bad))]);
            assert_eq!(err.path(), "methodConfig[0].retryPolicy.backoffMultiplier");
            assert!(
                matches!(err.kind(), ServiceConfigErrorKind::Invalid(_)),
                "{bad}: a number out of range, not a wrong type"
            );
        }
        let err = retry_error(&[("backoffMultiplier", Some("\"2\""))]);
        assert!(matches!(
            err.kind(),
            ServiceConfigErrorKind::WrongType {
                expected: "a number",
                found: "a string"
            }
        ));
        // A multiplier in (0, 1) is allowed (A6: > 0).
        ServiceConfig::from_json(&retry_config(&[("backoffMultiplier", Some("0.5"))])).unwrap();
        // So is a huge one: the backoff is capped by maxBackoff.
        ServiceConfig::from_json(&retry_config(&[("backoffMultiplier", Some("1e300"))])).unwrap();
    }

    #[test]
    fn retryable_codes_must_be_a_non_empty_list_of_codes() {
        let err = retry_error(&[("retryableStatusCodes", Some("[]"))]);
        assert_eq!(
            err.path(),
            "methodConfig[0].retryPolicy.retryableStatusCodes"
        );
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("non-empty"))
        );
        for (bad, index) in [
            ("[\"UNAVAILABLE\", \"NOT_A_CODE\"]", 1),
            ("[17]", 0),
            ("[-1]", 0),
            ("[14.5]", 0),
            ("[\"UNAVAILABLE \"]", 0),
            ("[\"14\"]", 0),
        ] {
            let err = retry_error(&[("retryableStatusCodes", Some(bad))]);
            assert_eq!(
                err.path(),
                format!("methodConfig[0].retryPolicy.retryableStatusCodes[{index}]"),
                "{bad}"
            );
            assert_eq!(err.kind(), &ServiceConfigErrorKind::UnknownCode, "{bad}");
        }
        let err = retry_error(&[("retryableStatusCodes", Some("\"UNAVAILABLE\""))]);
        assert!(matches!(
            err.kind(),
            ServiceConfigErrorKind::WrongType { .. }
        ));
        // Names in any case and numbers are codes.
        let json = retry_config(&[(
            "retryableStatusCodes",
            Some("[\"unavailable\", 4, \"Resource_Exhausted\"]"),
        )]);
        let config = ServiceConfig::from_json(&json).unwrap();
        assert_eq!(
            config.method("pkg.Svc", "M").unwrap().codes(),
            CodeSet::EMPTY
                .with(Code::Unavailable)
                .with(Code::DeadlineExceeded)
                .with(Code::ResourceExhausted)
        );
    }

    #[test]
    fn the_method_timeout_is_the_deadline_of_every_attempt() {
        let json = retry_config(&[]).replace(
            r#""name": [{"service": "pkg.Svc"}]"#,
            r#""name": [{"service": "pkg.Svc"}], "timeout": "1.5s""#,
        );
        let config = ServiceConfig::from_json(&json).unwrap();
        let policy = config
            .method("pkg.Svc", "M")
            .unwrap()
            .retry_policy()
            .unwrap();
        assert_eq!(policy.deadline(), Some(Duration::from_millis(1500)));
        for bad in ["\"0s\"", "\"-1s\"", "\"1\"", "1"] {
            let err = error(&format!(r#"{{"methodConfig": [{{"timeout": {bad}}}]}}"#));
            assert_eq!(err.path(), "methodConfig[0].timeout", "{bad}");
        }
    }

    #[test]
    fn both_policies_in_one_method_config_are_refused() {
        let json = retry_config(&[]).replace(
            r#""retryPolicy""#,
            r#""hedgingPolicy": {"maxAttempts": 2}, "retryPolicy""#,
        );
        let err = error(&json);
        assert_eq!(err.kind(), &ServiceConfigErrorKind::BothPolicies);
        assert_eq!(err.path(), "methodConfig[0].hedgingPolicy");
    }

    #[test]
    fn null_is_absent_and_unknown_fields_are_ignored() {
        let json = retry_config(&[("perAttemptRecvTimeout", Some("\"1s\""))]).replace(
            r#""name""#,
            r#""hedgingPolicy": null, "maxRequestMessageBytes": 1024, "name""#,
        );
        ServiceConfig::from_json(&json).unwrap();
        assert_eq!(
            retry_error(&[("maxAttempts", Some("null"))]).kind(),
            &ServiceConfigErrorKind::Missing
        );
    }
}

mod hedging_validation {
    use super::*;

    fn hedging(policy: &str) -> Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::from_json(&format!(
            r#"{{"methodConfig": [{{"name": [{{}}], "hedgingPolicy": {policy}}}]}}"#
        ))
    }

    #[test]
    fn max_attempts_must_be_two_or_more_and_is_capped_at_five() {
        let err = hedging(r#"{"maxAttempts": 1}"#).unwrap_err();
        assert_eq!(err.path(), "methodConfig[0].hedgingPolicy.maxAttempts");
        let err = hedging(r#"{"hedgingDelay": "1s"}"#).unwrap_err();
        assert_eq!(err.kind(), &ServiceConfigErrorKind::Missing);
        let config = hedging(r#"{"maxAttempts": 50}"#).unwrap();
        assert_eq!(
            config
                .method("a", "b")
                .unwrap()
                .hedging_policy()
                .unwrap()
                .max_attempts(),
            5
        );
        // A client cap above five still holds hedges to five (they run at once).
        let json = r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 50}}]}"#;
        let config = ServiceConfig::from_json_capped(json, 9).unwrap();
        assert_eq!(
            config
                .method("a", "b")
                .unwrap()
                .hedging_policy()
                .unwrap()
                .max_attempts(),
            5
        );
    }

    #[test]
    fn the_delay_may_be_zero_but_not_negative() {
        let config = hedging(r#"{"maxAttempts": 2, "hedgingDelay": "0s"}"#).unwrap();
        assert!(config
            .method("a", "b")
            .unwrap()
            .hedging_policy()
            .unwrap()
            .hedging_delay()
            .is_zero());
        let err = hedging(r#"{"maxAttempts": 2, "hedgingDelay": "-0.1s"}"#).unwrap_err();
        assert_eq!(err.path(), "methodConfig[0].hedgingPolicy.hedgingDelay");
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::Invalid(ConfigErrorKind::OutOfRange("at least 0"))
        );
    }

    #[test]
    fn non_fatal_codes_are_codes() {
        let err = hedging(r#"{"maxAttempts": 2, "nonFatalStatusCodes": ["UNAVAILABLE", "NOPE"]}"#)
            .unwrap_err();
        assert_eq!(
            err.path(),
            "methodConfig[0].hedgingPolicy.nonFatalStatusCodes[1]"
        );
    }
}

mod throttling_validation {
    use super::*;

    fn throttling(body: &str) -> Result<ServiceConfig, ServiceConfigError> {
        ServiceConfig::from_json(&format!(r#"{{"retryThrottling": {body}}}"#))
    }

    #[test]
    fn max_tokens_is_in_0_to_1000() {
        for bad in ["0", "1001", "-1", "4294967296", "1e10", "10.5"] {
            let err =
                throttling(&format!(r#"{{"maxTokens": {bad}, "tokenRatio": 0.1}}"#)).unwrap_err();
            assert_eq!(err.path(), "retryThrottling.maxTokens", "{bad}");
        }
        for good in [1, 1000] {
            let config =
                throttling(&format!(r#"{{"maxTokens": {good}, "tokenRatio": 0.1}}"#)).unwrap();
            assert_eq!(config.retry_throttling().unwrap().max_tokens(), good);
        }
        let err = throttling(r#"{"tokenRatio": 0.1}"#).unwrap_err();
        assert_eq!(err.path(), "retryThrottling.maxTokens");
        assert_eq!(err.kind(), &ServiceConfigErrorKind::Missing);
    }

    #[test]
    fn token_ratio_is_positive_and_kept_to_three_decimals() {
        for bad in ["0", "-0.1", "0.0009"] {
            let err =
                throttling(&format!(r#"{{"maxTokens": 10, "tokenRatio": {bad}}}"#)).unwrap_err();
            assert_eq!(err.path(), "retryThrottling.tokenRatio", "{bad}");
        }
        for (ratio, milli) in [
            ("0.1", 100),
            ("0.5466", 546),
            ("1", 1000),
            ("0.001", 1),
            ("3", 3000),
        ] {
            let config =
                throttling(&format!(r#"{{"maxTokens": 10, "tokenRatio": {ratio}}}"#)).unwrap();
            assert_eq!(
                config.retry_throttling().unwrap().token_ratio_milli(),
                milli,
                "{ratio}"
            );
        }
        let err = throttling(r#"{"maxTokens": 10, "tokenRatio": "0.1"}"#).unwrap_err();
        assert!(matches!(
            err.kind(),
            ServiceConfigErrorKind::WrongType { .. }
        ));
    }
}

mod hostile_json {
    use super::*;

    #[test]
    fn not_json_is_a_syntax_error_at_the_document() {
        for text in [
            "",
            "[",
            "{",
            "{\"a\": }",
            "{} {}",
            "nul",
            "{\"a\": NaN}",
            "{'a': 1}",
        ] {
            let err = error(text);
            assert!(
                matches!(err.kind(), ServiceConfigErrorKind::Syntax(_)),
                "{text:?}: {err}"
            );
            assert_eq!(err.path(), "");
        }
        // Numbers beyond f64 are not JSON numbers serde_json can hold.
        let err = retry_error(&[("backoffMultiplier", Some("1e400"))]);
        assert!(
            matches!(err.kind(), ServiceConfigErrorKind::Syntax(_)),
            "{err}"
        );
    }

    #[test]
    fn the_document_must_be_an_object() {
        for text in ["[]", "1", "\"x\"", "null", "true"] {
            let err = error(text);
            assert!(
                matches!(err.kind(), ServiceConfigErrorKind::WrongType { .. }),
                "{text}"
            );
        }
        assert!(matches!(
            error(r#"{"methodConfig": {}}"#).kind(),
            ServiceConfigErrorKind::WrongType {
                expected: "an array",
                found: "an object"
            }
        ));
        assert_eq!(error(r#"{"methodConfig": [1]}"#).path(), "methodConfig[0]");
        assert_eq!(
            error(r#"{"methodConfig": [{"name": {}}]}"#).path(),
            "methodConfig[0].name"
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"name": [{"service": 1}]}]}"#).path(),
            "methodConfig[0].name[0].service"
        );
        assert_eq!(
            error(r#"{"retryThrottling": []}"#).path(),
            "retryThrottling"
        );
        for (text, path, found) in [
            (
                r#"{"methodConfig": [{"name": [5]}]}"#,
                "methodConfig[0].name[0]",
                "a number",
            ),
            (
                r#"{"retryThrottling": true}"#,
                "retryThrottling",
                "a boolean",
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": []}]}"#,
                "methodConfig[0].hedgingPolicy",
                "an array",
            ),
        ] {
            let err = error(text);
            assert_eq!(err.path(), path, "{text}");
            assert_eq!(
                err.kind(),
                &ServiceConfigErrorKind::WrongType {
                    expected: "an object",
                    found
                },
                "{text}"
            );
        }
        let err = error(r#"{"methodConfig": [{"retryPolicy": "fast"}]}"#);
        assert_eq!(err.path(), "methodConfig[0].retryPolicy");
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::WrongType {
                expected: "an object",
                found: "a string"
            }
        );
        assert_eq!(
            error(r#"{"methodConfig": [{"waitForReady": "yes"}]}"#).path(),
            "methodConfig[0].waitForReady"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_anywhere_with_their_path() {
        let err = error(r#"{"methodConfig": [], "methodConfig": []}"#);
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::DuplicateKey("methodConfig".into())
        );
        assert_eq!(err.path(), "");
        let err = retry_error(&[("maxAttempts", Some("2, \"maxAttempts\": 3"))]);
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::DuplicateKey("maxAttempts".into())
        );
        assert_eq!(err.path(), "methodConfig[0].retryPolicy");
        // Even inside a part stormguard ignores.
        let err = error(r#"{"loadBalancingConfig": [{"x": {"a": 1, "a": 2}}]}"#);
        assert_eq!(err.path(), "loadBalancingConfig[0].x");
        // Two spellings of one field are ambiguous.
        let err = retry_error(&[("MaxAttempts", Some("3"))]);
        assert_eq!(
            err.kind(),
            &ServiceConfigErrorKind::DuplicateKey("MaxAttempts".into())
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for depth in [129, 10_000, 1_000_000] {
            let text = format!("{{\"x\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
            let err = error(&text);
            assert!(
                matches!(err.kind(), ServiceConfigErrorKind::Syntax(_)),
                "depth {depth}"
            );
        }
        let text = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        assert!(matches!(
            error(&text).kind(),
            ServiceConfigErrorKind::Syntax(_)
        ));
        // Nesting within the limit is fine.
        let text = format!("{{\"x\": {}{}}}", "[".repeat(100), "]".repeat(100));
        ServiceConfig::from_json(&text).unwrap();
    }

    #[test]
    fn errors_say_where_and_what_in_words() {
        let err = retry_error(&[("maxAttempts", Some("1"))]);
        assert_eq!(
            err.to_string(),
            "invalid gRPC service config at methodConfig[0].retryPolicy.maxAttempts: must be greater than 1"
        );
        let err = retry_error(&[("initialBackoff", Some("\"100ms\""))]);
        assert!(err.to_string().contains("proto3 JSON duration"), "{err}");
        let err = error("{");
        assert!(
            err.to_string()
                .starts_with("invalid gRPC service config: not JSON: "),
            "{err}"
        );
        let err = error(r#"{"retryThrottling": {"maxTokens": 1, "tokenRatio": "x"}}"#);
        assert_eq!(
            err.to_string(),
            "invalid gRPC service config at retryThrottling.tokenRatio: must be a number, not a string"
        );
    }

    /// JSON-ish text built from the config's own vocabulary.
    fn config_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"methodConfig\"".to_string()),
            Just("\"name\"".to_string()),
            Just("\"service\"".to_string()),
            Just("\"method\"".to_string()),
            Just("\"retryPolicy\"".to_string()),
            Just("\"hedgingPolicy\"".to_string()),
            Just("\"maxAttempts\"".to_string()),
            Just("\"initialBackoff\"".to_string()),
            Just("\"maxBackoff\"".to_string()),
            Just("\"backoffMultiplier\"".to_string()),
            Just("\"retryableStatusCodes\"".to_string()),
            Just("\"nonFatalStatusCodes\"".to_string()),
            Just("\"hedgingDelay\"".to_string()),
            Just("\"timeout\"".to_string()),
            Just("\"retryThrottling\"".to_string()),
            Just("\"maxTokens\"".to_string()),
            Just("\"tokenRatio\"".to_string()),
            Just("\"UNAVAILABLE\"".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            "-?[0-9]{1,25}(\\.[0-9]{1,12})?(e-?[0-9]{1,3})?".prop_map(|s| s),
            "\"-?[0-9]{0,14}(\\.[0-9]{0,11})?s?\"".prop_map(|s| s),
            "\"[a-zA-Z_.]{0,12}\"".prop_map(|s| s),
        ];
        proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.join(""))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text: a config or an error, never a panic; an error's path is
        /// a path into the document.
        #[test]
        fn any_text_is_a_config_or_an_error(text in config_text()) {
            if let Err(err) = ServiceConfig::from_json(&text) {
                let path = err.path();
                prop_assert!(path.is_empty() || path.starts_with(char::is_alphabetic), "{path}");
                prop_assert!(!err.to_string().is_empty());
            }
        }

        /// Any bytes as text: never a panic.
        #[test]
        fn any_string_is_a_config_or_an_error(text in "\\PC{0,200}") {
            let _ = ServiceConfig::from_json(&text);
        }

        /// A valid retry policy's numbers survive the trip through JSON.
        #[test]
        fn valid_retry_policies_load_with_their_numbers(
            attempts in 2u32..=5,
            initial_ms in 1u64..10_000,
            max_ms in 1u64..100_000,
            multiplier in 0.01f64..100.0,
        ) {
            let json = retry_config(&[
                ("maxAttempts", Some(&attempts.to_string())),
                ("initialBackoff", Some(&format!("\"{}.{:03}s\"", initial_ms / 1000, initial_ms % 1000))),
                ("maxBackoff", Some(&format!("\"{}.{:03}s\"", max_ms / 1000, max_ms % 1000))),
                ("backoffMultiplier", Some(&format!("{multiplier}"))),
            ]);
            let config = ServiceConfig::from_json(&json).unwrap();
            let policy = config.method("pkg.Svc", "M").unwrap().retry_policy().unwrap();
            prop_assert_eq!(policy.max_attempts(), attempts);
            prop_assert_eq!(policy.backoff().max_delay(), Duration::from_millis(max_ms));
            prop_assert_eq!(policy.backoff().base(), Duration::from_millis(initial_ms.min(max_ms)));
        }
    }
}

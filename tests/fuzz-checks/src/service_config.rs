//! gRPC service configs from arbitrary text.

use core::time::Duration;

use stormguard::classify::grpc::Code;
use stormguard::grpc_config::{MethodPolicy, ServiceConfig};
use stormguard::Jitter;

/// `ServiceConfig::from_json` on any text (the bytes as UTF-8, invalid
/// sequences replaced): the same answer twice; an error has a message
/// naming its path; a config's policies are within gRPC A6's ranges
/// (`maxAttempts` 2 to 5, a positive backoff capped at `maxBackoff`, the
/// timeout as the deadline, `maxTokens` in (0, 1000]), and looking methods
/// up by any name answers without panicking. The same text read with a
/// client cap on `maxAttempts` from 2 to 9 keeps within that cap.
///
/// ```
/// stormguard_fuzz_checks::check_service_config(br#"{"methodConfig": [{"name": [{}]}]}"#);
/// ```
pub fn check_service_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = ServiceConfig::from_json(&text);
    assert_eq!(parsed, ServiceConfig::from_json(&text), "not deterministic");
    let cap = 2 + u32::from(data.first().copied().unwrap_or(0) % 8);
    let capped = ServiceConfig::from_json_capped(&text, cap);
    match (&parsed, &capped) {
        (Ok(config), _) => check_config(config, 5),
        (Err(error), _) => {
            let message = error.to_string();
            assert!(message.starts_with("invalid gRPC service config"));
            if !error.path().is_empty() {
                assert!(message.contains(error.path()), "{message}");
            }
        }
    }
    match capped {
        Ok(config) => check_config(&config, cap),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

fn check_config(config: &ServiceConfig, cap: u32) {
    for method in config.method_configs() {
        match method.policy() {
            Some(MethodPolicy::Retry { policy, retryable }) => {
                assert!((2..=cap).contains(&policy.max_attempts()), "{policy:?}");
                assert!(!retryable.is_empty());
                let backoff = policy.backoff();
                assert!(!backoff.base().is_zero() && backoff.base() <= backoff.max_delay());
                assert_eq!(backoff.jitter(), Jitter::GRPC);
                assert_eq!(policy.deadline(), method.timeout());
            }
            Some(MethodPolicy::Hedging { policy, .. }) => {
                assert!(
                    (2..=cap.min(5)).contains(&policy.max_attempts()),
                    "{policy:?}"
                );
                assert_eq!(policy.deadline(), method.timeout());
            }
            Some(_) | None => {}
        }
        for code in Code::ALL {
            if let Some(failure) = method.failure_for(code) {
                assert_ne!(code, Code::Ok);
                let _ = failure.class();
            }
        }
        if let Some(timeout) = method.timeout() {
            assert!(timeout <= Duration::MAX);
        }
    }
    if let Some(throttling) = config.retry_throttling() {
        assert!((1..=1000).contains(&throttling.max_tokens()));
        assert!(throttling.token_ratio_milli() >= 1);
        let throttle = config.throttle().expect("the throttle of retryThrottling");
        assert_eq!(throttle.max_tokens_milli(), throttling.max_tokens() * 1000);
        assert_eq!(throttle.tokens_milli(), throttle.max_tokens_milli());
    }
    for (service, method) in [("", ""), ("s", ""), ("s", "m"), ("pkg.Svc", "Get")] {
        let _ = config.method(service, method);
    }
}

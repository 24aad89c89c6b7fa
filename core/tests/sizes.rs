//! Every size the documentation states, pinned: a change that makes a type
//! bigger (or smaller) must change its docs too.
#![cfg(target_pointer_width = "64")]

use core::mem::size_of;

use stormguard::{
    CostBucket, Failure, IdempotencyKey, IdempotencyTable, RateBudget, Retry, RetryBudget,
    RetryPolicy, Throttle,
};

#[test]
fn documented_sizes_hold() {
    // "It is `Copy` and 16 bytes long."
    assert_eq!(size_of::<Failure>(), 16);
    // The budgets' docs: "12 bytes", "48 bytes", "24 bytes", "16 bytes".
    assert_eq!(size_of::<Throttle>(), 12);
    assert_eq!(size_of::<RetryBudget>(), 48);
    assert_eq!(size_of::<RateBudget>(), 24);
    assert_eq!(size_of::<CostBucket>(), 16);
    // "`Retry` … is 48 bytes on 64-bit targets" (and in the README's table).
    assert_eq!(size_of::<Retry<&RetryPolicy>>(), 48);
    // `IdempotencyTable`: "120 bytes an entry, and the table adds 96 bytes".
    assert_eq!(
        size_of::<IdempotencyTable<IdempotencyKey, u64, 1024>>(),
        1024 * 120 + 96
    );
    assert_eq!(
        size_of::<IdempotencyTable<IdempotencyKey, u64, 16>>(),
        16 * 120 + 96
    );
}

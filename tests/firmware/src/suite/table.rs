//! The idempotency table, as a `static`-sized array on the chip: every
//! answer of `begin`, completion, abort, expiry, takeover and fencing.

use core::time::Duration;

use stormguard::{Begin, IdempotencyKey, IdempotencyTable, Instant};

use super::Checks;

/// Execute → InProgress (409) → Mismatch (422) → Full (503) → Replay; abort;
/// expiry after the TTL; a lease that runs out is taken over and the old
/// ticket fenced.
pub fn idempotency_table(c: &mut Checks<'_>) {
    let Ok(mut table) = IdempotencyTable::<IdempotencyKey, u32, 2>::with_timeouts(
        Duration::from_secs(60),
        Duration::from_secs(2),
    ) else {
        check!(c, false, "valid settings refused");
        return;
    };
    let key = IdempotencyKey::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
    let other = IdempotencyKey::from_u128(2);
    let third = IdempotencyKey::from_u128(3);
    let t = Instant::from_secs(10);

    let Begin::Execute(ticket) = table.begin(key, 0xf00d, t) else {
        check!(c, false, "a new key is not executed");
        return;
    };
    check_eq!(c, table.begin(key, 0xf00d, t), Begin::InProgress);
    check_eq!(c, table.begin(key, 0xf00d, t).refusal_status(), Some(409));
    check_eq!(c, table.begin(key, 0xbeef, t), Begin::Mismatch);
    let Begin::Execute(other_ticket) = table.begin(other, 1, t) else {
        check!(c, false, "a second key is not executed");
        return;
    };
    check_eq!(c, table.begin(third, 1, t), Begin::Full);
    check_eq!(c, table.begin(third, 1, t).refusal_status(), Some(503));
    check_eq!(c, table.live_entries(t), 2);

    check!(
        c,
        table
            .complete(ticket, 201, t + Duration::from_millis(30))
            .is_ok()
    );
    check_eq!(
        c,
        table.begin(key, 0xf00d, t + Duration::from_secs(1)),
        Begin::Replay(&201)
    );
    check_eq!(
        c,
        table.begin(key, 0xbeef, t + Duration::from_secs(1)),
        Begin::Mismatch
    );
    // The work failed before any side effect: the key is free again.
    check!(c, table.abort(other_ticket).is_ok());
    let Begin::Execute(retry) = table.begin(other, 1, t + Duration::from_secs(1)) else {
        check!(c, false, "an aborted key is not executed again");
        return;
    };

    // The lease of 2 s runs out: the key is taken over; the old ticket is
    // fenced, its late response handed back.
    let takeover_at = t + Duration::from_secs(4);
    let Begin::Execute(takeover) = table.begin(other, 1, takeover_at) else {
        check!(c, false, "an expired lease is not taken over");
        return;
    };
    match table.complete(retry, 500, takeover_at) {
        Ok(()) => check!(c, false, "a fenced ticket completed"),
        Err(stale) => check_eq!(c, stale.into_response(), 500),
    }
    check!(c, table.complete(takeover, 200, takeover_at).is_ok());
    check_eq!(c, table.begin(other, 1, takeover_at), Begin::Replay(&200));

    // Completed entries live for the TTL after completion, then a reused
    // key is a new request; a clock that steps back brings nothing back.
    let expired = t + Duration::from_millis(30) + Duration::from_secs(60);
    check!(
        c,
        matches!(table.begin(key, 0xbeef, expired), Begin::Execute(_))
    );
    check_eq!(c, table.begin(key, 0xf00d, t), Begin::Mismatch);
    check_eq!(c, table.purge_expired(Instant::MAX), 2);
    check_eq!(c, table.live_entries(Instant::MAX), 0);

    // Keys parsed from the header, the draft's examples.
    let parsed: Result<IdempotencyKey, _> = "8e03978e-40d5-43e8-bc93-6894a57f9324".parse();
    check!(c, parsed.is_ok());
    let garbage: Result<IdempotencyKey, _> = "\u{0}".parse();
    check!(c, garbage.is_err());
}

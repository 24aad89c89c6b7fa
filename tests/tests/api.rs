//! The public API as a user meets it: glob imports that must not clash.

/// `use stormguard_smol::*` and `use stormguard::*` together: the adapter
/// re-exports the core, and only the adapter has a `RetryExt`, so
/// `.retry()` is never ambiguous.
mod both_globs {
    #[allow(unused_imports)]
    use stormguard::*;
    use stormguard_smol::*;

    #[test]
    fn retry_is_not_ambiguous() {
        let policy = RetryPolicy::default();
        let out = smol::block_on(async {
            (|| async { Ok::<u8, ()>(1) })
                .retry(&policy)
                .budget(Throttle::new(10, 0.1).unwrap())
                .await
        });
        assert_eq!(out, Ok(1));
    }
}

/// The same with async-std's adapter, and with the blocking driver's
/// extension in scope too (it applies to closures that return a `Result`,
/// the async one to closures that return a future).
mod async_std_and_blocking {
    use stormguard::driver::BlockingRetryExt;
    #[allow(unused_imports)]
    use stormguard::*;
    use stormguard_async_std::*;

    #[test]
    fn each_closure_finds_its_retry() {
        let policy = RetryPolicy::default();
        let out = async_std::task::block_on(async {
            (|| async { Ok::<u8, ()>(2) }).retry(&policy).await
        });
        assert_eq!(out, Ok(2));
        let out = (|| Ok::<u8, ()>(3)).retry(&policy).call();
        assert_eq!(out, Ok(3));
    }
}

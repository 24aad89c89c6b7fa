#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stormguard_fuzz_checks::check_http_date(data));

//! The fuzz targets' checks on stable: every committed seed in
//! `fuzz/corpus/<target>/`, then a few thousand generated inputs per
//! target. A change to the core that breaks an invariant the fuzzers check
//! fails here, in `cargo test`, without a fuzzing campaign.

use std::fs;
use std::path::{Path, PathBuf};

use stormguard_fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

#[test]
fn every_seed_passes_its_check() {
    for (name, check) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut seeds: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        seeds.sort();
        assert!(
            !seeds.is_empty(),
            "no seeds for {name} in {}",
            dir.display()
        );
        for seed in seeds {
            let data = fs::read(&seed).expect("a readable seed");
            check(&data);
        }
    }
}

#[test]
fn every_fuzz_target_is_a_check_and_every_check_a_target() {
    let mut files: Vec<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .map(|entry| entry.expect("a directory entry").path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(files, names);
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &names {
        let source = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .expect("a target's source");
        assert!(
            source.contains(&format!("stormguard_fuzz_checks::check_{name}(data)")),
            "fuzz_targets/{name}.rs does not run check_{name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

/// xorshift64*: the same inputs on every run.
struct Inputs(u64);

impl Inputs {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = (self.next_u64() % 320) as usize;
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[test]
fn generated_inputs_pass_every_check() {
    for (i, (name, check)) in TARGETS.iter().enumerate() {
        let mut inputs = Inputs(0x9e37_79b9_7f4a_7c15 ^ i as u64);
        for n in 0..1500 {
            let data = inputs.bytes();
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(
                result.is_ok(),
                "{name}: generated input {n} failed: {data:?}"
            );
        }
    }
}

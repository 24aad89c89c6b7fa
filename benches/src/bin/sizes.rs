//! Prints the size of every type a program keeps per client or per call, as
//! a Markdown table (`cargo run --release -p stormguard-benches --bin sizes`).

fn main() {
    let word = size_of::<usize>();
    println!("| type | bytes | machine words |");
    println!("|---|---:|---:|");
    for (name, size) in stormguard_benches::sizes() {
        println!("| `{name}` | {size} | {:.1} |", size as f64 / word as f64);
    }
}

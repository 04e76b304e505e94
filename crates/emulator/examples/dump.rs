//! Prints one synthetic conversation record as pretty JSON, to see what the emulator serves.
//!
//! `cargo run -p lpdrop-emulator --example dump -- [INDEX] [SEED]` (defaults: 0 and 42).

fn main() {
    let mut args = std::env::args().skip(1);
    let index: u64 = args
        .next()
        .map_or(0, |s| s.parse().expect("INDEX is a number"));
    let seed: u64 = args
        .next()
        .map_or(42, |s| s.parse().expect("SEED is a number"));
    let config = lpdrop_emulator::EmulatorConfig {
        seed,
        ..Default::default()
    };
    let record = lpdrop_emulator::Dataset::new(&config).conversation(index);
    println!("{}", serde_json::to_string_pretty(&record).expect("JSON"));
}

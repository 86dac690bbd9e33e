//! Trains the device classifier on `tests/data/user-agents.tsv` and writes
//! `src/device/model.bin` (`make device-model`). Deterministic: run it after
//! changing the features or the data set, and commit the result.

use edge_cache::device::train::{train, Labelled};

fn main() -> Result<(), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let tsv = std::fs::read_to_string(format!("{root}/tests/data/user-agents.tsv"))
        .map_err(|e| format!("tests/data/user-agents.tsv: {e}"))?;
    let rows = Labelled::parse_data_set(&tsv)?;
    let samples: Vec<_> = rows.iter().filter_map(Labelled::sample).collect();
    let model = train(&samples.iter().collect::<Vec<_>>());
    let out = format!("{root}/src/device/model.bin");
    std::fs::write(&out, &model).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "trained on {} of {} agents; wrote {out}",
        samples.len(),
        rows.len()
    );
    Ok(())
}

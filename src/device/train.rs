//! Trains the device model: multinomial logistic regression by stochastic
//! gradient descent with AdaGrad steps, classes weighted by their inverse
//! frequency (so tablets and desktops, a third of the data together, count as
//! much as phones), then quantised to `i8`.
//!
//! Native only: used by the tests (cross-validation) and by
//! `examples/train_device_model.rs`, which writes `model.bin`. Deterministic:
//! the same data gives the same bytes.

use super::features::{features, TABLE_SIZE};
use super::{route, DeviceClass, Route};

const EPOCHS: usize = 12;
const LEARNING_RATE: f32 = 0.2;
/// Weights are quantised to ±LEVELS: six bits are as accurate as eight
/// (measured) and compress to two thirds.
const LEVELS: f32 = 31.0;

/// One row of the labelled data set (`tests/data/user-agents.tsv`).
pub struct Labelled {
    pub class: DeviceClass,
    pub hint: Option<String>,
    pub agent: String,
}

impl Labelled {
    /// The rows of the data set's text: a header line, then
    /// `class<TAB>sec_ch_ua_mobile<TAB>user_agent` lines.
    pub fn parse_data_set(tsv: &str) -> Result<Vec<Labelled>, String> {
        tsv.lines()
            .skip(1)
            .map(|line| {
                let mut fields = line.splitn(3, '\t');
                let mut next = || fields.next().ok_or(format!("not three fields: {line}"));
                let class = match next()? {
                    "mobile" => DeviceClass::Mobile,
                    "tablet" => DeviceClass::Tablet,
                    "desktop" => DeviceClass::Desktop,
                    other => return Err(format!("unknown class {other:?}")),
                };
                let hint = Some(next()?).filter(|h| !h.is_empty()).map(str::to_string);
                let agent = next()?.to_string();
                Ok(Labelled { class, hint, agent })
            })
            .collect()
    }

    /// The row as the model sees it, or `None` when a rule decides its
    /// class: the model learns only what it will be asked.
    pub fn sample(&self) -> Option<Sample> {
        let hint = self.hint.as_deref();
        let Route::Model(agent) = route(&self.agent, hint) else {
            return None;
        };
        let mut rows = Vec::new();
        features(&agent, hint, |row| rows.push(row));
        Some(Sample {
            rows,
            class: self.class,
        })
    }
}

/// One labelled agent, as the model sees it: its feature rows.
pub struct Sample {
    rows: Vec<usize>,
    class: DeviceClass,
}

/// Trains on `samples` and returns the model's bytes.
pub fn train(samples: &[&Sample]) -> Vec<u8> {
    let mut counts = [0usize; 3];
    for s in samples {
        counts[s.class as usize] += 1;
    }
    let class_weight = counts.map(|n| samples.len() as f32 / (3.0 * n.max(1) as f32));
    let mut weights = vec![[0f32; 3]; TABLE_SIZE];
    let mut squared = vec![[1e-6f32; 3]; TABLE_SIZE];
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..EPOCHS {
        shuffle(&mut order, &mut rng);
        for &i in &order {
            let sample = samples[i];
            let x = 1.0 / (sample.rows.len() as f32).sqrt();
            let mut scores = [0f32; 3];
            for &row in &sample.rows {
                for c in 0..3 {
                    scores[c] += weights[row][c] * x;
                }
            }
            let max = scores.iter().copied().fold(f32::MIN, f32::max);
            let exp = scores.map(|s| (s - max).exp());
            let sum: f32 = exp.iter().sum();
            let truth = sample.class as usize;
            let gradient: [f32; 3] = std::array::from_fn(|c| {
                (exp[c] / sum - f32::from(u8::from(c == truth))) * class_weight[truth] * x
            });
            for &row in &sample.rows {
                for c in 0..3 {
                    squared[row][c] += gradient[c] * gradient[c];
                    weights[row][c] -= LEARNING_RATE * gradient[c] / squared[row][c].sqrt();
                }
            }
        }
    }
    quantise(&weights)
}

/// Tablet and desktop weights relative to mobile, scaled so the largest fits `i8`.
fn quantise(weights: &[[f32; 3]]) -> Vec<u8> {
    let relative: Vec<[f32; 2]> = weights.iter().map(|w| [w[1] - w[0], w[2] - w[0]]).collect();
    let max = relative
        .iter()
        .flatten()
        .fold(0f32, |m, w| m.max(w.abs()))
        .max(f32::MIN_POSITIVE);
    let scale = LEVELS / max;
    let plane = |c: usize| {
        relative
            .iter()
            .map(move |w| (w[c] * scale).round() as i8 as u8)
    };
    plane(0).chain(plane(1)).collect()
}

/// Fisher–Yates with xorshift64: deterministic, no dependency.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        order.swap(i, (*state % (i as u64 + 1)) as usize);
    }
}

//! The device model: a linear classifier over hashed [features], stored as
//! two planes of `i8` weights, tablet and desktop each relative to mobile.
//! Softmax scores are unchanged when every class's weight for a feature moves
//! by the same amount, so mobile's plane can be zero and is not shipped.
//!
//! `model.bin` is made by `make device-model` (`examples/train_device_model.rs`,
//! see [`super::train`]) from `tests/data/user-agents.tsv`.
//!
//! [features]: super::features

use super::features::{features, TABLE_SIZE};
use super::DeviceClass;

/// A model's weights: `TABLE_SIZE` tablet weights, then `TABLE_SIZE` desktop weights.
#[derive(Clone, Copy)]
pub struct Model<'a> {
    planes: &'a [u8],
}

pub(super) const SHIPPED_BYTES: &[u8] = include_bytes!("model.bin");
const _: () = assert!(
    SHIPPED_BYTES.len() == 2 * TABLE_SIZE,
    "model.bin has the wrong size"
);

impl<'a> Model<'a> {
    /// The model trained on the whole labelled data set.
    pub const SHIPPED: Model<'static> = Model {
        planes: SHIPPED_BYTES,
    };

    /// A model from its bytes (as [`super::train::train`] makes them).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub fn from_bytes(planes: &'a [u8]) -> Self {
        assert_eq!(planes.len(), 2 * TABLE_SIZE, "a model is two planes");
        Model { planes }
    }

    /// The class with the highest score for a lower-cased agent; ties go to
    /// the more common class (mobile, then tablet).
    pub fn predict(&self, agent: &str, hint: Option<&str>) -> DeviceClass {
        let (mut tablet, mut desktop) = (0i32, 0i32);
        features(agent, hint, |row| {
            tablet += i32::from(self.planes[row] as i8);
            desktop += i32::from(self.planes[TABLE_SIZE + row] as i8);
        });
        if tablet <= 0 && desktop <= 0 {
            DeviceClass::Mobile
        } else if tablet >= desktop {
            DeviceClass::Tablet
        } else {
            DeviceClass::Desktop
        }
    }
}

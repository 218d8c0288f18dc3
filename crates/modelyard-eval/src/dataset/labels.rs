//! Mapping label values (numbers or names) to class indices.

use std::collections::HashMap;

use crate::error::{EvalError, Result};

/// Class names to indices; numeric labels are indices themselves.
#[derive(Debug, Clone, Default)]
pub struct LabelMap {
    by_name: Option<HashMap<String, usize>>,
}

impl LabelMap {
    pub fn new(names: Option<&[String]>) -> Self {
        LabelMap {
            by_name: names.map(|n| n.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect()),
        }
    }

    /// The class index of a label written as text.
    pub fn class(&self, text: &str, origin: &str) -> Result<usize> {
        let t = text.trim();
        if let Some(map) = &self.by_name {
            if let Some(i) = map.get(t) {
                return Ok(*i);
            }
        }
        if let Ok(i) = t.parse::<usize>() {
            return Ok(i);
        }
        if let Ok(f) = t.parse::<f64>() {
            if f >= 0.0 && f.fract() == 0.0 && f < u32::MAX as f64 {
                return Ok(f as usize);
            }
        }
        Err(EvalError::input(match &self.by_name {
            Some(_) => format!("{origin}: label {t:?} is not one of the card's label_names"),
            None => format!(
                "{origin}: label {t:?} is not a class number; declare label_names in the dataset \
                 card"
            ),
        }))
    }
}

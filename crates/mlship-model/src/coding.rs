//! String inputs as numbers: models evaluated outside the IR (PMML, ONNX) and LightGBM's pandas
//! categoricals take strings, which reach them as the codes of an ordinal step.

use crate::{Category, Ordinal, Step};

/// One step coding each column that has categories by the category's position (missing to NaN,
/// others to `unknown`); columns without categories pass through. Nothing when none has any.
pub fn string_codes(columns: &[(String, Option<Vec<String>>)], unknown: f64) -> Vec<Step> {
    if columns.iter().all(|(_, c)| c.is_none()) {
        return Vec::new();
    }
    let parts = columns
        .iter()
        .enumerate()
        .map(|(j, (name, cats))| {
            let step = cats.as_ref().map(|cats| {
                let mut categories: Vec<Category> =
                    cats.iter().map(|c| Category::Str(c.clone())).collect();
                categories.push(Category::Missing);
                Step::Ordinal(Ordinal {
                    columns: vec![name.clone()],
                    categories: vec![categories],
                    unknown_value: Some(unknown),
                    missing_value: f64::NAN,
                })
            });
            (vec![j], step.into_iter().collect())
        })
        .collect();
    vec![Step::Columns { parts }]
}

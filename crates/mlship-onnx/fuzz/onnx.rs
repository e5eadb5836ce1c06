//! Any bytes given to the ONNX reader: a model or an error, never a panic; a model that loads
//! scores two rows without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = mlship_formats::onnx::load(data) {
        let frame = m.signature.frame(|f| match f.dtype {
            mlship_model::DType::Str => mlship_model::ColumnData::Str(vec![None, Some("a".into())]),
            _ => mlship_model::ColumnData::Float(vec![f64::NAN, 0.5]),
        });
        if let Ok(frame) = frame {
            let _ = m.predict(&frame);
        }
    }
});

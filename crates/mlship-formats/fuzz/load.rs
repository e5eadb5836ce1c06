//! Fuzz target: any bytes given to the model loader return a model or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mlship_formats::load(data);
});

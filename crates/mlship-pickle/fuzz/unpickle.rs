//! Fuzz target: the pickle VM alone (joblib frames on), with a pickle header so that opcodes are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = vec![0x80, 4];
    b.extend_from_slice(data);
    if let Ok(u) = mlship_pickle::unpickle(&b, true, &mlship_formats::classes::Classes) {
        let _ = mlship_formats::sklearn::lower(&u.heap, u.root);
    }
});

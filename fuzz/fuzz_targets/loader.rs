//! Coverage-guided fuzzing of the Compose loader: any bytes, as a compose file, must load or
//! fail with located errors, never panic or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        stackroll::compose::check_loader_invariants(text);
    }
});

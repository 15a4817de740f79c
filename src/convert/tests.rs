//! Conversion tests.

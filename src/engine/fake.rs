//! Placeholder: the in-memory engine is being written.

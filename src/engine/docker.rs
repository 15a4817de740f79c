//! Placeholder: the bollard-backed engine is being written.

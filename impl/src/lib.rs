//! verdis server (placeholder)

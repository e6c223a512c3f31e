//! Bulk import of snapshot files (CSV and JSON lines, optionally gzipped).

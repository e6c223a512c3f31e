//! Series functions: plain loops over one series' decoded columns.

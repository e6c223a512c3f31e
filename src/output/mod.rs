//! Printing result tables as a table, CSV or JSON.

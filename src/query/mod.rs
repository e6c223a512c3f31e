//! The query language: text → AST (`parse`) → typed plan (`check`) →
//! rows (`eval`). `print` turns an AST back into canonical text.

mod ast;
mod check;
pub(crate) mod functions;
mod parse;
mod print;

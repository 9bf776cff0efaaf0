//! Cross-crate recipes live in the example targets; the recipes of one library crate live
//! in that crate (see `README.md`).

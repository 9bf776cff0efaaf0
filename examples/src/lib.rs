//! Recipes live in the example targets.

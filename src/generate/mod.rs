//! The next migration, planned from two schemas (pure): what the migrations make (`from`) and
//! what the backend's models make (`to`), both in logical terms, compared by meaning ([`plan`]);
//! the [`Change`]s that turn one into the other, in an order the running app survives, each in
//! the phase it belongs to. The SQL for each dialect is written by [`postgres`] and [`sqlite`]
//! from the same plan, and laid out as files by [`files`].

mod apply;
mod change;
pub mod files;
mod plan;
pub mod postgres;
pub mod sqlite;

pub use apply::{apply, replace_word, slots, states};
pub use change::{Change, Half, Phase, Slot, Stage, SLOTS};
pub use plan::{plan, Rename, IGNORED_TABLES};

#[cfg(test)]
mod tests;

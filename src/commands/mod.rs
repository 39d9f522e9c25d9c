//! One module per command, each written once over the [`Database`](crate::db::Database)
//! seam. Commands never import each other: what two of them share lives below them, in
//! `migrate` (history, pending, upgrade), `schema` or `transfer`.

pub mod baseline;
pub mod complete;
pub mod down;
pub mod lint;
pub mod new;
pub mod status;
pub mod up;
pub mod verify;

//! A plan as the files of the next migrations, pure: per phase one version, each with its
//! PostgreSQL and SQLite up and undo scripts, headed by what wrote them and the rule that a
//! shipped file never changes; the online migration's PostgreSQL files open with
//! `-- no-transaction`.

use super::postgres::Scripts;
use super::{postgres, slots, sqlite, states, Change, Phase, Slot, Stage};
use crate::migrations::Dialect;
use crate::schema::Schema;

/// One file to write: where under the migrations folder (`postgres/V6__x.sql`), and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// Its path under the migrations folder.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// The files of `changes` as versions `first`, `first + 1`: `lite_from` is the logical schema
/// the existing SQLite migrations make (a rebuild writes whole tables). Err names what one
/// dialect has no spelling for.
pub fn files(
    changes: &[Change],
    first: u32,
    name: &str,
    lite_from: &Schema,
) -> Result<Vec<File>, String> {
    let lite_states = states(lite_from, changes);
    let mut out = Vec::new();
    for (i, slot) in slots(changes).into_iter().enumerate() {
        let version = first + i as u32;
        let suffix = match slot {
            (Stage::Expand, Phase::Main) => "",
            (Stage::Expand, Phase::Online) => "_online",
            (Stage::Contract, Phase::Main) => "_contract",
            (Stage::Contract, Phase::Online) => "_contract_online",
        };
        let stem = format!("V{version}__{name}{suffix}");
        let pg = postgres::render(changes, slot)?;
        let lite = sqlite::render(changes, slot, lite_from, &lite_states)?;
        for (dialect, scripts) in [(Dialect::Postgres, pg), (Dialect::Sqlite, lite)] {
            out.extend(pair(dialect, slot, &stem, version - 1, &scripts));
        }
    }
    Ok(out)
}

fn pair(d: Dialect, slot: Slot, stem: &str, previous: u32, s: &Scripts) -> [File; 2] {
    let file = |undo: bool, statements: &[String]| {
        let suffix = if undo { ".down.sql" } else { ".sql" };
        File {
            path: format!("{}/{stem}{suffix}", d.name()),
            text: text(d, slot, stem, previous, undo, statements),
        }
    };
    [file(false, &s.up), file(true, &s.down)]
}

fn text(
    d: Dialect,
    slot: Slot,
    stem: &str,
    previous: u32,
    undo: bool,
    statements: &[String],
) -> String {
    let mut out = String::new();
    let online = slot.1 == Phase::Online;
    if online && d == Dialect::Postgres {
        out.push_str("-- no-transaction\n");
    }
    if slot.0 == Stage::Contract && !undo {
        out.push_str(&format!(
            "{}\n-- A contract step: it would break the app version still serving during the deploy.\n\
             -- `up` leaves it for `yogaflow-migrate complete` on PostgreSQL (SQLite, one app\n\
             -- version, applies it at once).\n",
            crate::script::CONTRACT
        ));
    }
    let what = if undo {
        format!("Undo of {stem}")
    } else {
        stem.to_string()
    };
    let dialect = if d == Dialect::Postgres {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    out.push_str(&format!(
        "-- {what} ({dialect}), written by `yogaflow-migrate new --from` from the backend's models.\n"
    ));
    out.push_str(match (d, online) {
        (Dialect::Postgres, true) => "-- Runs statement by statement, each committing on its own (validations, NOT NULL,\n-- indexes built CONCURRENTLY); every statement can run again after an interruption.\n",
        (Dialect::Postgres, false) => "-- Runs in one transaction with its history row.\n",
        (Dialect::Sqlite, _) => "-- Runs in one transaction with its history row; a table SQLite's ALTER TABLE cannot\n-- change is rebuilt (foreign keys off around it, checked before the commit).\n",
    });
    if undo {
        out.push_str(&format!(
            "-- It leaves the schema exactly as V{previous} made it.\n"
        ));
    }
    out.push_str(
        "-- Review it. Never edit it once it has been deployed: its checksum is recorded in every\n\
         -- database, and one changed byte stops every deploy. Fix forward with a new migration.\n",
    );
    if statements.is_empty() {
        out.push_str(&format!(
            "-- Nothing to do on {dialect}: {}.\n",
            if d == Dialect::Sqlite {
                "SQLite checks constraints as they are made, in the migration before"
            } else {
                "the change is SQLite's only"
            }
        ));
    }
    for s in statements {
        out.push('\n');
        out.push_str(s);
        out.push('\n');
    }
    out
}

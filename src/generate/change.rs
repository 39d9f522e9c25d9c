//! One change of a schema, as a value: what it touches, which migration it goes in (its
//! [`Stage`]: expand or contract; its [`Phase`]: in a transaction or online), where it goes
//! within it, what undoes it ([`Change::inverse`]) and how it reads in the command's report.

use crate::schema::logical::rewrites;
use crate::schema::{Column, ForeignKey, Index, Table};

/// Whether a change keeps the previous app version working (`Expand`: `up` applies it at
/// the deploy) or would break it (`Contract`: `-- phase: contract`, applied by `complete` once
/// that version is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Adds or loosens: the version still serving works on.
    Expand,
    /// Removes or tightens: only the new version works with it.
    Contract,
}

/// Which half of a rename pair, or of its undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// The new column, kept equal to the old one by triggers both ways, and backfilled.
    Expand,
    /// The triggers and the old column dropped.
    Contract,
    /// The expand half undone: the triggers and the new column dropped.
    UndoExpand,
    /// The contract half undone: the old column and the triggers back, filled from the new.
    UndoContract,
}

/// Where a migration of a plan goes: its stage and phase, in the order they are applied.
pub type Slot = (Stage, Phase);

/// Every slot, in the order of the versions a plan writes.
pub const SLOTS: [Slot; 4] = [
    (Stage::Expand, Phase::Main),
    (Stage::Expand, Phase::Online),
    (Stage::Contract, Phase::Main),
    (Stage::Contract, Phase::Online),
];

/// Which migration of the pair a change goes in: `Main` runs in one transaction; `Online`
/// is a `-- no-transaction` step after it (validations, NOT NULL, indexes built
/// CONCURRENTLY), so that no strong lock is held through a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// In one transaction with its history row.
    Main,
    /// Statement by statement, each committing on its own.
    Online,
}

/// One change of the schema, in logical terms (types and defaults as `schema::logical`
/// names them).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A table the models add.
    CreateTable { table: String, def: Table },
    /// A table the models no longer have (its rows are lost).
    DropTable { table: String, def: Table },
    /// A column the models add.
    AddColumn {
        table: String,
        column: String,
        def: Column,
    },
    /// A column the models no longer have (its values are lost).
    DropColumn {
        table: String,
        column: String,
        def: Column,
    },
    /// A column renamed with `--rename`, as a pair: the new column added and kept in sync in
    /// an expand step, the old one dropped in a contract step.
    RenamePair {
        table: String,
        /// The old name.
        from: String,
        /// The new name.
        to: String,
        /// The old column.
        old: Column,
        /// The new column as the models have it (added nullable; NOT NULL, if it is, comes
        /// in the contract step).
        new: Column,
        /// Which half.
        half: Half,
    },
    /// Another type.
    AlterType {
        table: String,
        column: String,
        from: String,
        to: String,
    },
    /// Another default.
    SetDefault {
        table: String,
        column: String,
        from: Option<String>,
        to: Option<String>,
    },
    /// NULL allowed (`nullable`) or no longer.
    SetNullable {
        table: String,
        column: String,
        nullable: bool,
    },
    /// The NULLs of a column about to become NOT NULL given its default, in the contract
    /// step (the previous app version may have written NULL there until then). Undone by
    /// nothing: the values stay (`undo`).
    FillNulls {
        table: String,
        column: String,
        /// The logical default.
        value: String,
        /// The undo's no-op.
        undo: bool,
    },
    /// A CHECK added.
    AddCheck {
        table: String,
        expr: String,
        name: String,
    },
    /// A CHECK dropped.
    DropCheck {
        table: String,
        expr: String,
        name: String,
    },
    /// A UNIQUE constraint added.
    AddUnique {
        table: String,
        columns: Vec<String>,
        name: String,
    },
    /// A UNIQUE constraint dropped.
    DropUnique {
        table: String,
        columns: Vec<String>,
        name: String,
    },
    /// A foreign key added.
    AddForeignKey {
        table: String,
        key: ForeignKey,
        name: String,
    },
    /// A foreign key dropped.
    DropForeignKey {
        table: String,
        key: ForeignKey,
        name: String,
    },
    /// An index added.
    AddIndex {
        table: String,
        name: String,
        index: Index,
    },
    /// An index dropped.
    DropIndex {
        table: String,
        name: String,
        index: Index,
    },
}

impl Change {
    /// The table changed.
    pub fn table(&self) -> &str {
        match self {
            Change::CreateTable { table, .. }
            | Change::DropTable { table, .. }
            | Change::AddColumn { table, .. }
            | Change::DropColumn { table, .. }
            | Change::RenamePair { table, .. }
            | Change::AlterType { table, .. }
            | Change::SetDefault { table, .. }
            | Change::SetNullable { table, .. }
            | Change::FillNulls { table, .. }
            | Change::AddCheck { table, .. }
            | Change::DropCheck { table, .. }
            | Change::AddUnique { table, .. }
            | Change::DropUnique { table, .. }
            | Change::AddForeignKey { table, .. }
            | Change::DropForeignKey { table, .. }
            | Change::AddIndex { table, .. }
            | Change::DropIndex { table, .. } => table,
        }
    }

    /// Whether it runs in a transaction or online.
    pub fn phase(&self) -> Phase {
        match self {
            Change::SetNullable {
                nullable: false, ..
            }
            | Change::AddUnique { .. }
            | Change::AddIndex { .. }
            | Change::DropIndex { .. }
            | Change::FillNulls { .. } => Phase::Online,
            _ => Phase::Main,
        }
    }

    /// Whether the previous app version survives it: what removes, renames or tightens is a
    /// contract step (a longer string is not).
    pub fn stage(&self) -> Stage {
        let contract = match self {
            Change::DropTable { .. }
            | Change::DropColumn { .. }
            | Change::SetNullable {
                nullable: false, ..
            }
            | Change::AddCheck { .. }
            | Change::AddForeignKey { .. }
            | Change::AddUnique { .. }
            | Change::FillNulls { .. } => true,
            Change::AlterType { from, to, .. } => rewrites(from, to),
            Change::AddIndex { index, .. } => index.unique,
            Change::RenamePair { half, .. } => matches!(half, Half::Contract | Half::UndoContract),
            _ => false,
        };
        if contract {
            Stage::Contract
        } else {
            Stage::Expand
        }
    }

    /// The migration it goes in.
    pub fn slot(&self) -> Slot {
        (self.stage(), self.phase())
    }

    /// Where it goes within its migration: renames first (later changes name the new
    /// column), additions before what the app stops using, drops last.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Change::RenamePair { half, .. } => match half {
                // The old column's triggers go before it does; the new column's come after
                // a rebuild of its table.
                Half::Contract | Half::UndoExpand => 0,
                Half::Expand | Half::UndoContract => 16,
            },
            Change::CreateTable { .. } => 1,
            Change::AddColumn { .. } => 2,
            Change::AlterType { .. } => 3,
            Change::SetDefault { .. } | Change::FillNulls { .. } => 4,
            Change::SetNullable { .. } => 5,
            Change::DropForeignKey { .. } => 6,
            Change::DropCheck { .. } => 7,
            Change::DropUnique { .. } => 8,
            Change::AddForeignKey { .. } => 9,
            Change::AddCheck { .. } => 10,
            Change::DropColumn { .. } => 11,
            Change::DropTable { .. } => 12,
            Change::AddUnique { .. } => 13,
            Change::DropIndex { .. } => 14,
            Change::AddIndex { .. } => 15,
        }
    }

    /// The change that undoes this one.
    pub fn inverse(&self) -> Change {
        let c = self.clone();
        match c {
            Change::CreateTable { table, def } => Change::DropTable { table, def },
            Change::DropTable { table, def } => Change::CreateTable { table, def },
            Change::AddColumn { table, column, def } => Change::DropColumn { table, column, def },
            Change::DropColumn { table, column, def } => Change::AddColumn { table, column, def },
            Change::RenamePair {
                table,
                from,
                to,
                old,
                new,
                half,
            } => Change::RenamePair {
                table,
                from,
                to,
                old,
                new,
                half: match half {
                    Half::Expand => Half::UndoExpand,
                    Half::UndoExpand => Half::Expand,
                    Half::Contract => Half::UndoContract,
                    Half::UndoContract => Half::Contract,
                },
            },
            Change::AlterType {
                table,
                column,
                from,
                to,
            } => Change::AlterType {
                table,
                column,
                from: to,
                to: from,
            },
            Change::SetDefault {
                table,
                column,
                from,
                to,
            } => Change::SetDefault {
                table,
                column,
                from: to,
                to: from,
            },
            Change::SetNullable {
                table,
                column,
                nullable,
            } => Change::SetNullable {
                table,
                column,
                nullable: !nullable,
            },
            Change::FillNulls {
                table,
                column,
                value,
                undo,
            } => Change::FillNulls {
                table,
                column,
                value,
                undo: !undo,
            },
            Change::AddCheck { table, expr, name } => Change::DropCheck { table, expr, name },
            Change::DropCheck { table, expr, name } => Change::AddCheck { table, expr, name },
            Change::AddUnique {
                table,
                columns,
                name,
            } => Change::DropUnique {
                table,
                columns,
                name,
            },
            Change::DropUnique {
                table,
                columns,
                name,
            } => Change::AddUnique {
                table,
                columns,
                name,
            },
            Change::AddForeignKey { table, key, name } => {
                Change::DropForeignKey { table, key, name }
            }
            Change::DropForeignKey { table, key, name } => {
                Change::AddForeignKey { table, key, name }
            }
            Change::AddIndex { table, name, index } => Change::DropIndex { table, name, index },
            Change::DropIndex { table, name, index } => Change::AddIndex { table, name, index },
        }
    }

    /// Whether its migration in a transaction is followed by work in the online one of its
    /// stage: PostgreSQL's VALIDATE of a constraint added NOT VALID, a rename pair's backfill.
    pub fn follows_up(&self) -> bool {
        matches!(
            self,
            Change::AddCheck { .. }
                | Change::AddForeignKey { .. }
                | Change::RenamePair {
                    half: Half::Expand,
                    ..
                }
        )
    }

    /// What it does, in a line (for the command's report).
    pub fn describe(&self) -> String {
        match self {
            Change::CreateTable { table, .. } => format!("table {table}: new"),
            Change::DropTable { table, .. } => {
                format!("table {table}: dropped (its rows are lost)")
            }
            Change::AddColumn { table, column, .. } => format!("column {table}.{column}: new"),
            Change::DropColumn { table, column, .. } => {
                format!("column {table}.{column}: dropped (its values are lost)")
            }
            Change::RenamePair {
                table,
                from,
                to,
                half,
                ..
            } => match half {
                Half::Expand => format!(
                    "column {table}.{from}: renamed {to} (expand: {to} added, kept in sync, \
                     backfilled)"
                ),
                Half::Contract => {
                    format!("column {table}.{from}: renamed {to} (contract: {from} dropped)")
                }
                Half::UndoExpand => format!("column {table}.{to}: dropped again"),
                Half::UndoContract => format!("column {table}.{from}: back, from {to}"),
            },
            Change::AlterType {
                table,
                column,
                from,
                to,
            } => {
                format!("column {table}.{column}: type {from} -> {to}")
            }
            Change::SetDefault {
                table,
                column,
                from,
                to,
            } => format!(
                "column {table}.{column}: default {} -> {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ),
            Change::SetNullable {
                table,
                column,
                nullable,
            } => format!(
                "column {table}.{column}: {}",
                if *nullable {
                    "NULL allowed"
                } else {
                    "NOT NULL"
                }
            ),
            Change::FillNulls {
                table,
                column,
                value,
                ..
            } => format!("column {table}.{column}: NULLs become {value}"),
            Change::AddCheck { table, expr, .. } => format!("check on {table} ({expr}): new"),
            Change::DropCheck { table, expr, .. } => format!("check on {table} ({expr}): dropped"),
            Change::AddUnique { table, columns, .. } => {
                format!("unique constraint {table}({}): new", columns.join(", "))
            }
            Change::DropUnique { table, columns, .. } => {
                format!("unique constraint {table}({}): dropped", columns.join(", "))
            }
            Change::AddForeignKey { table, key, .. } => format!("foreign key {table}{key}: new"),
            Change::DropForeignKey { table, key, .. } => {
                format!("foreign key {table}{key}: dropped")
            }
            Change::AddIndex { table, name, .. } => format!("index {name} on {table}: new"),
            Change::DropIndex { table, name, .. } => format!("index {name} on {table}: dropped"),
        }
    }
}

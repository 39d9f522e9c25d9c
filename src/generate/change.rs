//! One change of a schema, as a value: what it touches, which migration of the pair it goes
//! in ([`Phase`]), where it goes within it, what undoes it ([`Change::inverse`]) and how it
//! reads in the command's report.

use crate::schema::{Column, ForeignKey, Index, Table};

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
    /// A column renamed with `--rename`.
    RenameColumn {
        table: String,
        from: String,
        to: String,
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
            | Change::RenameColumn { table, .. }
            | Change::AlterType { table, .. }
            | Change::SetDefault { table, .. }
            | Change::SetNullable { table, .. }
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

    /// The migration of the pair it goes in.
    pub fn phase(&self) -> Phase {
        match self {
            Change::SetNullable {
                nullable: false, ..
            }
            | Change::AddUnique { .. }
            | Change::AddIndex { .. }
            | Change::DropIndex { .. } => Phase::Online,
            _ => Phase::Main,
        }
    }

    /// Where it goes within its migration: renames first (later changes name the new
    /// column), additions before what the app stops using, drops last.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Change::RenameColumn { .. } => 0,
            Change::CreateTable { .. } => 1,
            Change::AddColumn { .. } => 2,
            Change::AlterType { .. } => 3,
            Change::SetDefault { .. } => 4,
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
            Change::RenameColumn { table, from, to } => Change::RenameColumn {
                table,
                from: to,
                to: from,
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

    /// Whether PostgreSQL validates it after its migration, in the online one.
    pub fn validates_later(&self) -> bool {
        matches!(self, Change::AddCheck { .. } | Change::AddForeignKey { .. })
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
            Change::RenameColumn { table, from, to } => {
                format!("column {table}.{from}: renamed {to}")
            }
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

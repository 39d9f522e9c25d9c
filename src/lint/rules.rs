//! The linter's rules as a type: each [`RuleId`] with its name (what findings, markers and
//! `lint-accepted.txt` use), why the statement it flags hurts, and the safe form; read back
//! from its name.

/// A lint rule. Its name (what findings, `lint: allow` markers and `lint-accepted.txt` use)
/// comes from [`RuleId::name`] and is read back by [`str::parse`]; a rule is named in code by
/// its variant, so a misspelt rule is a compile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleId {
    /// `index-blocks-writes`: `CREATE INDEX` without CONCURRENTLY on an existing table.
    IndexBlocksWrites,
    /// `drop-index-blocks`: `DROP INDEX` without CONCURRENTLY.
    DropIndexBlocks,
    /// `reindex-blocks`: `REINDEX` without CONCURRENTLY.
    ReindexBlocks,
    /// `concurrently-in-transaction`: CONCURRENTLY in a migration that runs in a transaction.
    ConcurrentlyInTransaction,
    /// `not-null-column-without-default`: `ADD COLUMN ... NOT NULL` without a default.
    NotNullColumnWithoutDefault,
    /// `add-column-rewrites`: `ADD COLUMN` whose value every existing row needs computed.
    AddColumnRewrites,
    /// `column-type-rewrites`: `ALTER COLUMN ... TYPE`, but for a known string widening.
    ColumnTypeRewrites,
    /// `table-rewrite`: `VACUUM FULL` or `CLUSTER`.
    TableRewrite,
    /// `foreign-key-validates`: a foreign key added without NOT VALID.
    ForeignKeyValidates,
    /// `check-validates`: a CHECK constraint added without NOT VALID.
    CheckValidates,
    /// `validate-in-same-transaction`: `VALIDATE CONSTRAINT` in the transaction that added a
    /// constraint NOT VALID to the same table.
    ValidateInSameTransaction,
    /// `set-not-null-scans`: `ALTER COLUMN ... SET NOT NULL` without a validated check.
    SetNotNullScans,
    /// `unique-builds-index`: a UNIQUE or PRIMARY KEY constraint that builds its index.
    UniqueBuildsIndex,
    /// `transaction-control`: `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT` and the like.
    TransactionControl,
    /// `truncate`: `TRUNCATE`.
    Truncate,
    /// `rename-breaks-app`: renaming a column or table.
    RenameBreaksApp,
    /// `drop-breaks-app`: dropping a column or table.
    DropBreaksApp,
    /// `expand-breaks-app`: in an expand step, a rule the previous app version's writes may
    /// break (a new CHECK or foreign key, NOT NULL, another type).
    ExpandBreaksApp,
    /// `syntax`: a statement the parser cannot read.
    Syntax,
    /// `lint-marker`: a malformed `lint: allow` marker.
    LintMarker,
}

/// What a rule says: its name, why the statement hurts, and the safe form.
struct Meta {
    name: &'static str,
    why: &'static str,
    safe: &'static str,
}

impl RuleId {
    /// Every rule, in the order docs/migrations.md lists them.
    pub const ALL: [RuleId; 20] = [
        RuleId::IndexBlocksWrites,
        RuleId::DropIndexBlocks,
        RuleId::ReindexBlocks,
        RuleId::ConcurrentlyInTransaction,
        RuleId::NotNullColumnWithoutDefault,
        RuleId::AddColumnRewrites,
        RuleId::ColumnTypeRewrites,
        RuleId::TableRewrite,
        RuleId::ForeignKeyValidates,
        RuleId::CheckValidates,
        RuleId::ValidateInSameTransaction,
        RuleId::SetNotNullScans,
        RuleId::UniqueBuildsIndex,
        RuleId::TransactionControl,
        RuleId::Truncate,
        RuleId::RenameBreaksApp,
        RuleId::DropBreaksApp,
        RuleId::ExpandBreaksApp,
        RuleId::Syntax,
        RuleId::LintMarker,
    ];

    /// The name used in findings, `lint: allow` markers and `lint-accepted.txt`.
    pub fn name(self) -> &'static str {
        self.meta().name
    }

    /// Why the statement hurts a live database; `{table}` stands for the table's name (see
    /// [`Finding::why`]).
    pub fn why(self) -> &'static str {
        self.meta().why
    }

    /// The safe form.
    pub fn safe(self) -> &'static str {
        self.meta().safe
    }

    /// The rule's name, reason and safe form, each rule's in one place.
    fn meta(self) -> Meta {
        match self {
            RuleId::IndexBlocksWrites => Meta {
                name: "index-blocks-writes",
                why: "builds the index under a SHARE lock on {table}: every INSERT, UPDATE and \
                      DELETE waits until the whole build ends",
                safe: "CREATE INDEX CONCURRENTLY, alone in a migration whose first line is \
                       `-- no-transaction` (its undo: DROP INDEX CONCURRENTLY, marked the same \
                       way)",
            },
            RuleId::DropIndexBlocks => Meta {
                name: "drop-index-blocks",
                why: "takes an ACCESS EXCLUSIVE lock on {table}, the index's table: it waits for \
                      every query running on it, and every read and write queued behind it waits \
                      too (the drop itself is quick)",
                safe: "DROP INDEX CONCURRENTLY, alone in a migration whose first line is \
                       `-- no-transaction`",
            },
            RuleId::ReindexBlocks => Meta {
                name: "reindex-blocks",
                why:
                    "rebuilds the index under a SHARE lock on {table} (writes wait) and an ACCESS \
                      EXCLUSIVE lock on the index (reads that would use it wait, their planning \
                      too) for the whole build",
                safe: "REINDEX ... CONCURRENTLY, alone in a `-- no-transaction` migration",
            },
            RuleId::ConcurrentlyInTransaction => Meta {
                name: "concurrently-in-transaction",
                why: "PostgreSQL refuses CONCURRENTLY inside a transaction block, and a migration \
                      runs in one unless its first line says otherwise",
                safe: "make `-- no-transaction` the file's first line: its statements then run \
                       one at a time, the history row recorded after the last",
            },
            RuleId::NotNullColumnWithoutDefault => Meta {
                name: "not-null-column-without-default",
                why: "fails as soon as {table} has a row: the existing rows would hold NULL in it",
                safe: "give the column a DEFAULT (a constant default does not rewrite the table \
                       since PostgreSQL 11), or add it nullable, backfill it, then make it NOT \
                       NULL as `set-not-null-scans` says",
            },
            RuleId::AddColumnRewrites => Meta {
                name: "add-column-rewrites",
                why: "adds a column whose value every existing row needs computed (a default \
                      calling a function not known to be stable, GENERATED ... STORED, an \
                      identity or serial column): {table} is rewritten under an ACCESS EXCLUSIVE \
                      lock, and reads and writes wait",
                safe: "add the column without that default, fill it in batches, then set the \
                       default for new rows (SET DEFAULT does not rewrite)",
            },
            RuleId::ColumnTypeRewrites => Meta {
                name: "column-type-rewrites",
                why: "rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock: reads and \
                      writes wait for the whole rewrite (varchar(n) to a longer varchar or to \
                      text skips it, and is not flagged when the earlier migrations tell the \
                      column's type)",
                safe: "add a column of the new type, backfill it in batches, move the app to it, \
                       and drop the old column in a later migration",
            },
            RuleId::TableRewrite => Meta {
                name: "table-rewrite",
                why: "VACUUM FULL and CLUSTER rewrite {table} and its indexes under an ACCESS \
                      EXCLUSIVE lock: reads and writes wait for the whole rewrite (and VACUUM \
                      refuses to run in a transaction at all)",
                safe: "leave space to autovacuum, or rebuild the table online (pg_repack) \
                       outside the migrations",
            },
            RuleId::ForeignKeyValidates => Meta {
                name: "foreign-key-validates",
                why: "checks every row of {table} while holding SHARE ROW EXCLUSIVE locks on it \
                      and on the referenced table: writes to both wait for the scan",
                safe: "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... \
                       VALIDATE CONSTRAINT ... (it scans under a lock that lets writes through)",
            },
            RuleId::CheckValidates => Meta {
                name: "check-validates",
                why: "scans every row of {table} under an ACCESS EXCLUSIVE lock: reads and writes \
                      wait",
                safe: "ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE \
                       CONSTRAINT ...",
            },
            RuleId::ValidateInSameTransaction => Meta {
                name: "validate-in-same-transaction",
                why: "validates in the same transaction as the ADD CONSTRAINT ... NOT VALID \
                      before it, whose lock on {table} is held until commit (an ACCESS EXCLUSIVE \
                      lock for a CHECK; SHARE ROW EXCLUSIVE locks on both tables for a foreign \
                      key): the validating scan runs under it, as if NOT VALID had not been \
                      written",
                safe: "VALIDATE CONSTRAINT in the next migration, or in a `-- no-transaction` one \
                       (each statement then commits on its own, releasing the ADD's lock first)",
            },
            RuleId::SetNotNullScans => Meta {
                name: "set-not-null-scans",
                why: "scans every row of {table} under an ACCESS EXCLUSIVE lock: reads and writes \
                      wait",
                safe: "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; then, in the next \
                       migration or a `-- no-transaction` one, VALIDATE CONSTRAINT c, SET NOT \
                       NULL (PostgreSQL 12 and later skip the scan given that check; the linter \
                       too) and DROP CONSTRAINT c",
            },
            RuleId::UniqueBuildsIndex => Meta {
                name: "unique-builds-index",
                why: "builds the constraint's index under an ACCESS EXCLUSIVE lock on {table}: \
                      reads and writes wait for the whole build",
                safe: "CREATE UNIQUE INDEX CONCURRENTLY (in a `-- no-transaction` migration), \
                       then ADD CONSTRAINT ... UNIQUE USING INDEX ...",
            },
            RuleId::TransactionControl => Meta {
                name: "transaction-control",
                why: "COMMIT, END, ROLLBACK or ABORT end the transaction the migrator runs the \
                      file in: what comes before commits (or is undone) without the history row, \
                      and what follows runs in no transaction, so a failure after it leaves the \
                      change applied but unrecorded; SAVEPOINT fails outside a transaction block \
                      (a `-- no-transaction` file), and BEGIN there leaves the statements after \
                      it to a transaction the migrator does not know of",
                safe: "leave transactions to the migrator; for statements that refuse one, make \
                       `-- no-transaction` the file's first line",
            },
            RuleId::Truncate => Meta {
                name: "truncate",
                why: "empties {table} under an ACCESS EXCLUSIVE lock: its rows are gone for the \
                      app instances still running too, and reads and writes wait for the lock",
                safe: "keep the data, or delete in batches (DELETE ... WHERE id IN (SELECT id ... \
                       LIMIT 1000)) once nothing reads it",
            },
            RuleId::RenameBreaksApp => Meta {
                name: "rename-breaks-app",
                why: "the app instances still running during the deploy use the old name of \
                      {table}'s column or table and fail until they are replaced",
                safe: "expand and contract: `new --from ... --rename` writes the pair (the new \
                       column kept in sync with the old by triggers and backfilled, in an expand \
                       step; the old one dropped in a contract step, `-- phase: contract`, which \
                       `up` defers until `complete`)",
            },
            RuleId::DropBreaksApp => Meta {
                name: "drop-breaks-app",
                why: "the app instances still running during the deploy read {table}'s column or \
                      table and fail, and its data is gone",
                safe: "stop using it in the app in one release, and drop it in a contract step \
                       (`-- phase: contract` among the file's opening comments), which `up` \
                       defers until `complete`",
            },
            RuleId::ExpandBreaksApp => Meta {
                name: "expand-breaks-app",
                why: "an expand step runs while the previous app version still serves: a new \
                      CHECK or foreign key, NOT NULL or another type on {table} rejects or \
                      changes what that version writes and reads",
                safe: "put it in a contract step (`-- phase: contract` among the file's opening \
                       comments): `up` defers it, `complete` applies it once the previous \
                       version is gone",
            },
            RuleId::Syntax => Meta {
                name: "syntax",
                why: "the parser cannot read this statement: PostgreSQL would refuse it, or the \
                      linter cannot check it",
                safe: "fix the statement (see the parser's message)",
            },
            RuleId::LintMarker => Meta {
                name: "lint-marker",
                why: "a `lint: allow` marker must name a rule and give a reason",
                safe: "-- lint: allow RULE REASON, right above the statement",
            },
        }
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule name no rule has (the unknown name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule(pub String);

impl std::fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no rule is called '{}'", self.0)
    }
}

impl std::error::Error for UnknownRule {}

impl std::str::FromStr for RuleId {
    type Err = UnknownRule;

    /// The rule called `name` (exactly as [`RuleId::name`] spells it).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| UnknownRule(name.to_string()))
    }
}

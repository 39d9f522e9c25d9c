//! `lint [FILES…]`: the rules of [`crate::lint`] over PostgreSQL migration files (by default
//! every `.sql` file in `sql/postgres/`), each finding printed with its file, line, statement,
//! why it hurts and the safe form; exit 12 when any is left. Each file is linted knowing the
//! schema its folder's earlier versions leave ([`lint::Schema`]), so that a change PostgreSQL
//! makes in place (widening a `varchar`) is told from one that rewrites.
//!
//! A shipped migration is never edited to please the linter (its checksum is recorded in every
//! database, and one changed byte stops every deploy), so what it does is accepted outside it:
//! `lint-accepted.txt` beside the files, one `FILE RULE REASON` per line.

use crate::cli::LintArgs;
use crate::error::{Error, Kind, Result};
use crate::lint::{self, RuleId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The name of the file, beside the migrations, that accepts findings in shipped ones.
pub const ACCEPTED_FILE: &str = "lint-accepted.txt";

/// One line of `lint-accepted.txt`.
#[derive(Debug)]
struct Accepted {
    file: String,
    rule: RuleId,
    used: bool,
}

/// The entries of `dir/lint-accepted.txt` (none when there is no such file).
fn accepted_in(dir: &Path) -> Result<Vec<Accepted>> {
    let path = dir.join(ACCEPTED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::config(format!("cannot read {}", path.display())).with_source(e))
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // FILE and RULE are single words; the reason is the rest of the line.
        let (file, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim_start();
        let (rule, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let reason = reason.trim();
        let rule = match rule.parse::<RuleId>() {
            Ok(rule) if !reason.is_empty() => rule,
            _ => {
                return Err(Error::config(format!(
                    "{}:{}: expected `FILE RULE REASON` with a rule `lint` knows, found `{line}`",
                    path.display(),
                    n + 1
                )))
            }
        };
        out.push(Accepted {
            file: file.to_string(),
            rule,
            used: false,
        });
    }
    Ok(out)
}

/// The files to check: those given, or every `.sql` file in `dir/postgres`, in name order.
fn files(args: &LintArgs) -> Result<Vec<PathBuf>> {
    if !args.files.is_empty() {
        return Ok(args.files.clone());
    }
    let dir = args.dir.join("postgres");
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Error::config(format!(
            "{}: not a migrations folder (run from the repository root, pass --dir, or name \
             the files)",
            dir.display()
        ))
        .with_source(e)
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The schema each version of a folder leaves, read from its up files (`V<n>__<name>.sql`),
/// oldest first: (version, the schema after it).
fn schemas_in(dir: &Path) -> Result<Vec<(u32, lint::Schema)>> {
    let mut ups: Vec<(u32, PathBuf)> = Vec::new();
    // A folder that cannot be listed tells nothing; the files named are still linted.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let (Some(v), false) = (lint::version_of(&name), lint::is_undo(&name)) {
                if name.ends_with(".sql") {
                    ups.push((v, path));
                }
            }
        }
    }
    ups.sort();
    let mut schema = lint::Schema::default();
    let mut out = Vec::new();
    for (version, path) in ups {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("cannot read {}", path.display())).with_source(e))?;
        schema.apply_text(&text);
        out.push((version, schema.clone()));
    }
    Ok(out)
}

/// The schema a file meets, from its folder's earlier versions: an up file of version n meets
/// what versions below n leave; an undo file of version n, what version n leaves. A file not
/// named `V<n>__...` meets an unknown schema.
fn schema_for(name: &str, schemas: &[(u32, lint::Schema)]) -> lint::Schema {
    let Some(version) = lint::version_of(name) else {
        return lint::Schema::default();
    };
    let undo = lint::is_undo(name);
    schemas
        .iter()
        .rev()
        .find(|(v, _)| *v < version || (undo && *v == version))
        .map(|(_, s)| s.clone())
        .unwrap_or_default()
}

/// Runs `lint`.
pub fn run(args: &LintArgs) -> Result<()> {
    let files = files(args)?;
    let mut accepted: HashMap<PathBuf, Vec<Accepted>> = HashMap::new();
    let mut schemas: HashMap<PathBuf, Vec<(u32, lint::Schema)>> = HashMap::new();
    let (mut problems, mut allowed, mut accepted_count) = (0, 0, 0);
    let mut bad_files = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read {}", path.display())).with_source(e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !accepted.contains_key(&dir) {
            let list = accepted_in(&dir)?;
            accepted.insert(dir.clone(), list);
        }
        if !schemas.contains_key(&dir) {
            schemas.insert(dir.clone(), schemas_in(&dir)?);
        }
        let schema = schema_for(&name, &schemas[&dir]);
        let list = accepted.get_mut(&dir).expect("inserted above");
        let before = problems;
        for finding in lint::lint_with(&text, lint::is_undo(&name), &schema) {
            if finding.allowed.is_some() {
                allowed += 1;
                continue;
            }
            if let Some(entry) = list
                .iter_mut()
                .find(|a| a.file == name && a.rule == finding.rule)
            {
                entry.used = true;
                accepted_count += 1;
                continue;
            }
            problems += 1;
            outln!(
                "{}:{}: {}: {}",
                path.display(),
                finding.line,
                finding.rule,
                finding.statement
            )?;
            outln!("    why:  {}", finding.why())?;
            outln!("    safe: {}", finding.rule.safe())?;
        }
        if problems > before {
            bad_files.push(path.display().to_string());
        }
    }
    for (dir, list) in &accepted {
        for entry in list.iter().filter(|a| !a.used) {
            log::warn!(
                "{}: `{} {}` accepts nothing any more (the file is not linted, or the finding \
                 is gone)",
                dir.join(ACCEPTED_FILE).display(),
                entry.file,
                entry.rule
            );
        }
    }
    outln!(
        "lint: {} file(s), {problems} problem(s); {allowed} allowed by a `lint: allow` marker, \
         {accepted_count} accepted in {ACCEPTED_FILE}",
        files.len()
    )?;
    if problems > 0 {
        return Err(Error::new(
            Kind::Lint,
            format!(
                "lint found {problems} problem(s) in {}: use the safe form, or, where the \
                 statement is safe here, say why with `-- lint: allow RULE REASON` right above \
                 it (in a migration already shipped, never edit the file: add `FILE RULE \
                 REASON` to {ACCEPTED_FILE} beside it)",
                bad_files.join(", ")
            ),
        ));
    }
    Ok(())
}

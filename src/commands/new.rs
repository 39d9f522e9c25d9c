//! `new NAME`: the four files of the next migration (up and undo, PostgreSQL and SQLite), each
//! opening with what belongs in it, at the version after the highest in either dialect. Works
//! on the source tree: the files are embedded by the next build.

use crate::cli::NewArgs;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The existing migrations of one dialect folder: (version, name).
fn existing(dir: &Path) -> Result<Vec<(u32, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::config(format!(
            "{}: not a migrations folder (run from the repository root, or pass --dir)",
            dir.display()
        ))
        .with_source(e)
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let file = entry?.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        if stem.ends_with(".down") {
            continue;
        }
        let parsed = stem
            .strip_prefix('V')
            .and_then(|s| s.split_once("__"))
            .and_then(|(v, name)| Some((v.parse::<u32>().ok()?, name.to_string())));
        if let Some(p) = parsed {
            out.push(p);
        }
    }
    Ok(out)
}

/// What each file says at its top.
fn header(dialect: &str, undo: bool, stem: &str, previous: u32) -> String {
    let never = "-- Never edit this file once it has been deployed: its checksum is recorded in \
                 every database,\n-- and one changed byte stops every deploy. Fix forward with \
                 a new migration.\n";
    match (dialect, undo) {
        ("postgres", false) => format!(
            "-- {stem} (PostgreSQL): what `up` runs, in one transaction with its history row.\n\
             -- Each statement waits at most MIGRATE_DDL_LOCK_TIMEOUT for a table lock, then the\n\
             -- migration gives way to the app and is retried. On a table with rows, prefer\n\
             -- forms that do not block it: a new column without NOT NULL (or with a default),\n\
             -- foreign keys NOT VALID then VALIDATE CONSTRAINT, no type changes in place;\n\
             -- `yogaflow-migrate lint` checks for those. For CREATE INDEX CONCURRENTLY, make\n\
             -- `-- no-transaction` the first line of this file and of its undo.\n\
             {never}\n"
        ),
        ("postgres", true) => format!(
            "-- Undo of {stem} (PostgreSQL): run by `down`, in one transaction with the removal of\n\
             -- its history row. It must leave the schema exactly as V{previous} made it (`verify`\n\
             -- checks). A DROP TABLE of a table with rows is refused unless `--yes`.\n{never}\n"
        ),
        (_, false) => format!(
            "-- {stem} (SQLite): the same change as the PostgreSQL file, for development databases;\n\
             -- run by `up` in one BEGIN IMMEDIATE transaction with its history row. SQLite's\n\
             -- ALTER TABLE only adds, renames and drops columns: anything else is a table\n\
             -- rebuild (https://www.sqlite.org/lang_altertable.html, the 12 steps).\n{never}\n"
        ),
        (_, true) => format!(
            "-- Undo of {stem} (SQLite): run by `down` in one transaction with the removal of its\n\
             -- history row; it must leave the schema exactly as V{previous} made it.\n{never}\n"
        ),
    }
}

/// Runs `new`.
pub fn run(args: &NewArgs) -> Result<()> {
    let name = args.name.trim();
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::config(format!(
            "migration name '{name}': use letters, digits and '_' (at most 100), e.g. add_pose_tags"
        )));
    }
    let dialects = ["postgres", "sqlite"];
    let mut highest = 0;
    for d in dialects {
        for (version, existing_name) in existing(&args.dir.join(d))? {
            if existing_name == name {
                return Err(Error::config(format!(
                    "a migration named {name} exists already: V{version}__{name} in {}",
                    args.dir.join(d).display()
                )));
            }
            highest = highest.max(version);
        }
    }
    let version = highest + 1;
    let stem = format!("V{version}__{name}");
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for d in dialects {
            for undo in [false, true] {
                let file = if undo {
                    format!("{stem}.down.sql")
                } else {
                    format!("{stem}.sql")
                };
                let path = args.dir.join(d).join(file);
                // create_new: a file of that name is never overwritten.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| {
                        Error::config(format!("cannot create {}", path.display())).with_source(e)
                    })?;
                written.push(path);
                use std::io::Write as _;
                f.write_all(header(d, undo, &stem, highest).as_bytes())?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    for path in &written {
        crate::outln!("{}", path.display())?;
    }
    log::info!(
        "created migration {stem}: write it for both dialects, then build (`cargo build \
         --release`) so the binary embeds it; `up` applies it"
    );
    Ok(())
}

//! Embeds `sql/<dialect>/V<n>__<name>.sql` (and the undo script `V<n>__<name>.down.sql` beside
//! each) into the binary as a generated table, so that the binary carries its migrations and a
//! new or edited file triggers a rebuild (refinery's own macro misses new files: its issue #309).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let mut out = String::new();
    for dialect in ["postgres", "sqlite"] {
        let dir = Path::new("sql").join(dialect);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut ups: Vec<(u32, String)> = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("sql/<dialect> must exist") {
            let entry = entry.unwrap();
            println!("cargo:rerun-if-changed={}", entry.path().display());
            let file = entry.file_name().into_string().expect("UTF-8 file name");
            let Some(stem) = file.strip_suffix(".sql") else {
                continue;
            };
            if stem.ends_with(".down") {
                continue;
            }
            let version: u32 = stem
                .strip_prefix('V')
                .and_then(|s| s.split("__").next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{file}: migration files are named V<n>__<name>.sql"));
            ups.push((version, stem.to_string()));
        }
        ups.sort();
        writeln!(out, "/// Migrations for {dialect}, oldest first.").unwrap();
        writeln!(
            out,
            "pub(crate) const {}: &[EmbeddedSql] = &[",
            dialect.to_uppercase()
        )
        .unwrap();
        for (_, stem) in &ups {
            let up = Path::new(
                &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
            )
            .join(&dir)
            .join(format!("{stem}.sql"));
            let down = up.with_file_name(format!("{stem}.down.sql"));
            assert!(
                down.exists(),
                "{}: every migration needs an undo script",
                down.display()
            );
            writeln!(
                out,
                "    EmbeddedSql {{ stem: {stem:?}, up: include_str!({:?}), down: include_str!({:?}) }},",
                up.display().to_string(),
                down.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded_migrations.rs");
    std::fs::write(dest, out).unwrap();
}

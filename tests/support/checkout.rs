//! A copy of this crate's sources to add migrations to and build, as a developer's checkout:
//! the binary under test stays as it is. Every copy builds into one target folder
//! (`target/copy-build`), so the dependencies are compiled once for all of them.

use std::path::{Path, PathBuf};

/// A copy of the sources under `target/<name>-src`.
pub struct Checkout {
    /// The copy's root.
    pub root: PathBuf,
}

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies `from` into `to`, recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Checkout {
    /// A fresh copy named `name` (what an earlier run left there is removed first).
    pub fn new(name: &str) -> Checkout {
        let root = crate_root().join(format!("target/{name}-src"));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["src", "sql", ".cargo"] {
            copy_tree(&crate_root().join(dir), &root.join(dir));
        }
        for file in ["Cargo.toml", "Cargo.lock", "build.rs"] {
            std::fs::copy(crate_root().join(file), root.join(file)).unwrap();
        }
        Checkout { root }
    }

    /// The copy's migrations folder.
    pub fn sql(&self) -> PathBuf {
        self.root.join("sql")
    }

    /// Builds the copy; its binary (one per copy name, so two copies never overwrite each
    /// other's).
    pub fn build(&self) -> PathBuf {
        let target = crate_root().join("target/copy-build");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args(["build", "--offline", "--locked", "--quiet"])
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = self
            .root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let binary = target.join(format!("{name}-yogaflow-migrate"));
        std::fs::copy(target.join("debug/yogaflow-migrate"), &binary).unwrap();
        binary
    }
}

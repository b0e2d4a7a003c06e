//! Service boundaries kept by the build, not by convention: a service crate never depends on
//! another service crate (they share only the `services/shared` crates and the bus), and each
//! service the binary runs is described once, by its own crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rainlogs::cli::ServiceName;

fn services_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(directory, package name)` of every service crate: the directories beside this binary's.
fn service_crates() -> Vec<(String, String)> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(services_dir()).expect("services/") {
        let dir = entry.expect("entry").path();
        let manifest = dir.join("Cargo.toml");
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "rainlogs" || name == "shared" || !manifest.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        let parsed: toml::Table = toml::from_str(&text).expect("manifest TOML");
        let package = parsed["package"]["name"].as_str().expect("package name");
        crates.push((name.to_owned(), package.to_owned()));
    }
    crates.sort();
    crates
}

/// The packages a crate depends on to build and run (dev-dependencies are for its tests).
fn dependencies(dir: &str) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(services_dir().join(dir).join("Cargo.toml")).expect("manifest");
    let parsed: toml::Table = toml::from_str(&text).expect("manifest TOML");
    let mut names = BTreeSet::new();
    for section in ["dependencies", "build-dependencies"] {
        if let Some(table) = parsed.get(section).and_then(|s| s.as_table()) {
            for (key, value) in table {
                // `alias = { package = "real-name", ... }` depends on the real name.
                let package = value.get("package").and_then(|p| p.as_str()).unwrap_or(key);
                names.insert(package.to_owned());
            }
        }
    }
    names
}

#[test]
fn no_service_crate_depends_on_another() {
    let crates = service_crates();
    assert_eq!(crates.len(), 6, "{crates:?}");
    let packages: BTreeSet<&str> = crates.iter().map(|(_, p)| p.as_str()).collect();
    for (dir, package) in &crates {
        let crossing: Vec<String> = dependencies(dir)
            .into_iter()
            .filter(|d| packages.contains(d.as_str()) && d != package)
            .collect();
        assert!(
            crossing.is_empty(),
            "services/{dir} ({package}) depends on the service crate(s) {crossing:?}: what two \
             services share belongs in a crate under services/shared, or on the bus"
        );
    }
}

#[test]
fn every_service_crate_is_run_by_the_binary_under_its_own_descriptor() {
    let run: BTreeSet<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(run.len(), ServiceName::ALL.len(), "each name once");
    for (dir, _) in service_crates() {
        assert!(
            run.contains(dir.as_str()),
            "services/{dir} is not run by `rainlogs run`"
        );
    }
    for service in ServiceName::ALL {
        assert!(
            !service.0.summary.is_empty(),
            "{} says what it does",
            service.as_str()
        );
    }
}

/// The tables the migrations create, and the projector's own bookkeeping among them.
fn created_tables() -> BTreeSet<String> {
    let mut created = BTreeSet::new();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    for entry in std::fs::read_dir(migrations).expect("migrations/") {
        let sql = std::fs::read_to_string(entry.expect("entry").path()).expect("sql");
        let words: Vec<&str> = sql.split_whitespace().collect();
        for pair in words.windows(3) {
            if pair[0].eq_ignore_ascii_case("CREATE") && pair[1].eq_ignore_ascii_case("TABLE") {
                created.insert(pair[2].trim_end_matches('(').to_owned());
            }
        }
    }
    created
}

/// Kept by the projector runtime for every projection (`rainlogs-db`).
const BOOKKEEPING: [&str; 2] = ["projection_offsets", "projection_poisoned"];

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Tables named in the SQL of a crate's sources: an identifier right after `FROM`, `JOIN`,
/// `INTO`, `UPDATE` or `TABLE` (the codebase writes SQL keywords in capitals), kept when the
/// migrations create such a table.
fn tables_named_in(dir: &Path, tables: &BTreeSet<String>) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut named = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if matches!(pair[0], "FROM" | "JOIN" | "INTO" | "UPDATE" | "TABLE")
                && tables.contains(pair[1])
            {
                named.insert(pair[1].to_owned());
            }
        }
    }
    named
}

#[test]
fn a_service_reads_and_writes_only_the_tables_its_own_projections_own() {
    let tables = created_tables();
    for service in ServiceName::ALL {
        let own: BTreeSet<String> = service.0.tables().map(str::to_owned).collect();
        let dir = services_dir().join(service.as_str()).join("src");
        let foreign: Vec<String> = tables_named_in(&dir, &tables)
            .into_iter()
            .filter(|t| !own.contains(t) && !BOOKKEEPING.contains(&t.as_str()))
            .collect();
        assert!(
            foreign.is_empty(),
            "services/{}/src names the table(s) {foreign:?}, which its projections ({own:?}) do \
             not own: project what it needs itself, or ask the owner over the bus",
            service.as_str()
        );
    }
    // The check sees SQL: the API names its tables.
    let api = services_dir().join("query-api").join("src");
    assert!(tables_named_in(&api, &tables).contains("api_keys"));
}

#[test]
fn every_table_belongs_to_exactly_one_projection() {
    let mut owners: Vec<(&str, &str, &str)> = Vec::new();
    for service in ServiceName::ALL {
        for projection in service.0.projections {
            for table in projection.tables {
                owners.push((table, service.as_str(), projection.name));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (table, service, projection) in &owners {
        assert!(
            seen.insert(*table),
            "table {table} is owned twice (again by {service}'s {projection}): {owners:?}"
        );
    }
    // Every table the migrations create is owned, except the projector's own bookkeeping.
    let mut created = created_tables();
    for bookkeeping in BOOKKEEPING {
        assert!(created.remove(bookkeeping), "{bookkeeping} in {created:?}");
    }
    let owned: BTreeSet<String> = seen.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(
        created, owned,
        "tables the migrations create vs. tables projections own"
    );
}

//! `swarm memory`: read and change the project memory of the state dir (without `--session`), or
//! a session's shared memory, whether the session is running or stopped. Reads go through the session's snapshot and journal; writes are appended to its
//! journal as external events, which a live runner picks up and a resume replays.

use super::{MemoryArgs, MemoryCommand};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use swarm_runtime::memory::{Entry, MemoryChange, MemoryLimits, MemoryRecord, MemoryStore};
use swarm_runtime::session::{Event, ProjectPut, Restored, StateDir};
use swarm_runtime::spec::duration;

pub fn run(args: MemoryArgs) -> Result<u8> {
    let root = args.state.state_dir.as_path();
    let namespace = args.namespace.as_deref();
    let Some(session) = args.session.as_deref() else {
        return project(root, namespace, args.command);
    };
    match args.command {
        MemoryCommand::Set { key, value, ttl } => {
            let ttl_ms = parse_ttl(ttl)?;
            let value = parse_value(value);
            write(root, session, |restored, now| {
                let ns = namespace.unwrap_or(&restored.plan.memory.namespace);
                let ttl = ttl_ms.or(restored.plan.memory.ttl.map(|d| d.as_millis() as u64));
                let record = MemoryRecord {
                    namespace: ns.to_string(),
                    key: key.clone(),
                    entry: Entry {
                        value: value.clone(),
                        created_ms: now,
                        updated_ms: now,
                        expires_ms: ttl.map(|t| now.saturating_add(t)),
                        version: 1,
                        access_count: 0,
                    },
                };
                Ok(vec![put(&restored.memory, record, now)])
            })?;
            Ok(super::exit::OK)
        }
        MemoryCommand::Get { key } => {
            let (_, restored) = read(root, session)?;
            let ns = namespace.unwrap_or(&restored.plan.memory.namespace);
            match find(&restored.memory, ns, &key) {
                Some(record) => {
                    match &record.entry.value {
                        serde_json::Value::String(s) => println!("{s}"),
                        other => println!("{other}"),
                    }
                    Ok(super::exit::OK)
                }
                None => {
                    eprintln!("not found: `{key}` in namespace `{ns}`");
                    Ok(super::exit::FAILED)
                }
            }
        }
        MemoryCommand::List => {
            let (_, restored) = read(root, session)?;
            print_records(
                restored
                    .memory
                    .iter()
                    .filter(|r| in_namespace(r, namespace)),
            );
            Ok(super::exit::OK)
        }
        MemoryCommand::Search { glob } => {
            let (_, restored) = read(root, session)?;
            // The store's own search, so the CLI matches exactly what agents' `memory_search` does.
            let store = MemoryStore::new(swarm_runtime::clock::system(), MemoryLimits::default());
            store.restore(restored.memory);
            print_records(store.search(namespace, &glob)?.iter());
            Ok(super::exit::OK)
        }
        MemoryCommand::Delete { key } => {
            let mut missing = None;
            write(root, session, |restored, _| {
                let ns = namespace.unwrap_or(&restored.plan.memory.namespace);
                if find(&restored.memory, ns, &key).is_none() {
                    missing = Some(ns.to_string());
                    return Ok(Vec::new());
                }
                Ok(vec![Event::MemoryChanged {
                    change: MemoryChange::Delete {
                        namespace: ns.to_string(),
                        key: key.clone(),
                    },
                }])
            })?;
            match missing {
                Some(ns) => {
                    eprintln!("not found: `{key}` in namespace `{ns}`");
                    Ok(super::exit::FAILED)
                }
                None => Ok(super::exit::OK),
            }
        }
        MemoryCommand::Export { file } => {
            let (_, restored) = read(root, session)?;
            let records: Vec<&MemoryRecord> = restored
                .memory
                .iter()
                .filter(|r| in_namespace(r, namespace))
                .collect();
            export(&records, file)
        }
        MemoryCommand::Import { file } => {
            let records = read_export(&file)?;
            let mut imported = 0;
            write(root, session, |restored, now| {
                let events: Vec<Event> = records
                    .iter()
                    .filter(|r| r.entry.expires_ms.is_none_or(|at| at > now))
                    .map(|r| {
                        let mut record = r.clone();
                        if let Some(ns) = namespace {
                            record.namespace = ns.to_string();
                        }
                        put(&restored.memory, record, now)
                    })
                    .collect();
                imported = events.len();
                Ok(events)
            })?;
            eprintln!(
                "imported {imported} of {} entries (expired ones are skipped)",
                records.len()
            );
            Ok(super::exit::OK)
        }
    }
}

fn parse_ttl(ttl: Option<String>) -> Result<Option<u64>> {
    ttl.map(|text| {
        duration::parse(&text)
            .map(|d| d.as_millis() as u64)
            .map_err(anyhow::Error::msg)
            .context("--ttl")
    })
    .transpose()
}

/// JSON if it parses as JSON, else the text as a string.
fn parse_value(value: String) -> serde_json::Value {
    serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value))
}

/// The namespace `set`, `get` and `delete` use in project memory when none is given.
pub const PROJECT_DEFAULT_NAMESPACE: &str = "default";

/// The same commands on the project memory of the state dir: every write is one transaction,
/// visible at once to every session and process sharing the state dir.
fn project(root: &Path, namespace: Option<&str>, command: MemoryCommand) -> Result<u8> {
    let ns = namespace.unwrap_or(PROJECT_DEFAULT_NAMESPACE);
    let not_found = |key: &str| {
        eprintln!("not found: `{key}` in project namespace `{ns}`");
        Ok(super::exit::FAILED)
    };
    match command {
        MemoryCommand::Set { key, value, ttl } => {
            let dir = StateDir::open(root)?;
            dir.project_put(&ProjectPut {
                namespace: ns.to_string(),
                key,
                value: parse_value(value),
                ttl_ms: parse_ttl(ttl)?,
                expected_version: None,
            })?;
            Ok(super::exit::OK)
        }
        MemoryCommand::Get { key } => {
            let dir = StateDir::open_read_only(root)?;
            match dir.project_get(ns, &key)? {
                Some(record) => {
                    match &record.entry.value {
                        serde_json::Value::String(s) => println!("{s}"),
                        other => println!("{other}"),
                    }
                    Ok(super::exit::OK)
                }
                None => not_found(&key),
            }
        }
        MemoryCommand::List => {
            let dir = StateDir::open_read_only(root)?;
            print_records(dir.project_list(namespace)?.iter());
            Ok(super::exit::OK)
        }
        MemoryCommand::Search { glob } => {
            let dir = StateDir::open_read_only(root)?;
            let store = MemoryStore::new(swarm_runtime::clock::system(), MemoryLimits::default());
            store.restore(dir.project_list(None)?);
            print_records(store.search(namespace, &glob)?.iter());
            Ok(super::exit::OK)
        }
        MemoryCommand::Delete { key } => {
            let dir = StateDir::open(root)?;
            if dir.project_delete(ns, &key)? {
                Ok(super::exit::OK)
            } else {
                not_found(&key)
            }
        }
        MemoryCommand::Export { file } => {
            let dir = StateDir::open_read_only(root)?;
            let records = dir.project_list(namespace)?;
            export(&records, file)
        }
        MemoryCommand::Import { file } => {
            let records = read_export(&file)?;
            let dir = StateDir::open(root)?;
            let now = swarm_runtime::clock::now_ms();
            let mut imported = 0;
            for r in records
                .iter()
                .filter(|r| r.entry.expires_ms.is_none_or(|at| at > now))
            {
                dir.project_put(&ProjectPut {
                    namespace: namespace.unwrap_or(&r.namespace).to_string(),
                    key: r.key.clone(),
                    value: r.entry.value.clone(),
                    // Expiry times survive the round trip.
                    ttl_ms: r.entry.expires_ms.map(|at| at - now),
                    expected_version: None,
                })?;
                imported += 1;
            }
            eprintln!(
                "imported {imported} of {} entries into project memory (expired ones are skipped)",
                records.len()
            );
            Ok(super::exit::OK)
        }
    }
}

fn read(root: &Path, session: &str) -> Result<(String, Restored)> {
    let dir = StateDir::open_read_only(root)?;
    let id = dir.resolve(session)?;
    let restored = dir.load(&id)?;
    Ok((id, restored))
}

/// Loads the session, builds the events to append from its memory, and appends them.
fn write(
    root: &Path,
    session: &str,
    build: impl FnOnce(&Restored, u64) -> Result<Vec<Event>>,
) -> Result<()> {
    let dir = StateDir::open_existing(root)?;
    let id = dir.resolve(session)?;
    let restored = dir.load(&id)?;
    let events = build(&restored, swarm_runtime::clock::now_ms())?;
    if !events.is_empty() {
        dir.append_external(&id, &events)?;
    }
    Ok(())
}

/// A put of `record` over whatever the key holds now: the version goes up by one and the
/// creation time is kept.
fn put(memory: &[MemoryRecord], record: MemoryRecord, now: u64) -> Event {
    let previous = find(memory, &record.namespace, &record.key);
    let entry = Entry {
        created_ms: previous.map_or(now, |p| p.entry.created_ms),
        updated_ms: now,
        version: previous.map_or(1, |p| p.entry.version + 1),
        access_count: 0,
        ..record.entry
    };
    Event::MemoryChanged {
        change: MemoryChange::Put {
            namespace: record.namespace,
            key: record.key,
            entry,
        },
    }
}

fn find<'a>(memory: &'a [MemoryRecord], namespace: &str, key: &str) -> Option<&'a MemoryRecord> {
    memory
        .iter()
        .find(|r| r.namespace == namespace && r.key == key)
}

fn in_namespace(record: &MemoryRecord, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| record.namespace == ns)
}

/// On a terminal, a table whose columns fit; otherwise one tab-separated line per entry
/// (namespace, key, value as JSON), for scripts.
fn print_records<'a>(records: impl Iterator<Item = &'a MemoryRecord>) {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        for r in records {
            println!("{}\t{}\t{}", r.namespace, r.key, r.entry.value);
        }
        return;
    }
    let rows: Vec<Vec<String>> = records
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.key.clone(),
                r.entry.value.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    print!(
        "{}",
        super::table::render("", &["NAMESPACE", "KEY", "VALUE"], &[], &rows)
    );
}

/// Writes exported entries to `file`, or to stdout without one.
fn export<T: serde::Serialize>(records: &[T], file: Option<PathBuf>) -> Result<u8> {
    let text = serde_json::to_string_pretty(records)?;
    match file {
        Some(path) => {
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("exported {} entries to {}", records.len(), path.display());
        }
        None => println!("{text}"),
    }
    Ok(super::exit::OK)
}

/// The entries of an export file.
fn read_export(file: &Path) -> Result<Vec<MemoryRecord>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a memory export (a JSON list of entries)",
            file.display()
        )
    })
}

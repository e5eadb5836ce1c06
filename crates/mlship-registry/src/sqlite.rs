//! The SQLite metadata store: one file, WAL, immediate transactions, versioned migrations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::reference::{Selector, validate_name};
use crate::store::{AliasEvent, MetadataStore, ModelSummary, NewVersion, Version};

/// Schema migrations, applied in order; `schema_migrations` records the last one applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE versions (
    name TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    estimator TEXT NOT NULL,
    signature TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    description TEXT,
    tags TEXT NOT NULL,
    git_commit TEXT,
    input_example TEXT,
    example_predictions TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX versions_sha ON versions(sha256);
CREATE TABLE aliases (
    name TEXT NOT NULL REFERENCES models(name),
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER,
    at INTEGER NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX alias_history_name ON alias_history(name, id);
"#];

/// Metadata in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SqliteStore {
    /// Opens (creating if needed) the store and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(crate::error::io(format!("creating {}", dir.display())))?;
        }
        let conn = Connection::open(&path).map_err(|e| Error::Store {
            store: format!("sqlite://{}", path.display()),
            message: e.to_string(),
        })?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut s = SqliteStore { conn, path };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL)",
            [],
        )?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(m)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [i as i64 + 1],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn tx(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

fn model_names(tx: &Transaction<'_>) -> Result<Vec<String>> {
    let mut st = tx.prepare("SELECT name FROM models ORDER BY name")?;
    let names = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

fn require_model(tx: &Transaction<'_>, name: &str) -> Result<()> {
    let found: Option<String> = tx
        .query_row("SELECT name FROM models WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    if found.is_none() {
        return Err(Error::UnknownModel {
            name: name.to_string(),
            known: model_names(tx)?,
        });
    }
    Ok(())
}

const VERSION_COLS: &str = "version, created_at, kind, format, estimator, signature, sha256, size, file_name, created_by, description, tags, git_commit, input_example, example_predictions, name";

fn row_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<Version> {
    let tags: String = r.get(11)?;
    Ok(Version {
        version: r.get(0)?,
        created_at: r.get(1)?,
        meta: NewVersion {
            kind: r.get(2)?,
            format: r.get(3)?,
            estimator: r.get(4)?,
            signature: r.get(5)?,
            sha256: r.get(6)?,
            size: r.get::<_, i64>(7)? as u64,
            file_name: r.get(8)?,
            created_by: r.get(9)?,
            description: r.get(10)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            git_commit: r.get(12)?,
            input_example: r.get(13)?,
            example_predictions: r.get(14)?,
            name: r.get(15)?,
        },
    })
}

fn get_version(tx: &Transaction<'_>, name: &str, version: u32) -> Result<Version> {
    let v = tx
        .query_row(
            &format!("SELECT {VERSION_COLS} FROM versions WHERE name = ?1 AND version = ?2"),
            params![name, version],
            row_version,
        )
        .optional()?;
    match v {
        Some(v) => Ok(v),
        None => {
            require_model(tx, name)?;
            let mut st =
                tx.prepare("SELECT version FROM versions WHERE name = ?1 ORDER BY version")?;
            let known = st
                .query_map([name], |r| r.get::<_, u32>(0))?
                .map(|v| v.map(|v| v.to_string()))
                .collect::<rusqlite::Result<_>>()?;
            Err(Error::UnknownVersion {
                name: name.to_string(),
                version,
                known,
            })
        }
    }
}

fn aliases_of(tx: &Transaction<'_>, name: &str) -> Result<BTreeMap<String, u32>> {
    let mut st = tx.prepare("SELECT alias, version FROM aliases WHERE name = ?1")?;
    let m = st
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(m)
}

fn summary(tx: &Transaction<'_>, name: &str) -> Result<ModelSummary> {
    require_model(tx, name)?;
    let (created_at, latest, count): (i64, Option<u32>, u32) = tx.query_row(
        "SELECT m.created_at, (SELECT MAX(version) FROM versions v WHERE v.name = m.name), (SELECT COUNT(*) FROM versions v WHERE v.name = m.name) FROM models m WHERE m.name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(ModelSummary {
        name: name.to_string(),
        created_at,
        latest,
        versions: count,
        aliases: aliases_of(tx, name)?,
    })
}

fn record(
    tx: &Transaction<'_>,
    name: &str,
    alias: &str,
    from: Option<u32>,
    to: Option<u32>,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    let at = now_ms();
    tx.execute(
        "INSERT INTO alias_history (name, alias, from_version, to_version, at, by, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![name, alias, from, to, at, by, reason],
    )?;
    Ok(AliasEvent {
        alias: alias.to_string(),
        from,
        to,
        at,
        by: by.to_string(),
        reason: reason.to_string(),
    })
}

fn move_alias(
    tx: &Transaction<'_>,
    name: &str,
    alias: &str,
    version: u32,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    get_version(tx, name, version)?;
    let from: Option<u32> = tx
        .query_row(
            "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO aliases (name, alias, version) VALUES (?1, ?2, ?3) ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
        params![name, alias, version],
    )?;
    record(tx, name, alias, from, Some(version), by, reason)
}

impl MetadataStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn create_version(&mut self, v: &NewVersion) -> Result<Version> {
        validate_name("model name", &v.name)?;
        let tx = self.tx()?;
        let at = now_ms();
        tx.execute("INSERT INTO models (name, created_at, last_version) VALUES (?1, ?2, 0) ON CONFLICT(name) DO NOTHING", params![v.name, at])?;
        tx.execute(
            "UPDATE models SET last_version = last_version + 1 WHERE name = ?1",
            [&v.name],
        )?;
        let version: u32 = tx.query_row(
            "SELECT last_version FROM models WHERE name = ?1",
            [&v.name],
            |r| r.get(0),
        )?;
        let tags = serde_json::to_string(&v.tags).unwrap_or_else(|_| "{}".into());
        tx.execute(
            &format!("INSERT INTO versions ({VERSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
            params![
                version, at, v.kind, v.format, v.estimator, v.signature, v.sha256, v.size as i64, v.file_name, v.created_by,
                v.description, tags, v.git_commit, v.input_example, v.example_predictions, v.name
            ],
        )?;
        tx.commit()?;
        Ok(Version {
            version,
            created_at: at,
            meta: v.clone(),
        })
    }

    fn models(&mut self) -> Result<Vec<ModelSummary>> {
        let tx = self.tx()?;
        let names = model_names(&tx)?;
        names.iter().map(|n| summary(&tx, n)).collect()
    }

    fn model(&mut self, name: &str) -> Result<ModelSummary> {
        let tx = self.tx()?;
        summary(&tx, name)
    }

    fn versions(&mut self, name: &str) -> Result<Vec<Version>> {
        let tx = self.tx()?;
        require_model(&tx, name)?;
        let mut st = tx.prepare(&format!(
            "SELECT {VERSION_COLS} FROM versions WHERE name = ?1 ORDER BY version"
        ))?;
        let v = st
            .query_map([name], row_version)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    fn resolve(&mut self, name: &str, selector: &Selector) -> Result<Version> {
        let tx = self.tx()?;
        match selector {
            Selector::Version(v) => get_version(&tx, name, *v),
            Selector::Alias(a) => {
                let v: Option<u32> = tx
                    .query_row(
                        "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2",
                        params![name, a],
                        |r| r.get(0),
                    )
                    .optional()?;
                match v {
                    Some(v) => get_version(&tx, name, v),
                    None => {
                        require_model(&tx, name)?;
                        Err(Error::UnknownAlias {
                            name: name.to_string(),
                            alias: a.clone(),
                            known: aliases_of(&tx, name)?.into_keys().collect(),
                        })
                    }
                }
            }
            Selector::Latest => {
                let s = summary(&tx, name)?;
                match s.latest {
                    Some(v) => get_version(&tx, name, v),
                    None => Err(Error::UnknownVersion {
                        name: name.to_string(),
                        version: 0,
                        known: Vec::new(),
                    }),
                }
            }
        }
    }

    fn set_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: u32,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent> {
        validate_name("alias", alias)?;
        let tx = self.tx()?;
        let e = move_alias(&tx, name, alias, version, by, reason)?;
        tx.commit()?;
        Ok(e)
    }

    fn delete_alias(
        &mut self,
        name: &str,
        alias: &str,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent> {
        let tx = self.tx()?;
        require_model(&tx, name)?;
        let from: Option<u32> = tx
            .query_row(
                "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?;
        let Some(from) = from else {
            return Err(Error::UnknownAlias {
                name: name.into(),
                alias: alias.into(),
                known: aliases_of(&tx, name)?.into_keys().collect(),
            });
        };
        tx.execute(
            "DELETE FROM aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
        )?;
        let e = record(&tx, name, alias, Some(from), None, by, reason)?;
        tx.commit()?;
        Ok(e)
    }

    fn rollback(&mut self, name: &str, alias: &str, by: &str, reason: &str) -> Result<AliasEvent> {
        let tx = self.tx()?;
        require_model(&tx, name)?;
        let last: Option<(Option<u32>, Option<u32>)> = tx
            .query_row(
                "SELECT from_version, to_version FROM alias_history WHERE name = ?1 AND alias = ?2 ORDER BY id DESC LIMIT 1",
                params![name, alias],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((from, _)) = last else {
            return Err(Error::UnknownAlias {
                name: name.into(),
                alias: alias.into(),
                known: aliases_of(&tx, name)?.into_keys().collect(),
            });
        };
        let Some(previous) = from else {
            return Err(Error::NothingToRollBack {
                name: name.into(),
                alias: alias.into(),
            });
        };
        let e = move_alias(&tx, name, alias, previous, by, reason)?;
        tx.commit()?;
        Ok(e)
    }

    fn history(&mut self, name: &str) -> Result<Vec<AliasEvent>> {
        let tx = self.tx()?;
        require_model(&tx, name)?;
        let mut st = tx.prepare("SELECT alias, from_version, to_version, at, by, reason FROM alias_history WHERE name = ?1 ORDER BY id")?;
        let h = st
            .query_map([name], |r| {
                Ok(AliasEvent {
                    alias: r.get(0)?,
                    from: r.get(1)?,
                    to: r.get(2)?,
                    at: r.get(3)?,
                    by: r.get(4)?,
                    reason: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(h)
    }

    fn delete_version(&mut self, name: &str, version: u32) -> Result<(Version, bool)> {
        let tx = self.tx()?;
        let v = get_version(&tx, name, version)?;
        let held: Vec<String> = aliases_of(&tx, name)?
            .into_iter()
            .filter(|(_, to)| *to == version)
            .map(|(a, _)| a)
            .collect();
        if !held.is_empty() {
            return Err(Error::VersionInUse {
                name: name.into(),
                version,
                aliases: held,
            });
        }
        tx.execute(
            "DELETE FROM versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )?;
        let still: i64 = tx.query_row(
            "SELECT COUNT(*) FROM versions WHERE sha256 = ?1",
            [&v.meta.sha256],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok((v, still > 0))
    }

    fn delete_model(&mut self, name: &str) -> Result<Vec<String>> {
        let tx = self.tx()?;
        require_model(&tx, name)?;
        let aliases = aliases_of(&tx, name)?;
        if let Some((alias, version)) = aliases.iter().next() {
            return Err(Error::VersionInUse {
                name: name.into(),
                version: *version,
                aliases: vec![alias.clone()],
            });
        }
        let mut st = tx.prepare("SELECT DISTINCT sha256 FROM versions WHERE name = ?1")?;
        let shas: Vec<String> = st
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(st);
        tx.execute("DELETE FROM versions WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM alias_history WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM models WHERE name = ?1", [name])?;
        let mut unused = Vec::new();
        for s in shas {
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM versions WHERE sha256 = ?1",
                [&s],
                |r| r.get(0),
            )?;
            if n == 0 {
                unused.push(s);
            }
        }
        tx.commit()?;
        Ok(unused)
    }
}

//! The PostgreSQL metadata store, for many replicas sharing one registry.
//!
//! Same schema and semantics as the SQLite store; version numbers come from an
//! `UPDATE … RETURNING` on the model's row, which serialises concurrent registrations.

use std::collections::BTreeMap;
use std::time::Duration;

use postgres::{Client, NoTls, Transaction};

use crate::error::{Error, Result};
use crate::reference::{Selector, validate_name};
use crate::sqlite::now_ms;
use crate::store::{AliasEvent, MetadataStore, ModelSummary, NewVersion, Version};

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE versions (
    name TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    estimator TEXT NOT NULL,
    signature TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
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
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER,
    at BIGINT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX alias_history_name ON alias_history(name, id);
"#];

/// Metadata in PostgreSQL.
pub struct PgStore {
    client: Client,
    url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn pg(url: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::Store {
        store: redact(url),
        message: describe(&e),
    }
}

/// The driver's error with the server's own message, which `Display` leaves out.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        }
    }
}

impl PgStore {
    /// Connects (giving up after 10 seconds) and applies pending migrations.
    pub fn connect(url: &str) -> Result<PgStore> {
        let mut config: postgres::Config = url.parse().map_err(pg(url))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let client = config.connect(NoTls).map_err(pg(url))?;
        let mut s = PgStore {
            client,
            url: url.to_string(),
        };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<()> {
        let url = self.url.clone();
        let mut tx = self.client.transaction().map_err(pg(&url))?;
        // One migrator at a time across every replica.
        tx.execute("SELECT pg_advisory_xact_lock(72422026)", &[])
            .map_err(pg(&url))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL)")
            .map_err(pg(&url))?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .map_err(pg(&url))?
            .get(0);
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(m).map_err(pg(&url))?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .map_err(pg(&url))?;
        }
        tx.commit().map_err(pg(&url))
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let url = self.url.clone();
        let mut tx = self.client.transaction().map_err(pg(&url))?;
        let out = f(&mut tx)?;
        tx.commit().map_err(pg(&url))?;
        Ok(out)
    }
}

/// Maps driver errors inside a transaction (the URL is not at hand there).
fn q(e: postgres::Error) -> Error {
    Error::Store {
        store: "postgres".into(),
        message: describe(&e),
    }
}

fn model_names(tx: &mut Transaction<'_>) -> Result<Vec<String>> {
    Ok(tx
        .query("SELECT name FROM models ORDER BY name", &[])
        .map_err(q)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

fn require_model(tx: &mut Transaction<'_>, name: &str) -> Result<()> {
    if tx
        .query_opt("SELECT name FROM models WHERE name = $1", &[&name])
        .map_err(q)?
        .is_none()
    {
        return Err(Error::UnknownModel {
            name: name.to_string(),
            known: model_names(tx)?,
        });
    }
    Ok(())
}

const VERSION_COLS: &str = "version, created_at, kind, format, estimator, signature, sha256, size, file_name, created_by, description, tags, git_commit, input_example, example_predictions, name";

fn row_version(r: &postgres::Row) -> Version {
    let tags: String = r.get(11);
    Version {
        version: r.get::<_, i32>(0) as u32,
        created_at: r.get(1),
        meta: NewVersion {
            kind: r.get(2),
            format: r.get(3),
            estimator: r.get(4),
            signature: r.get(5),
            sha256: r.get(6),
            size: r.get::<_, i64>(7) as u64,
            file_name: r.get(8),
            created_by: r.get(9),
            description: r.get(10),
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            git_commit: r.get(12),
            input_example: r.get(13),
            example_predictions: r.get(14),
            name: r.get(15),
        },
    }
}

fn get_version(tx: &mut Transaction<'_>, name: &str, version: u32) -> Result<Version> {
    let v = version as i32;
    match tx
        .query_opt(
            &format!("SELECT {VERSION_COLS} FROM versions WHERE name = $1 AND version = $2"),
            &[&name, &v],
        )
        .map_err(q)?
    {
        Some(r) => Ok(row_version(&r)),
        None => {
            require_model(tx, name)?;
            let known = tx
                .query(
                    "SELECT version FROM versions WHERE name = $1 ORDER BY version",
                    &[&name],
                )
                .map_err(q)?
                .iter()
                .map(|r| r.get::<_, i32>(0).to_string())
                .collect();
            Err(Error::UnknownVersion {
                name: name.to_string(),
                version,
                known,
            })
        }
    }
}

fn aliases_of(tx: &mut Transaction<'_>, name: &str) -> Result<BTreeMap<String, u32>> {
    Ok(tx
        .query(
            "SELECT alias, version FROM aliases WHERE name = $1",
            &[&name],
        )
        .map_err(q)?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i32>(1) as u32))
        .collect())
}

fn alias_target(tx: &mut Transaction<'_>, name: &str, alias: &str) -> Result<Option<u32>> {
    Ok(tx
        .query_opt(
            "SELECT version FROM aliases WHERE name = $1 AND alias = $2",
            &[&name, &alias],
        )
        .map_err(q)?
        .map(|r| r.get::<_, i32>(0) as u32))
}

fn summary(tx: &mut Transaction<'_>, name: &str) -> Result<ModelSummary> {
    require_model(tx, name)?;
    let r = tx
        .query_one(
            "SELECT m.created_at, (SELECT MAX(version) FROM versions v WHERE v.name = m.name), (SELECT COUNT(*) FROM versions v WHERE v.name = m.name) FROM models m WHERE m.name = $1",
            &[&name],
        )
        .map_err(q)?;
    Ok(ModelSummary {
        name: name.to_string(),
        created_at: r.get(0),
        latest: r.get::<_, Option<i32>>(1).map(|v| v as u32),
        versions: r.get::<_, i64>(2) as u32,
        aliases: aliases_of(tx, name)?,
    })
}

fn record(
    tx: &mut Transaction<'_>,
    name: &str,
    alias: &str,
    from: Option<u32>,
    to: Option<u32>,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    let at = now_ms();
    let (f, t) = (from.map(|v| v as i32), to.map(|v| v as i32));
    tx.execute(
        "INSERT INTO alias_history (name, alias, from_version, to_version, at, by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&name, &alias, &f, &t, &at, &by, &reason],
    )
    .map_err(q)?;
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
    tx: &mut Transaction<'_>,
    name: &str,
    alias: &str,
    version: u32,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    get_version(tx, name, version)?;
    let from = alias_target(tx, name, alias)?;
    let v = version as i32;
    tx.execute(
        "INSERT INTO aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        &[&name, &alias, &v],
    )
    .map_err(q)?;
    record(tx, name, alias, from, Some(version), by, reason)
}

impl MetadataStore for PgStore {
    fn describe(&self) -> String {
        redact(&self.url)
    }

    fn create_version(&mut self, v: &NewVersion) -> Result<Version> {
        validate_name("model name", &v.name)?;
        self.run(|tx| {
            let at = now_ms();
            tx.execute("INSERT INTO models (name, created_at, last_version) VALUES ($1, $2, 0) ON CONFLICT (name) DO NOTHING", &[&v.name, &at]).map_err(q)?;
            let version: i32 = tx.query_one("UPDATE models SET last_version = last_version + 1 WHERE name = $1 RETURNING last_version", &[&v.name]).map_err(q)?.get(0);
            let tags = serde_json::to_string(&v.tags).unwrap_or_else(|_| "{}".into());
            let size = v.size as i64;
            tx.execute(
                &format!("INSERT INTO versions ({VERSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
                &[
                    &version, &at, &v.kind, &v.format, &v.estimator, &v.signature, &v.sha256, &size, &v.file_name, &v.created_by,
                    &v.description, &tags, &v.git_commit, &v.input_example, &v.example_predictions, &v.name,
                ],
            )
            .map_err(q)?;
            Ok(Version { version: version as u32, created_at: at, meta: v.clone() })
        })
    }

    fn models(&mut self) -> Result<Vec<ModelSummary>> {
        self.run(|tx| {
            let names = model_names(tx)?;
            names.iter().map(|n| summary(tx, n)).collect()
        })
    }

    fn model(&mut self, name: &str) -> Result<ModelSummary> {
        self.run(|tx| summary(tx, name))
    }

    fn versions(&mut self, name: &str) -> Result<Vec<Version>> {
        self.run(|tx| {
            require_model(tx, name)?;
            Ok(tx
                .query(
                    &format!(
                        "SELECT {VERSION_COLS} FROM versions WHERE name = $1 ORDER BY version"
                    ),
                    &[&name],
                )
                .map_err(q)?
                .iter()
                .map(row_version)
                .collect())
        })
    }

    fn resolve(&mut self, name: &str, selector: &Selector) -> Result<Version> {
        self.run(|tx| match selector {
            Selector::Version(v) => get_version(tx, name, *v),
            Selector::Alias(a) => match alias_target(tx, name, a)? {
                Some(v) => get_version(tx, name, v),
                None => {
                    require_model(tx, name)?;
                    Err(Error::UnknownAlias {
                        name: name.to_string(),
                        alias: a.clone(),
                        known: aliases_of(tx, name)?.into_keys().collect(),
                    })
                }
            },
            Selector::Latest => match summary(tx, name)?.latest {
                Some(v) => get_version(tx, name, v),
                None => Err(Error::UnknownVersion {
                    name: name.to_string(),
                    version: 0,
                    known: Vec::new(),
                }),
            },
        })
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
        self.run(|tx| move_alias(tx, name, alias, version, by, reason))
    }

    fn delete_alias(
        &mut self,
        name: &str,
        alias: &str,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent> {
        self.run(|tx| {
            require_model(tx, name)?;
            let Some(from) = alias_target(tx, name, alias)? else {
                return Err(Error::UnknownAlias {
                    name: name.into(),
                    alias: alias.into(),
                    known: aliases_of(tx, name)?.into_keys().collect(),
                });
            };
            tx.execute(
                "DELETE FROM aliases WHERE name = $1 AND alias = $2",
                &[&name, &alias],
            )
            .map_err(q)?;
            record(tx, name, alias, Some(from), None, by, reason)
        })
    }

    fn rollback(&mut self, name: &str, alias: &str, by: &str, reason: &str) -> Result<AliasEvent> {
        self.run(|tx| {
            require_model(tx, name)?;
            let last = tx
                .query_opt("SELECT from_version FROM alias_history WHERE name = $1 AND alias = $2 ORDER BY id DESC LIMIT 1", &[&name, &alias])
                .map_err(q)?;
            let Some(last) = last else {
                return Err(Error::UnknownAlias { name: name.into(), alias: alias.into(), known: aliases_of(tx, name)?.into_keys().collect() });
            };
            let Some(previous) = last.get::<_, Option<i32>>(0) else {
                return Err(Error::NothingToRollBack { name: name.into(), alias: alias.into() });
            };
            move_alias(tx, name, alias, previous as u32, by, reason)
        })
    }

    fn history(&mut self, name: &str) -> Result<Vec<AliasEvent>> {
        self.run(|tx| {
            require_model(tx, name)?;
            Ok(tx
                .query("SELECT alias, from_version, to_version, at, by, reason FROM alias_history WHERE name = $1 ORDER BY id", &[&name])
                .map_err(q)?
                .iter()
                .map(|r| AliasEvent {
                    alias: r.get(0),
                    from: r.get::<_, Option<i32>>(1).map(|v| v as u32),
                    to: r.get::<_, Option<i32>>(2).map(|v| v as u32),
                    at: r.get(3),
                    by: r.get(4),
                    reason: r.get(5),
                })
                .collect())
        })
    }

    fn delete_version(&mut self, name: &str, version: u32) -> Result<(Version, bool)> {
        self.run(|tx| {
            let v = get_version(tx, name, version)?;
            let held: Vec<String> = aliases_of(tx, name)?
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
                "DELETE FROM versions WHERE name = $1 AND version = $2",
                &[&name, &(version as i32)],
            )
            .map_err(q)?;
            let still: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM versions WHERE sha256 = $1",
                    &[&v.meta.sha256],
                )
                .map_err(q)?
                .get(0);
            Ok((v, still > 0))
        })
    }

    fn delete_model(&mut self, name: &str) -> Result<Vec<String>> {
        self.run(|tx| {
            require_model(tx, name)?;
            if let Some((alias, version)) = aliases_of(tx, name)?.into_iter().next() {
                return Err(Error::VersionInUse {
                    name: name.into(),
                    version,
                    aliases: vec![alias],
                });
            }
            let shas: Vec<String> = tx
                .query(
                    "SELECT DISTINCT sha256 FROM versions WHERE name = $1",
                    &[&name],
                )
                .map_err(q)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.execute("DELETE FROM versions WHERE name = $1", &[&name])
                .map_err(q)?;
            tx.execute("DELETE FROM alias_history WHERE name = $1", &[&name])
                .map_err(q)?;
            tx.execute("DELETE FROM models WHERE name = $1", &[&name])
                .map_err(q)?;
            let mut unused = Vec::new();
            for s in shas {
                let n: i64 = tx
                    .query_one("SELECT COUNT(*) FROM versions WHERE sha256 = $1", &[&s])
                    .map_err(q)?
                    .get(0);
                if n == 0 {
                    unused.push(s);
                }
            }
            Ok(unused)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}

//! The model registry's rules, written once over the driver layer: versions, aliases with their
//! history, and the MLflow registry's descriptions, tags and stages.

use std::collections::BTreeMap;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::filter;
use crate::reference::{Selector, validate_name};
use crate::store::{AliasEvent, MetadataStore, ModelSummary, NewVersion, Version};
use crate::tracking::page;
use crate::vals;

/// Milliseconds since the Unix epoch, as every record of the store keeps time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The metadata store: SQLite or PostgreSQL behind one implementation of every rule.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) db: Db,
}

impl SqlStore {
    /// A SQLite file (created if needed).
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<SqlStore> {
        let db = Db::sqlite(path)?;
        db.migrate(crate::schema::MIGRATIONS)?;
        Ok(SqlStore { db })
    }

    /// A PostgreSQL database; several processes may share it.
    pub fn postgres(url: &str) -> Result<SqlStore> {
        let db = Db::postgres(url)?;
        db.migrate(crate::schema::MIGRATIONS)?;
        Ok(SqlStore { db })
    }

    pub fn describe(&self) -> String {
        self.db.describe().to_string()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

fn model_names(tx: &mut dyn Tx) -> Result<Vec<String>> {
    tx.query("SELECT name FROM models ORDER BY name", &[])?
        .iter()
        .map(|r| r.text(0))
        .collect()
}

pub(crate) fn require_model(tx: &mut dyn Tx, name: &str) -> Result<()> {
    if !tx.lock("models", "name", name.into())? {
        return Err(Error::UnknownModel {
            name: name.to_string(),
            known: model_names(tx)?,
        });
    }
    Ok(())
}

const VERSION_COLS: &str = "version, created_at, kind, format, estimator, signature, sha256, size, file_name, created_by, description, tags, git_commit, input_example, example_predictions, name, source, run_id, model_id, stage, not_servable, updated_at";

fn row_version(r: &crate::db::Row) -> Result<Version> {
    Ok(Version {
        version: r.int(0)? as u32,
        created_at: r.int(1)?,
        meta: NewVersion {
            kind: r.text(2)?,
            format: r.text(3)?,
            estimator: r.text(4)?,
            signature: r.text(5)?,
            sha256: r.text(6)?,
            size: r.int(7)? as u64,
            file_name: r.text(8)?,
            created_by: r.text(9)?,
            description: r.opt_text(10)?,
            tags: serde_json::from_str(&r.text(11)?).unwrap_or_default(),
            git_commit: r.opt_text(12)?,
            input_example: r.opt_text(13)?,
            example_predictions: r.opt_text(14)?,
            name: r.text(15)?,
            source: r.opt_text(16)?,
            run_id: r.opt_text(17)?,
            model_id: r.opt_text(18)?,
            not_servable: r.opt_text(20)?,
        },
        stage: r.text(19)?,
        updated_at: r.int(21)?,
    })
}

pub(crate) fn get_version(tx: &mut dyn Tx, name: &str, version: u32) -> Result<Version> {
    let row = tx.query_opt(
        &format!("SELECT {VERSION_COLS} FROM versions WHERE name = $1 AND version = $2"),
        &vals![name, version],
    )?;
    match row {
        Some(r) => row_version(&r),
        None => {
            require_model(tx, name)?;
            let known = tx
                .query(
                    "SELECT version FROM versions WHERE name = $1 ORDER BY version",
                    &vals![name],
                )?
                .iter()
                .map(|r| r.int(0).map(|v| v.to_string()))
                .collect::<Result<_>>()?;
            Err(Error::UnknownVersion {
                name: name.to_string(),
                version,
                known,
            })
        }
    }
}

fn aliases_of(tx: &mut dyn Tx, name: &str) -> Result<BTreeMap<String, u32>> {
    tx.query(
        "SELECT alias, version FROM aliases WHERE name = $1",
        &vals![name],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.int(1)? as u32)))
    .collect()
}

pub(crate) fn alias_target(tx: &mut dyn Tx, name: &str, alias: &str) -> Result<Option<u32>> {
    Ok(tx
        .query_opt(
            "SELECT version FROM aliases WHERE name = $1 AND alias = $2",
            &vals![name, alias],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .map(|v| v as u32))
}

fn summary(tx: &mut dyn Tx, name: &str) -> Result<ModelSummary> {
    let Some(r) = tx.query_opt(
        "SELECT m.created_at, m.updated_at, m.description, m.tags, (SELECT MAX(version) FROM versions v WHERE v.name = m.name), (SELECT COUNT(*) FROM versions v WHERE v.name = m.name) FROM models m WHERE m.name = $1",
        &vals![name],
    )?
    else {
        return Err(Error::UnknownModel {
            name: name.to_string(),
            known: model_names(tx)?,
        });
    };
    let created_at = r.int(0)?;
    Ok(ModelSummary {
        name: name.to_string(),
        created_at,
        updated_at: r.int(1)?.max(created_at),
        description: r.opt_text(2)?,
        tags: serde_json::from_str(&r.text(3)?).unwrap_or_default(),
        latest: r.opt_int(4)?.map(|v| v as u32),
        versions: r.int(5)? as u32,
        aliases: aliases_of(tx, name)?,
    })
}

/// A tag map with one tag set (`Some`) or removed (`None`), as the JSON its column holds.
fn edited(mut tags: BTreeMap<String, String>, key: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => tags.insert(key.to_string(), v.to_string()),
        None => tags.remove(key),
    };
    serde_json::to_string(&tags).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn record(
    tx: &mut dyn Tx,
    name: &str,
    alias: &str,
    from: Option<u32>,
    to: Option<u32>,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    let at = now_ms();
    tx.exec(
        "INSERT INTO alias_history (name, alias, from_version, to_version, at, by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &vals![name, alias, from, to, at, by, reason],
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

pub(crate) fn move_alias(
    tx: &mut dyn Tx,
    name: &str,
    alias: &str,
    version: u32,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    require_model(tx, name)?;
    get_version(tx, name, version)?;
    let from = alias_target(tx, name, alias)?;
    tx.exec(
        "INSERT INTO aliases (name, alias, version) VALUES ($1, $2, $3) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        &vals![name, alias, version],
    )?;
    record(tx, name, alias, from, Some(version), by, reason)
}

pub(crate) fn remove_alias(
    tx: &mut dyn Tx,
    name: &str,
    alias: &str,
    by: &str,
    reason: &str,
) -> Result<AliasEvent> {
    require_model(tx, name)?;
    let Some(from) = alias_target(tx, name, alias)? else {
        return Err(Error::UnknownAlias {
            name: name.into(),
            alias: alias.into(),
            known: aliases_of(tx, name)?.into_keys().collect(),
        });
    };
    tx.exec(
        "DELETE FROM aliases WHERE name = $1 AND alias = $2",
        &vals![name, alias],
    )?;
    record(tx, name, alias, Some(from), None, by, reason)
}

fn sha_in_use(tx: &mut dyn Tx, sha: &str) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT COUNT(*) FROM versions WHERE sha256 = $1",
            &vals![sha],
        )?
        .int(0)?
        > 0)
}

fn touch_model(tx: &mut dyn Tx, name: &str) -> Result<()> {
    tx.exec(
        "UPDATE models SET updated_at = $2 WHERE name = $1",
        &vals![name, now_ms()],
    )?;
    Ok(())
}

fn insert_model(
    tx: &mut dyn Tx,
    name: &str,
    description: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<bool> {
    let at = now_ms();
    let tags = serde_json::to_string(tags).unwrap_or_else(|_| "{}".into());
    Ok(tx.exec(
        "INSERT INTO models (name, created_at, last_version, description, tags, updated_at) VALUES ($1, $2, 0, $3, $4, $2) ON CONFLICT (name) DO NOTHING",
        &vals![name, at, description, tags],
    )? == 1)
}

impl SqlStore {
    /// Creates a model with no version (the MLflow API's `registered-models/create`).
    pub fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<ModelSummary> {
        validate_name("model name", name)?;
        self.db.write(|tx| {
            if !insert_model(tx, name, description, tags)? {
                return Err(Error::AlreadyExists(format!(
                    "Registered Model (name={name}) already exists."
                )));
            }
            summary(tx, name)
        })
    }

    pub fn summary(&self, name: &str) -> Result<ModelSummary> {
        self.db.read(|tx| summary(tx, name))
    }

    /// Every model, by name.
    pub fn summaries(&self) -> Result<Vec<ModelSummary>> {
        self.db.read(|tx| {
            let names = model_names(tx)?;
            names.iter().map(|n| summary(tx, n)).collect()
        })
    }

    /// Registered models by MLflow's filter (`name`, `description`, `tags.…`) and order
    /// (`name`, `creation_timestamp`, `last_updated_timestamp`), a page at a time.
    pub fn search_models(
        &self,
        filter_text: &str,
        order_by: &[String],
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<(Vec<ModelSummary>, Option<String>)> {
        let conds = filter::parse_with(filter_text, filter::Kind::Attribute)
            .map_err(|e| Error::Invalid(format!("invalid filter: {e}")))?;
        let orders = order_by
            .iter()
            .map(|o| {
                filter::parse_order(o).map_err(|e| Error::Invalid(format!("invalid order_by: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        filter::only_attributes(
            &orders,
            &[
                "name",
                "creation_timestamp",
                "last_updated_timestamp",
                "timestamp",
            ],
            "registered models",
        )
        .map_err(|e| Error::Invalid(format!("invalid order_by: {}", e.message)))?;
        let mut all = self.summaries()?;
        all.retain(|m| {
            filter::matches_object(
                &conds,
                |k| match k {
                    "name" => Some(m.name.clone()),
                    "description" => m.description.clone(),
                    _ => None,
                },
                &m.tags,
            )
        });
        all.sort_by(|a, b| {
            for o in &orders {
                let ord = match o.key.as_str() {
                    "last_updated_timestamp" | "timestamp" => a.updated_at.cmp(&b.updated_at),
                    "creation_timestamp" => a.created_at.cmp(&b.created_at),
                    _ => a.name.cmp(&b.name),
                };
                let ord = if o.ascending { ord } else { ord.reverse() };
                if ord.is_ne() {
                    return ord;
                }
            }
            a.name.cmp(&b.name)
        });
        page(all, max_results, page_token)
    }

    /// Model versions by MLflow's filter (`name`, `version_number`, `run_id`, `source_path`,
    /// `current_stage`, `tags.…`), newest first within a model, a page at a time.
    pub fn search_versions(
        &self,
        filter_text: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<(Vec<Version>, Option<String>)> {
        let conds = filter::parse_with(filter_text, filter::Kind::Attribute)
            .map_err(|e| Error::Invalid(format!("invalid filter: {e}")))?;
        let mut all = self.all_versions()?;
        all.retain(|v| {
            filter::matches_object(
                &conds,
                |k| match k {
                    "name" => Some(v.meta.name.clone()),
                    "version_number" | "version" => Some(v.version.to_string()),
                    "run_id" => v.meta.run_id.clone(),
                    "source_path" | "source" => v.meta.source.clone(),
                    "current_stage" => Some(v.stage.clone()),
                    _ => None,
                },
                &v.meta.tags,
            )
        });
        all.sort_by(|a, b| {
            a.meta
                .name
                .cmp(&b.meta.name)
                .then(b.version.cmp(&a.version))
        });
        page(all, max_results, page_token)
    }

    pub fn set_model_description(&self, name: &str, description: &str) -> Result<ModelSummary> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            tx.exec(
                "UPDATE models SET description = $2, updated_at = $3 WHERE name = $1",
                &vals![name, description, now_ms()],
            )?;
            summary(tx, name)
        })
    }

    /// Sets (`Some`) or deletes (`None`) a model's tag.
    pub fn set_model_tag(&self, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            let tags = edited(summary(tx, name)?.tags, key, value);
            tx.exec(
                "UPDATE models SET tags = $2, updated_at = $3 WHERE name = $1",
                &vals![name, tags, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Renames a model with its versions, aliases and history.
    pub fn rename_model(&self, name: &str, new_name: &str) -> Result<ModelSummary> {
        validate_name("model name", new_name)?;
        self.db.write(|tx| {
            require_model(tx, name)?;
            if tx.lock("models", "name", new_name.into())? {
                return Err(Error::AlreadyExists(format!(
                    "Registered Model (name={new_name}) already exists."
                )));
            }
            let r = tx.query_one(
                "SELECT created_at, last_version, description, tags FROM models WHERE name = $1",
                &vals![name],
            )?;
            tx.exec(
                "INSERT INTO models (name, created_at, last_version, description, tags, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &vals![new_name, r.int(0)?, r.int(1)?, r.opt_text(2)?, r.text(3)?, now_ms()],
            )?;
            for table in ["versions", "aliases", "alias_history", "rollouts"] {
                tx.exec(
                    &format!("UPDATE {table} SET name = $2 WHERE name = $1"),
                    &vals![name, new_name],
                )?;
            }
            tx.exec("DELETE FROM models WHERE name = $1", &vals![name])?;
            summary(tx, new_name)
        })
    }

    /// Deletes a model as MLflow does: its aliases (recorded), its versions, the model. Returns
    /// the artifacts no other version uses.
    pub fn purge_model(&self, name: &str, by: &str) -> Result<Vec<String>> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            for alias in aliases_of(tx, name)?.into_keys() {
                remove_alias(tx, name, &alias, by, "model deleted")?;
            }
            delete_model_rows(tx, name)
        })
    }

    /// Deletes a version as MLflow does: the aliases pointing at it go first (recorded). Returns
    /// the version and whether another version still uses its artifact.
    pub fn purge_version(&self, name: &str, version: u32, by: &str) -> Result<(Version, bool)> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            for (alias, v) in aliases_of(tx, name)? {
                if v == version {
                    remove_alias(tx, name, &alias, by, "version deleted")?;
                }
            }
            delete_version_row(tx, name, version)
        })
    }

    pub fn set_version_description(
        &self,
        name: &str,
        version: u32,
        description: &str,
    ) -> Result<Version> {
        self.db.write(|tx| {
            get_version(tx, name, version)?;
            tx.exec(
                "UPDATE versions SET description = $3, updated_at = $4 WHERE name = $1 AND version = $2",
                &vals![name, version, description, now_ms()],
            )?;
            get_version(tx, name, version)
        })
    }

    /// Sets (`Some`) or deletes (`None`) a version's tag; a missing key is not an error.
    pub fn set_version_tag(
        &self,
        name: &str,
        version: u32,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.db.write(|tx| {
            // The model's row lock orders concurrent edits of the same tag map.
            require_model(tx, name)?;
            let tags = edited(get_version(tx, name, version)?.meta.tags, key, value);
            tx.exec(
                "UPDATE versions SET tags = $3, updated_at = $4 WHERE name = $1 AND version = $2",
                &vals![name, version, tags, now_ms()],
            )?;
            Ok(())
        })
    }

    /// MLflow's deprecated stages; `archive_existing` moves the others in that stage to Archived.
    pub fn transition_stage(
        &self,
        name: &str,
        version: u32,
        stage: &str,
        archive_existing: bool,
    ) -> Result<Version> {
        self.db.write(|tx| {
            get_version(tx, name, version)?;
            let at = now_ms();
            if archive_existing && matches!(stage, "Staging" | "Production") {
                tx.exec(
                    "UPDATE versions SET stage = 'Archived', updated_at = $4 WHERE name = $1 AND stage = $2 AND version <> $3",
                    &vals![name, stage, version, at],
                )?;
            }
            tx.exec(
                "UPDATE versions SET stage = $3, updated_at = $4 WHERE name = $1 AND version = $2",
                &vals![name, version, stage, at],
            )?;
            get_version(tx, name, version)
        })
    }

    /// Every version of every model (for searches, which filter in memory).
    pub fn all_versions(&self) -> Result<Vec<Version>> {
        self.db.read(|tx| {
            tx.query(
                &format!("SELECT {VERSION_COLS} FROM versions ORDER BY name, version"),
                &[],
            )?
            .iter()
            .map(row_version)
            .collect()
        })
    }

    /// Creates a version of an existing or new model, as `create_version` does.
    pub fn add_version(&self, v: &NewVersion) -> Result<Version> {
        validate_name("model name", &v.name)?;
        self.db.write(|tx| insert_version(tx, v))
    }

    /// A new version and the aliases it takes, in one transaction: a registration that fails
    /// anywhere (a full disk, a lost connection) leaves no version behind, and no version
    /// without the aliases it was registered under.
    pub fn add_version_with_aliases(
        &self,
        v: &NewVersion,
        aliases: &[String],
        by: &str,
        reason: &str,
    ) -> Result<Version> {
        validate_name("model name", &v.name)?;
        for a in aliases {
            validate_name("alias", a)?;
        }
        self.db.write(|tx| {
            let new = insert_version(tx, v)?;
            for a in aliases {
                move_alias(tx, &v.name, a, new.version, by, reason)?;
            }
            get_version(tx, &v.name, new.version)
        })
    }
}

fn insert_version(tx: &mut dyn Tx, v: &NewVersion) -> Result<Version> {
    insert_model(tx, &v.name, None, &BTreeMap::new())?;
    let version = tx
            .query_one(
                "UPDATE models SET last_version = last_version + 1, updated_at = $2 WHERE name = $1 RETURNING last_version",
                &vals![v.name.as_str(), now_ms()],
            )?
            .int(0)? as u32;
    let at = now_ms();
    let tags = serde_json::to_string(&v.tags).unwrap_or_else(|_| "{}".into());
    tx.exec(
            &format!("INSERT INTO versions ({VERSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 'None', $20, $2)"),
            &vals![
                version, at, v.kind.as_str(), v.format.as_str(), v.estimator.as_str(), v.signature.as_str(),
                v.sha256.as_str(), v.size, v.file_name.as_str(), v.created_by.as_str(), v.description.clone(),
                tags, v.git_commit.clone(), v.input_example.clone(), v.example_predictions.clone(),
                v.name.as_str(), v.source.clone(), v.run_id.clone(), v.model_id.clone(), v.not_servable.clone()
            ],
        )?;
    get_version(tx, &v.name, version)
}

fn delete_version_row(tx: &mut dyn Tx, name: &str, version: u32) -> Result<(Version, bool)> {
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
    tx.exec(
        "DELETE FROM versions WHERE name = $1 AND version = $2",
        &vals![name, version],
    )?;
    touch_model(tx, name)?;
    let still = sha_in_use(tx, &v.meta.sha256)?;
    Ok((v, still))
}

fn delete_model_rows(tx: &mut dyn Tx, name: &str) -> Result<Vec<String>> {
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
            &vals![name],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    tx.exec("DELETE FROM versions WHERE name = $1", &vals![name])?;
    tx.exec("DELETE FROM alias_history WHERE name = $1", &vals![name])?;
    tx.exec(
        "DELETE FROM rollout_counts WHERE rollout_id IN (SELECT id FROM rollouts WHERE name = $1)",
        &vals![name],
    )?;
    tx.exec("DELETE FROM rollouts WHERE name = $1", &vals![name])?;
    tx.exec("DELETE FROM models WHERE name = $1", &vals![name])?;
    let mut unused = Vec::new();
    for s in shas {
        if !sha_in_use(tx, &s)? {
            unused.push(s);
        }
    }
    Ok(unused)
}

impl MetadataStore for SqlStore {
    fn describe(&self) -> String {
        SqlStore::describe(self)
    }

    fn create_version(&mut self, v: &NewVersion) -> Result<Version> {
        self.add_version(v)
    }

    fn register(
        &mut self,
        v: &NewVersion,
        aliases: &[String],
        by: &str,
        reason: &str,
    ) -> Result<Version> {
        self.add_version_with_aliases(v, aliases, by, reason)
    }

    fn models(&mut self) -> Result<Vec<ModelSummary>> {
        self.db.read(|tx| {
            let names = model_names(tx)?;
            names.iter().map(|n| summary(tx, n)).collect()
        })
    }

    fn model(&mut self, name: &str) -> Result<ModelSummary> {
        self.db.read(|tx| summary(tx, name))
    }

    fn versions(&mut self, name: &str) -> Result<Vec<Version>> {
        self.db.read(|tx| {
            require_model(tx, name)?;
            tx.query(
                &format!("SELECT {VERSION_COLS} FROM versions WHERE name = $1 ORDER BY version"),
                &vals![name],
            )?
            .iter()
            .map(row_version)
            .collect()
        })
    }

    fn resolve(&mut self, name: &str, selector: &Selector) -> Result<Version> {
        self.db.read(|tx| match selector {
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
        self.db
            .write(|tx| move_alias(tx, name, alias, version, by, reason))
    }

    fn delete_alias(
        &mut self,
        name: &str,
        alias: &str,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent> {
        self.db
            .write(|tx| remove_alias(tx, name, alias, by, reason))
    }

    fn rollback(&mut self, name: &str, alias: &str, by: &str, reason: &str) -> Result<AliasEvent> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            let last = tx.query_opt(
                "SELECT from_version FROM alias_history WHERE name = $1 AND alias = $2 ORDER BY id DESC LIMIT 1",
                &vals![name, alias],
            )?;
            let Some(last) = last else {
                return Err(Error::UnknownAlias {
                    name: name.into(),
                    alias: alias.into(),
                    known: aliases_of(tx, name)?.into_keys().collect(),
                });
            };
            let Some(previous) = last.opt_int(0)? else {
                return Err(Error::NothingToRollBack {
                    name: name.into(),
                    alias: alias.into(),
                });
            };
            move_alias(tx, name, alias, previous as u32, by, reason)
        })
    }

    fn history(&mut self, name: &str) -> Result<Vec<AliasEvent>> {
        self.db.read(|tx| {
            require_model(tx, name)?;
            tx.query(
                "SELECT alias, from_version, to_version, at, by, reason FROM alias_history WHERE name = $1 ORDER BY id",
                &vals![name],
            )?
            .iter()
            .map(|r| {
                Ok(AliasEvent {
                    alias: r.text(0)?,
                    from: r.opt_int(1)?.map(|v| v as u32),
                    to: r.opt_int(2)?.map(|v| v as u32),
                    at: r.int(3)?,
                    by: r.text(4)?,
                    reason: r.text(5)?,
                })
            })
            .collect()
        })
    }

    fn delete_version(&mut self, name: &str, version: u32) -> Result<(Version, bool)> {
        self.db.write(|tx| delete_version_row(tx, name, version))
    }

    fn delete_model(&mut self, name: &str) -> Result<Vec<String>> {
        self.db.write(|tx| {
            require_model(tx, name)?;
            delete_model_rows(tx, name)
        })
    }
}

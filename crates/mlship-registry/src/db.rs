//! One driver layer over SQLite and PostgreSQL, so the store's rules are written once.
//!
//! The store speaks one SQL: PostgreSQL's placeholders (`$1`, `$2`, …), types both databases
//! accept (`BIGINT`, `DOUBLE PRECISION`, `TEXT`), `ON CONFLICT … DO …` and `RETURNING`. This
//! layer rewrites the placeholders for SQLite, binds and reads values dynamically (a [`Value`]
//! converts to whatever integer or float width PostgreSQL asks for), pools connections, and runs
//! each unit of work as one transaction. What truly differs between the two is small and lives
//! here: the serial column of the schema, row locks, and the migrator's lock.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

/// Which database a connection speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to, or read from, a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// `[a, b, c]` as a `Vec<Value>`.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { [$($crate::db::Value::from($v)),*] };
}

/// One row of a result.
#[derive(Clone, Debug)]
pub struct Row(pub Vec<Value>);

fn decode(i: usize, want: &str, got: &Value) -> Error {
    Error::Store {
        store: "database".into(),
        message: format!("column {i}: expected {want}, found {got:?}"),
    }
}

impl Row {
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(*v),
            Some(Value::Real(v)) => Ok(*v as i64),
            other => Err(decode(i, "an integer", other.unwrap_or(&Value::Null))),
        }
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.0.get(i) {
            Some(Value::Null) | None => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
    pub fn real(&self, i: usize) -> Result<f64> {
        match self.0.get(i) {
            Some(Value::Real(v)) => Ok(*v),
            Some(Value::Int(v)) => Ok(*v as f64),
            other => Err(decode(i, "a number", other.unwrap_or(&Value::Null))),
        }
    }
    pub fn text(&self, i: usize) -> Result<String> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(v.clone()),
            other => Err(decode(i, "text", other.unwrap_or(&Value::Null))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.0.get(i) {
            Some(Value::Null) | None => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// A transaction in progress: statements run inside it, and it commits when the unit of work
/// returns `Ok`.
pub trait Tx {
    fn dialect(&self) -> Dialect;
    /// Whether this transaction was begun to write.
    fn writing(&self) -> bool;
    /// Runs a statement; returns the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<()>;
}

impl dyn Tx + '_ {
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| Error::Store {
            store: "database".into(),
            message: format!("no row from {sql}"),
        })
    }
    /// Whether a row exists; in a write transaction it is also locked until the transaction
    /// ends (PostgreSQL's `FOR UPDATE`; SQLite's write transactions hold the whole database, and
    /// reads lock nothing on either).
    pub fn lock(&mut self, table: &str, column: &str, key: Value) -> Result<bool> {
        let suffix = match (self.dialect(), self.writing()) {
            (Dialect::Postgres, true) => " FOR UPDATE",
            _ => "",
        };
        Ok(self
            .query_opt(
                &format!("SELECT 1 FROM {table} WHERE {column} = $1{suffix}"),
                &[key],
            )?
            .is_some())
    }
}

/// `$1` placeholders to SQLite's `?1` (the store writes no `$` inside string literals).
fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let b = sql.as_bytes();
    for (i, c) in sql.char_indices() {
        if c == '$' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>, Mode);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn writing(&self) -> bool {
        self.1 == Mode::Write
    }
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        no_nul(params)?;
        let mut st = self.0.prepare_cached(&sqlite_sql(sql))?;
        Ok(st.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        use rusqlite::types::ValueRef;
        no_nul(params)?;
        let mut st = self.0.prepare_cached(&sqlite_sql(sql))?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(row));
        }
        Ok(out)
    }
    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT8 => v.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to {ty}").into()),
            },
            // A whole number compared with an integer column (a filter's `start_time >= 1020`).
            Value::Real(v)
                if v.fract() == 0.0
                    && v.abs() < 9.0e15
                    && matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8) =>
            {
                Value::Int(*v as i64).to_sql(ty, out)
            }
            Value::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind a number to {ty}").into()),
            },
            Value::Text(v) => v.to_sql(ty, out),
        }
    }
    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

struct PgTx<'a, 'b>(&'a mut postgres::Transaction<'b>, Mode);

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Tx for PgTx<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn writing(&self) -> bool {
        self.1 == Mode::Write
    }
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        no_nul(params)?;
        self.0.execute(sql, &pg_params(params)).map_err(pg_error)
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        use postgres::types::Type;
        no_nul(params)?;
        let rows = self.0.query(sql, &pg_params(params)).map_err(pg_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, c) in r.columns().iter().enumerate() {
                let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
                let v = match *c.type_() {
                    Type::VOID => Value::Null,
                    Type::INT2 => int(r
                        .try_get::<_, Option<i16>>(i)
                        .map_err(pg_error)?
                        .map(i64::from)),
                    Type::INT4 => int(r
                        .try_get::<_, Option<i32>>(i)
                        .map_err(pg_error)?
                        .map(i64::from)),
                    Type::INT8 => int(r.try_get::<_, Option<i64>>(i).map_err(pg_error)?),
                    Type::BOOL => int(r
                        .try_get::<_, Option<bool>>(i)
                        .map_err(pg_error)?
                        .map(i64::from)),
                    Type::FLOAT8 => r
                        .try_get::<_, Option<f64>>(i)
                        .map_err(pg_error)?
                        .map_or(Value::Null, Value::Real),
                    Type::FLOAT4 => r
                        .try_get::<_, Option<f32>>(i)
                        .map_err(pg_error)?
                        .map_or(Value::Null, |v| Value::Real(f64::from(v))),
                    _ => r
                        .try_get::<_, Option<String>>(i)
                        .map_err(pg_error)?
                        .map_or(Value::Null, Value::Text),
                };
                row.push(v);
            }
            out.push(Row(row));
        }
        Ok(out)
    }
    fn batch(&mut self, sql: &str) -> Result<()> {
        self.0.batch_execute(sql).map_err(pg_error)
    }
}

/// Refuses text holding NUL on both databases: PostgreSQL's text cannot store it, and a value
/// one store keeps and the other refuses would make the two behave differently.
fn no_nul(params: &[Value]) -> Result<()> {
    if params
        .iter()
        .any(|p| matches!(p, Value::Text(t) if t.contains('\0')))
    {
        return Err(Error::Invalid(
            "a text value holds a NUL character, which the store cannot keep".into(),
        ));
    }
    Ok(())
}

/// The driver's error with the server's own message, which `Display` leaves out.
pub(crate) fn pg_error(e: postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        }
    };
    // A lost or refused connection is the store being unavailable, which callers may retry; a
    // value that does not convert is a fault of ours, not the database's absence.
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut io = false;
    while let Some(c) = src {
        io |= c.is::<std::io::Error>();
        src = c.source();
    }
    if e.is_closed() || io {
        return Error::Unavailable(message);
    }
    Error::Store {
        store: "postgres".into(),
        message,
    }
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(Box<postgres::Client>),
}

/// Where the database is and how to reach it.
#[derive(Clone, Debug)]
enum Target {
    Sqlite(std::path::PathBuf),
    Pg(Box<postgres::Config>),
}

struct Pool {
    target: Target,
    describe: String,
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
    max: usize,
}

/// A pool of connections to one database; cheap to clone, shared across threads.
#[derive(Clone)]
pub struct Db(Arc<Pool>);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Db").field(&self.0.describe).finish()
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A connection taken from the pool; it goes back when the lease ends, even by a panic (then
/// it is closed, and its slot freed, rather than reused).
struct Lease<'a> {
    db: &'a Db,
    conn: Option<Conn>,
    healthy: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.db
                .give_back(c, self.healthy && !std::thread::panicking());
        }
    }
}

/// Whether a write should begin with SQLite's write lock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
}

impl Db {
    /// A SQLite file (created with its folder if needed).
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Db> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(crate::error::io(format!("creating {}", dir.display())))?;
        }
        let db = Db(Arc::new(Pool {
            describe: format!("sqlite://{}", path.display()),
            target: Target::Sqlite(path),
            idle: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            max: 16,
        }));
        // Open one connection now, so a bad path fails here.
        let c = db.connect()?;
        db.give_back(c, true);
        Ok(db)
    }

    /// A PostgreSQL database (`postgres://user:password@host:port/db`).
    pub fn postgres(url: &str) -> Result<Db> {
        let mut config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| Error::Store {
                store: redact(url),
                message: e.to_string(),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let db = Db(Arc::new(Pool {
            describe: redact(url),
            target: Target::Pg(Box::new(config)),
            idle: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            max: 8,
        }));
        let c = db.connect()?;
        db.give_back(c, true);
        Ok(db)
    }

    pub fn describe(&self) -> &str {
        &self.0.describe
    }

    pub fn dialect(&self) -> Dialect {
        match self.0.target {
            Target::Sqlite(_) => Dialect::Sqlite,
            Target::Pg(_) => Dialect::Postgres,
        }
    }

    fn connect(&self) -> Result<Conn> {
        let store = || self.0.describe.clone();
        match &self.0.target {
            Target::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).map_err(|e| Error::Store {
                    store: store(),
                    message: e.to_string(),
                })?;
                conn.busy_timeout(Duration::from_secs(30))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                // MLflow's LIKE is case-sensitive, as PostgreSQL's is.
                conn.pragma_update(None, "case_sensitive_like", "ON")?;
                // 1 MiB of page cache per connection (SQLite's default is 2): the pool holds up
                // to 16, and the operating system's cache holds the file anyway.
                conn.pragma_update(None, "cache_size", -1024)?;
                conn.set_prepared_statement_cache_capacity(64);
                Ok(Conn::Sqlite(conn))
            }
            Target::Pg(config) => {
                let c = config
                    .connect(postgres::NoTls)
                    .map_err(|e| match pg_error(e) {
                        Error::Unavailable(m) | Error::Store { message: m, .. } => {
                            Error::Unavailable(format!("{}: {m}", store()))
                        }
                        other => other,
                    })?;
                Ok(Conn::Pg(Box::new(c)))
            }
        }
    }

    fn take(&self) -> Result<Conn> {
        let mut g = self
            .0
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(c) = g.0.pop() {
                return Ok(c);
            }
            if g.1 < self.0.max {
                g.1 += 1;
                drop(g);
                return self.connect().inspect_err(|_| {
                    let mut g = self
                        .0
                        .idle
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.1 -= 1;
                    self.0.freed.notify_one();
                });
            }
            g = self
                .0
                .freed
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn give_back(&self, c: Conn, healthy: bool) {
        let mut g = self
            .0
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let alive = match &c {
            Conn::Sqlite(_) => true,
            Conn::Pg(p) => !p.is_closed(),
        };
        if healthy && alive {
            g.0.push(c);
        } else {
            g.1 = g.1.saturating_sub(1);
        }
        self.0.freed.notify_one();
    }

    /// Runs `f` as one transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn run<T>(&self, mode: Mode, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut lease = Lease {
            db: self,
            conn: Some(self.take()?),
            healthy: false,
        };
        let conn = lease.conn.as_mut().expect("a lease holds its connection");
        let out = match conn {
            Conn::Sqlite(c) => {
                let behavior = match mode {
                    Mode::Read => rusqlite::TransactionBehavior::Deferred,
                    Mode::Write => rusqlite::TransactionBehavior::Immediate,
                };
                (|| {
                    let tx = c.transaction_with_behavior(behavior)?;
                    let out = f(&mut SqliteTx(&tx, mode))?;
                    tx.commit()?;
                    Ok(out)
                })()
            }
            Conn::Pg(c) => (|| {
                let mut tx = c.transaction().map_err(pg_error)?;
                let out = f(&mut PgTx(&mut tx, mode))?;
                tx.commit().map_err(pg_error)?;
                Ok(out)
            })(),
        };
        lease.healthy = !matches!(out, Err(Error::Unavailable(_)));
        out
    }

    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.run(Mode::Read, f)
    }

    pub fn write<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.run(Mode::Write, f)
    }

    /// Applies the migrations this build has not yet applied, one migrator at a time; refuses a
    /// database written by a newer mlship. `{serial}` in a migration is the dialect's
    /// auto-increment key column.
    pub fn migrate(&self, migrations: &[&str]) -> Result<()> {
        let describe = self.0.describe.clone();
        self.write(|tx| {
            if tx.dialect() == Dialect::Postgres {
                tx.query("SELECT pg_advisory_xact_lock(72422026)", &[])?;
            }
            tx.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL)")?;
            let current = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )?
                .int(0)? as usize;
            if current > migrations.len() {
                return Err(Error::Store {
                    store: describe.clone(),
                    message: format!(
                        "the database is at schema version {current}, newer than this mlship knows ({}); upgrade mlship",
                        migrations.len()
                    ),
                });
            }
            let serial = match tx.dialect() {
                Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
                Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
            };
            for (i, m) in migrations.iter().enumerate().skip(current) {
                tx.batch(&m.replace("{serial}", serial))?;
                tx.exec(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &vals![i as i64 + 1],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlite_numbers() {
        assert_eq!(
            sqlite_sql("SELECT a FROM t WHERE a = $1 AND b IN ($2, $10)"),
            "SELECT a FROM t WHERE a = ?1 AND b IN (?2, ?10)"
        );
        assert_eq!(sqlite_sql("SELECT 'é'"), "SELECT 'é'");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn a_panic_inside_a_transaction_frees_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::sqlite(dir.path().join("x.db")).unwrap();
        for _ in 0..2 * db.0.max {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                db.read(|_| -> Result<()> { panic!("a bug in a unit of work") })
            }));
            assert!(r.is_err());
        }
        // More panics than the pool has connections, and it still lends one.
        let one = db.read(|tx| tx.query_one("SELECT 1", &[])?.int(0)).unwrap();
        assert_eq!(one, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::sqlite(dir.path().join("x.db")).unwrap();
        db.migrate(&["CREATE TABLE a (id {serial})", "CREATE TABLE b (x TEXT)"])
            .unwrap();
        let err = db.migrate(&["CREATE TABLE a (id {serial})"]).unwrap_err();
        assert!(err.to_string().contains("newer than this mlship"), "{err}");
        // The same list again is a no-op.
        db.migrate(&["CREATE TABLE a (id {serial})", "CREATE TABLE b (x TEXT)"])
            .unwrap();
    }
}

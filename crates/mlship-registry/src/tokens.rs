//! API tokens for the servers' authentication: a name, a role, and the sha256 of the secret (the
//! secret itself is shown once, when it is made, and never stored).

use crate::db::Row;
use crate::error::{Error, Result};
use crate::registry::{SqlStore, now_ms};
use crate::vals;

/// What a token may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Score, and read runs, models and artifacts.
    Read,
    /// Log runs and register versions, besides reading.
    Write,
    /// Move aliases, delete, besides writing.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(Error::Invalid(format!(
                "the role {other:?} is not one of read, write, admin"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn token(r: &Row) -> Result<Token> {
    Ok(Token {
        name: r.text(0)?,
        role: Role::parse(&r.text(1)?)?,
        created_at: r.int(2)?,
        revoked_at: r.opt_int(3)?,
    })
}

impl SqlStore {
    /// Records a token by the hash of its secret; the name is unique, revoked tokens included.
    pub fn create_token(&self, name: &str, role: Role, secret_sha256: &str) -> Result<Token> {
        crate::validate_name("token name", name)?;
        if name.contains(':') {
            // HTTP basic authentication sends `name:secret`.
            return Err(Error::Invalid(format!(
                "the token name {name:?} holds a ':', which HTTP basic authentication cannot carry"
            )));
        }
        self.db.write(|tx| {
            let at = now_ms();
            let made = tx.query_opt(
                "INSERT INTO tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING name",
                &vals![name, role.name(), secret_sha256, at],
            )?;
            if made.is_none() {
                return Err(Error::AlreadyExists(format!(
                    "a token named `{name}` exists already"
                )));
            }
            Ok(Token {
                name: name.to_string(),
                role,
                created_at: at,
                revoked_at: None,
            })
        })
    }

    /// Every token, revoked ones too, by name.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        self.db.read(|tx| {
            tx.query(
                "SELECT name, role, created_at, revoked_at FROM tokens ORDER BY name",
                &[],
            )?
            .iter()
            .map(token)
            .collect()
        })
    }

    /// Revokes a token: it stops working at once on this store (servers cache a lookup for a
    /// few seconds).
    pub fn revoke_token(&self, name: &str) -> Result<Token> {
        self.db.write(|tx| {
            let row = tx
                .query_opt(
                    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1 RETURNING name, role, created_at, revoked_at",
                    &vals![name, now_ms()],
                )?
                .ok_or_else(|| Error::NotFound(format!("no token named `{name}`")))?;
            token(&row)
        })
    }

    /// The live (not revoked) token whose secret hashes to this.
    pub fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<Token>> {
        self.db.read(|tx| {
            tx.query_opt(
                "SELECT name, role, created_at, revoked_at FROM tokens WHERE hash = $1 AND revoked_at IS NULL",
                &vals![secret_sha256],
            )?
            .as_ref()
            .map(token)
            .transpose()
        })
    }
}

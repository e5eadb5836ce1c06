//! `mlship tokens`: the API tokens `serve --auth` and `server --auth` accept, kept hashed in the
//! registry's database.

use mlship_registry::{Role, Token};
use serde_json::{Value as Json, json};

use super::models::print;
use crate::cli::{RoleArg, TokensCommand};
use crate::settings::Settings;
use crate::timefmt::rfc3339;

pub fn run(c: TokensCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = settings.sql()?;
    match c {
        TokensCommand::Create(a) => {
            let role = match a.role {
                RoleArg::Read => Role::Read,
                RoleArg::Write => Role::Write,
                RoleArg::Admin => Role::Admin,
            };
            let secret = new_secret()?;
            let t = store.create_token(&a.name, role, &mlship_server::auth::sha256_hex(&secret))?;
            print(
                a.out.output,
                &json!({"name": t.name, "role": t.role.name(), "token": secret}),
                &["NAME", "ROLE", "TOKEN (shown once)"],
                vec![vec![t.name.clone(), t.role.name().into(), secret.clone()]],
            );
        }
        TokensCommand::List(out) => {
            let tokens = store.tokens()?;
            print(
                out.output,
                &Json::Array(tokens.iter().map(doc).collect()),
                &["NAME", "ROLE", "CREATED", "REVOKED"],
                tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.role.name().into(),
                            rfc3339(t.created_at),
                            t.revoked_at.map_or_else(|| "-".into(), rfc3339),
                        ]
                    })
                    .collect(),
            );
        }
        TokensCommand::Revoke(a) => {
            let t = store.revoke_token(&a.name)?;
            crate::outln!("revoked {}", t.name);
        }
    }
    Ok(())
}

fn doc(t: &Token) -> Json {
    json!({
        "name": t.name,
        "role": t.role.name(),
        "created_at": rfc3339(t.created_at),
        "revoked_at": t.revoked_at.map(rfc3339),
    })
}

/// 256 random bits from the operating system, as `mls_` and hex.
fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read random bytes from the system: {e}"))?;
    Ok(format!("mls_{}", hex(&bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

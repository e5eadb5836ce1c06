//! Names and `models:/` references, as MLflow spells them.

use crate::error::{Error, Result};

/// What a `models:/` reference points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Version(u32),
    Alias(String),
    Latest,
}

/// A parsed `models:/NAME/VERSION`, `models:/NAME@ALIAS` or `models:/NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub selector: Selector,
}

impl Reference {
    /// Parses a `models:/` URI; `None` when the string is not one (a path, say).
    pub fn parse(s: &str) -> Option<Result<Reference>> {
        let rest = s.strip_prefix("models:/")?;
        Some(Self::parse_spec(rest).map_err(|_| Error::BadReference(s.to_string())))
    }

    /// Parses `NAME`, `NAME/VERSION` or `NAME@ALIAS` (the part after `models:/`, or a route's `{name}`).
    pub fn parse_spec(rest: &str) -> Result<Reference> {
        let bad = || Error::BadReference(format!("models:/{rest}"));
        let (name, selector) = if let Some((n, a)) = rest.split_once('@') {
            validate_name("alias", a).map_err(|_| bad())?;
            (n, Selector::Alias(a.to_string()))
        } else if let Some((n, v)) = rest.split_once('/') {
            let v: u32 = v.parse().map_err(|_| bad())?;
            if v == 0 {
                return Err(bad());
            }
            (n, Selector::Version(v))
        } else {
            (rest, Selector::Latest)
        };
        validate_name("model name", name).map_err(|_| bad())?;
        Ok(Reference {
            name: name.to_string(),
            selector,
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.selector {
            Selector::Version(v) => write!(f, "models:/{}/{v}", self.name),
            Selector::Alias(a) => write!(f, "models:/{}@{a}", self.name),
            Selector::Latest => write!(f, "models:/{}", self.name),
        }
    }
}

/// Model names and aliases: 1 to 128 characters, no slash, `@`, whitespace or control characters.
pub fn validate_name(what: &'static str, s: &str) -> Result<()> {
    let why = if s.is_empty() {
        Some("it is empty")
    } else if s.chars().count() > 128 {
        Some("it is longer than 128 characters")
    } else if s.chars().any(|c| c.is_control()) {
        Some("it holds a control character")
    } else if s
        .chars()
        .any(|c| c == '/' || c == '\\' || c == '@' || c.is_whitespace())
    {
        Some("it holds a slash, backslash, @ or whitespace")
    } else if what == "alias" && s.chars().all(|c| c.is_ascii_digit()) {
        Some("an alias cannot be a number (it would read as a version)")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidName {
            what,
            value: s.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mlflow_references() {
        let r = |s: &str| Reference::parse(s).unwrap().unwrap();
        assert_eq!(r("models:/fraud/3").selector, Selector::Version(3));
        assert_eq!(
            r("models:/fraud@production").selector,
            Selector::Alias("production".into())
        );
        assert_eq!(r("models:/fraud").selector, Selector::Latest);
        assert!(Reference::parse("models:/").unwrap().is_err());
        assert!(Reference::parse("models:/a/b").unwrap().is_err());
        assert!(Reference::parse("models:/a/0").unwrap().is_err());
        assert!(Reference::parse("model.pkl").is_none());
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["", "a/b", "a b", "a\u{7}", "a@b"] {
            assert!(validate_name("model name", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("alias", "12").is_err());
        assert!(validate_name("model name", "fraud-v2_final.1").is_ok());
    }
}

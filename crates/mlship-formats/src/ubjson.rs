//! A bounded reader of Universal Binary JSON (draft 12), the encoding of XGBoost's `.ubj` files.
//!
//! It yields a `serde_json::Value`, so the XGBoost loader reads JSON and UBJSON alike. Every
//! count is checked against the bytes left before anything is allocated, and nesting is limited.

use serde_json::{Map, Number, Value};

use crate::error::{Result, malformed};

const FORMAT: &str = "UBJSON";
/// Deeper documents are refused: XGBoost's files nest about six levels.
const MAX_DEPTH: usize = 64;

/// Decodes one UBJSON value that fills `b` (trailing no-ops aside).
pub fn parse(b: &[u8]) -> Result<Value> {
    let mut r = Reader { b, pos: 0 };
    let v = r.value(0)?;
    while r.pos < b.len() && b[r.pos] == b'N' {
        r.pos += 1;
    }
    if r.pos != b.len() {
        return Err(malformed(FORMAT, r.pos, "bytes after the document"));
    }
    Ok(v)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

/// The encoded size of a fixed-size type marker, `None` for variable-size ones.
fn fixed_size(marker: u8) -> Option<usize> {
    match marker {
        b'Z' | b'T' | b'F' => Some(0),
        b'i' | b'U' | b'C' => Some(1),
        b'I' => Some(2),
        b'l' | b'd' => Some(4),
        b'L' | b'D' => Some(8),
        _ => None,
    }
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(crate::Error::Truncated {
                format: FORMAT,
                offset: self.pos,
                needed: n,
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn int(&mut self, marker: u8) -> Result<i64> {
        let at = self.pos;
        Ok(match marker {
            b'i' => i64::from(self.byte()? as i8),
            b'U' => i64::from(self.byte()?),
            b'I' => i64::from(i16::from_be_bytes(self.take(2)?.try_into().expect("2"))),
            b'l' => i64::from(i32::from_be_bytes(self.take(4)?.try_into().expect("4"))),
            b'L' => i64::from_be_bytes(self.take(8)?.try_into().expect("8")),
            m => {
                return Err(malformed(
                    FORMAT,
                    at,
                    format!("expected an integer marker, found {m:#04x}"),
                ));
            }
        })
    }

    /// A length: an integer marker and a non-negative value that fits in what is left.
    fn length(&mut self, per_item: usize) -> Result<usize> {
        let at = self.pos;
        let m = self.byte()?;
        let n = self.int(m)?;
        let n = usize::try_from(n)
            .map_err(|_| malformed(FORMAT, at, format!("negative length {n}")))?;
        if n.saturating_mul(per_item.max(1)) > self.remaining() {
            return Err(crate::Error::Truncated {
                format: FORMAT,
                offset: at,
                needed: n.saturating_mul(per_item.max(1)),
            });
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let at = self.pos;
        let n = self.length(1)?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| malformed(FORMAT, at, "a string is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        let mut m = self.byte()?;
        while m == b'N' {
            m = self.byte()?;
        }
        self.typed(m, depth)
    }

    fn typed(&mut self, marker: u8, depth: usize) -> Result<Value> {
        let at = self.pos.saturating_sub(1);
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.int(marker)?),
            b'd' => float(f64::from(f32::from_be_bytes(
                self.take(4)?.try_into().expect("4"),
            ))),
            b'D' => float(f64::from_be_bytes(self.take(8)?.try_into().expect("8"))),
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'S' => Value::String(self.string()?),
            b'H' => {
                let s = self.string()?;
                let n: Number = s
                    .parse()
                    .map_err(|_| malformed(FORMAT, at, format!("bad high-precision number {s}")))?;
                Value::Number(n)
            }
            b'[' | b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(crate::Error::Limit(format!(
                        "UBJSON nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                self.container(marker == b'{', depth + 1)?
            }
            m => {
                return Err(malformed(
                    FORMAT,
                    at,
                    format!("unknown type marker {m:#04x}"),
                ));
            }
        })
    }

    /// An array or an object, with the optional `$type` and `#count` header.
    fn container(&mut self, object: bool, depth: usize) -> Result<Value> {
        let mut item_type = None;
        if self.peek() == Some(b'$') {
            self.pos += 1;
            item_type = Some(self.byte()?);
        }
        let count = if self.peek() == Some(b'#') {
            self.pos += 1;
            // Each item takes at least its fixed size, or one byte (a key takes one more).
            let per = item_type.and_then(fixed_size).unwrap_or(1) + usize::from(object);
            Some(self.length(per)?)
        } else if item_type.is_some() {
            return Err(malformed(
                FORMAT,
                self.pos,
                "a typed container without a count",
            ));
        } else {
            None
        };
        let next = |r: &mut Self| -> Result<Value> {
            match item_type {
                Some(t) => r.typed(t, depth),
                None => r.value(depth),
            }
        };
        if object {
            let mut map = Map::new();
            match count {
                Some(n) => {
                    for _ in 0..n {
                        let k = self.string()?;
                        map.insert(k, next(self)?);
                    }
                }
                None => loop {
                    while self.peek() == Some(b'N') {
                        self.pos += 1;
                    }
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        break;
                    }
                    let k = self.string()?;
                    map.insert(k, next(self)?);
                },
            }
            Ok(Value::Object(map))
        } else {
            let mut items = Vec::with_capacity(count.unwrap_or(0));
            match count {
                Some(n) => {
                    for _ in 0..n {
                        items.push(next(self)?);
                    }
                }
                None => loop {
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        break;
                    }
                    items.push(next(self)?);
                },
            }
            Ok(Value::Array(items))
        }
    }
}

/// A float as JSON; NaN and infinities, which JSON cannot hold, become null.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_typed_and_untyped_containers() {
        // {"a": [1, 2.5f32], "b": "hi", "c": [$U#i 2 3 4]}
        let mut b = vec![b'{', b'U', 1, b'a', b'[', b'U', 1, b'd'];
        b.extend(2.5f32.to_be_bytes());
        b.extend([b']', b'U', 1, b'b', b'S', b'i', 2, b'h', b'i']);
        b.extend([b'U', 1, b'c', b'[', b'$', b'U', b'#', b'i', 2, 3, 4, b'}']);
        let v = parse(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 2.5], "b": "hi", "c": [3, 4]})
        );
    }

    #[test]
    fn lying_counts_and_deep_nesting_are_refused() {
        assert!(
            parse(&[
                b'[', b'#', b'L', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
        assert!(parse(&[b'[', b'$', b'D', b'#', b'l', 0, 0, 1, 0, 0]).is_err());
        assert!(parse(&[b'['; 10_000]).is_err());
        assert!(parse(&[b'S', b'i', 0xff]).is_err());
        assert!(parse(&[]).is_err());
    }
}

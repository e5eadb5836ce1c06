//! skops files: a zip of `schema.json` and `.npy` arrays, rebuilt through the same allow-list.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use serde_json::Value as Json;

use crate::allow::{self, AllowList, Kind};
use crate::error::{Error, Result, malformed, unsupported};
use crate::numpy::{ArrayData, Dtype, NdArray, parse_npy};
use crate::value::{Heap, Obj, Value};

const FMT: &str = "skops";
const MAX_DEPTH: usize = 256;
/// No single member of a skops zip may expand past this.
const MAX_MEMBER: u64 = 4 << 30;

/// True when the bytes are a zip holding a `schema.json` (a skops file).
pub fn is_skops(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04")
        && zip::ZipArchive::new(Cursor::new(b))
            .is_ok_and(|z| z.index_for_name("schema.json").is_some())
}

/// Reads a skops file into a heap, every class it names resolved against `allow` (and refused
/// when not listed), as the unpickler resolves a pickle's globals.
pub fn load(b: &[u8], allow: &dyn AllowList) -> Result<(Heap, Value, Option<String>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(b))
        .map_err(|e| malformed(FMT, 0, format!("not a zip archive: {e}")))?;
    let schema_bytes = read_member(&mut zip, "schema.json", b.len())?;
    let schema_text = String::from_utf8_lossy(&schema_bytes);
    let schema: Json = serde_json::from_str(&python_json(&schema_text))
        .map_err(|e| malformed(FMT, 0, format!("schema.json: {e}")))?;
    let version = schema
        .get("_skops_version")
        .and_then(Json::as_str)
        .map(str::to_string);
    let mut r = Reader {
        zip,
        heap: Heap::default(),
        ids: HashMap::new(),
        input_len: b.len(),
        allow,
    };
    let root = r.node(&schema, 0)?;
    Ok((r.heap, root, version))
}

/// Python's `json.dumps` writes the non-finite floats as the bare tokens `NaN`, `Infinity` and
/// `-Infinity`, which JSON has no words for; this quotes them (outside strings) so a JSON parser
/// reads them as strings, which the float readers below parse back.
fn python_json(text: &str) -> std::borrow::Cow<'_, str> {
    if !(text.contains("NaN") || text.contains("Infinity")) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(t) = token {
            out.push('"');
            out.push_str(t);
            out.push('"');
            rest = &rest[t.len()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

fn read_member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    input_len: usize,
) -> Result<Vec<u8>> {
    let f = zip
        .by_name(name)
        .map_err(|_| malformed(FMT, 0, format!("the archive has no member {name}")))?;
    let budget = crate::joblib::default_budget(input_len) as u64;
    let budget = budget.min(MAX_MEMBER);
    let mut out = Vec::new();
    f.take(budget + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(FMT, 0, format!("{name}: {e}")))?;
    if out.len() as u64 > budget {
        return Err(Error::Limit(format!(
            "skops member {name} expands past {budget} bytes"
        )));
    }
    Ok(out)
}

struct Reader<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    heap: Heap,
    ids: HashMap<i64, Value>,
    input_len: usize,
    allow: &'a dyn AllowList,
}

impl Reader<'_> {
    fn node(&mut self, n: &Json, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::Limit("skops schema nested too deeply".into()));
        }
        let s = |k: &str| n.get(k).and_then(Json::as_str).unwrap_or("");
        let loader = s("__loader__");
        let (module, class) = (s("__module__"), s("__class__"));
        let v = match loader {
            "CachedNode" => {
                let id = n
                    .get("content")
                    .and_then(Json::as_i64)
                    .ok_or_else(|| malformed(FMT, 0, "CachedNode without an id"))?;
                return self.ids.get(&id).copied().ok_or_else(|| {
                    malformed(FMT, 0, format!("CachedNode refers to unknown id {id}"))
                });
            }
            "JsonNode" if matches!(s("content").trim(), "NaN" | "Infinity" | "-Infinity") => {
                // A bare non-finite float (Python's json.dumps), whatever class the node names.
                Value::Float(s("content").trim().parse().unwrap_or(f64::NAN))
            }
            "DTypeNode" => {
                // A numpy dtype, saved as an empty array of that dtype.
                let content = n
                    .get("content")
                    .ok_or_else(|| malformed(FMT, 0, "DTypeNode without content"))?;
                let a = self.array(content, depth + 1)?;
                let dtype = match self.heap.obj(a) {
                    Some(Obj::Array(arr)) => arr.dtype.clone(),
                    _ => return Err(malformed(FMT, 0, "DTypeNode content is not a numpy array")),
                };
                self.heap.alloc(Obj::Dtype(dtype))
            }
            "JsonNode" => {
                let text = s("content");
                let j: Json = serde_json::from_str(&python_json(text))
                    .map_err(|e| malformed(FMT, 0, format!("JsonNode: {e}")))?;
                match (class, j) {
                    (_, Json::Null) => Value::None,
                    (_, Json::Bool(b)) => Value::Bool(b),
                    ("float", Json::Number(x)) => Value::Float(x.as_f64().unwrap_or(f64::NAN)),
                    (_, Json::Number(x)) => match x.as_i64() {
                        Some(i) => Value::Int(i),
                        None => Value::Float(x.as_f64().unwrap_or(f64::NAN)),
                    },
                    (_, Json::String(t)) => {
                        // Floats such as nan and inf are written as strings.
                        if class == "float" {
                            Value::Float(t.parse().unwrap_or(f64::NAN))
                        } else {
                            self.heap.alloc(Obj::Str(t))
                        }
                    }
                    _ => return Err(unsupported("JsonNode holding a container")),
                }
            }
            "ListNode" | "TupleNode" | "SetNode" => {
                let items = n
                    .get("content")
                    .and_then(Json::as_array)
                    .ok_or_else(|| malformed(FMT, 0, "sequence node without content"))?;
                let vals = items
                    .iter()
                    .map(|x| self.node(x, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                self.heap.alloc(match loader {
                    "ListNode" => Obj::List(vals),
                    "TupleNode" => Obj::Tuple(vals),
                    _ => Obj::Set(vals),
                })
            }
            "DictNode" => self.dict(n, depth)?,
            "ObjectNode"
            | "TreeNode"
            | "ReduceNode"
            | "LossNode"
            | "SGDNode"
            | "RandomStateNode"
            | "RandomGeneratorNode"
            | "BitGeneratorNode" => {
                let g = self.allowed(module, class)?;
                if !matches!(g.kind, Kind::Class | Kind::Opaque) {
                    return Err(unsupported(format!(
                        "{g} cannot be an object in a skops file"
                    )));
                }
                let mut args = Vec::new();
                if let Some(a) = n.get("__reduce__").and_then(|r| r.get("args")) {
                    let t = self.node(a, depth + 1)?;
                    if let Some(Obj::Tuple(items)) = self.heap.obj(t) {
                        args = items.clone();
                    }
                }
                let state = match n.get("content") {
                    Some(c) if c.is_object() && c.get("__loader__").is_some() => {
                        Some(self.node(c, depth + 1)?)
                    }
                    _ => None,
                };
                self.heap.alloc(Obj::Instance {
                    class: g,
                    args,
                    state,
                })
            }
            "TypeNode" => {
                let g = self.allowed(module, class)?;
                self.heap.alloc(Obj::Global(g))
            }
            "SliceNode" => {
                let c = n
                    .get("content")
                    .ok_or_else(|| malformed(FMT, 0, "SliceNode without content"))?;
                let f = |k: &str| match c.get(k) {
                    Some(Json::Number(x)) => x.as_i64().map_or(Value::None, Value::Int),
                    _ => Value::None,
                };
                self.heap
                    .alloc(Obj::Slice([f("start"), f("stop"), f("step")]))
            }
            "NdArrayNode" => self.array(n, depth)?,
            "BytesNode" | "BytearrayNode" => {
                let file = s("file");
                let b = read_member(&mut self.zip, file, self.input_len)?;
                self.heap.alloc(Obj::Bytes(b))
            }
            // A reference to a function on the allow-list (histogram boosting's check_array): a
            // name, which nothing here calls.
            "FunctionNode" => {
                let g = self.allowed(module, class)?;
                self.heap.alloc(Obj::Global(g))
            }
            // functools.partial, as the pickle VM builds it: the function as its argument, then
            // the state (function, arguments, keywords, no dict).
            "PartialNode" => {
                let g = self.allowed(module, class)?;
                if !matches!(g.kind, Kind::Class) {
                    return Err(unsupported(format!(
                        "{g} cannot be a partial in a skops file"
                    )));
                }
                let c = n
                    .get("content")
                    .ok_or_else(|| malformed(FMT, 0, "PartialNode without content"))?;
                let mut part = |k: &str| match c.get(k) {
                    Some(x) => self.node(x, depth + 1),
                    None => Ok(Value::None),
                };
                let (func, args, kwds) = (part("func")?, part("args")?, part("kwds")?);
                let state = self
                    .heap
                    .alloc(Obj::Tuple(vec![func, args, kwds, Value::None]));
                self.heap.alloc(Obj::Instance {
                    class: g,
                    args: vec![func],
                    state: Some(state),
                })
            }
            "MethodNode" | "OperatorFuncNode" => {
                return Err(Error::ForbiddenGlobal {
                    module: module.into(),
                    name: class.into(),
                });
            }
            other => {
                return Err(unsupported(format!(
                    "skops node type {other:?} for {module}.{class}"
                )));
            }
        };
        if let Some(id) = n.get("__id__").and_then(Json::as_i64) {
            self.ids.entry(id).or_insert(v);
        }
        Ok(v)
    }

    fn dict(&mut self, n: &Json, depth: usize) -> Result<Value> {
        let content = n
            .get("content")
            .and_then(Json::as_object)
            .ok_or_else(|| malformed(FMT, 0, "DictNode without content"))?;
        let key_types: Vec<String> = n
            .get("key_types")
            .and_then(|k| k.get("content"))
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| {
                        t.get("__class__")
                            .and_then(Json::as_str)
                            .unwrap_or("str")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut pairs = Vec::with_capacity(content.len());
        for (i, (k, v)) in content.iter().enumerate() {
            let key = match key_types.get(i).map(String::as_str) {
                Some("int") => {
                    Value::Int(k.parse().map_err(|_| malformed(FMT, 0, "int dict key"))?)
                }
                _ => self.heap.alloc(Obj::Str(k.clone())),
            };
            let val = self.node(v, depth + 1)?;
            pairs.push((key, val));
        }
        Ok(self.heap.alloc(Obj::Dict(pairs)))
    }

    fn array(&mut self, n: &Json, depth: usize) -> Result<Value> {
        match n.get("type").and_then(Json::as_str) {
            Some("numpy") => {
                let file = n
                    .get("file")
                    .and_then(Json::as_str)
                    .ok_or_else(|| malformed(FMT, 0, "array node without a file"))?;
                let b = read_member(&mut self.zip, file, self.input_len)?;
                let a = parse_npy(&b)?;
                Ok(self.heap.alloc(Obj::Array(a)))
            }
            Some("json") => {
                let items = n
                    .get("content")
                    .and_then(Json::as_array)
                    .ok_or_else(|| malformed(FMT, 0, "json array without content"))?;
                let shape: Option<Vec<usize>> = n
                    .get("shape")
                    .and_then(|s| {
                        s.get("content")
                            .and_then(Json::as_array)
                            .or(s.as_array())
                            .cloned()
                    })
                    .map(|a| {
                        a.iter()
                            .filter_map(|d| {
                                d.as_u64().or_else(|| {
                                    d.get("content")
                                        .and_then(Json::as_str)
                                        .and_then(|t| t.parse().ok())
                                })
                            })
                            .map(|d| d as usize)
                            .collect()
                    });
                // An object array of several dimensions is written as nested lists (numpy's
                // `tolist()`): its items are the innermost ones, row by row.
                let mut vals = Vec::new();
                let levels = shape.as_ref().map_or(0, |s| s.len().saturating_sub(1));
                for x in items {
                    self.flat_items(x, levels, depth + 1, &mut vals)?;
                }
                let shape = shape.unwrap_or_else(|| vec![vals.len()]);
                if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(vals.len()) {
                    return Err(malformed(
                        FMT,
                        0,
                        format!(
                            "an object array of shape {shape:?} holding {} items",
                            vals.len()
                        ),
                    ));
                }
                let dtype = Dtype::parse("O8")?;
                Ok(self.heap.alloc(Obj::Array(NdArray {
                    shape,
                    dtype,
                    data: ArrayData::Objects(vals),
                })))
            }
            other => Err(unsupported(format!("skops array of type {other:?}"))),
        }
    }

    /// The global `module.class` if the allow-list holds it; refused by name otherwise.
    fn allowed(&self, module: &str, class: &str) -> Result<allow::Global> {
        allow::resolve(module, class, self.allow).ok_or_else(|| Error::ForbiddenGlobal {
            module: module.into(),
            name: class.into(),
        })
    }

    /// The items of an object array's nested list `levels` deep, appended to `out`.
    fn flat_items(
        &mut self,
        x: &Json,
        levels: usize,
        depth: usize,
        out: &mut Vec<Value>,
    ) -> Result<()> {
        if levels == 0 {
            out.push(self.node(x, depth)?);
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(Error::Limit("skops schema nested too deeply".into()));
        }
        let items = x
            .get("content")
            .and_then(Json::as_array)
            .filter(|_| x.get("__loader__").and_then(Json::as_str) == Some("ListNode"))
            .ok_or_else(|| malformed(FMT, 0, "an object array row that is not a list"))?;
        for i in items {
            self.flat_items(i, levels - 1, depth + 1, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::python_json;

    #[test]
    fn python_non_finite_floats_become_strings() {
        assert_eq!(python_json("NaN"), "\"NaN\"");
        assert_eq!(
            python_json("[Infinity, -Infinity, \"NaN in a string\", 1.5]"),
            "[\"Infinity\", \"-Infinity\", \"NaN in a string\", 1.5]"
        );
        assert_eq!(python_json("{\"a\": \"\\\"NaN\"}"), "{\"a\": \"\\\"NaN\"}");
        assert_eq!(python_json("1"), "1");
    }
}

//! Typed access to unpickled objects: attributes, numbers, arrays and labels, with errors that name them.

use mlship_model::{Label, Matrix};

use crate::error::{Result, unsupported};
use mlship_pickle::numpy::{ArrayData, NdArray};
use mlship_pickle::{Heap, Obj, Value};

/// Deeply nested pipelines are refused past this depth (hostile files nest without end).
pub const MAX_DEPTH: usize = 64;

/// Read access to the heap of one loaded file.
#[derive(Clone, Copy)]
pub struct Ctx<'h> {
    pub heap: &'h Heap,
}

/// An instance of an allow-listed class with its attribute dict.
#[derive(Clone, Copy)]
pub struct Inst<'h> {
    pub ctx: Ctx<'h>,
    pub class: &'h str,
    pub module: &'h str,
    pub args: &'h [Value],
    pub attrs: &'h [(Value, Value)],
}

impl<'h> Ctx<'h> {
    /// The instance behind `v`, if it is one.
    pub fn instance(self, v: Value) -> Option<Inst<'h>> {
        match self.heap.obj(v)? {
            Obj::Instance { class, args, state } => {
                let attrs: &[(Value, Value)] = match state.and_then(|s| self.heap.obj(s)) {
                    Some(Obj::Dict(d)) => d,
                    // (dict, slots) state tuples.
                    Some(Obj::Tuple(t)) => match t.first().and_then(|s| self.heap.obj(*s)) {
                        Some(Obj::Dict(d)) => d,
                        _ => &[],
                    },
                    _ => &[],
                };
                Some(Inst {
                    ctx: self,
                    class: &class.name,
                    module: &class.module,
                    args,
                    attrs,
                })
            }
            _ => None,
        }
    }

    pub fn str(self, v: Value) -> Option<&'h str> {
        match self.heap.obj(v)? {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn f64(self, v: Value) -> Option<f64> {
        match v {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::Bool(b) => Some(f64::from(b)),
            Value::Ref(_) => match self.heap.obj(v)? {
                Obj::Array(a) if a.len() == 1 => a.to_f64().ok()?.first().copied(),
                _ => None,
            },
            Value::None => None,
        }
    }

    pub fn i64(self, v: Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(i64::from(b)),
            Value::Float(f) if f.fract() == 0.0 => Some(f as i64),
            Value::Ref(_) => match self.heap.obj(v)? {
                Obj::Array(a) if a.len() == 1 => a.to_i64().ok()?.first().copied(),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn array(self, v: Value) -> Option<&'h NdArray> {
        match self.heap.obj(v)? {
            Obj::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Items of a list, a tuple, or an object array.
    pub fn items(self, v: Value) -> Option<&'h [Value]> {
        match self.heap.obj(v)? {
            Obj::List(t) | Obj::Tuple(t) => Some(t),
            Obj::Array(NdArray {
                data: ArrayData::Objects(o),
                ..
            }) => Some(o),
            Obj::Instance { class, args, .. } if class.name == "_RemainderColsList" => Some(args),
            _ => None,
        }
    }

    /// Class labels from an array (numbers, strings, booleans or objects).
    pub fn labels(self, v: Value) -> Result<Vec<Label>> {
        let a = self
            .array(v)
            .ok_or_else(|| unsupported("classes_ is not an array"))?;
        match (&a.data, a.dtype.kind) {
            (ArrayData::Objects(items), _) => items
                .iter()
                .map(|x| match *x {
                    Value::Int(i) => Ok(Label::Int(i)),
                    Value::Float(f) => Ok(Label::Float(f)),
                    Value::Bool(b) => Ok(Label::Bool(b)),
                    other => self
                        .str(other)
                        .map(|s| Label::Str(s.to_string()))
                        .ok_or_else(|| {
                            unsupported(format!(
                                "class label {} is not a number or string",
                                self.heap.describe(other)
                            ))
                        }),
                })
                .collect(),
            (_, b'i' | b'u') => Ok(a.to_i64()?.into_iter().map(Label::Int).collect()),
            (_, b'f') => Ok(a.to_f64()?.into_iter().map(Label::Float).collect()),
            (_, b'b') => Ok(a
                .to_i64()?
                .into_iter()
                .map(|i| Label::Bool(i != 0))
                .collect()),
            (_, b'U') => Ok(a.to_unicode()?.into_iter().map(Label::Str).collect()),
            _ => Err(unsupported(format!(
                "class labels of dtype {}",
                a.dtype.describe()
            ))),
        }
    }

    /// Strings from an array of str objects or a unicode array.
    pub fn strings(self, v: Value) -> Option<Vec<String>> {
        let a = self.array(v)?;
        match &a.data {
            ArrayData::Objects(items) => items
                .iter()
                .map(|x| self.str(*x).map(str::to_string))
                .collect(),
            _ if a.dtype.kind == b'U' => a.to_unicode().ok(),
            _ => None,
        }
    }
}

impl<'h> Inst<'h> {
    pub fn get(&self, key: &str) -> Option<Value> {
        self.attrs
            .iter()
            .rev()
            .find(|(k, _)| self.ctx.str(*k) == Some(key))
            .map(|(_, v)| *v)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v != Value::None)
    }

    fn missing(&self, key: &str, what: &str) -> crate::Error {
        unsupported(format!(
            "{} has no usable `{key}` ({what} expected): is it fitted?",
            self.class
        ))
    }

    pub fn req(&self, key: &str) -> Result<Value> {
        self.get(key)
            .filter(|v| *v != Value::None)
            .ok_or_else(|| self.missing(key, "a value"))
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(|v| self.ctx.f64(v))
            .ok_or_else(|| self.missing(key, "a number"))
    }

    pub fn i64(&self, key: &str) -> Result<i64> {
        self.get(key)
            .and_then(|v| self.ctx.i64(v))
            .ok_or_else(|| self.missing(key, "an integer"))
    }

    pub fn str(&self, key: &str) -> Option<&'h str> {
        self.get(key).and_then(|v| self.ctx.str(v))
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(b),
            Value::Int(i) => Some(i != 0),
            _ => None,
        }
    }

    pub fn array(&self, key: &str) -> Result<&'h NdArray> {
        self.get(key)
            .and_then(|v| self.ctx.array(v))
            .ok_or_else(|| self.missing(key, "an array"))
    }

    pub fn f64s(&self, key: &str) -> Result<Vec<f64>> {
        let v = self.req(key)?;
        match self.ctx.array(v) {
            Some(a) => Ok(a.to_f64()?),
            None => self
                .ctx
                .f64(v)
                .map(|x| vec![x])
                .ok_or_else(|| self.missing(key, "numbers")),
        }
    }

    /// A 2-D array as a matrix; a 1-D array is one row.
    pub fn matrix(&self, key: &str) -> Result<Matrix> {
        let a = self.array(key)?;
        let data = a.to_f64()?;
        let (r, c) = match a.shape.as_slice() {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            s => {
                return Err(unsupported(format!(
                    "{}.{key} has shape {s:?}, expected 1 or 2 dimensions",
                    self.class
                )));
            }
        };
        Ok(Matrix::new(r, c, data)?)
    }

    pub fn items(&self, key: &str) -> Result<&'h [Value]> {
        self.get(key)
            .and_then(|v| self.ctx.items(v))
            .ok_or_else(|| self.missing(key, "a list"))
    }

    pub fn labels(&self, key: &str) -> Result<Vec<Label>> {
        self.ctx.labels(self.req(key)?)
    }

    /// `feature_names_in_`, when the estimator was fitted on named columns.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        self.get("feature_names_in_")
            .and_then(|v| self.ctx.strings(v))
    }
}

//! The unpickler's object heap: values are indices into an arena, so cycles cannot leak or recurse.

use crate::allow::Global;
use crate::numpy::{Dtype, NdArray};

/// A reference to an object on the heap.
pub type Id = u32;

/// A value on the VM stack or inside a container.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ref(Id),
}

/// A heap object.
#[derive(Clone, Debug)]
pub enum Obj {
    Str(String),
    Bytes(Vec<u8>),
    /// An integer too large for i64, kept as its little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// An allow-listed class or function, as a value.
    Global(Global),
    /// An instance of an allow-listed class: constructor arguments and `__setstate__` state.
    Instance {
        class: Global,
        args: Vec<Value>,
        state: Option<Value>,
    },
    Array(NdArray),
    Dtype(Dtype),
    Slice([Value; 3]),
}

/// The arena of objects built while loading one file.
#[derive(Debug, Default)]
pub struct Heap {
    objs: Vec<Obj>,
}

impl Heap {
    pub fn alloc(&mut self, o: Obj) -> Value {
        let id = self.objs.len() as Id;
        self.objs.push(o);
        Value::Ref(id)
    }

    pub fn get(&self, id: Id) -> &Obj {
        &self.objs[id as usize]
    }

    pub fn get_mut(&mut self, id: Id) -> &mut Obj {
        &mut self.objs[id as usize]
    }

    /// The object behind a value, if it is a reference.
    pub fn obj(&self, v: Value) -> Option<&Obj> {
        match v {
            Value::Ref(id) => Some(self.get(id)),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// A short description of a value for error messages.
    pub fn describe(&self, v: Value) -> String {
        match v {
            Value::None => "None".into(),
            Value::Bool(b) => format!("{b}"),
            Value::Int(i) => format!("int {i}"),
            Value::Float(f) => format!("float {f}"),
            Value::Ref(id) => match self.get(id) {
                Obj::Str(s) => format!("str {:?}", truncate(s)),
                Obj::Bytes(b) => format!("bytes of length {}", b.len()),
                Obj::BigInt(_) => "a large int".into(),
                Obj::Tuple(t) => format!("tuple of {}", t.len()),
                Obj::List(t) => format!("list of {}", t.len()),
                Obj::Dict(t) => format!("dict of {}", t.len()),
                Obj::Set(t) => format!("set of {}", t.len()),
                Obj::Global(g) => format!("{}", g),
                Obj::Instance { class, .. } => format!("{} object", class),
                Obj::Array(a) => format!("array {:?} of {}", a.shape, a.dtype.describe()),
                Obj::Dtype(d) => format!("dtype {}", d.describe()),
                Obj::Slice(_) => "slice".into(),
            },
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

//! The pickle VM: every opcode of protocols 0 to 5, over an arena heap, calling nothing.
//!
//! Globals resolve only through the allow-list ([`crate::allow`]); each allowed callable has its
//! effect on data emulated here. Every length is checked against the bytes that remain, so a lying
//! length field fails before anything is allocated; the VM is a loop, not a recursion.

use std::collections::HashMap;

use crate::allow::{self, AllowList, Global, Kind};
use crate::error::{Error, Result, malformed};
use crate::numpy::{ArrayData, DField, Dtype, NdArray, element_count, fortran_to_c};
use crate::value::{Heap, Obj, Value};

const FMT: &str = "pickle";
/// joblib nests a whole pickle for each object array; deeper nesting is refused.
const MAX_NESTING: usize = 4;

/// The result of unpickling: the heap and the root value.
#[derive(Debug)]
pub struct Unpickled {
    pub heap: Heap,
    pub root: Value,
    /// The protocol of the outermost stream (0 when it has no PROTO opcode).
    pub protocol: u8,
    /// How many arrays were read from joblib's raw frames (0 for a plain pickle).
    pub joblib_arrays: usize,
}

/// Unpickles `input`. With `joblib`, arrays wrapped by joblib's `NumpyArrayWrapper` are read from
/// the raw bytes that follow their BUILD, as joblib's `NumpyUnpickler` does. Every global the
/// stream names is resolved against [`crate::allow`]'s own list and then `allow`; any other is
/// refused before anything is built.
pub fn unpickle(input: &[u8], joblib: bool, allow: &dyn AllowList) -> Result<Unpickled> {
    let mut vm = Vm {
        allow,
        input,
        pos: 0,
        heap: Heap::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        joblib,
        protocol: 0,
        nesting: 0,
        joblib_arrays: 0,
    };
    let root = vm.run()?;
    Ok(Unpickled {
        heap: vm.heap,
        root,
        protocol: vm.protocol,
        joblib_arrays: vm.joblib_arrays,
    })
}

struct Vm<'a> {
    allow: &'a dyn AllowList,
    input: &'a [u8],
    pos: usize,
    heap: Heap,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    joblib: bool,
    protocol: u8,
    nesting: usize,
    joblib_arrays: usize,
}

impl Vm<'_> {
    fn err(&self, msg: impl Into<String>) -> Error {
        malformed(FMT, self.pos, msg)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let rest = self.input.len() - self.pos;
        if n > rest {
            return Err(Error::Truncated {
                format: FMT,
                offset: self.pos,
                needed: n - rest,
            });
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64_len(&mut self) -> Result<usize> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        usize::try_from(v).map_err(|_| self.err("length does not fit in memory"))
    }

    fn line(&mut self) -> Result<&[u8]> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(Error::Truncated {
                format: FMT,
                offset: self.pos,
                needed: 1,
            })?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn line_str(&mut self) -> Result<String> {
        let l = self.line()?;
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        String::from_utf8(l.to_vec()).map_err(|_| self.err("text line is not utf-8"))
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(*self.stack.last().expect("checked above"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(m))
    }

    fn push_obj(&mut self, o: Obj) {
        let v = self.heap.alloc(o);
        self.stack.push(v);
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.err(format!("memo key {key} was never stored")))?;
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let v = self.top()?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        let g = allow::resolve(module, name, self.allow).ok_or_else(|| Error::ForbiddenGlobal {
            module: module.into(),
            name: name.into(),
        })?;
        self.push_obj(Obj::Global(g));
        Ok(())
    }

    fn str_of(&self, v: Value) -> Option<&str> {
        match self.heap.obj(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                // ---- framing and protocol
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {p}")));
                    }
                    if self.nesting == 0 {
                        self.protocol = p;
                    }
                }
                0x95 => {
                    let n = self.u64_len()?;
                    let rest = self.input.len() - self.pos;
                    if n > rest {
                        return Err(Error::Truncated {
                            format: FMT,
                            offset: self.pos,
                            needed: n - rest,
                        });
                    }
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                // ---- stack manipulation
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.stack.push(v);
                }
                // ---- constants and numbers
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'I' => {
                    let l = self.line_str()?;
                    let v = match l.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        s => self.parse_int(s)?,
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let l = self.line_str()?;
                    let v = self.parse_int(l.trim_end_matches('L'))?;
                    self.stack.push(v);
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    let v = self.long_from_bytes(b);
                    self.stack.push(v);
                }
                0x8b => {
                    let n = self.u32()? as i32;
                    let n = usize::try_from(n).map_err(|_| self.err("negative LONG4 length"))?;
                    let b = self.take(n)?.to_vec();
                    let v = self.long_from_bytes(b);
                    self.stack.push(v);
                }
                b'F' => {
                    let l = self.line_str()?;
                    let f: f64 = l
                        .trim()
                        .parse()
                        .map_err(|_| self.err(format!("bad FLOAT {l:?}")))?;
                    self.stack.push(Value::Float(f));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let f = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    self.stack.push(Value::Float(f));
                }
                // ---- strings and bytes
                b'S' => {
                    let l = self.line()?.to_vec();
                    let b = py_string_literal(&l).ok_or_else(|| self.err("bad STRING literal"))?;
                    self.push_obj(Obj::Str(latin1(&b)));
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    let n =
                        usize::try_from(n).map_err(|_| self.err("negative BINSTRING length"))?;
                    let s = latin1(self.take(n)?);
                    self.push_obj(Obj::Str(s));
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let s = latin1(self.take(n)?);
                    self.push_obj(Obj::Str(s));
                }
                b'V' => {
                    let l = self.line()?.to_vec();
                    let s = raw_unicode_escape(&l).ok_or_else(|| self.err("bad UNICODE escape"))?;
                    self.push_obj(Obj::Str(s));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    self.text(n)?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    self.text(n)?;
                }
                0x8d => {
                    let n = self.u64_len()?;
                    self.text(n)?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push_obj(Obj::Bytes(b));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.push_obj(Obj::Bytes(b));
                }
                0x8e | 0x96 => {
                    let n = self.u64_len()?;
                    let b = self.take(n)?.to_vec();
                    self.push_obj(Obj::Bytes(b));
                }
                0x97 => return Err(self.err("out-of-band buffers (NEXT_BUFFER) are not supported")),
                0x98 => {
                    self.top()?;
                }
                // ---- containers
                b')' => self.push_obj(Obj::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_obj(Obj::Tuple(items));
                }
                b']' => self.push_obj(Obj::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.append(l, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    self.append(l, items)?;
                }
                b'}' => self.push_obj(Obj::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push_obj(Obj::Dict(pairs));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    let d = self.top()?;
                    self.set_items(d, pairs)?;
                }
                0x8f => self.push_obj(Obj::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    let s = self.top()?;
                    match s {
                        Value::Ref(id) => match self.heap.get_mut(id) {
                            Obj::Set(v) => v.extend(items),
                            _ => return Err(self.err("ADDITEMS on a non-set")),
                        },
                        _ => return Err(self.err("ADDITEMS on a non-set")),
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Set(items));
                }
                // ---- memo
                b'g' => {
                    let l = self.line_str()?;
                    let k = l
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| self.err("bad GET index"))?;
                    self.memo_get(k)?;
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'p' => {
                    let l = self.line_str()?;
                    let k = l
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| self.err("bad PUT index"))?;
                    self.memo_put(k)?;
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k =
                        u32::try_from(self.memo.len()).map_err(|_| self.err("memo too large"))?;
                    self.memo_put(k)?;
                }
                // ---- globals and object building
                b'c' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (self.str_of(module), self.str_of(name)) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    let (m, n) = (m.to_string(), n.to_string());
                    self.global(&m, &n)?;
                }
                b'i' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let g = allow::resolve(&module, &name, self.allow)
                        .ok_or(Error::ForbiddenGlobal { module, name })?;
                    let args = self.pop_mark()?;
                    let cls = self.heap.alloc(Obj::Global(g));
                    let v = self.call(cls, args)?;
                    self.stack.push(v);
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.err("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let v = self.call(cls, items)?;
                    self.stack.push(v);
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = match self.heap.obj(args) {
                        Some(Obj::Tuple(t)) => t.clone(),
                        _ => return Err(self.err("REDUCE/NEWOBJ arguments must be a tuple")),
                    };
                    let v = self.call(callable, args)?;
                    self.stack.push(v);
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = match self.heap.obj(args) {
                        Some(Obj::Tuple(t)) => t.clone(),
                        _ => return Err(self.err("NEWOBJ_EX arguments must be a tuple")),
                    };
                    let v = self.call(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?;
                }
                b'P' | b'Q' => return Err(self.err("persistent ids (PERSID) are not supported")),
                0x82..=0x84 => {
                    return Err(
                        self.err("the copyreg extension registry (EXT1/2/4) is not supported")
                    );
                }
                other => return Err(self.err(format!("unknown opcode 0x{other:02x}"))),
            }
        }
    }

    fn parse_int(&mut self, s: &str) -> Result<Value> {
        match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => {
                if !s
                    .trim()
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    || s.trim().is_empty()
                {
                    return Err(self.err(format!("bad integer {s:?}")));
                }
                Ok(self.heap.alloc(Obj::BigInt(s.trim().as_bytes().to_vec())))
            }
        }
    }

    fn long_from_bytes(&mut self, b: Vec<u8>) -> Value {
        if b.is_empty() {
            return Value::Int(0);
        }
        if b.len() <= 8 {
            let neg = b[b.len() - 1] & 0x80 != 0;
            let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
            buf[..b.len()].copy_from_slice(&b);
            return Value::Int(i64::from_le_bytes(buf));
        }
        self.heap.alloc(Obj::BigInt(b))
    }

    fn text(&mut self, n: usize) -> Result<()> {
        let at = self.pos;
        let b = self.take(n)?;
        let s = std::str::from_utf8(b)
            .map_err(|_| malformed(FMT, at, "string is not utf-8"))?
            .to_string();
        self.push_obj(Obj::Str(s));
        Ok(())
    }

    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("odd number of items for a dict"));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    fn append(&mut self, l: Value, items: Vec<Value>) -> Result<()> {
        if let Value::Ref(id) = l {
            match self.heap.get_mut(id) {
                Obj::List(v) => {
                    v.extend(items);
                    return Ok(());
                }
                // A list subclass (a model library's own list type): items are kept as its args.
                Obj::Instance { args, .. } => {
                    args.extend(items);
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(self.err("APPEND to something that is not a list"))
    }

    fn set_items(&mut self, d: Value, pairs: Vec<(Value, Value)>) -> Result<()> {
        if let Value::Ref(id) = d {
            if let Obj::Dict(v) = self.heap.get_mut(id) {
                for (k, val) in pairs {
                    v.push((k, val));
                }
                return Ok(());
            }
        }
        Err(self.err("SETITEM on something that is not a dict"))
    }

    fn global_of(&self, v: Value) -> Result<&Global> {
        match self.heap.obj(v) {
            Some(Obj::Global(g)) => Ok(g),
            _ => Err(self.err(format!(
                "cannot call {}: only allow-listed globals are callable",
                self.heap.describe(v)
            ))),
        }
    }

    /// Emulates calling an allow-listed global with `args`.
    fn call(&mut self, callable: Value, args: Vec<Value>) -> Result<Value> {
        let g = self.global_of(callable)?.clone();
        let bad = |vm: &Self, what: &str| vm.err(format!("{g}: {what}"));
        let o = match g.kind {
            Kind::Class | Kind::Opaque | Kind::JoblibArrayWrapper => Obj::Instance {
                class: g.clone(),
                args,
                state: None,
            },
            Kind::Reconstruct => {
                let Some(&cls) = args.first() else {
                    return Err(bad(self, "needs a class"));
                };
                let cls_g = self.global_of(cls)?;
                if cls_g.kind != Kind::NdArrayClass {
                    return Err(bad(self, "only numpy.ndarray can be rebuilt"));
                }
                Obj::Array(NdArray {
                    shape: vec![0],
                    dtype: Dtype {
                        kind: b'b',
                        itemsize: 1,
                        little: true,
                        fields: vec![],
                    },
                    data: ArrayData::Pending,
                })
            }
            Kind::DtypeCtor => {
                let Some(name) = args.first().and_then(|v| self.str_of(*v)) else {
                    return Err(bad(self, "needs a dtype name"));
                };
                Obj::Dtype(Dtype::parse(name)?)
            }
            Kind::Scalar => {
                let (Some(&dt), Some(&data)) = (args.first(), args.get(1)) else {
                    return Err(bad(self, "needs a dtype and data"));
                };
                let Some(Obj::Dtype(dtype)) = self.heap.obj(dt) else {
                    return Err(bad(self, "first argument must be a dtype"));
                };
                if dtype.kind == b'O' {
                    return Ok(data);
                }
                let bytes = self
                    .bytes_of(data)
                    .ok_or_else(|| bad(self, "data must be bytes"))?;
                if bytes.len() != dtype.itemsize {
                    return Err(bad(self, "data length differs from the dtype's size"));
                }
                let arr = NdArray {
                    shape: vec![],
                    dtype: dtype.clone(),
                    data: ArrayData::Bytes(bytes),
                };
                return scalar_value(&mut self.heap, arr);
            }
            Kind::FromBuffer => {
                if args.len() < 3 {
                    return Err(bad(self, "needs buffer, dtype and shape"));
                }
                let buf = self
                    .bytes_of(args[0])
                    .ok_or_else(|| bad(self, "buffer must be bytes"))?;
                let Some(Obj::Dtype(dtype)) = self.heap.obj(args[1]) else {
                    return Err(bad(self, "second argument must be a dtype"));
                };
                let dtype = dtype.clone();
                let shape = self.shape_of(args[2])?;
                let fortran = args.get(3).and_then(|v| self.str_of(*v)) == Some("F");
                let n = element_count(&shape)
                    .and_then(|c| c.checked_mul(dtype.itemsize))
                    .ok_or_else(|| bad(self, "shape overflows"))?;
                if n != buf.len() || dtype.has_object() {
                    return Err(bad(self, "buffer size does not match the shape and dtype"));
                }
                let data = if fortran {
                    fortran_to_c(&buf, &shape, dtype.itemsize)
                } else {
                    buf
                };
                Obj::Array(NdArray {
                    shape,
                    dtype,
                    data: ArrayData::Bytes(data),
                })
            }
            Kind::CodecsEncode => {
                let (Some(s), enc) = (
                    args.first().and_then(|v| self.str_of(*v)),
                    args.get(1).and_then(|v| self.str_of(*v)),
                ) else {
                    return Err(bad(self, "needs a string"));
                };
                if !matches!(
                    enc.map(str::to_ascii_lowercase).as_deref(),
                    Some("latin1" | "latin-1" | "iso-8859-1")
                ) {
                    return Err(bad(self, "only the latin1 encoding is supported"));
                }
                let mut out = Vec::with_capacity(s.len());
                for ch in s.chars() {
                    out.push(
                        u8::try_from(u32::from(ch))
                            .map_err(|_| bad(self, "character outside latin1"))?,
                    );
                }
                Obj::Bytes(out)
            }
            Kind::Bytearray => match args.first() {
                None => Obj::Bytes(Vec::new()),
                Some(&v) => Obj::Bytes(self.bytes_of(v).ok_or_else(|| bad(self, "needs bytes"))?),
            },
            Kind::Slice => {
                let a = |i: usize| args.get(i).copied().unwrap_or(Value::None);
                match args.len() {
                    1 => Obj::Slice([Value::None, a(0), Value::None]),
                    2 | 3 => Obj::Slice([a(0), a(1), a(2)]),
                    _ => return Err(bad(self, "takes 1 to 3 arguments")),
                }
            }
            Kind::DictCtor => {
                let mut pairs = Vec::new();
                if let Some(Obj::List(items) | Obj::Tuple(items)) =
                    args.first().and_then(|v| self.heap.obj(*v))
                {
                    for it in items {
                        match self.heap.obj(*it) {
                            Some(Obj::Tuple(kv)) if kv.len() == 2 => pairs.push((kv[0], kv[1])),
                            _ => return Err(bad(self, "items must be pairs")),
                        }
                    }
                }
                Obj::Dict(pairs)
            }
            Kind::SetCtor => match args.first().and_then(|v| self.heap.obj(*v)) {
                None => Obj::Set(Vec::new()),
                Some(Obj::List(items) | Obj::Tuple(items) | Obj::Set(items)) => {
                    Obj::Set(items.clone())
                }
                Some(_) => return Err(bad(self, "needs a sequence")),
            },
            Kind::CopyregReconstructor => {
                let Some(&cls) = args.first() else {
                    return Err(bad(self, "needs a class"));
                };
                let cg = self.global_of(cls)?.clone();
                if !matches!(cg.kind, Kind::Class | Kind::Opaque) {
                    return Err(bad(self, "can only rebuild allow-listed classes"));
                }
                Obj::Instance {
                    class: cg,
                    args: Vec::new(),
                    state: None,
                }
            }
            Kind::NdArrayClass | Kind::TypeValue => {
                return Err(bad(self, "calling this type is not supported"));
            }
        };
        Ok(self.heap.alloc(o))
    }

    fn bytes_of(&self, v: Value) -> Option<Vec<u8>> {
        match self.heap.obj(v)? {
            Obj::Bytes(b) => Some(b.clone()),
            // Python 2 strings hold bytes as latin-1 code points.
            Obj::Str(s) => s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
            _ => None,
        }
    }

    fn shape_of(&self, v: Value) -> Result<Vec<usize>> {
        match self.heap.obj(v) {
            Some(Obj::Tuple(t) | Obj::List(t)) => t
                .iter()
                .map(|d| match d {
                    Value::Int(i) => {
                        usize::try_from(*i).map_err(|_| self.err("negative dimension"))
                    }
                    _ => Err(self.err("shape must hold integers")),
                })
                .collect(),
            _ => match v {
                Value::Int(i) => Ok(vec![
                    usize::try_from(i).map_err(|_| self.err("negative dimension"))?,
                ]),
                _ => Err(self.err("shape must be a tuple")),
            },
        }
    }

    /// Emulates `__setstate__` (BUILD) on the object at the top of the stack.
    fn build(&mut self, target: Value, state: Value) -> Result<()> {
        let Value::Ref(id) = target else {
            return Err(self.err("BUILD on a plain value"));
        };
        match self.heap.get(id) {
            Obj::Instance { class, .. } => {
                let wrapper = class.kind == Kind::JoblibArrayWrapper;
                if let Obj::Instance { state: s, .. } = self.heap.get_mut(id) {
                    *s = Some(state);
                }
                if wrapper && self.joblib {
                    let arr = self.read_joblib_array(state)?;
                    self.joblib_arrays += 1;
                    // Replace the wrapper in place, so memo references see the array too.
                    *self.heap.get_mut(id) = arr;
                }
                Ok(())
            }
            Obj::Array(a) if matches!(a.data, ArrayData::Pending) => {
                let arr = self.array_state(state)?;
                *self.heap.get_mut(id) = Obj::Array(arr);
                Ok(())
            }
            Obj::Dtype(_) => {
                let d = self.dtype_state(id, state)?;
                *self.heap.get_mut(id) = Obj::Dtype(d);
                Ok(())
            }
            // defaultdict and OrderedDict carry no state that matters.
            Obj::Dict(_) => Ok(()),
            _ => Err(self.err(format!("BUILD on {}", self.heap.describe(target)))),
        }
    }

    fn array_state(&self, state: Value) -> Result<NdArray> {
        let Some(Obj::Tuple(t)) = self.heap.obj(state) else {
            return Err(self.err("ndarray state must be a tuple"));
        };
        let t = match t.len() {
            5 => &t[1..],
            4 => &t[..],
            _ => return Err(self.err("ndarray state must have 4 or 5 items")),
        };
        let shape = self.shape_of(t[0])?;
        let Some(Obj::Dtype(dtype)) = self.heap.obj(t[1]) else {
            return Err(self.err("ndarray state needs a dtype"));
        };
        let dtype = dtype.clone();
        let fortran = matches!(t[2], Value::Bool(true) | Value::Int(1));
        let count = element_count(&shape).ok_or_else(|| self.err("array shape overflows"))?;
        if dtype.kind == b'O' {
            let Some(Obj::List(items)) = self.heap.obj(t[3]) else {
                return Err(self.err("object array data must be a list"));
            };
            if items.len() != count {
                return Err(self.err(format!(
                    "object array of {count} elements holds {}",
                    items.len()
                )));
            }
            let mut items = items.clone();
            if fortran && shape.len() >= 2 {
                items = reorder_objects(&items, &shape);
            }
            return Ok(NdArray {
                shape,
                dtype,
                data: ArrayData::Objects(items),
            });
        }
        let bytes = self
            .bytes_of(t[3])
            .ok_or_else(|| self.err("array data must be bytes"))?;
        let need = count
            .checked_mul(dtype.itemsize)
            .ok_or_else(|| self.err("array size overflows"))?;
        if bytes.len() != need {
            return Err(self.err(format!(
                "array data has {} bytes, the shape needs {need}",
                bytes.len()
            )));
        }
        let data = if fortran {
            fortran_to_c(&bytes, &shape, dtype.itemsize)
        } else {
            bytes
        };
        Ok(NdArray {
            shape,
            dtype,
            data: ArrayData::Bytes(data),
        })
    }

    fn dtype_state(&self, id: u32, state: Value) -> Result<Dtype> {
        let Obj::Dtype(base) = self.heap.get(id) else {
            unreachable!("checked by the caller")
        };
        let mut d = base.clone();
        let Some(Obj::Tuple(t)) = self.heap.obj(state) else {
            return Err(self.err("dtype state must be a tuple"));
        };
        // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        if t.len() < 8 {
            return Err(self.err("dtype state is too short"));
        }
        match self.str_of(t[1]) {
            Some(">") => d.little = false,
            Some("<" | "|" | "=") => d.little = true,
            _ => return Err(self.err("bad dtype byte order")),
        }
        if t[2] != Value::None {
            return Err(self.err("sub-array dtypes are not supported"));
        }
        if let Value::Int(elsize) = t[5] {
            if elsize > 0 && matches!(d.kind, b'V' | b'U' | b'S') {
                d.itemsize = usize::try_from(elsize).map_err(|_| self.err("bad dtype size"))?;
            }
        }
        if let Some(Obj::Tuple(names)) = self.heap.obj(t[3]) {
            let Some(Obj::Dict(fields)) = self.heap.obj(t[4]) else {
                return Err(self.err("structured dtype without fields"));
            };
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let name = self
                    .str_of(*n)
                    .ok_or_else(|| self.err("field names must be strings"))?;
                let (_, spec) = fields
                    .iter()
                    .find(|(k, _)| self.str_of(*k) == Some(name))
                    .ok_or_else(|| self.err(format!("field `{name}` has no description")))?;
                let Some(Obj::Tuple(spec)) = self.heap.obj(*spec) else {
                    return Err(self.err("field description must be a tuple"));
                };
                let (Some(Obj::Dtype(fd)), Some(Value::Int(off))) =
                    (spec.first().and_then(|v| self.heap.obj(*v)), spec.get(1))
                else {
                    return Err(self.err("field description must be (dtype, offset)"));
                };
                let offset =
                    usize::try_from(*off).map_err(|_| self.err("negative field offset"))?;
                if offset
                    .checked_add(fd.itemsize)
                    .is_none_or(|e| e > d.itemsize)
                {
                    return Err(self.err(format!("field `{name}` lies outside its record")));
                }
                out.push(DField {
                    name: name.to_string(),
                    dtype: fd.clone(),
                    offset,
                });
            }
            d.fields = out;
        }
        Ok(d)
    }

    /// Reads the raw array that follows a joblib `NumpyArrayWrapper`.
    fn read_joblib_array(&mut self, state: Value) -> Result<Obj> {
        let Some(Obj::Dict(items)) = self.heap.obj(state) else {
            return Err(self.err("joblib array wrapper without a state dict"));
        };
        let get = |k: &str| {
            items
                .iter()
                .find(|(key, _)| self.str_of(*key) == Some(k))
                .map(|(_, v)| *v)
        };
        let shape =
            self.shape_of(get("shape").ok_or_else(|| self.err("joblib wrapper without a shape"))?)?;
        let Some(Obj::Dtype(dtype)) = get("dtype").and_then(|v| self.heap.obj(v)) else {
            return Err(self.err("joblib wrapper without a dtype"));
        };
        let dtype = dtype.clone();
        let fortran = get("order").and_then(|v| self.str_of(v)) == Some("F");
        let aligned = get("numpy_array_alignment_bytes").is_some();
        if dtype.has_object() {
            // The array is a complete pickle of its own, read with the same allow-list.
            if self.nesting >= MAX_NESTING {
                return Err(Error::Limit("joblib arrays nested too deeply".into()));
            }
            let saved = (
                std::mem::take(&mut self.stack),
                std::mem::take(&mut self.marks),
                std::mem::take(&mut self.memo),
            );
            self.nesting += 1;
            let res = self.run();
            self.nesting -= 1;
            (self.stack, self.marks, self.memo) = saved;
            let v = res?;
            return match self.heap.obj(v) {
                Some(Obj::Array(a)) => Ok(Obj::Array(a.clone())),
                _ => Err(self.err("joblib object array payload is not an array")),
            };
        }
        if aligned {
            let pad = usize::from(self.u8()?);
            if pad > 16 {
                return Err(self.err("joblib alignment padding over 16 bytes"));
            }
            self.take(pad)?;
        }
        let count = element_count(&shape).ok_or_else(|| self.err("array shape overflows"))?;
        let need = count
            .checked_mul(dtype.itemsize)
            .ok_or_else(|| self.err("array size overflows"))?;
        let bytes = self.take(need)?.to_vec();
        let data = if fortran {
            fortran_to_c(&bytes, &shape, dtype.itemsize)
        } else {
            bytes
        };
        Ok(Obj::Array(NdArray {
            shape,
            dtype,
            data: ArrayData::Bytes(data),
        }))
    }
}

fn reorder_objects(items: &[Value], shape: &[usize]) -> Vec<Value> {
    // Reuse the byte reordering on indices.
    let idx: Vec<u8> = (0..items.len() as u64).flat_map(u64::to_le_bytes).collect();
    let c = fortran_to_c(&idx, shape, 8);
    c.chunks_exact(8)
        .map(|b| {
            items[u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize]
        })
        .collect()
}

/// A numpy scalar becomes a plain value (int, float, bool) or a string.
fn scalar_value(heap: &mut Heap, a: NdArray) -> Result<Value> {
    Ok(match a.dtype.kind {
        b'f' => Value::Float(a.to_f64()?[0]),
        b'i' | b'u' => Value::Int(a.to_i64()?[0]),
        b'b' => Value::Bool(a.to_i64()?[0] != 0),
        b'U' => heap.alloc(Obj::Str(a.to_unicode()?.remove(0))),
        _ => heap.alloc(Obj::Array(a)),
    })
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// Decodes a Python 2 `repr` of a byte string: quotes, and `\\`, `\'`, `\n`, `\xhh`, octal escapes.
fn py_string_literal(l: &[u8]) -> Option<Vec<u8>> {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    let q = *l.first()?;
    if !(q == b'\'' || q == b'"') || l.len() < 2 || *l.last()? != q {
        return None;
    }
    let body = &l[1..l.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *body.get(i + 1)?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let h = std::str::from_utf8(body.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut k = 0;
                while k < 2 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                    v = v * 8 + u32::from(body[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push(u8::try_from(v).ok()?);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Some(out)
}

/// Decodes Python's raw-unicode-escape: `\uXXXX` and `\UXXXXXXXX`, other bytes as latin-1.
fn raw_unicode_escape(l: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(l.len());
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && matches!(l.get(i + 1), Some(b'u' | b'U')) {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            let h = std::str::from_utf8(l.get(i + 2..i + 2 + n)?).ok()?;
            out.push(char::from_u32(u32::from_str_radix(h, 16).ok()?)?);
            i += 2 + n;
        } else {
            out.push(char::from(l[i]));
            i += 1;
        }
    }
    Some(out)
}

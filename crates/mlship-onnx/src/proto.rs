//! The parts of ONNX's protobuf messages mlship reads (model, graph, node, attribute, tensor,
//! value info), decoded by hand from the wire format: every length is checked against the bytes
//! that remain, unknown fields are skipped by their wire type, and nesting is bounded.

use crate::error::{Error, Result};

fn bad(offset: usize, message: impl Into<String>) -> Error {
    Error::Malformed {
        format: "ONNX",
        offset,
        message: message.into(),
    }
}

/// A cursor over one message's bytes; `base` is its offset in the file, for errors.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    base: usize,
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8], usize),
    Fixed32(u32),
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], base: usize) -> Reader<'a> {
        Reader { b, at: 0, base }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.b.get(self.at).ok_or_else(|| Error::Truncated {
                format: "ONNX",
                offset: self.base + self.at,
                needed: 1,
            })?;
            self.at += 1;
            if shift == 63 && byte > 1 {
                return Err(bad(self.base + self.at, "a varint longer than 64 bits"));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(self.base + self.at, "a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<(&'a [u8], usize)> {
        let start = self.at;
        if self.b.len() - start < n {
            return Err(Error::Truncated {
                format: "ONNX",
                offset: self.base + start,
                needed: n - (self.b.len() - start),
            });
        }
        self.at += n;
        Ok((&self.b[start..start + n], self.base + start))
    }

    /// The next field: its number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Wire<'a>)>> {
        if self.at >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        let v = match wt {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let (s, _) = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(s.try_into().expect("8 bytes")))
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n)
                    .map_err(|_| bad(self.base + self.at, "a length too large"))?;
                let (s, off) = self.take(n)?;
                Wire::Bytes(s, off)
            }
            5 => {
                let (s, _) = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(s.try_into().expect("4 bytes")))
            }
            other => return Err(bad(self.base + self.at, format!("wire type {other}"))),
        };
        Ok(Some((num, v)))
    }
}

fn text(b: &[u8], off: usize) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad(off, "a string that is not UTF-8"))
}

/// Packed or unpacked repeated varints.
fn push_varints(v: Wire, out: &mut Vec<i64>) -> Result<()> {
    match v {
        Wire::Varint(x) => out.push(x as i64),
        Wire::Bytes(b, off) => {
            let mut r = Reader::new(b, off);
            while r.at < b.len() {
                out.push(r.varint()? as i64);
            }
        }
        _ => return Err(bad(0, "a repeated integer of the wrong wire type")),
    }
    Ok(())
}

fn push_floats(v: Wire, out: &mut Vec<f32>) -> Result<()> {
    match v {
        Wire::Fixed32(x) => out.push(f32::from_bits(x)),
        Wire::Bytes(b, off) => {
            if b.len() % 4 != 0 {
                return Err(bad(off, "packed floats not a multiple of 4 bytes"));
            }
            out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4"))),
            );
        }
        _ => return Err(bad(0, "a repeated float of the wrong wire type")),
    }
    Ok(())
}

fn push_doubles(v: Wire, out: &mut Vec<f64>) -> Result<()> {
    match v {
        Wire::Fixed64(x) => out.push(f64::from_bits(x)),
        Wire::Bytes(b, off) => {
            if b.len() % 8 != 0 {
                return Err(bad(off, "packed doubles not a multiple of 8 bytes"));
            }
            out.extend(
                b.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8"))),
            );
        }
        _ => return Err(bad(0, "a repeated double of the wrong wire type")),
    }
    Ok(())
}

/// ONNX tensor element types mlship reads.
pub const FLOAT: i64 = 1;
pub const INT32: i64 = 6;
pub const STRING: i64 = 8;
/// Booleans are held as 0 and 1 in an int64 tensor.
pub const BOOL: i64 = 9;
pub const INT64: i64 = 7;
pub const DOUBLE: i64 = 11;

#[derive(Debug, Default)]
pub struct TensorProto {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: i64,
    pub floats: Vec<f32>,
    pub int32s: Vec<i64>,
    pub strings: Vec<Vec<u8>>,
    pub int64s: Vec<i64>,
    pub doubles: Vec<f64>,
    pub raw: Vec<u8>,
    pub external: bool,
}

fn tensor(b: &[u8], off: usize) -> Result<TensorProto> {
    let mut t = TensorProto::default();
    let mut r = Reader::new(b, off);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, v) => push_varints(v, &mut t.dims)?,
            (2, Wire::Varint(x)) => t.data_type = x as i64,
            (4, v) => push_floats(v, &mut t.floats)?,
            (5, v) => push_varints(v, &mut t.int32s)?,
            (6, Wire::Bytes(s, _)) => t.strings.push(s.to_vec()),
            (7, v) => push_varints(v, &mut t.int64s)?,
            (8, Wire::Bytes(s, o)) => t.name = text(s, o)?,
            (9, Wire::Bytes(s, _)) => t.raw = s.to_vec(),
            (10, v) => push_doubles(v, &mut t.doubles)?,
            (13, _) => t.external = true,
            (14, Wire::Varint(1)) => t.external = true,
            _ => {}
        }
    }
    Ok(t)
}

#[derive(Debug, Default)]
pub struct Attribute {
    pub name: String,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Option<Vec<u8>>,
    pub t: Option<TensorProto>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
    pub strings: Vec<Vec<u8>>,
    pub has_graph: bool,
}

fn attribute(b: &[u8], off: usize) -> Result<Attribute> {
    let mut a = Attribute::default();
    let mut r = Reader::new(b, off);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Wire::Bytes(s, o)) => a.name = text(s, o)?,
            (2, Wire::Fixed32(x)) => a.f = Some(f32::from_bits(x)),
            (3, Wire::Varint(x)) => a.i = Some(x as i64),
            (4, Wire::Bytes(s, _)) => a.s = Some(s.to_vec()),
            (5, Wire::Bytes(s, o)) => a.t = Some(tensor(s, o)?),
            (6 | 11, _) => a.has_graph = true,
            (7, v) => push_floats(v, &mut a.floats)?,
            (8, v) => push_varints(v, &mut a.ints)?,
            (9, Wire::Bytes(s, _)) => a.strings.push(s.to_vec()),
            _ => {}
        }
    }
    Ok(a)
}

#[derive(Debug, Default)]
pub struct NodeProto {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub attributes: Vec<Attribute>,
    pub offset: usize,
}

fn node(b: &[u8], off: usize) -> Result<NodeProto> {
    let mut nd = NodeProto {
        offset: off,
        ..NodeProto::default()
    };
    let mut r = Reader::new(b, off);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Wire::Bytes(s, o)) => nd.inputs.push(text(s, o)?),
            (2, Wire::Bytes(s, o)) => nd.outputs.push(text(s, o)?),
            (3, Wire::Bytes(s, o)) => nd.name = text(s, o)?,
            (4, Wire::Bytes(s, o)) => nd.op_type = text(s, o)?,
            (5, Wire::Bytes(s, o)) => nd.attributes.push(attribute(s, o)?),
            (7, Wire::Bytes(s, o)) => nd.domain = text(s, o)?,
            _ => {}
        }
    }
    Ok(nd)
}

#[derive(Debug, Default)]
pub struct ValueInfo {
    pub name: String,
    pub elem_type: i64,
    /// Dimensions: `None` for a symbolic or unknown one.
    pub shape: Vec<Option<i64>>,
}

fn value_info(b: &[u8], off: usize) -> Result<ValueInfo> {
    let mut vi = ValueInfo::default();
    let mut r = Reader::new(b, off);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Wire::Bytes(s, o)) => vi.name = text(s, o)?,
            (2, Wire::Bytes(s, o)) => {
                // TypeProto: tensor_type (1) { elem_type (1), shape (2) { dim (1) { dim_value (1) } } }
                let mut tr = Reader::new(s, o);
                while let Some((tn, tv)) = tr.field()? {
                    if let (1, Wire::Bytes(ts, to)) = (tn, tv) {
                        let mut tt = Reader::new(ts, to);
                        while let Some((f, fv)) = tt.field()? {
                            match (f, fv) {
                                (1, Wire::Varint(x)) => vi.elem_type = x as i64,
                                (2, Wire::Bytes(ss, so)) => {
                                    let mut sr = Reader::new(ss, so);
                                    while let Some((d, dv)) = sr.field()? {
                                        if let (1, Wire::Bytes(ds, dso)) = (d, dv) {
                                            let mut dr = Reader::new(ds, dso);
                                            let mut dim = None;
                                            while let Some((k, kv)) = dr.field()? {
                                                if let (1, Wire::Varint(x)) = (k, kv) {
                                                    dim = Some(x as i64);
                                                }
                                            }
                                            vi.shape.push(dim);
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(vi)
}

#[derive(Debug, Default)]
pub struct GraphProto {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

fn graph(b: &[u8], off: usize) -> Result<GraphProto> {
    let mut g = GraphProto::default();
    let mut r = Reader::new(b, off);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Wire::Bytes(s, o)) => g.nodes.push(node(s, o)?),
            (5, Wire::Bytes(s, o)) => g.initializers.push(tensor(s, o)?),
            (11, Wire::Bytes(s, o)) => g.inputs.push(value_info(s, o)?),
            (12, Wire::Bytes(s, o)) => g.outputs.push(value_info(s, o)?),
            (15, _) => return Err(Error::Unsupported("ONNX sparse initializers".into())),
            _ => {}
        }
    }
    Ok(g)
}

#[derive(Debug, Default)]
pub struct ModelProto {
    pub ir_version: i64,
    pub producer: String,
    pub opsets: Vec<(String, i64)>,
    pub graph: GraphProto,
}

/// Decodes a model file.
pub fn model(b: &[u8]) -> Result<ModelProto> {
    let mut m = ModelProto::default();
    let mut has_graph = false;
    let mut r = Reader::new(b, 0);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Wire::Varint(x)) => m.ir_version = x as i64,
            (2, Wire::Bytes(s, o)) => m.producer = text(s, o)?,
            (3, Wire::Bytes(s, o)) => {
                let v = text(s, o)?;
                m.producer = format!("{} {v}", m.producer).trim().to_string();
            }
            (7, Wire::Bytes(s, o)) => {
                m.graph = graph(s, o)?;
                has_graph = true;
            }
            (8, Wire::Bytes(s, o)) => {
                let mut or = Reader::new(s, o);
                let (mut domain, mut version) = (String::new(), 0);
                while let Some((f, fv)) = or.field()? {
                    match (f, fv) {
                        (1, Wire::Bytes(ds, dof)) => domain = text(ds, dof)?,
                        (2, Wire::Varint(x)) => version = x as i64,
                        _ => {}
                    }
                }
                m.opsets.push((domain, version));
            }
            _ => {}
        }
    }
    if !has_graph || m.ir_version == 0 {
        return Err(bad(0, "no graph or no IR version: not an ONNX model"));
    }
    Ok(m)
}

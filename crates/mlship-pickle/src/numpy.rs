//! numpy's data model as the loaders see it: dtypes (including structured ones), arrays, `.npy` files.

use crate::error::{Result, malformed, unsupported};
use crate::value::Value;

/// A numpy dtype. Structured dtypes list their fields with byte offsets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dtype {
    /// numpy's kind character: `f`, `i`, `u`, `b`, `O`, `U`, `S`, `V`, `c`, `M`, `m`.
    pub kind: u8,
    pub itemsize: usize,
    pub little: bool,
    pub fields: Vec<DField>,
}

/// A field of a structured dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct DField {
    pub name: String,
    pub dtype: Dtype,
    pub offset: usize,
}

impl Dtype {
    /// Parses numpy's short spelling: `f8`, `<i4`, `O8`, `V64`, `U3`, `b1`, or a long name like `float64`.
    pub fn parse(s: &str) -> Result<Dtype> {
        let bad = || unsupported(format!("unsupported numpy dtype {s:?}"));
        let long = match s {
            "float64" | "double" | "float" => Some("f8"),
            "float32" | "single" => Some("f4"),
            "int64" | "int" => Some("i8"),
            "int32" => Some("i4"),
            "int16" => Some("i2"),
            "int8" => Some("i1"),
            "uint64" => Some("u8"),
            "uint32" => Some("u4"),
            "uint16" => Some("u2"),
            "uint8" => Some("u1"),
            "bool" | "bool_" => Some("b1"),
            "object" | "O" => Some("O8"),
            _ => None,
        };
        let s2 = long.unwrap_or(s);
        let bytes = s2.as_bytes();
        let (little, rest) = match bytes.first() {
            Some(b'<' | b'|' | b'=') => (true, &s2[1..]),
            Some(b'>') => (false, &s2[1..]),
            _ => (true, s2),
        };
        let kind = *rest.as_bytes().first().ok_or_else(bad)?;
        // `None` when the kind is not one byte (a character past ASCII).
        let digits = rest.get(1..).ok_or_else(bad)?;
        let n: usize = if digits.is_empty() {
            match kind {
                b'O' => 8,
                b'b' => 1,
                b'U' | b'S' | b'V' => 0,
                _ => return Err(bad()),
            }
        } else {
            digits.parse().map_err(|_| bad())?
        };
        let itemsize = match kind {
            b'f' | b'i' | b'u' | b'c' | b'M' | b'm' | b'b' | b'S' | b'V' => n,
            b'O' => 8,
            b'U' => n.checked_mul(4).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if matches!(kind, b'f') && !matches!(itemsize, 2 | 4 | 8)
            || matches!(kind, b'i' | b'u') && !matches!(itemsize, 1 | 2 | 4 | 8)
        {
            return Err(bad());
        }
        Ok(Dtype {
            kind,
            itemsize,
            little,
            fields: Vec::new(),
        })
    }

    pub fn has_object(&self) -> bool {
        self.kind == b'O' || self.fields.iter().any(|f| f.dtype.has_object())
    }

    pub fn describe(&self) -> String {
        if self.fields.is_empty() {
            format!(
                "{}{}{}",
                if self.little { '<' } else { '>' },
                self.kind as char,
                self.itemsize
            )
        } else {
            let f: Vec<String> = self
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.dtype.describe()))
                .collect();
            format!("{{{}}}", f.join(", "))
        }
    }

    /// Reads one element at `b` (exactly `itemsize` bytes) as f64.
    fn read_f64(&self, b: &[u8]) -> Option<f64> {
        let mut buf = [0u8; 8];
        let n = self.itemsize;
        if n > 8 || b.len() < n {
            return None;
        }
        buf[..n].copy_from_slice(&b[..n]);
        if !self.little {
            buf[..n].reverse();
        }
        Some(match (self.kind, n) {
            (b'f', 8) => f64::from_le_bytes(buf),
            (b'f', 4) => f64::from(f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]])),
            (b'f', 2) => half_to_f64(u16::from_le_bytes([buf[0], buf[1]])),
            (b'i', _) => self.read_i64(b)? as f64,
            (b'u', _) => u64::from_le_bytes(buf) as f64,
            (b'b', 1) => f64::from(buf[0] != 0),
            _ => return None,
        })
    }

    fn read_i64(&self, b: &[u8]) -> Option<i64> {
        let n = self.itemsize;
        if n > 8 || b.len() < n {
            return None;
        }
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(&b[..n]);
        if !self.little {
            buf[..n].reverse();
        }
        match self.kind {
            b'i' => {
                // Sign-extend.
                let sign = buf[n - 1] & 0x80 != 0;
                if sign {
                    for x in buf.iter_mut().skip(n) {
                        *x = 0xff;
                    }
                }
                Some(i64::from_le_bytes(buf))
            }
            b'u' => i64::try_from(u64::from_le_bytes(buf)).ok(),
            b'b' => Some(i64::from(buf[0] != 0)),
            b'f' => {
                let f = self.read_f64(b)?;
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Some(f as i64)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// The payload of an array.
#[derive(Clone, Debug)]
pub enum ArrayData {
    /// `_reconstruct` made it; BUILD has not filled it yet.
    Pending,
    /// Raw elements in C order.
    Bytes(Vec<u8>),
    /// Elements of an object array.
    Objects(Vec<Value>),
}

/// A numpy array.
#[derive(Clone, Debug)]
pub struct NdArray {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data: ArrayData,
}

/// The number of elements of a shape, with overflow checked.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Reorders Fortran-order bytes to C order.
pub fn fortran_to_c(bytes: &[u8], shape: &[usize], itemsize: usize) -> Vec<u8> {
    if shape.len() < 2 || itemsize == 0 {
        return bytes.to_vec();
    }
    let n = bytes.len() / itemsize;
    let mut out = vec![0u8; bytes.len()];
    // C-order strides and Fortran-order strides, in elements.
    let nd = shape.len();
    let mut idx = vec![0usize; nd];
    for c in 0..n {
        // Fortran offset of the multi-index idx.
        let mut f = 0;
        let mut stride = 1;
        for d in 0..nd {
            f += idx[d] * stride;
            stride *= shape[d];
        }
        out[c * itemsize..(c + 1) * itemsize]
            .copy_from_slice(&bytes[f * itemsize..(f + 1) * itemsize]);
        // Increment the C-order multi-index.
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

impl NdArray {
    pub fn len(&self) -> usize {
        element_count(&self.shape).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> Result<&[u8]> {
        match &self.data {
            ArrayData::Bytes(b) => Ok(b),
            ArrayData::Objects(_) => Err(unsupported(
                "expected a numeric array, found an object array",
            )),
            ArrayData::Pending => Err(unsupported("array was never given its data")),
        }
    }

    /// Elements as f64 (numeric and boolean dtypes).
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        let b = self.bytes()?;
        let n = self.dtype.itemsize;
        if n == 0 || !self.dtype.fields.is_empty() {
            return Err(unsupported(format!(
                "expected numbers, found dtype {}",
                self.dtype.describe()
            )));
        }
        b.chunks_exact(n)
            .map(|c| {
                self.dtype.read_f64(c).ok_or_else(|| {
                    unsupported(format!(
                        "cannot read dtype {} as numbers",
                        self.dtype.describe()
                    ))
                })
            })
            .collect()
    }

    /// Elements as i64 (integer, boolean, and integral float dtypes).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let b = self.bytes()?;
        let n = self.dtype.itemsize;
        if n == 0 || !self.dtype.fields.is_empty() {
            return Err(unsupported(format!(
                "expected integers, found dtype {}",
                self.dtype.describe()
            )));
        }
        b.chunks_exact(n)
            .map(|c| {
                self.dtype.read_i64(c).ok_or_else(|| {
                    unsupported(format!(
                        "cannot read dtype {} as integers",
                        self.dtype.describe()
                    ))
                })
            })
            .collect()
    }

    /// Elements of a fixed-width unicode (`U`) array.
    pub fn to_unicode(&self) -> Result<Vec<String>> {
        if self.dtype.kind != b'U' {
            return Err(unsupported("expected a unicode array"));
        }
        let b = self.bytes()?;
        let n = self.dtype.itemsize;
        if n == 0 {
            return Ok(vec![String::new(); self.len()]);
        }
        b.chunks_exact(n)
            .map(|c| {
                let mut s = String::new();
                for ch in c.chunks_exact(4) {
                    let arr = [ch[0], ch[1], ch[2], ch[3]];
                    let code = if self.dtype.little {
                        u32::from_le_bytes(arr)
                    } else {
                        u32::from_be_bytes(arr)
                    };
                    if code == 0 {
                        break;
                    }
                    s.push(
                        char::from_u32(code)
                            .ok_or_else(|| unsupported("invalid code point in a unicode array"))?,
                    );
                }
                Ok(s)
            })
            .collect()
    }

    /// One field of a structured array, as f64 per record.
    pub fn field_f64(&self, name: &str) -> Result<Vec<f64>> {
        let (f, b) = self.field(name)?;
        b.chunks_exact(self.dtype.itemsize)
            .map(|rec| {
                rec.get(f.offset..f.offset + f.dtype.itemsize)
                    .and_then(|x| f.dtype.read_f64(x))
                    .ok_or_else(|| unsupported(format!("cannot read field {name}")))
            })
            .collect()
    }

    /// One field of a structured array, as i64 per record.
    pub fn field_i64(&self, name: &str) -> Result<Vec<i64>> {
        let (f, b) = self.field(name)?;
        b.chunks_exact(self.dtype.itemsize)
            .map(|rec| {
                rec.get(f.offset..f.offset + f.dtype.itemsize)
                    .and_then(|x| f.dtype.read_i64(x))
                    .ok_or_else(|| unsupported(format!("cannot read field {name}")))
            })
            .collect()
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.dtype.fields.iter().any(|f| f.name == name)
    }

    fn field(&self, name: &str) -> Result<(&DField, &[u8])> {
        let f = self
            .dtype
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| unsupported(format!("structured array has no field `{name}`")))?;
        if self.dtype.itemsize == 0 || f.offset + f.dtype.itemsize > self.dtype.itemsize {
            return Err(unsupported(format!(
                "field `{name}` lies outside its record"
            )));
        }
        Ok((f, self.bytes()?))
    }
}

/// A Python literal, as found in `.npy` headers.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

struct LitParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl LitParser<'_> {
    fn err(&self, m: &str) -> crate::Error {
        malformed("npy header", self.pos, m)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn parse(&mut self) -> Result<Lit> {
        self.ws();
        self.depth += 1;
        if self.depth > 32 {
            return Err(self.err("nested too deeply"));
        }
        let c = *self
            .s
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        let v = match c {
            b'{' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        break;
                    }
                    let k = self.parse()?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.pos += 1;
                    let v = self.parse()?;
                    items.push((k, v));
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
                Lit::Dict(items)
            }
            b'(' | b'[' => {
                let close = if c == b'(' { b')' } else { b']' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.pos) == Some(&close) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.parse()?);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(x) if *x == close => {}
                        _ => return Err(self.err("expected ',' or a closing bracket")),
                    }
                }
                Lit::Seq(items)
            }
            b'\'' | b'"' => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != c {
                    if self.s[self.pos] == b'\\' {
                        return Err(self.err("escapes are not supported in npy headers"));
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err(self.err("unterminated string"));
                }
                let t = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| self.err("invalid utf-8"))?;
                self.pos += 1;
                Lit::Str(t.to_string())
            }
            b'0'..=b'9' | b'-' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // Python 2 longs end in L.
                let t = std::str::from_utf8(&self.s[start..self.pos])
                    .map_err(|_| self.err("bad number"))?;
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                Lit::Int(t.parse().map_err(|_| self.err("bad integer"))?)
            }
            _ => {
                let rest = &self.s[self.pos..];
                if rest.starts_with(b"True") {
                    self.pos += 4;
                    Lit::Bool(true)
                } else if rest.starts_with(b"False") {
                    self.pos += 5;
                    Lit::Bool(false)
                } else if rest.starts_with(b"None") {
                    self.pos += 4;
                    Lit::None
                } else {
                    return Err(self.err("unexpected character"));
                }
            }
        };
        self.depth -= 1;
        Ok(v)
    }
}

/// Parses a Python literal (the subset `.npy` headers use).
pub fn parse_literal(s: &str) -> Result<Lit> {
    LitParser {
        s: s.as_bytes(),
        pos: 0,
        depth: 0,
    }
    .parse()
}

/// A dtype from an `.npy` `descr`: a string, or a list of `(name, descr)` for structured types.
fn descr_dtype(l: &Lit) -> Result<Dtype> {
    match l {
        Lit::Str(s) => Dtype::parse(s),
        Lit::Seq(fields) => {
            let mut out = Vec::new();
            let mut offset = 0usize;
            for f in fields {
                let Lit::Seq(parts) = f else {
                    return Err(unsupported("bad structured descr"));
                };
                let (Some(Lit::Str(name)), Some(d)) = (parts.first(), parts.get(1)) else {
                    return Err(unsupported("bad structured descr field"));
                };
                if parts.len() > 2 {
                    return Err(unsupported("sub-array fields are not supported"));
                }
                let dt = descr_dtype(d)?;
                let size = dt.itemsize;
                if !name.is_empty() {
                    out.push(DField {
                        name: name.clone(),
                        dtype: dt,
                        offset,
                    });
                }
                offset = offset
                    .checked_add(size)
                    .ok_or_else(|| unsupported("record too large"))?;
            }
            Ok(Dtype {
                kind: b'V',
                itemsize: offset,
                little: true,
                fields: out,
            })
        }
        _ => Err(unsupported("bad npy descr")),
    }
}

/// Parses an `.npy` file (versions 1 to 3) into an array. Object arrays are refused.
pub fn parse_npy(b: &[u8]) -> Result<NdArray> {
    const FMT: &str = "npy";
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(malformed(FMT, 0, "missing the \\x93NUMPY magic"));
    }
    let major = b[6];
    let (hlen, start) = match major {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10usize),
        2 | 3 => {
            if b.len() < 12 {
                return Err(malformed(FMT, 8, "short header"));
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
        v => return Err(malformed(FMT, 6, format!("unknown npy version {v}"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| malformed(FMT, start, "header runs past the end"))?;
    let header = std::str::from_utf8(&b[start..end])
        .map_err(|_| malformed(FMT, start, "header is not text"))?;
    let Lit::Dict(items) = parse_literal(header)? else {
        return Err(malformed(FMT, start, "header is not a dict"));
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(key, _)| *key == Lit::Str(k.into()))
            .map(|(_, v)| v)
    };
    let dtype = descr_dtype(get("descr").ok_or_else(|| malformed(FMT, start, "no descr"))?)?;
    let fortran = matches!(get("fortran_order"), Some(Lit::Bool(true)));
    let shape: Vec<usize> = match get("shape") {
        Some(Lit::Seq(d)) => d
            .iter()
            .map(|x| match x {
                Lit::Int(i) => {
                    usize::try_from(*i).map_err(|_| malformed(FMT, start, "negative dimension"))
                }
                _ => Err(malformed(FMT, start, "bad shape")),
            })
            .collect::<Result<_>>()?,
        _ => return Err(malformed(FMT, start, "no shape")),
    };
    if dtype.has_object() {
        return Err(unsupported(
            "object arrays inside .npy files are not loaded (they are pickles)",
        ));
    }
    let count = element_count(&shape).ok_or_else(|| malformed(FMT, start, "shape overflows"))?;
    let nbytes = count
        .checked_mul(dtype.itemsize)
        .ok_or_else(|| malformed(FMT, start, "size overflows"))?;
    let data = b.get(end..end + nbytes).ok_or(crate::Error::Truncated {
        format: FMT,
        offset: end,
        needed: nbytes.saturating_sub(b.len() - end),
    })?;
    let bytes = if fortran {
        fortran_to_c(data, &shape, dtype.itemsize)
    } else {
        data.to_vec()
    };
    Ok(NdArray {
        shape,
        dtype,
        data: ArrayData::Bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_dtype_names() {
        assert_eq!(Dtype::parse("f8").unwrap().itemsize, 8);
        assert_eq!(Dtype::parse("<i4").unwrap().kind, b'i');
        assert_eq!(Dtype::parse("U3").unwrap().itemsize, 12);
        assert!(!Dtype::parse(">f8").unwrap().little);
        assert!(Dtype::parse("q9").is_err());
    }

    #[test]
    fn refuses_dtype_kinds_past_ascii() {
        // Found by the `load` fuzz target: the kind was assumed to be one byte.
        assert!(Dtype::parse("\u{93}8").is_err());
        assert!(Dtype::parse("<\u{e9}").is_err());
        assert!(Dtype::parse("\u{e9}").is_err());
    }

    #[test]
    fn parses_structured_npy_header() {
        let l = parse_literal(
            "{'descr': [('a', '<i8'), ('', '|V7')], 'fortran_order': False, 'shape': (3,), }",
        )
        .unwrap();
        let Lit::Dict(items) = l else {
            panic!("not a dict")
        };
        let d = descr_dtype(&items[0].1).unwrap();
        assert_eq!(d.itemsize, 15);
        assert_eq!(d.fields.len(), 1);
    }

    #[test]
    fn fortran_to_c_transposes() {
        // 2x3 matrix [[1,2,3],[4,5,6]] in Fortran order is 1,4,2,5,3,6.
        let f: Vec<u8> = [1u8, 4, 2, 5, 3, 6].to_vec();
        assert_eq!(fortran_to_c(&f, &[2, 3], 1), vec![1, 2, 3, 4, 5, 6]);
    }
}

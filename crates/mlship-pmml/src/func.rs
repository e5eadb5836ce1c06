//! PMML's built-in functions and comparison operators, resolved from their names when the
//! document is read: scoring dispatches on these enums, never on strings, and a name mlship does
//! not evaluate is refused at load.

/// A comparison, as a SimplePredicate's operator or a comparing function names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
}

impl Cmp {
    pub fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "equal" => Cmp::Equal,
            "notEqual" => Cmp::NotEqual,
            "lessThan" => Cmp::LessThan,
            "lessOrEqual" => Cmp::LessOrEqual,
            "greaterThan" => Cmp::GreaterThan,
            "greaterOrEqual" => Cmp::GreaterOrEqual,
            _ => return None,
        })
    }

    /// Whether `a` compared with `b` (their order) satisfies the comparison.
    pub fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Cmp::Equal => o == Equal,
            Cmp::NotEqual => o != Equal,
            Cmp::LessThan => o == Less,
            Cmp::LessOrEqual => o != Greater,
            Cmp::GreaterThan => o == Greater,
            Cmp::GreaterOrEqual => o != Less,
        }
    }
}

/// A SimplePredicate's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimpleOp {
    Cmp(Cmp),
    IsMissing,
    IsNotMissing,
}

impl SimpleOp {
    pub fn parse(s: &str) -> Option<SimpleOp> {
        Some(match s {
            "isMissing" => SimpleOp::IsMissing,
            "isNotMissing" => SimpleOp::IsNotMissing,
            other => SimpleOp::Cmp(Cmp::parse(other)?),
        })
    }
}

/// A built-in function (PMML's, and the `x-` ones JPMML writers use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sum,
    Avg,
    Product,
    Median,
    Log10,
    Ln,
    Sqrt,
    Abs,
    Exp,
    Pow,
    Threshold,
    Floor,
    Ceil,
    Round,
    Expm1,
    Ln1p,
    Atan,
    Tanh,
    Sin,
    Cos,
    StdNormalCdf,
    Erf,
    IsMissing,
    IsNotMissing,
    Compare(Cmp),
    And,
    Or,
    Not,
    If,
    IsIn,
    IsNotIn,
    Lowercase,
    Uppercase,
    TrimBlanks,
    Concat,
}

/// Every built-in by its names (the first is PMML's; `x-` names are JPMML's spellings).
const NAMES: &[(&str, Builtin)] = &[
    ("+", Builtin::Add),
    ("-", Builtin::Sub),
    ("*", Builtin::Mul),
    ("/", Builtin::Div),
    ("min", Builtin::Min),
    ("max", Builtin::Max),
    ("sum", Builtin::Sum),
    ("avg", Builtin::Avg),
    ("product", Builtin::Product),
    ("median", Builtin::Median),
    ("log10", Builtin::Log10),
    ("ln", Builtin::Ln),
    ("sqrt", Builtin::Sqrt),
    ("abs", Builtin::Abs),
    ("exp", Builtin::Exp),
    ("pow", Builtin::Pow),
    ("threshold", Builtin::Threshold),
    ("floor", Builtin::Floor),
    ("ceil", Builtin::Ceil),
    ("round", Builtin::Round),
    ("rint", Builtin::Round),
    ("x-rint", Builtin::Round),
    ("expm1", Builtin::Expm1),
    ("x-expm1", Builtin::Expm1),
    ("ln1p", Builtin::Ln1p),
    ("x-ln1p", Builtin::Ln1p),
    ("atan", Builtin::Atan),
    ("x-atan", Builtin::Atan),
    ("tanh", Builtin::Tanh),
    ("x-tanh", Builtin::Tanh),
    ("sin", Builtin::Sin),
    ("x-sin", Builtin::Sin),
    ("cos", Builtin::Cos),
    ("x-cos", Builtin::Cos),
    ("stdNormalCDF", Builtin::StdNormalCdf),
    ("erf", Builtin::Erf),
    ("isMissing", Builtin::IsMissing),
    ("isNotMissing", Builtin::IsNotMissing),
    ("equal", Builtin::Compare(Cmp::Equal)),
    ("notEqual", Builtin::Compare(Cmp::NotEqual)),
    ("lessThan", Builtin::Compare(Cmp::LessThan)),
    ("lessOrEqual", Builtin::Compare(Cmp::LessOrEqual)),
    ("greaterThan", Builtin::Compare(Cmp::GreaterThan)),
    ("greaterOrEqual", Builtin::Compare(Cmp::GreaterOrEqual)),
    ("and", Builtin::And),
    ("or", Builtin::Or),
    ("not", Builtin::Not),
    ("if", Builtin::If),
    ("isIn", Builtin::IsIn),
    ("isNotIn", Builtin::IsNotIn),
    ("lowercase", Builtin::Lowercase),
    ("uppercase", Builtin::Uppercase),
    ("trimBlanks", Builtin::TrimBlanks),
    ("concat", Builtin::Concat),
];

impl Builtin {
    pub fn parse(name: &str) -> Option<Builtin> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// PMML's name of the function, for messages.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }

    /// The least and greatest number of arguments (`None`: any number).
    pub fn arity(self) -> (usize, Option<usize>) {
        use Builtin::*;
        match self {
            Add | Sub | Mul | Div | Pow | Threshold | Compare(_) => (2, Some(2)),
            Min | Max | Sum | Avg | Product | Median | And | Or => (1, None),
            Log10 | Ln | Sqrt | Abs | Exp | Floor | Ceil | Round | Expm1 | Ln1p | Atan | Tanh
            | Sin | Cos | StdNormalCdf | Erf | IsMissing | IsNotMissing | Not | Lowercase
            | Uppercase | TrimBlanks => (1, Some(1)),
            If => (2, Some(3)),
            IsIn | IsNotIn => (2, None),
            Concat => (0, None),
        }
    }

    /// Whether the function sees missing arguments (the others answer missing for them).
    pub fn missing_aware(self) -> bool {
        matches!(
            self,
            Builtin::IsMissing | Builtin::IsNotMissing | Builtin::If | Builtin::Or | Builtin::And
        )
    }
}

/// What an `<Apply>` calls: a built-in, or a function the document defines (by name; the parser
/// checks that it exists and takes as many arguments).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Builtin(Builtin),
    /// A function the document defines: its index in the document's functions.
    Defined(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_to_a_function_that_names_itself_back() {
        for (name, b) in NAMES {
            assert_eq!(Builtin::parse(name), Some(*b), "{name}");
            assert_eq!(Builtin::parse(b.name()), Some(*b), "{name}");
        }
        assert_eq!(Builtin::parse("eval"), None);
        assert_eq!(
            SimpleOp::parse("lessOrEqual"),
            Some(SimpleOp::Cmp(Cmp::LessOrEqual))
        );
        assert_eq!(SimpleOp::parse("between"), None);
    }
}

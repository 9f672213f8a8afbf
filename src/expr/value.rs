//! Values a filter computes with: constants, field values and JSON values.

use std::borrow::Cow;
use std::cmp::Ordering;

/// One value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Missing (a null field, an absent JSON key).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A list (array field, JSON array, `[...]` literal).
    List(Vec<Value<'a>>),
    /// A JSON object.
    Object(&'a serde_json::Value),
}

impl<'a> Value<'a> {
    /// A JSON value as a plain value (objects stay objects).
    pub fn from_json(v: &'a serde_json::Value) -> Value<'a> {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(Cow::Borrowed(s)),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(_) => Value::Object(v),
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::List(l) => Value::List(l.into_iter().map(Value::into_owned).collect()),
            // Objects are only ever compared for equality through their JSON text.
            Value::Object(o) => Value::Str(Cow::Owned(o.to_string())),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// How `self` orders against `other`; None when they cannot be compared (different
    /// kinds, nulls).
    pub fn compare(&self, other: &Value<'_>) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
            (Value::List(a), Value::List(b)) => {
                if a.len() != b.len() {
                    return None;
                }
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y)? {
                        Ordering::Equal => {}
                        o => return Some(o),
                    }
                }
                Some(Ordering::Equal)
            }
            (Value::Object(a), Value::Object(b)) => (a == b).then_some(Ordering::Equal),
            _ => {
                let (a, b) = (self.number()?, other.number()?);
                a.partial_cmp(&b)
            }
        }
    }

    /// Equality as `==` sees it (null equals nothing).
    pub fn equals(&self, other: &Value<'_>) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }

    /// The value as a boolean condition (only booleans are true).
    pub fn truth(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
}

/// Arithmetic on two values; Null when either is not a number (or on division by 0).
pub fn arith(op: char, a: &Value<'_>, b: &Value<'_>) -> Value<'static> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        return match op {
            '+' => Value::Int(x.wrapping_add(y)),
            '-' => Value::Int(x.wrapping_sub(y)),
            '*' => Value::Int(x.wrapping_mul(y)),
            '/' if y != 0 => Value::Int(x.wrapping_div(y)),
            '%' if y != 0 => Value::Int(x.wrapping_rem(y)),
            '^' => Value::Float((x as f64).powf(y as f64)),
            _ => Value::Null,
        };
    }
    let (Some(x), Some(y)) = (a.number(), b.number()) else {
        return Value::Null;
    };
    match op {
        '+' => Value::Float(x + y),
        '-' => Value::Float(x - y),
        '*' => Value::Float(x * y),
        '/' if y != 0.0 => Value::Float(x / y),
        '%' if y != 0.0 => Value::Float(x % y),
        '^' => Value::Float(x.powf(y)),
        _ => Value::Null,
    }
}

/// Whether `s` matches a `like` pattern (`%` any run, `_` one character, `\` escapes).
pub fn like(s: &str, pattern: &[LikeToken]) -> bool {
    fn go(s: &[char], p: &[LikeToken]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(LikeToken::Any) => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some(LikeToken::One) => !s.is_empty() && go(&s[1..], &p[1..]),
            Some(LikeToken::Char(c)) => s.first() == Some(c) && go(&s[1..], &p[1..]),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    go(&chars, pattern)
}

/// One element of a compiled `like` pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum LikeToken {
    /// `%`
    Any,
    /// `_`
    One,
    /// A literal character.
    Char(char),
}

/// Compiles a `like` pattern.
pub fn like_pattern(p: &str) -> Vec<LikeToken> {
    let mut out: Vec<LikeToken> = Vec::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next().map(LikeToken::Char)),
            '%' if out.last() == Some(&LikeToken::Any) => {}
            '%' => out.push(LikeToken::Any),
            '_' => out.push(LikeToken::One),
            c => out.push(LikeToken::Char(c)),
        }
    }
    out
}

//! From text to a typed plan: the pest parse tree is walked once, names are resolved
//! against the schema (dynamic keys into `$meta`), constants are folded and types are
//! checked where the schema makes them known.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pest::iterators::Pair;
use pest::Parser;

use super::value::{self, LikeToken, Value};
use crate::analyzer::Analyzer;
use crate::geometry::{Shape, Spatial};
use crate::proto::schema::{
    template_array_value as tav, template_value, CollectionSchema, DataType, TemplateArrayValue,
    TemplateValue,
};
use crate::schema::META_FIELD;

#[derive(pest_derive::Parser)]
#[grammar = "expr/grammar.pest"]
struct Grammar;

/// One step into a JSON value or array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array position.
    Index(i64),
}

/// A field reference.
#[derive(Debug, Clone)]
pub struct FieldRef {
    pub id: i64,
    pub data_type: DataType,
    pub path: Vec<Step>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The functions of the language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Func {
    JsonContains,
    JsonContainsAll,
    JsonContainsAny,
    ArrayContains,
    ArrayContainsAll,
    ArrayContainsAny,
    ArrayLength,
}

/// Constants of an `in` list, hashed by kind.
#[derive(Debug, Clone, Default)]
pub struct ConstSet {
    pub ints: HashSet<i64>,
    pub strs: HashSet<String>,
    pub others: Vec<Value<'static>>,
}

impl ConstSet {
    pub fn contains(&self, v: &Value<'_>) -> bool {
        match v {
            Value::Int(i) => self.ints.contains(i) || self.others.iter().any(|o| o.equals(v)),
            Value::Float(f) if f.fract() == 0.0 && self.ints.contains(&(*f as i64)) => true,
            Value::Str(s) => self.strs.contains(s.as_ref()),
            Value::Null => false,
            v => self.others.iter().any(|o| o.equals(v)),
        }
    }
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Const(Value<'static>),
    Field(FieldRef),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Arith(char, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    In(Box<Expr>, ConstSet, bool),
    Like(Box<Expr>, Vec<LikeToken>),
    IsNull(Box<Expr>, bool),
    Exists(FieldRef),
    Call(Func, Vec<Expr>),
    /// `TEXT_MATCH(field, 'words')`: rows whose text has any of the words' tokens;
    /// `PHRASE_MATCH(field, 'words'[, slop])`: rows whose text has them as a phrase.
    TextMatch(FieldRef, Arc<TextQuery>),
    /// `ST_*(field, 'wkt'[, meters])`: rows whose geometry stands in the relation to the
    /// constant's (`geometry::Spatial::holds`).
    Spatial(FieldRef, Spatial, Arc<Shape>, f64),
}

/// The query of a `TEXT_MATCH` or `PHRASE_MATCH`: the field's analyzer and the tokens
/// it gives the query text. A `TEXT_MATCH` row matches when its text, through the same
/// analyzer, gives one of them; a `PHRASE_MATCH` row when it gives them as the phrase.
/// No token (an empty text, only stop words): nothing matches.
#[derive(Debug)]
pub struct TextQuery {
    pub analyzer: Analyzer,
    pub tokens: HashSet<String>,
    /// A phrase of two tokens or more (one token is a `TEXT_MATCH` of it, as in Milvus).
    pub phrase: Option<Phrase>,
}

impl TextQuery {
    /// Whether `text` matches (`analyzer` is a clone of the query's, one per caller,
    /// since cutting text needs it mutable).
    pub fn matches(&self, analyzer: &mut Analyzer, text: &str) -> bool {
        if self.tokens.is_empty() {
            return false;
        }
        let cut = analyzer.tokens(text);
        match &self.phrase {
            None => cut.iter().any(|t| self.tokens.contains(&t.text)),
            Some(p) => p.found_in(&cut),
        }
    }
}

/// A `PHRASE_MATCH` phrase: its tokens with their positions in the query text (stop words
/// removed by the analyzer leave gaps there as in the rows), and the slop.
///
/// A text holds the phrase when one position `p_i` per query token `i` (at query position
/// `q_i`) can be picked with `max(p_i - q_i) - min(p_i - q_i) <= slop`: slop 0 is the exact
/// phrase, each extra word between two tokens costs 1, two adjacent tokens swapped cost 2.
/// Tokens need not be in order, and a token repeated in the query may take the same
/// position twice. This is Milvus's rule (its tantivy's phrase scorer; the window rule
/// exactly, as Milvus's `ComputePhraseMatchSlop` states it).
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    pub terms: Vec<(String, i64)>,
    pub slop: u64,
}

impl Phrase {
    /// Whether the tokens `cut` from a text hold the phrase.
    pub fn found_in(&self, cut: &[crate::analyzer::Token]) -> bool {
        // Per query token, its shifted positions `p - q` in the text, ascending.
        let mut lists: Vec<Vec<i64>> = Vec::with_capacity(self.terms.len());
        for (term, at) in &self.terms {
            let mut l: Vec<i64> = cut
                .iter()
                .filter(|t| &t.text == term)
                .map(|t| t.position as i64 - at)
                .collect();
            if l.is_empty() {
                return false;
            }
            // Analyzers give positions in order, but nothing makes them promise it.
            l.sort_unstable();
            lists.push(l);
        }
        // The narrowest window holding one value of each list: move the list whose
        // current value is the smallest, keeping the largest current value.
        let mut heads = vec![0usize; lists.len()];
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>> = lists
            .iter()
            .enumerate()
            .map(|(i, l)| std::cmp::Reverse((l[0], i)))
            .collect();
        let mut high = lists.iter().map(|l| l[0]).max().unwrap_or(0);
        while let Some(std::cmp::Reverse((low, i))) = heap.pop() {
            if (high - low) as u64 <= self.slop {
                return true;
            }
            heads[i] += 1;
            let Some(&next) = lists[i].get(heads[i]) else {
                return false;
            };
            high = high.max(next);
            heap.push(std::cmp::Reverse((next, i)));
        }
        false
    }
}

/// What a sub-expression is known to produce.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Number,
    Str,
    List,
    /// JSON, nulls, anything only known per row.
    Any,
}

struct Ctx<'a> {
    schema: &'a CollectionSchema,
    templates: &'a HashMap<String, TemplateValue>,
    fields: Vec<i64>,
}

type R<T> = Result<T, String>;

/// How Milvus refuses a filter that is not a predicate.
pub const NOT_A_PREDICATE: &str = "predicate is not a boolean expression";

/// How Milvus refuses a call of a function it does not have: its grammar takes any call,
/// and the plan it cannot make is refused in these words.
pub const UNKNOWN_FUNCTION: &str = "Create retrieve plan by expr failed";

pub fn compile(
    text: &str,
    schema: &CollectionSchema,
    templates: &HashMap<String, TemplateValue>,
) -> R<(Expr, Vec<i64>)> {
    let mut pairs = Grammar::parse(Rule::filter, text).map_err(|e| {
        let (line, col) = match e.line_col {
            pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p,
        };
        let _ = line;
        format!("syntax error at column {col}: {}", e.variant.message())
    })?;
    let filter = pairs.next().ok_or("empty expression")?;
    let or = filter.into_inner().next().ok_or("empty expression")?;
    let mut ctx = Ctx {
        schema,
        templates,
        fields: Vec::new(),
    };
    let e = ctx.expr(or)?;
    if let Expr::Field(f) = &e {
        // A JSON value (or a dynamic key) alone is no predicate: compare it.
        if f.data_type == DataType::Json {
            return Err(format!(
                "{NOT_A_PREDICATE}: {}, data type: JSON",
                text.trim()
            ));
        }
    }
    match kind(&e) {
        Kind::Bool | Kind::Any => {}
        k => {
            // Milvus names the expression's type as its schema does.
            let t = match (&e, k) {
                (Expr::Field(f), _) if f.path.is_empty() => f.data_type.as_str_name(),
                (Expr::Const(Value::Float(_)), _) => "Double",
                (_, Kind::Number) => "Int64",
                (_, Kind::Str) => "VarChar",
                _ => "Array",
            };
            return Err(format!(
                "{NOT_A_PREDICATE}: {}, data type: {t}",
                text.trim()
            ));
        }
    }
    ctx.fields.sort_unstable();
    ctx.fields.dedup();
    Ok((e, ctx.fields))
}

/// A field reference alone: `name`, `name['a'][0]`, or a dynamic key `key['a']`.
pub fn identifier(text: &str, schema: &CollectionSchema) -> R<FieldRef> {
    let mut pairs = Grammar::parse(Rule::identifier, text.trim()).map_err(|e| {
        let col = match e.line_col {
            pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p.1,
        };
        format!("syntax error at column {col}: {}", e.variant.message())
    })?;
    let path = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .ok_or("empty identifier")?;
    let templates = HashMap::new();
    let mut ctx = Ctx {
        schema,
        templates: &templates,
        fields: Vec::new(),
    };
    ctx.path(path)
}

/// Whether `e` is known to produce a boolean (a predicate).
pub fn is_boolean(e: &Expr) -> bool {
    kind(e) == Kind::Bool
}

fn kind(e: &Expr) -> Kind {
    match e {
        Expr::Const(Value::Bool(_)) => Kind::Bool,
        Expr::Const(Value::Int(_) | Value::Float(_)) => Kind::Number,
        Expr::Const(Value::Str(_)) => Kind::Str,
        Expr::Const(Value::List(_)) => Kind::List,
        Expr::Const(_) => Kind::Any,
        Expr::Field(f) if f.path.is_empty() => match f.data_type {
            DataType::Bool => Kind::Bool,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float
            | DataType::Double => Kind::Number,
            DataType::VarChar | DataType::String => Kind::Str,
            DataType::Array => Kind::List,
            _ => Kind::Any,
        },
        Expr::Field(f) => match f.data_type {
            DataType::Array => element_kind(f),
            _ => Kind::Any,
        },
        Expr::Not(_)
        | Expr::And(_)
        | Expr::Or(_)
        | Expr::Cmp(..)
        | Expr::In(..)
        | Expr::Like(..)
        | Expr::IsNull(..)
        | Expr::Exists(_)
        | Expr::TextMatch(..)
        | Expr::Spatial(..) => Kind::Bool,
        Expr::Arith(..) | Expr::Neg(_) => Kind::Number,
        Expr::Call(Func::ArrayLength, _) => Kind::Number,
        Expr::Call(..) => Kind::Bool,
    }
}

fn element_kind(_f: &FieldRef) -> Kind {
    Kind::Any
}

fn bad_pair(p: &Pair<Rule>) -> String {
    format!("unexpected `{}`", p.as_str())
}

fn describe(k: Kind) -> &'static str {
    match k {
        Kind::Bool => "a boolean",
        Kind::Number => "a number",
        Kind::Str => "a string",
        Kind::List => "an array",
        Kind::Any => "a value",
    }
}

impl Ctx<'_> {
    fn expr(&mut self, p: Pair<Rule>) -> R<Expr> {
        match p.as_rule() {
            Rule::or_expr => self.chain(p, true),
            Rule::and_expr => self.chain(p, false),
            Rule::not_expr => {
                let mut nots = 0;
                let mut inner = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::not_op => nots += 1,
                        _ => inner = Some(self.expr(c)?),
                    }
                }
                let mut e = inner.ok_or("missing operand of not")?;
                if nots > 0 {
                    self.boolean(&e, "not")?;
                }
                for _ in 0..nots {
                    e = Expr::Not(Box::new(e));
                }
                Ok(e)
            }
            Rule::predicate => self.predicate(p),
            Rule::arith | Rule::term => self.arith(p),
            Rule::power => {
                let mut it = p.into_inner();
                let base = self.expr(it.next().ok_or("missing operand")?)?;
                match (it.next(), it.next()) {
                    (Some(_op), Some(exp)) => {
                        let exp = self.expr(exp)?;
                        self.numeric(&base, "**")?;
                        self.numeric(&exp, "**")?;
                        Ok(fold(Expr::Arith('^', Box::new(base), Box::new(exp))))
                    }
                    _ => Ok(base),
                }
            }
            Rule::unary => {
                let mut negs = 0;
                let mut inner = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::neg_op => negs += 1,
                        _ => inner = Some(self.expr(c)?),
                    }
                }
                let mut e = inner.ok_or("missing operand of -")?;
                if negs > 0 {
                    self.numeric(&e, "-")?;
                }
                for _ in 0..negs {
                    e = fold(Expr::Neg(Box::new(e)));
                }
                Ok(e)
            }
            Rule::integer => parse_int(p.as_str()).map(|i| Expr::Const(Value::Int(i))),
            Rule::float => p
                .as_str()
                .parse::<f64>()
                .map(|f| Expr::Const(Value::Float(f)))
                .map_err(|e| format!("bad number `{}`: {e}", p.as_str())),
            Rule::boolean => Ok(Expr::Const(Value::Bool(
                p.as_str().eq_ignore_ascii_case("true"),
            ))),
            Rule::string => Ok(Expr::Const(Value::Str(Cow::Owned(unquote(p)?)))),
            Rule::list => {
                let mut items = Vec::new();
                for c in p.into_inner() {
                    match self.expr(c)? {
                        Expr::Const(v) => items.push(v),
                        _ => return Err("the elements of a list must be constants".into()),
                    }
                }
                Ok(Expr::Const(Value::List(items)))
            }
            Rule::template => {
                let name = p.into_inner().next().map(|i| i.as_str().to_string());
                let name = name.unwrap_or_default();
                let v = self.templates.get(&name).ok_or_else(|| {
                    format!("the placeholder {{{name}}} has no value in filter_params")
                })?;
                Ok(Expr::Const(template(v)?))
            }
            Rule::path => self.path(p).map(Expr::Field),
            Rule::exists => {
                let path = p.into_inner().nth(1).ok_or("exists needs a JSON path")?;
                let f = self.path(path)?;
                if f.data_type != DataType::Json {
                    return Err("exists applies to JSON fields only".into());
                }
                Ok(Expr::Exists(f))
            }
            Rule::call => self.call(p),
            _ => Err(bad_pair(&p)),
        }
    }

    fn chain(&mut self, p: Pair<Rule>, or: bool) -> R<Expr> {
        let mut items = Vec::new();
        for c in p.into_inner() {
            if matches!(c.as_rule(), Rule::or_op | Rule::and_op) {
                continue;
            }
            items.push(self.expr(c)?);
        }
        if items.len() == 1 {
            return Ok(items.pop().expect("one item"));
        }
        let op = if or { "or" } else { "and" };
        for e in &items {
            self.boolean(e, op)?;
        }
        Ok(if or {
            Expr::Or(items)
        } else {
            Expr::And(items)
        })
    }

    fn boolean(&self, e: &Expr, op: &str) -> R<()> {
        match kind(e) {
            Kind::Bool | Kind::Any => Ok(()),
            k => Err(format!("{op} needs boolean operands, not {}", describe(k))),
        }
    }

    fn numeric(&self, e: &Expr, op: &str) -> R<()> {
        match kind(e) {
            Kind::Number | Kind::Any => Ok(()),
            k => Err(format!("{op} needs numeric operands, not {}", describe(k))),
        }
    }

    fn arith(&mut self, p: Pair<Rule>) -> R<Expr> {
        let mut it = p.into_inner();
        let mut e = self.expr(it.next().ok_or("missing operand")?)?;
        while let Some(op) = it.next() {
            let rhs = self.expr(it.next().ok_or("missing operand")?)?;
            let c = op.as_str().chars().next().unwrap_or('+');
            self.numeric(&e, op.as_str())?;
            self.numeric(&rhs, op.as_str())?;
            e = fold(Expr::Arith(c, Box::new(e), Box::new(rhs)));
        }
        Ok(e)
    }

    fn predicate(&mut self, p: Pair<Rule>) -> R<Expr> {
        let mut it = p.into_inner();
        let lhs = self.expr(it.next().ok_or("missing operand")?)?;
        let Some(tail) = it.next() else {
            return Ok(lhs);
        };
        if tail.as_rule() == Rule::like_tail && has_geometry(&lhs) {
            return Err(NOT_COMPARED.into());
        }
        match tail.as_rule() {
            Rule::in_tail => {
                let mut negated = false;
                let mut set = None;
                for c in tail.into_inner() {
                    match c.as_rule() {
                        Rule::not_kw => negated = true,
                        Rule::in_kw => {}
                        _ => set = Some(self.expr(c)?),
                    }
                }
                let Some(Expr::Const(Value::List(items))) = set else {
                    return Err("in needs a list of constants".into());
                };
                for v in &items {
                    self.comparable(&lhs, &Expr::Const(v.clone()))?;
                }
                let mut set = ConstSet::default();
                for v in items {
                    match v {
                        Value::Int(i) => {
                            set.ints.insert(i);
                        }
                        Value::Str(s) => {
                            set.strs.insert(s.into_owned());
                        }
                        v => set.others.push(v),
                    }
                }
                Ok(Expr::In(Box::new(lhs), set, negated))
            }
            Rule::like_tail => {
                let pat = tail.into_inner().nth(1).ok_or("like needs a pattern")?;
                let Expr::Const(Value::Str(s)) = self.expr(pat)? else {
                    return Err("the pattern of like must be a string".into());
                };
                match kind(&lhs) {
                    Kind::Str | Kind::Any => {}
                    k => return Err(format!("like applies to strings, not {}", describe(k))),
                }
                if !matches!(lhs, Expr::Field(_)) {
                    return Err("like applies to a field".into());
                }
                Ok(Expr::Like(Box::new(lhs), value::like_pattern(&s)))
            }
            Rule::null_tail => {
                let negated = tail.into_inner().any(|c| c.as_rule() == Rule::not_kw);
                match &lhs {
                    Expr::Field(f) if f.data_type == DataType::Array && !f.path.is_empty() => {
                        return Err(
                            "is null applies to a field, not to an array element: unsupported data type: ARRAY"
                                .into(),
                        )
                    }
                    Expr::Field(_) => {}
                    _ => return Err("is null applies to a field".into()),
                }
                Ok(Expr::IsNull(Box::new(lhs), negated))
            }
            Rule::cmp_tail => {
                let mut ops = Vec::new();
                let mut inner = tail.into_inner();
                while let Some(op) = inner.next() {
                    let rhs = self.expr(inner.next().ok_or("missing operand")?)?;
                    ops.push((cmp_op(op.as_str())?, rhs));
                }
                if ops.len() == 1 {
                    let (op, rhs) = ops.pop().expect("one");
                    self.comparable(&lhs, &rhs)?;
                    return Ok(fold(Expr::Cmp(op, Box::new(lhs), Box::new(rhs))));
                }
                // A range: c1 < f < c2 (same direction on both sides).
                let (op1, mid) = ops.remove(0);
                let (op2, hi) = ops.remove(0);
                let up = |o: Cmp| matches!(o, Cmp::Lt | Cmp::Le);
                let down = |o: Cmp| matches!(o, Cmp::Gt | Cmp::Ge);
                if !((up(op1) && up(op2)) || (down(op1) && down(op2))) {
                    return Err(
                        "a range must use < / <= on both sides, or > / >= on both sides".into(),
                    );
                }
                self.comparable(&lhs, &mid)?;
                self.comparable(&mid, &hi)?;
                Ok(Expr::And(vec![
                    Expr::Cmp(op1, Box::new(lhs), Box::new(mid.clone())),
                    Expr::Cmp(op2, Box::new(mid), Box::new(hi)),
                ]))
            }
            _ => Err(bad_pair(&tail)),
        }
    }

    fn comparable(&self, a: &Expr, b: &Expr) -> R<()> {
        if has_geometry(a) || has_geometry(b) {
            return Err(NOT_COMPARED.into());
        }
        let (ka, kb) = (kind(a), kind(b));
        if ka == Kind::Any || kb == Kind::Any || ka == kb {
            return Ok(());
        }
        Err(format!(
            "cannot compare {} with {}",
            describe(ka),
            describe(kb)
        ))
    }

    fn path(&mut self, p: Pair<Rule>) -> R<FieldRef> {
        let mut it = p.into_inner();
        let name = it.next().ok_or("missing name")?.as_str().to_string();
        let mut steps = Vec::new();
        for s in it {
            steps.push(match s.as_rule() {
                Rule::string => Step::Key(unquote(s)?),
                Rule::integer => Step::Index(parse_int(s.as_str())?),
                _ => return Err(bad_pair(&s)),
            });
        }
        let schema: &CollectionSchema = self.schema;
        let (f, steps) = match schema.fields.iter().find(|f| f.name == name) {
            Some(f) => (f, steps),
            None if name == META_FIELD || schema.enable_dynamic_field => {
                let meta = schema
                    .fields
                    .iter()
                    .find(|f| f.is_dynamic || f.name == META_FIELD)
                    .ok_or("the collection has no dynamic field")?;
                if name != META_FIELD {
                    steps.insert(0, Step::Key(name.clone()));
                }
                (meta, steps)
            }
            None => return Err(format!("field {name} not exist")),
        };
        let data_type = f.data_type();
        match data_type {
            DataType::FloatVector
            | DataType::BinaryVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector
            | DataType::SparseFloatVector => {
                // Milvus's words name the type as its engine does (VECTOR_FLOAT, ...).
                let engine_name = match data_type {
                    DataType::FloatVector => "VECTOR_FLOAT",
                    DataType::BinaryVector => "VECTOR_BINARY",
                    DataType::Float16Vector => "VECTOR_FLOAT16",
                    DataType::BFloat16Vector => "VECTOR_BFLOAT16",
                    _ => "VECTOR_SPARSE_FLOAT",
                };
                return Err(format!(
                    "vector field {} cannot be used in a filter: unsupported data type: {engine_name}",
                    f.name
                ));
            }
            DataType::Json | DataType::Array => {}
            _ if !steps.is_empty() => {
                return Err(format!("field {} is neither JSON nor an array", f.name))
            }
            _ => {}
        }
        self.fields.push(f.field_id);
        Ok(FieldRef {
            id: f.field_id,
            data_type,
            path: steps,
        })
    }

    fn call(&mut self, p: Pair<Rule>) -> R<Expr> {
        let mut it = p.into_inner();
        let given = it.next().ok_or("missing function")?.as_str();
        // Milvus's tokens for the spatial functions are all capitals or all small letters.
        let one_case = given == given.to_ascii_uppercase() || given == given.to_ascii_lowercase();
        if let Some(op) = Spatial::of(given).filter(|_| one_case) {
            let args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
            return spatial(op, given, args);
        }
        let name = given.to_ascii_lowercase();
        if name == "text_match" {
            let args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
            return self.text_match(args);
        }
        // Milvus's token is `phrase_match` or `PHRASE_MATCH`.
        if name == "phrase_match" && one_case {
            let given: Vec<Pair<Rule>> = it.collect();
            let texts: Vec<String> = given
                .iter()
                .map(|a| a.as_str().split_whitespace().collect())
                .collect();
            let args = given
                .into_iter()
                .map(|a| self.expr(a))
                .collect::<R<Vec<_>>>()?;
            return self.phrase_match(args, &texts);
        }
        let func = match name.as_str() {
            "json_contains" => Func::JsonContains,
            "json_contains_all" => Func::JsonContainsAll,
            "json_contains_any" => Func::JsonContainsAny,
            "array_contains" => Func::ArrayContains,
            "array_contains_all" => Func::ArrayContainsAll,
            "array_contains_any" => Func::ArrayContainsAny,
            "array_length" => Func::ArrayLength,
            _ => return Err(format!("{UNKNOWN_FUNCTION}: function {given} is not found")),
        };
        let args = it.map(|a| self.expr(a)).collect::<R<Vec<_>>>()?;
        let want = if func == Func::ArrayLength { 1 } else { 2 };
        if args.len() != want {
            return Err(format!(
                "{name} takes {want} argument(s), got {}",
                args.len()
            ));
        }
        if !matches!(args[0], Expr::Field(_)) {
            return Err(format!("the first argument of {name} must be a field"));
        }
        if matches!(
            func,
            Func::JsonContainsAll
                | Func::JsonContainsAny
                | Func::ArrayContainsAll
                | Func::ArrayContainsAny
        ) && !matches!(args[1], Expr::Const(Value::List(_)))
        {
            return Err(format!("the second argument of {name} must be a list"));
        }
        Ok(Expr::Call(func, args))
    }
}

impl Ctx<'_> {
    /// `TEXT_MATCH(field, 'words')` on a VARCHAR field with `enable_match`, its words cut
    /// by the field's analyzer once, here.
    fn text_match(&self, args: Vec<Expr>) -> R<Expr> {
        let [Expr::Field(f), Expr::Const(Value::Str(words))] = args.as_slice() else {
            return Err("TEXT_MATCH takes a field and a string: TEXT_MATCH(field, 'words')".into());
        };
        let mut analyzer = self.match_field(f, "text match", "TEXT_MATCH")?;
        let tokens = analyzer.tokens(words).into_iter().map(|t| t.text).collect();
        Ok(Expr::TextMatch(
            f.clone(),
            Arc::new(TextQuery {
                analyzer,
                tokens,
                phrase: None,
            }),
        ))
    }

    /// `PHRASE_MATCH(field, 'words'[, slop])` on a VARCHAR field with `enable_match`;
    /// `texts` are the arguments as written (without spaces, as Milvus quotes them).
    fn phrase_match(&self, args: Vec<Expr>, texts: &[String]) -> R<Expr> {
        const USAGE: &str = "PHRASE_MATCH takes a field, a string and an optional slop: \
             PHRASE_MATCH(field, 'words'[, slop])";
        let (f, words) = match args.as_slice() {
            [Expr::Field(f), Expr::Const(Value::Str(w))]
            | [Expr::Field(f), Expr::Const(Value::Str(w)), _] => (f, w),
            _ => return Err(USAGE.into()),
        };
        let slop = match args.get(2) {
            None => 0,
            Some(e) => {
                let text = texts.get(2).map(String::as_str).unwrap_or_default();
                match e {
                    Expr::Const(Value::Int(n)) if *n < 0 => {
                        return Err(format!(
                            "\"slop\" should not be a negative interger. \"slop\" passed: {text}"
                        ))
                    }
                    Expr::Const(Value::Int(n)) if *n > u32::MAX as i64 => {
                        return Err(format!(
                            "\"slop\" exceeds the range of \"uint32\". \"slop\" expression passed: {text}"
                        ))
                    }
                    Expr::Const(Value::Int(n)) => *n as u64,
                    _ => {
                        return Err(format!(
                            "\"slop\" should be a const integer expression with \"uint32\" value. \
                             \"slop\" expression passed: {text}"
                        ))
                    }
                }
            }
        };
        let mut analyzer = self.match_field(f, "phrase match", "PHRASE_MATCH")?;
        let cut = analyzer.tokens(words);
        let tokens: HashSet<String> = cut.iter().map(|t| t.text.clone()).collect();
        let phrase = (cut.len() > 1).then(|| Phrase {
            terms: cut
                .into_iter()
                .map(|t| (t.text, t.position as i64))
                .collect(),
            slop,
        });
        Ok(Expr::TextMatch(
            f.clone(),
            Arc::new(TextQuery {
                analyzer,
                tokens,
                phrase,
            }),
        ))
    }

    /// The analyzer of `f` for a text or phrase match (`what` in Milvus's refusal of a
    /// non-string field), refused unless it is a VARCHAR field with `enable_match`.
    fn match_field(&self, f: &FieldRef, what: &str, func: &str) -> R<Analyzer> {
        if !f.path.is_empty() || !matches!(f.data_type, DataType::VarChar | DataType::String) {
            return Err(format!("{what} operation on non-string is unsupported"));
        }
        let field = self
            .schema
            .fields
            .iter()
            .find(|x| x.field_id == f.id)
            .ok_or_else(|| format!("{what} on an unknown field"))?;
        let Some(params) = crate::schema::match_analyzer(field) else {
            return Err(format!(
                "field {} does not enable match: {func} needs a VARCHAR field created with \
                 enable_analyzer=True and enable_match=True",
                field.name
            ));
        };
        crate::analyzer::cached(params)
            .map_err(|e| format!("the analyzer of field {}: {e}", field.name))
    }
}

/// Why a geometry in a comparison, `in` list, `like` or arithmetic is refused.
const NOT_COMPARED: &str = "a geometry field is tested with the spatial functions \
     (ST_EQUALS, ST_INTERSECTS, ...) or IS NULL, not compared";

/// Whether a GEOMETRY field's value is an operand of `e` (through arithmetic).
fn has_geometry(e: &Expr) -> bool {
    match e {
        Expr::Field(f) => f.data_type == DataType::Geometry,
        Expr::Arith(_, a, b) => has_geometry(a) || has_geometry(b),
        Expr::Neg(x) => has_geometry(x),
        _ => false,
    }
}

/// `ST_*(field, 'wkt')` or `ST_DWITHIN(field, 'POINT (lon lat)', meters)` on a GEOMETRY
/// field, refused in Milvus's words otherwise.
fn spatial(op: Spatial, name: &str, args: Vec<Expr>) -> R<Expr> {
    let want = if op == Spatial::DWithin { 3 } else { 2 };
    if args.len() != want {
        return Err(format!("{name} takes {want} arguments, got {}", args.len()));
    }
    let Expr::Field(f) = &args[0] else {
        return Err(format!(
            "the first argument of {name} must be a geometry field"
        ));
    };
    if f.data_type != DataType::Geometry || !f.path.is_empty() {
        return Err(format!(
            "spatial operation are only supported on geometry fields now, got: {}",
            if f.path.is_empty() {
                f.data_type.as_str_name()
            } else {
                "a JSON path"
            }
        ));
    }
    let Expr::Const(Value::Str(text)) = &args[1] else {
        return Err(format!(
            "the second argument of {name} must be a WKT string"
        ));
    };
    let (_, shape) =
        crate::geometry::parse(text).map_err(|e| format!("invalid WKT in {name}: {e}"))?;
    let meters = if op == Spatial::DWithin {
        if shape.point().is_none() {
            return Err(format!("{name} takes a POINT (lon lat), got: {text}"));
        }
        if !shape.rect().is_some_and(|r| crate::geometry::lon_lat(&r)) {
            return Err(format!(
                "invalid coordinate: {name} takes a POINT (lon lat) with lon in [-180, 180] and lat in [-90, 90], got: {text}"
            ));
        }
        let d = match &args[2] {
            Expr::Const(Value::Int(i)) => *i as f64,
            Expr::Const(Value::Float(x)) => *x,
            _ => {
                return Err("distance parameter must be a numeric value (int or float)".to_string())
            }
        };
        if d.is_nan() || d < 0.0 || d.is_infinite() {
            return Err(format!("distance parameter must be non-negative, got: {d}"));
        }
        d
    } else {
        0.0
    };
    Ok(Expr::Spatial(f.clone(), op, Arc::new(shape), meters))
}

fn cmp_op(s: &str) -> R<Cmp> {
    Ok(match s {
        "==" => Cmp::Eq,
        "!=" => Cmp::Ne,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        _ => return Err(format!("unknown operator {s}")),
    })
}

/// Evaluates operators over constants at compile time.
fn fold(e: Expr) -> Expr {
    match &e {
        Expr::Neg(x) => match x.as_ref() {
            Expr::Const(Value::Int(i)) => Expr::Const(Value::Int(i.wrapping_neg())),
            Expr::Const(Value::Float(f)) => Expr::Const(Value::Float(-f)),
            _ => e,
        },
        Expr::Arith(op, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Const(x), Expr::Const(y)) => Expr::Const(value::arith(*op, x, y)),
            _ => e,
        },
        _ => e,
    }
}

fn parse_int(s: &str) -> R<i64> {
    let lower = s.to_ascii_lowercase();
    let r = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2)
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    r.map_err(|e| format!("bad integer `{s}`: {e}"))
}

fn unquote(p: Pair<Rule>) -> R<String> {
    let inner = p.into_inner().next().map(|i| i.as_str()).unwrap_or("");
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            // Keep `\%` and `\_` for like patterns.
            Some(c @ ('%' | '_')) => {
                out.push('\\');
                out.push(c);
            }
            Some(c) => out.push(c),
            None => return Err("a string ends with a lone backslash".into()),
        }
    }
    Ok(out)
}

fn template(v: &TemplateValue) -> R<Value<'static>> {
    use template_value::Val;
    Ok(match &v.val {
        Some(Val::BoolVal(b)) => Value::Bool(*b),
        Some(Val::Int64Val(i)) => Value::Int(*i),
        Some(Val::FloatVal(f)) => Value::Float(*f),
        Some(Val::StringVal(s)) => Value::Str(Cow::Owned(s.clone())),
        Some(Val::ArrayVal(a)) => template_array(a)?,
        None => return Err("a placeholder value is empty".into()),
    })
}

fn template_array(a: &TemplateArrayValue) -> R<Value<'static>> {
    Ok(Value::List(match &a.data {
        Some(tav::Data::BoolData(d)) => d.data.iter().map(|b| Value::Bool(*b)).collect(),
        Some(tav::Data::LongData(d)) => d.data.iter().map(|i| Value::Int(*i)).collect(),
        Some(tav::Data::DoubleData(d)) => d.data.iter().map(|f| Value::Float(*f)).collect(),
        Some(tav::Data::StringData(d)) => d
            .data
            .iter()
            .map(|s| Value::Str(Cow::Owned(s.clone())))
            .collect(),
        Some(tav::Data::ArrayData(d)) => {
            d.data.iter().map(template_array).collect::<R<Vec<_>>>()?
        }
        Some(tav::Data::JsonData(d)) => d
            .data
            .iter()
            .map(|b| {
                serde_json::from_slice::<serde_json::Value>(b)
                    .map(|j| Value::from_json(&j).into_owned())
                    .map_err(|e| format!("a placeholder holds bad JSON: {e}"))
            })
            .collect::<R<Vec<_>>>()?,
        None => Vec::new(),
    }))
}

/// The values `field` can take in a row the filter selects, when the filter bounds it
/// to a list: `f == v`, `f in [...]`, an `and` with such a part (the first one found: the
/// others only narrow it further) or an `or` whose every part has one (their union).
pub fn key_values(e: &Expr, field: i64) -> Option<Vec<Value<'static>>> {
    match e {
        Expr::And(xs) => xs.iter().find_map(|x| key_values(x, field)),
        Expr::Or(xs) => {
            let mut out = Vec::new();
            for x in xs {
                out.extend(key_values(x, field)?);
            }
            Some(out)
        }
        _ => primary_keys(e, field),
    }
}

/// `pk in [...]` / `pk == v` → the keys.
pub fn primary_keys(e: &Expr, pk: i64) -> Option<Vec<Value<'static>>> {
    match e {
        Expr::In(f, set, false) => match f.as_ref() {
            Expr::Field(f) if f.id == pk && f.path.is_empty() && set.others.is_empty() => {
                let mut out: Vec<Value<'static>> =
                    set.ints.iter().map(|i| Value::Int(*i)).collect();
                out.extend(set.strs.iter().map(|s| Value::Str(Cow::Owned(s.clone()))));
                Some(out)
            }
            _ => None,
        },
        Expr::Cmp(Cmp::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
            (Expr::Field(f), Expr::Const(v)) | (Expr::Const(v), Expr::Field(f))
                if f.id == pk && f.path.is_empty() =>
            {
                Some(vec![v.clone()])
            }
            _ => None,
        },
        _ => None,
    }
}

//! The delete filters the write path understands before the expression language lands
//! with the read path: `pk in [v, ...]` and `pk == v`, as pymilvus formats
//! `delete(ids=...)` (ints bare, strings in single or double quotes).

use crate::proto::common::Status;
use crate::proto::schema::{DataType, FieldSchema};
use crate::schema::Pks;
use crate::status::{code, error};

fn invalid(expr: &str, why: &str) -> Status {
    error(
        code::PARAMETER_INVALID,
        format!("cannot parse the delete expression `{expr}`: {why}"),
    )
}

/// One literal: an integer, or a quoted string (`'a'` or `"a"`, with `\` escapes).
fn literals(list: &str, expr: &str) -> Result<Vec<String>, Status> {
    let mut out = Vec::new();
    let mut chars = list.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '\'' || c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => s.extend(chars.next()),
                    Some(q) if q == c => break,
                    Some(x) => s.push(x),
                    None => return Err(invalid(expr, "a string is not closed")),
                }
            }
            out.push(format!("'{s}"));
        } else {
            let mut s = String::new();
            while chars
                .peek()
                .is_some_and(|c| *c != ',' && !c.is_whitespace())
            {
                s.extend(chars.next());
            }
            out.push(s);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(x) => return Err(invalid(expr, &format!("unexpected `{x}` in the list"))),
        }
    }
    Ok(out)
}

/// The primary keys a delete expression names.
pub fn parse(expr: &str, pk: &FieldSchema) -> Result<Pks, Status> {
    let e = expr.trim();
    let unsupported = || {
        error(
            code::PARAMETER_INVALID,
            format!(
                "delete by the filter `{expr}` is not supported yet: give `{0} in [...]` or `{0} == value` on the primary key {0}",
                pk.name
            ),
        )
    };
    let rest = e
        .strip_prefix(pk.name.as_str())
        .ok_or_else(unsupported)?
        .trim_start();
    let values = if let Some(list) = rest.strip_prefix("in") {
        let list = list.trim();
        let inner = list
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .ok_or_else(unsupported)?;
        literals(inner, expr)?
    } else if let Some(v) = rest.strip_prefix("==") {
        let v = literals(v, expr)?;
        if v.len() != 1 {
            return Err(unsupported());
        }
        v
    } else {
        return Err(unsupported());
    };
    let int = DataType::try_from(pk.data_type) == Ok(DataType::Int64);
    if int {
        values
            .iter()
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    invalid(
                        expr,
                        &format!(
                            "{} is an Int64 key, `{}` is not an integer",
                            pk.name,
                            v.trim_start_matches('\'')
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Pks::Int)
    } else {
        values
            .iter()
            .map(|v| {
                v.strip_prefix('\'').map(str::to_string).ok_or_else(|| {
                    invalid(
                        expr,
                        &format!("{} is a VarChar key, `{v}` is not a quoted string", pk.name),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Pks::Str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(t: DataType) -> FieldSchema {
        FieldSchema {
            name: "id".into(),
            data_type: t as i32,
            is_primary_key: true,
            ..Default::default()
        }
    }

    #[test]
    fn key_lists_and_equality() {
        let i = pk(DataType::Int64);
        assert_eq!(
            parse("id in [1, 2,3]", &i).unwrap(),
            Pks::Int(vec![1, 2, 3])
        );
        assert_eq!(parse(" id == -7 ", &i).unwrap(), Pks::Int(vec![-7]));
        assert_eq!(parse("id in []", &i).unwrap(), Pks::Int(vec![]));
        let s = pk(DataType::VarChar);
        assert_eq!(
            parse("id in ['a', \"b,c\", 'd\\'e']", &s).unwrap(),
            Pks::Str(vec!["a".into(), "b,c".into(), "d'e".into()])
        );
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        let i = pk(DataType::Int64);
        for bad in [
            "age > 3",
            "id in (1,2)",
            "id > 3",
            "id in ['a']",
            "id == 1 2",
        ] {
            let s = parse(bad, &i).unwrap_err();
            assert_eq!(s.code, 1100, "{bad}");
            assert!(s.reason.contains(bad), "{bad}: {}", s.reason);
        }
        let s = parse("id in [1]", &pk(DataType::VarChar)).unwrap_err();
        assert!(s.reason.contains("not a quoted string"), "{}", s.reason);
    }
}

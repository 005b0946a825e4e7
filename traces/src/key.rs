//! Task keys as Dask has them (a string, or a tuple such as `('read-parquet-9f3a…', 12)`) and
//! their group, derived exactly like `dask.utils.key_split`.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A task key. Tuples are stored in JSON as arrays: `["x-1f2e…", 3, 0]`.
///
/// Strings are `Arc<str>`: the tasks of one collection share their name
/// (`("read-parquet-9f3a…", i)`), so a million keys do not hold a million copies of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Str(Arc<str>),
    Tuple(Vec<KeyPart>),
}

/// An element of a tuple key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    Str(Arc<str>),
    Int(i64),
    /// Floats are rare in keys but legal; kept as their bit pattern so keys stay `Eq + Hash`.
    Float(FloatBits),
    Tuple(Vec<KeyPart>),
}

/// An `f64` compared and hashed by its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FloatBits(u64);

impl FloatBits {
    pub fn new(v: f64) -> FloatBits {
        FloatBits(v.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl Key {
    /// The Dask task prefix of this key (`dask.utils.key_split`).
    pub fn group(&self) -> String {
        match self {
            Key::Str(s) => key_split(s),
            Key::Tuple(parts) => match parts.first() {
                Some(first) => first.group(),
                None => OTHER.to_string(),
            },
        }
    }
}

impl KeyPart {
    fn group(&self) -> String {
        match self {
            KeyPart::Str(s) => key_split(s),
            KeyPart::Tuple(parts) => match parts.first() {
                Some(first) => first.group(),
                None => OTHER.to_string(),
            },
            // Python's key_split raises on an int and answers "Other".
            KeyPart::Int(_) | KeyPart::Float(_) => OTHER.to_string(),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Str(Arc::from(s))
    }
}

/// Python's `str(key)`: `x-1`, `('x-1', 3, 0)`.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => f.write_str(s),
            Key::Tuple(parts) => fmt_tuple(parts, f),
        }
    }
}

fn fmt_tuple(parts: &[KeyPart], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("(")?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match part {
            KeyPart::Str(s) => write!(f, "'{s}'")?,
            KeyPart::Int(v) => write!(f, "{v}")?,
            KeyPart::Float(v) => write!(f, "{:?}", v.get())?,
            KeyPart::Tuple(inner) => fmt_tuple(inner, f)?,
        }
    }
    if parts.len() == 1 {
        f.write_str(",")?;
    }
    f.write_str(")")
}

const OTHER: &str = "Other";

/// Port of `dask.utils.key_split` (dask 2026.8.0, quoted in
/// `traces/tests/data/dask_task_stream.expected.txt`): the key name without its trailing
/// token / index, e.g. `part-be792a3c-d67c-…` → `part`, `hello-world-1` → `hello-world`.
pub fn key_split(s: &str) -> String {
    let mut words = s.split('-');
    let first = words.next().unwrap_or("");
    let Some(c0) = first.chars().next() else {
        return OTHER.to_string();
    };
    let mut result = if c0.is_alphabetic() {
        first.to_string()
    } else {
        let head = first.split(',').next().unwrap_or("");
        head.trim_matches(|c| matches!(c, '_' | '\'' | '(' | ')' | '"'))
            .to_string()
    };
    for word in words {
        if is_alpha(word)
            && !(word.chars().count() == 8 && word.starts_with(|c| matches!(c, 'a'..='f')))
        {
            result.push('-');
            result.push_str(word);
        } else {
            break;
        }
    }
    if result.len() == 32
        && result
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return "data".to_string();
    }
    if result.starts_with('<') {
        let trimmed = result.trim_matches(|c| c == '<' || c == '>');
        let Some(word) = trimmed.split_whitespace().next() else {
            return OTHER.to_string();
        };
        return word.rsplit('.').next().unwrap_or(word).to_string();
    }
    if result.is_empty() {
        // Python indexes result[0] on the way out and lands in its `except`.
        return OTHER.to_string();
    }
    result
}

/// Python's `str.isalpha`: non-empty and every character alphabetic.
fn is_alpha(word: &str) -> bool {
    !word.is_empty() && word.chars().all(char::is_alphabetic)
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Str(v) => s.serialize_str(v),
            Key::Tuple(parts) => serialize_parts(parts, s),
        }
    }
}

impl Serialize for KeyPart {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KeyPart::Str(v) => s.serialize_str(v),
            KeyPart::Int(v) => s.serialize_i64(*v),
            KeyPart::Float(v) => s.serialize_f64(v.get()),
            KeyPart::Tuple(parts) => serialize_parts(parts, s),
        }
    }
}

fn serialize_parts<S: Serializer>(parts: &[KeyPart], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(parts.len()))?;
    for part in parts {
        seq.serialize_element(part)?;
    }
    seq.end()
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array (a tuple key)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key::Str(Arc::from(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Key, A::Error> {
                Ok(Key::Tuple(PartsVisitor.visit_seq(seq)?))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

struct PartsVisitor;

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = Vec<KeyPart>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<KeyPart>, A::Error> {
        let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(3));
        while let Some(part) = seq.next_element()? {
            parts.push(part);
        }
        Ok(parts)
    }
}

impl<'de> Deserialize<'de> for KeyPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyPart, D::Error> {
        struct PartVisitor;
        impl<'de> Visitor<'de> for PartVisitor {
            type Value = KeyPart;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a number or an array")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyPart, E> {
                Ok(KeyPart::Str(Arc::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyPart, E> {
                Ok(KeyPart::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyPart, E> {
                match i64::try_from(v) {
                    Ok(v) => Ok(KeyPart::Int(v)),
                    Err(_) => Ok(KeyPart::Float(FloatBits::new(v as f64))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyPart, E> {
                Ok(KeyPart::Float(FloatBits::new(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<KeyPart, A::Error> {
                Ok(KeyPart::Tuple(PartsVisitor.visit_seq(seq)?))
            }
        }
        d.deserialize_any(PartVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values printed by Python's `dask.utils.key_split` (dask 2026.8.0), see
    /// `tests/data/dask_task_stream.expected.txt`.
    #[test]
    fn key_split_matches_dask() {
        let cases = [
            ("x", "x"),
            ("x-1", "x"),
            ("x-1-2-3", "x"),
            ("x-abcdef0123456789abcdef0123456789", "x"),
            ("part-be792a3c-d67c-4340-b6ab-d67ccf9d8423", "part"),
            (
                "read-parquet-9f3a2b1c4d5e6f708192a3b4c5d6e7f8",
                "read-parquet",
            ),
            ("hello-world-1", "hello-world"),
            ("_(x)", "x"),
            ("('x-2', 1)", "x"),
            ("('x', 1)", "x"),
            ("(x, 1)", "x"),
            (
                "random_sample-7373748e7a8c9d0e1f2a3b4c5d6e7f80",
                "random_sample",
            ),
            ("finalize-abcd", "finalize-abcd"),
            ("inc-1234567", "inc"),
            ("AAA-12345678", "AAA"),
            ("f-x", "f-x"),
            ("<lambda>-1234", "lambda"),
            ("sum-aggregate-abc123", "sum-aggregate"),
            ("data-frame-abcdef12", "data-frame"),
            ("a_b-c.d-12", "a_b"),
            ("x-abcdefab", "x"),
            ("x-abcdefgh", "x"),
            ("x-deadbeef", "x"),
            ("x-finalize", "x"),
            ("x-zzzzzzzz", "x-zzzzzzzz"),
            ("x-Abcdefgh", "x-Abcdefgh"),
            ("x-abcdefg", "x-abcdefg"),
            ("x-abcdefghi", "x-abcdefghi"),
            ("x-y-1-z", "x-y"),
            ("1-2", "1"),
            ("", "Other"),
            ("-x", "Other"),
            ("ae05086432ca935f6eba409a8ecd4896", "data"),
            (
                "AE05086432CA935F6EBA409A8ECD4896",
                "AE05086432CA935F6EBA409A8ECD4896",
            ),
            ("<module.submodule.myclass object at 0xdaf372", "myclass"),
            ("café-x", "café-x"),
            ("x-café", "x-café"),
            (
                "sum-aggregate-finalize-hlgfinalizecompute-7b666e1a1f4141b296816a05d9c2ef99",
                "sum-aggregate",
            ),
            (
                "finalize-hlgfinalizecompute-7b666e1a1f4141b296816a05d9c2ef99",
                "finalize-hlgfinalizecompute",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(key_split(input), expected, "key_split({input:?})");
        }
    }

    #[test]
    fn tuple_keys_use_their_first_element() {
        let key: Key = serde_json::from_str(r#"["a-b-c", 0, 1]"#).unwrap();
        assert_eq!(key.group(), "a-b-c");
        assert_eq!(key.to_string(), "('a-b-c', 0, 1)");
        let nested: Key = serde_json::from_str(r#"[["x", 1], 2]"#).unwrap();
        assert_eq!(nested.group(), "x");
        let single: Key = serde_json::from_str(r#"["inc-1234"]"#).unwrap();
        assert_eq!(single.group(), "inc");
        assert_eq!(single.to_string(), "('inc-1234',)");
    }

    #[test]
    fn keys_round_trip_through_json() {
        for text in [r#""x-1""#, r#"["x",1,2.5,["y",-3]]"#] {
            let key: Key = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&key).unwrap(), text);
        }
    }

    #[test]
    fn a_key_must_be_a_string_or_an_array() {
        let err = serde_json::from_str::<Key>("12").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "invalid type: integer `12`, expected a string or an array (a tuple key)"
            ),
            "{err}"
        );
    }
}

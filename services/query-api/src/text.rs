//! Text that arrives from outside. Two types stand in for `String` in request bodies and
//! parameters, so the OpenAPI document and the parser cannot disagree:
//!
//! - [`Text`]: a JSON string and nothing else. poem-openapi's `String` also takes a number or a
//!   boolean (`"name": false` became the name `"false"`), which the document does not allow.
//! - [`Label`]: a [`Text`] that people read back: names, reasons, labels. One line of printable
//!   characters without leading or trailing space. Control characters (a NUL breaks
//!   PostgreSQL; CR/LF forge log and audit lines), bidirectional overrides and zero-width
//!   characters (they make a label look like another) are refused. The rule is one regular
//!   expression, published as the schema's `pattern` and applied by the parser.

use std::borrow::Cow;
use std::sync::LazyLock;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

/// Characters no label may hold anywhere: C0 and C1 controls, the Arabic letter mark, the
/// Mongolian vowel separator, zero-width space/joiners, LRM/RLM, line and paragraph separators,
/// bidi embeddings and overrides (U+202A–U+202E), word joiner and invisible operators, bidi
/// isolates (U+2066–U+2069) and the byte-order mark. Written with `\uXXXX` escapes, which
/// Rust's `regex`, ECMAScript and Python read alike.
const FORBIDDEN: &str =
    r"\x00-\x1F\x7F-\x9F\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF";

/// The schema pattern of a [`Label`].
pub static LABEL_PATTERN: LazyLock<String> =
    LazyLock::new(|| format!(r"^[^\s{FORBIDDEN}]([^{FORBIDDEN}]*[^\s{FORBIDDEN}])?$"));

static LABEL: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(&LABEL_PATTERN).ok());

/// Whether `text` is a valid [`Label`].
pub fn is_label(text: &str) -> bool {
    LABEL.as_ref().is_some_and(|re| re.is_match(text))
}

macro_rules! string_type {
    ($name:ident, $schema:expr, $check:expr, $refusal:expr) => {
        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&String> {
                Some(&self.0)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
                Box::new(std::iter::once(&self.0))
            }

            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(text)) => Self::checked(text),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                Self::checked(value.to_owned())
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }

        impl $name {
            fn checked(text: String) -> ParseResult<Self> {
                let check: fn(&str) -> bool = $check;
                if check(&text) {
                    Ok(Self(text))
                } else {
                    Err(ParseError::custom($refusal))
                }
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A JSON string, refused when it is a number, a boolean or anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

string_type!(
    Text,
    MetaSchema::new("string"),
    |_| true,
    "expected a string"
);

/// One line of printable text for people (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

string_type!(
    Label,
    MetaSchema {
        pattern: Some(LABEL_PATTERN.clone()),
        ..MetaSchema::new("string")
    },
    is_label,
    "must be one line of printable text without leading or trailing spaces, control, \
     bidirectional-override or zero-width characters"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_printable_single_lines() {
        for good in [
            "Acme GmbH",
            "Fall 2026/17 – Staatsanwaltschaft",
            "東京",
            "a",
            "ä b",
        ] {
            assert!(is_label(good), "{good:?}");
        }
        for bad in [
            "",
            " leading",
            "trailing ",
            "line\nbreak",
            "carriage\rreturn",
            "nul\0byte",
            "tab\there",
            "c1\u{85}next line",
            "rtl \u{202E}override",
            "isolate\u{2066}x",
            "zero\u{200B}width",
            "joiner\u{200D}",
            "bom\u{FEFF}",
            "line\u{2028}separator",
            "del\u{7F}",
        ] {
            assert!(!is_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_string_is_only_a_json_string() {
        assert!(Text::parse_from_json(Some(Value::String("x".into()))).is_ok());
        for other in [
            Value::Bool(false),
            Value::from(5),
            Value::Null,
            serde_json::json!([]),
        ] {
            assert!(
                Text::parse_from_json(Some(other.clone())).is_err(),
                "{other}"
            );
            assert!(
                Label::parse_from_json(Some(other.clone())).is_err(),
                "{other}"
            );
        }
        assert!(Text::parse_from_json(None).is_err());
    }

    #[test]
    fn the_published_pattern_is_the_rule_applied() {
        // Same expression both ways: the schema pattern compiles and decides like the parser.
        let published = regex::Regex::new(&LABEL_PATTERN).unwrap();
        for sample in ["ok", " no", "no\u{202E}", "fine – yes"] {
            assert_eq!(published.is_match(sample), is_label(sample), "{sample:?}");
            assert_eq!(
                Label::parse_from_json(Some(Value::String(sample.into()))).is_ok(),
                is_label(sample)
            );
        }
    }
}

//! Text analyzers as Milvus 2.5 defines them: a tokenizer and a chain of token filters,
//! described by the JSON `analyzer_params` of a VARCHAR field or of a `run_analyzer` call.
//!
//! The pieces are tantivy's (`SimpleTokenizer`, `WhitespaceTokenizer`, `LowerCaser`,
//! `AsciiFoldingFilter`, `AlphaNumOnlyFilter`, `RemoveLongFilter`, `StopWordFilter` with
//! the Snowball lists, `SplitCompoundWords`, `Stemmer`), jieba-rs for `jieba` and ICU4X's
//! word segmenter for `icu`, assembled by the rules of Milvus's analyzer builder
//! (`tantivy-binding/src/analyzer`), so one parameter set gives the tokens it gives there:
//!
//! - `""` or `{}`: the standard analyzer (SimpleTokenizer, then lowercase).
//! - `{"type": "standard" | "english" | "chinese", "stop_words": [...]}`: a built-in
//!   analyzer; other keys are ignored, as Milvus ignores them.
//! - otherwise `{"tokenizer": NAME | {"type": NAME, ...}, "filter": [NAME | {...}, ...]}`;
//!   any other key is refused.
//!
//! Invariants: building is the only place parameters are checked, so an [`Analyzer`]
//! never fails on text; the same parameters always give the same tokens (no state is
//! kept between texts). Where this differs from Milvus 2.5 it says so at the place:
//! tokens made only of white space (which Milvus's `jieba` and `icu` tokenizers emit) are
//! dropped, and `removepunct` drops tokens made only of punctuation (Milvus's drops any
//! token that contains one). `lindera` and `language_identifier` are not built.
//!
//! A [`TextIndex`] holds a column's rows by token, for `TEXT_MATCH`; [`cached`] keeps
//! built analyzers by their parameters.

mod filters;
mod multi;
mod text_index;
mod tokenizers;

pub use multi::MultiAnalyzer;
pub use text_index::{cached, TextIndex};

use serde_json::{Map, Value};
use tantivy::tokenizer::{
    AlphaNumOnlyFilter, AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter,
    SimpleTokenizer, SplitCompoundWords, Stemmer, StopWordFilter, TextAnalyzer,
    TextAnalyzerBuilder, WhitespaceTokenizer,
};

use filters::{Keep, KeepIf};
use tokenizers::{IcuTokenizer, JiebaTokenizer};

/// Analyzer parameters that cannot build an analyzer; the message is Milvus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AnalyzerError(pub String);

fn bad(msg: impl Into<String>) -> AnalyzerError {
    AnalyzerError(msg.into())
}

/// One token of a text: its text, byte offsets in the text, position and span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub start_offset: usize,
    pub end_offset: usize,
    pub position: usize,
    pub position_length: usize,
}

/// A built analyzer; cloning it is cheap enough to give each thread its own.
#[derive(Clone)]
pub struct Analyzer(TextAnalyzer);

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer")
    }
}

impl Analyzer {
    /// The analyzer `params` (a JSON object, or empty for the standard one) describe.
    pub fn new(params: &str) -> Result<Analyzer, AnalyzerError> {
        if params.trim().is_empty() {
            return Ok(Analyzer(standard(StopWords::default())));
        }
        let value: Value =
            serde_json::from_str(params).map_err(|e| bad(format!("invalid json: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| bad("params should be a json map"))?;
        Analyzer::from_map(map)
    }

    /// The analyzer a parsed parameter object describes.
    pub fn from_map(params: &Map<String, Value>) -> Result<Analyzer, AnalyzerError> {
        if params.is_empty() {
            return Ok(Analyzer(standard(StopWords::default())));
        }
        if let Some(kind) = params.get("type") {
            let kind = kind
                .as_str()
                .ok_or_else(|| bad("analyzer type shoud be string"))?;
            let stop = match params.get("stop_words") {
                Some(v) => StopWords::parse(string_list(v, "filter stop_words")?),
                None => StopWords::default(),
            };
            return Ok(Analyzer(match kind {
                "standard" => standard(stop),
                "english" => english(stop),
                "chinese" => chinese(stop),
                other => return Err(bad(format!("unknown build-in analyzer type: {other}"))),
            }));
        }
        let tokenizer = match params.get("tokenizer") {
            None => return Err(bad("tokenizer name or type must be set")),
            Some(t @ (Value::String(_) | Value::Object(_))) => t,
            Some(_) => return Err(bad("tokenizer name should be string or dict")),
        };
        let mut builder = tokenizer_builder(tokenizer)?;
        for (key, value) in params {
            match key.as_str() {
                "tokenizer" => {}
                "filter" => builder = add_filters(builder, value)?,
                other => return Err(bad(format!("unknown analyzer option key: {other}"))),
            }
        }
        Ok(Analyzer(builder.build()))
    }

    /// The tokens of `text`, in order.
    pub fn tokens(&mut self, text: &str) -> Vec<Token> {
        let mut stream = self.0.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            out.push(Token {
                text: t.text.clone(),
                start_offset: t.offset_from,
                end_offset: t.offset_to,
                position: t.position,
                position_length: t.position_length,
            });
        }
        out
    }
}

/// The BM25 document vector of `text` (Milvus's `BM25FunctionRunner`): each token's
/// [`token_hash`] with the number of times it occurs, by hash increasing. An empty text
/// gives an empty vector.
pub fn term_counts(analyzer: &mut Analyzer, text: &str) -> Vec<(u32, f32)> {
    let mut counts: std::collections::BTreeMap<u32, f32> = std::collections::BTreeMap::new();
    let mut stream = analyzer.0.token_stream(text);
    while stream.advance() {
        *counts.entry(token_hash(&stream.token().text)).or_default() += 1.0;
    }
    counts.into_iter().collect()
}

/// Milvus's token hash (`typeutil.HashString2LessUint32`): CRC32 (IEEE) of the first
/// 100 bytes, below `u32::MAX`.
pub fn token_hash(token: &str) -> u32 {
    let b = token.as_bytes();
    crc32fast::hash(&b[..b.len().min(100)]) % u32::MAX
}

type Builder = TextAnalyzerBuilder;

fn standard_tokenizer() -> Builder {
    TextAnalyzer::builder(SimpleTokenizer::default()).dynamic()
}

fn standard(stop: StopWords) -> TextAnalyzer {
    stop.apply(standard_tokenizer().filter_dynamic(LowerCaser))
        .build()
}

/// Milvus's `english`: lowercase, stem, then the English stop list (so a stop word is
/// matched after stemming, as there).
fn english(mut stop: StopWords) -> TextAnalyzer {
    stop.languages.insert(0, Language::English);
    let builder = standard_tokenizer()
        .filter_dynamic(LowerCaser)
        .filter_dynamic(Stemmer::new(Language::English));
    stop.apply(builder).build()
}

fn chinese(stop: StopWords) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(JiebaTokenizer::default())
        .filter_dynamic(KeepIf(Keep::HanOrAlphanumeric));
    stop.apply(builder).build()
}

fn tokenizer_builder(params: &Value) -> Result<Builder, AnalyzerError> {
    let (name, options) = match params {
        Value::String(name) => (name.as_str(), None),
        Value::Object(map) => match map.get("type") {
            Some(Value::String(name)) => (name.as_str(), Some(map)),
            Some(_) => return Err(bad("tokenizer type should be string")),
            None => return Err(bad("costum tokenizer must set type")),
        },
        _ => return Err(bad("tokenizer name should be string or dict")),
    };
    Ok(match name {
        "standard" => standard_tokenizer(),
        "whitespace" => TextAnalyzer::builder(WhitespaceTokenizer::default()).dynamic(),
        "icu" => TextAnalyzer::builder(IcuTokenizer).dynamic(),
        "jieba" => {
            let tokenizer = match options {
                Some(map) => JiebaTokenizer::from_params(map)?,
                None => JiebaTokenizer::default(),
            };
            TextAnalyzer::builder(tokenizer).dynamic()
        }
        "lindera" | "language_identifier" => {
            return Err(bad(format!(
                "unsupported tokenizer: {name} (this cluster does not ship the {name} tokenizer; \
                 use standard, whitespace, jieba or icu)"
            )))
        }
        other => return Err(bad(format!("unsupported tokenizer: {other}"))),
    })
}

fn add_filters(mut builder: Builder, params: &Value) -> Result<Builder, AnalyzerError> {
    let list = params
        .as_array()
        .ok_or_else(|| bad("filter params should be array"))?;
    for filter in list {
        builder = match filter {
            Value::String(name) => match name.as_str() {
                "lowercase" => builder.filter_dynamic(LowerCaser),
                "asciifolding" => builder.filter_dynamic(AsciiFoldingFilter),
                "alphanumonly" => builder.filter_dynamic(AlphaNumOnlyFilter),
                "cncharonly" => builder.filter_dynamic(KeepIf(Keep::Han)),
                "cnalphanumonly" => builder.filter_dynamic(KeepIf(Keep::HanOrAlphanumeric)),
                "removepunct" => builder.filter_dynamic(KeepIf(Keep::NotPunctuation)),
                other => {
                    return Err(bad(format!(
                        "build analyzer failed, filter not found :{other}"
                    )))
                }
            },
            Value::Object(map) => add_filter(builder, map)?,
            // Milvus skips list items that are neither a name nor an object.
            _ => builder,
        };
    }
    Ok(builder)
}

fn add_filter(builder: Builder, params: &Map<String, Value>) -> Result<Builder, AnalyzerError> {
    let kind = match params.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(bad("filter type should be string")),
        None => return Err(bad("no type field in filter params")),
    };
    Ok(match kind {
        "length" => {
            let max = params
                .get("max")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("lenth max param was none or not uint"))?;
            // Milvus keeps tokens of at most `max` bytes; tantivy's limit is exclusive.
            builder.filter_dynamic(RemoveLongFilter::limit(max as usize + 1))
        }
        "stop" => {
            let words = params
                .get("stop_words")
                .ok_or_else(|| bad("stop filter stop_words can't be empty"))?;
            StopWords::parse(string_list(words, "stop_words filter")?).apply(builder)
        }
        "decompounder" => {
            let words = match params.get("word_list") {
                Some(Value::Array(words)) => words,
                _ => return Err(bad("decompounder word list should be array")),
            };
            let words = words
                .iter()
                .map(|w| w.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("decompounder word list item should be string"))?;
            let filter = SplitCompoundWords::from_dictionary(words)
                .map_err(|e| bad(format!("create decompounder failed: {e}")))?;
            builder.filter_dynamic(filter)
        }
        "stemmer" => {
            let language = params
                .get("language")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("stemmer language field should be string"))?;
            builder.filter_dynamic(Stemmer::new(stemmer_language(language)?))
        }
        "regex" => {
            let expr = params
                .get("expr")
                .ok_or_else(|| bad("must set expr for regex filter"))?
                .as_str()
                .ok_or_else(|| bad("expr must be string"))?;
            let regex = fancy_regex::Regex::new(expr)
                .map_err(|e| bad(format!("regex expression invalid, expr:{expr}, err: {e}")))?;
            builder.filter_dynamic(KeepIf(Keep::Matching(regex)))
        }
        other => return Err(bad(format!("unsupport filter type: {other}"))),
    })
}

fn string_list(value: &Value, label: &str) -> Result<Vec<String>, AnalyzerError> {
    let list = value
        .as_array()
        .ok_or_else(|| bad(format!("{label} should be array")))?;
    list.iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad(format!("{label} list item should be string")))
}

/// A stop list: literal words and the Snowball lists named `_english_`, `_french_`, ...
/// (a `_name_` that names no list is a literal word, as in Milvus).
#[derive(Default)]
struct StopWords {
    words: Vec<String>,
    languages: Vec<Language>,
}

impl StopWords {
    fn parse(words: Vec<String>) -> StopWords {
        let mut out = StopWords::default();
        for word in words {
            match stop_list_language(&word) {
                Some(language) => out.languages.push(language),
                None => out.words.push(word),
            }
        }
        out
    }

    /// `builder` followed by filters removing these words (one filter per list).
    fn apply(self, mut builder: Builder) -> Builder {
        for language in self.languages {
            if let Some(filter) = StopWordFilter::new(language) {
                builder = builder.filter_dynamic(filter);
            }
        }
        if !self.words.is_empty() {
            builder = builder.filter_dynamic(StopWordFilter::remove(self.words));
        }
        builder
    }
}

fn stop_list_language(name: &str) -> Option<Language> {
    Some(match name {
        "_english_" => Language::English,
        "_danish_" => Language::Danish,
        "_dutch_" => Language::Dutch,
        "_finnish_" => Language::Finnish,
        "_french_" => Language::French,
        "_german_" => Language::German,
        "_hungarian_" => Language::Hungarian,
        "_italian_" => Language::Italian,
        "_norwegian_" => Language::Norwegian,
        "_portuguese_" => Language::Portuguese,
        "_russian_" => Language::Russian,
        "_spanish_" => Language::Spanish,
        "_swedish_" => Language::Swedish,
        _ => return None,
    })
}

fn stemmer_language(name: &str) -> Result<Language, AnalyzerError> {
    Ok(match name.to_lowercase().as_str() {
        // "arabig" is Milvus's spelling; "arabic" is accepted too.
        "arabig" | "arabic" => Language::Arabic,
        "danish" => Language::Danish,
        "dutch" => Language::Dutch,
        "english" => Language::English,
        "finnish" => Language::Finnish,
        "french" => Language::French,
        "german" => Language::German,
        "greek" => Language::Greek,
        "hungarian" => Language::Hungarian,
        "italian" => Language::Italian,
        "norwegian" => Language::Norwegian,
        "portuguese" => Language::Portuguese,
        "romanian" => Language::Romanian,
        "russian" => Language::Russian,
        "spanish" => Language::Spanish,
        "swedish" => Language::Swedish,
        "tamil" => Language::Tamil,
        "turkish" => Language::Turkish,
        other => return Err(bad(format!("unsupport language: {other}"))),
    })
}

#[cfg(test)]
mod tests;

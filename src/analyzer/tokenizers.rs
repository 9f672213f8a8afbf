//! The tokenizers tantivy does not have: `jieba` (jieba-rs) and `icu` (ICU4X's word
//! segmenter). Both cut a whole text at once and hand its tokens out one by one; tokens
//! made only of white space are dropped (Milvus 2.5 hands them out).

use std::sync::{Arc, LazyLock};

use icu_segmenter::options::WordBreakInvariantOptions;
use icu_segmenter::{WordSegmenter, WordSegmenterBorrowed};
use jieba_rs::{Jieba, TokenizeMode};
use serde_json::{Map, Value};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use super::{bad, AnalyzerError};

/// Tokens cut in advance, handed out in order.
pub struct CutTokens {
    tokens: Vec<Token>,
    next: usize,
}

impl CutTokens {
    fn new(tokens: Vec<Token>) -> CutTokens {
        CutTokens { tokens, next: 0 }
    }
}

impl TokenStream for CutTokens {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// jieba's default dictionary, loaded once (about 350,000 words).
static DEFAULT_JIEBA: LazyLock<Arc<Jieba>> = LazyLock::new(|| Arc::new(Jieba::new()));

/// Milvus's `jieba` tokenizer: `dict` (words, with `_default_` for jieba's dictionary
/// besides them), `mode` (`search`, the default, adds the dictionary words inside
/// longer words; `exact` does not) and `hmm` (new words found by jieba's hidden Markov
/// model; default true). Other keys are ignored, as Milvus ignores them.
#[derive(Clone)]
pub struct JiebaTokenizer {
    jieba: Arc<Jieba>,
    mode: TokenizeMode,
    hmm: bool,
}

impl Default for JiebaTokenizer {
    fn default() -> Self {
        JiebaTokenizer {
            jieba: DEFAULT_JIEBA.clone(),
            mode: TokenizeMode::Search,
            hmm: true,
        }
    }
}

impl JiebaTokenizer {
    pub fn from_params(params: &Map<String, Value>) -> Result<JiebaTokenizer, AnalyzerError> {
        let jieba = match params.get("dict") {
            None => DEFAULT_JIEBA.clone(),
            Some(Value::Array(items)) => {
                let mut words = Vec::new();
                let mut system: Option<&str> = None;
                for item in items {
                    let word = item
                        .as_str()
                        .ok_or_else(|| bad("jieba tokenizer dict item must be string"))?;
                    match word {
                        "" => {}
                        "_default_" | "_extend_default_" => {
                            if system.is_some() {
                                return Err(bad(
                                    "jieba tokenizer dict can only set one default dict",
                                ));
                            }
                            system = Some(word);
                        }
                        _ => words.push(word),
                    }
                }
                let mut jieba =
                    match system {
                        None => Jieba::empty(),
                        Some("_default_") => (**DEFAULT_JIEBA).clone(),
                        Some(_) => return Err(bad(
                            "jieba tokenizer dict _extend_default_ (jieba's big dictionary) is \
                             not shipped by this cluster: use _default_",
                        )),
                    };
                for word in words {
                    jieba.add_word(word, None, None);
                }
                Arc::new(jieba)
            }
            Some(_) => return Err(bad("jieba tokenizer dict must be array")),
        };
        let mode = match params.get("mode") {
            None => TokenizeMode::Search,
            Some(Value::String(mode)) => match mode.as_str() {
                "exact" => TokenizeMode::Default,
                "search" => TokenizeMode::Search,
                _ => return Err(bad("jieba tokenizer mode must be \"exact\" or \"search\"")),
            },
            Some(_) => return Err(bad("jieba tokenizer mode must be string")),
        };
        let hmm = match params.get("hmm") {
            None => true,
            Some(Value::Bool(hmm)) => *hmm,
            Some(_) => return Err(bad("jieba tokenizer hmm must be boolean")),
        };
        Ok(JiebaTokenizer { jieba, mode, hmm })
    }
}

impl Tokenizer for JiebaTokenizer {
    type TokenStream<'a> = CutTokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CutTokens {
        let tokens = self
            .jieba
            .tokenize(text, self.mode, self.hmm)
            .into_iter()
            .filter(|t| !blank(t.word))
            .map(|t| Token {
                offset_from: t.byte_start,
                offset_to: t.byte_end,
                position: t.start,
                text: t.word.to_string(),
                position_length: t.end - t.start,
            })
            .collect();
        CutTokens::new(tokens)
    }
}

/// ICU4X's word segmenter with its built-in data for every script, made once.
static ICU_WORDS: LazyLock<WordSegmenterBorrowed<'static>> =
    LazyLock::new(|| WordSegmenter::new_auto(WordBreakInvariantOptions::default()));

/// Milvus's `icu` tokenizer: the text cut at Unicode word boundaries (UAX #29, with
/// ICU's dictionaries and models for Chinese, Japanese, Thai, Lao, Khmer and Burmese);
/// every piece between two boundaries is a token, positions count characters.
#[derive(Clone, Default)]
pub struct IcuTokenizer;

impl Tokenizer for IcuTokenizer {
    type TokenStream<'a> = CutTokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CutTokens {
        let mut tokens = Vec::new();
        let mut from = 0;
        let mut position = 0;
        for to in ICU_WORDS.segment_str(text) {
            if to == from {
                continue;
            }
            let piece = &text[from..to];
            let chars = piece.chars().count();
            if !blank(piece) {
                tokens.push(Token {
                    offset_from: from,
                    offset_to: to,
                    position,
                    text: piece.to_string(),
                    position_length: chars,
                });
            }
            from = to;
            position += chars;
        }
        CutTokens::new(tokens)
    }
}

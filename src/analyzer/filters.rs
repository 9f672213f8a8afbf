//! The token filters Milvus adds to tantivy's: each keeps the tokens a predicate accepts
//! (`cncharonly`, `cnalphanumonly`, `removepunct`, `regex`), so one filter type serves all.

use std::sync::LazyLock;

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Which tokens a [`KeepIf`] filter keeps.
#[derive(Clone)]
pub enum Keep {
    /// Tokens with a Han character (`cncharonly`).
    Han,
    /// Tokens with a Han character or an ASCII letter or digit (`cnalphanumonly`).
    HanOrAlphanumeric,
    /// Tokens not made only of punctuation and white space (`removepunct`).
    NotPunctuation,
    /// Tokens the expression matches somewhere (`regex`; an expression that fails on a
    /// token, e.g. by backtracking too far, keeps it, as Milvus's does).
    Matching(fancy_regex::Regex),
}

static HAN: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\p{Han}").expect("valid class"));
static HAN_ALNUM: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"[\p{Han}a-zA-Z0-9]").expect("valid class"));
static ONLY_PUNCT: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{P}\s]+$").expect("valid class"));

impl Keep {
    fn keeps(&self, text: &str) -> bool {
        match self {
            Keep::Han => HAN.is_match(text),
            Keep::HanOrAlphanumeric => HAN_ALNUM.is_match(text),
            Keep::NotPunctuation => !ONLY_PUNCT.is_match(text),
            Keep::Matching(re) => re.is_match(text).unwrap_or(true),
        }
    }
}

/// A token filter keeping the tokens its [`Keep`] accepts.
#[derive(Clone)]
pub struct KeepIf(pub Keep);

impl TokenFilter for KeepIf {
    type Tokenizer<T: Tokenizer> = KeepIfTokenizer<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> KeepIfTokenizer<T> {
        KeepIfTokenizer {
            keep: self.0,
            inner,
        }
    }
}

#[derive(Clone)]
pub struct KeepIfTokenizer<T> {
    keep: Keep,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for KeepIfTokenizer<T> {
    type TokenStream<'a> = KeepIfStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        KeepIfStream {
            keep: &self.keep,
            tail: self.inner.token_stream(text),
        }
    }
}

pub struct KeepIfStream<'a, S> {
    keep: &'a Keep,
    tail: S,
}

impl<S: TokenStream> TokenStream for KeepIfStream<'_, S> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if self.keep.keeps(&self.tail.token().text) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

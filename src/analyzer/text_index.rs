//! A text index: for one VARCHAR column, the rows each token occurs in, made with the
//! field's analyzer, so `TEXT_MATCH` reads posting lists instead of cutting every row.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use super::{Analyzer, AnalyzerError};

/// Rows by token (each list ascending, a row once).
#[derive(Debug, Default)]
pub struct TextIndex {
    rows: usize,
    postings: HashMap<String, Vec<u32>>,
}

impl TextIndex {
    /// The index of `texts` (row order; None for a null row, which has no tokens).
    pub fn build<'a>(
        analyzer: &mut Analyzer,
        texts: impl IntoIterator<Item = Option<&'a str>>,
    ) -> TextIndex {
        let mut ix = TextIndex::default();
        for (row, text) in texts.into_iter().enumerate() {
            ix.rows = row + 1;
            let Some(text) = text else { continue };
            for token in analyzer.tokens(text) {
                let list = ix.postings.entry(token.text).or_default();
                if list.last() != Some(&(row as u32)) {
                    list.push(row as u32);
                }
            }
        }
        ix
    }

    /// Which rows have at least one of `tokens`.
    pub fn any_of(&self, tokens: &HashSet<String>) -> Vec<bool> {
        let mut mask = vec![false; self.rows];
        for t in tokens {
            for row in self.postings.get(t).into_iter().flatten() {
                mask[*row as usize] = true;
            }
        }
        mask
    }

    /// The rows that have every one of `tokens` (none when `tokens` is empty),
    /// ascending.
    pub fn all_of(&self, tokens: &HashSet<String>) -> Vec<u32> {
        let mut lists = Vec::with_capacity(tokens.len());
        for t in tokens {
            match self.postings.get(t) {
                Some(l) => lists.push(l.as_slice()),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else {
            return Vec::new();
        };
        first
            .iter()
            .copied()
            .filter(|row| rest.iter().all(|l| l.binary_search(row).is_ok()))
            .collect()
    }

    /// Distinct tokens held.
    pub fn tokens(&self) -> usize {
        self.postings.len()
    }

    /// Bytes held (roughly: each posting entry, each distinct token with its list).
    pub fn memory_usage(&self) -> usize {
        self.postings
            .iter()
            .map(|(t, rows)| t.len() + 48 + rows.capacity() * 4)
            .sum()
    }
}

/// Analyzers by their parameters, built once per process: a jieba analyzer with its own
/// dictionary costs a copy of jieba's dictionary to build, too much per segment or per
/// query. At most [`CACHED`] sets of parameters are kept (the cache starts over when
/// full); each caller gets a clone (analyzers cut text through `&mut`).
pub fn cached(params: &str) -> Result<Analyzer, AnalyzerError> {
    static CACHE: LazyLock<Mutex<HashMap<String, Analyzer>>> = LazyLock::new(Default::default);
    if let Some(a) = CACHE.lock().expect("analyzer cache").get(params) {
        return Ok(a.clone());
    }
    let built = Analyzer::new(params)?;
    let mut cache = CACHE.lock().expect("analyzer cache");
    if cache.len() >= CACHED {
        cache.clear();
    }
    cache.insert(params.to_string(), built.clone());
    Ok(built)
}

/// How many analyzers [`cached`] keeps.
pub const CACHED: usize = 64;

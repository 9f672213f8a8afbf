use super::*;

fn words(params: &str, text: &str) -> Vec<String> {
    let mut analyzer = Analyzer::new(params).unwrap_or_else(|e| panic!("{params}: {e}"));
    analyzer.tokens(text).into_iter().map(|t| t.text).collect()
}

fn refused(params: &str) -> String {
    match Analyzer::new(params) {
        Ok(_) => panic!("{params} was accepted"),
        Err(e) => e.0,
    }
}

#[test]
fn standard_analyzer_splits_on_non_alphanumerics_and_lowercases() {
    let text = "The Quick, brown fox! jumps-over 2 lazy_dogs";
    let expected = [
        "the", "quick", "brown", "fox", "jumps", "over", "2", "lazy", "dogs",
    ];
    assert_eq!(words("", text), expected);
    assert_eq!(words("{}", text), expected);
    assert_eq!(words(r#"{"type": "standard"}"#, text), expected);
    // The standard *tokenizer* alone keeps the case, as in Milvus.
    assert_eq!(
        words(r#"{"tokenizer": "standard"}"#, "Hello World"),
        ["Hello", "World"]
    );
    assert!(words("", "").is_empty());
    assert!(words("", " ,.;! ").is_empty());
}

#[test]
fn tokens_carry_byte_offsets_and_positions() {
    let mut analyzer = Analyzer::new("").unwrap();
    let tokens = analyzer.tokens("héllo  wörld");
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        (
            tokens[0].start_offset,
            tokens[0].end_offset,
            tokens[0].position
        ),
        (0, 6, 0)
    );
    assert_eq!(
        (
            tokens[1].start_offset,
            tokens[1].end_offset,
            tokens[1].position
        ),
        (8, 14, 1)
    );
    assert_eq!(tokens[1].position_length, 1);
    // Same analyzer, same tokens: nothing is kept between texts.
    assert_eq!(analyzer.tokens("héllo  wörld"), tokens);
}

#[test]
fn stop_words_take_literal_words_and_snowball_lists() {
    let params = r#"{"tokenizer": "whitespace", "filter": ["lowercase",
        {"type": "stop", "stop_words": ["is", "the", "_english_", "_nonsense_"]}]}"#;
    assert_eq!(
        words(params, "This is THE test of a _nonsense_ filter"),
        ["test", "filter"]
    );
    assert_eq!(
        words(
            r#"{"type": "standard", "stop_words": ["fox"]}"#,
            "the quick fox"
        ),
        ["the", "quick"]
    );
    // An empty list removes nothing.
    assert_eq!(
        words(
            r#"{"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": []}]}"#,
            "This is a test"
        ),
        ["This", "is", "a", "test"]
    );
}

#[test]
fn english_analyzer_stems_and_drops_english_stop_words() {
    assert_eq!(
        words(r#"{"type": "english"}"#, "The runners are running quickly"),
        ["runner", "run", "quick"]
    );
}

#[test]
fn filters_lengths_folding_stemming_decompounding_and_regex() {
    assert_eq!(
        words(
            r#"{"tokenizer": "standard", "filter": [{"type": "length", "max": 3}]}"#,
            "a bb ccc dddd"
        ),
        ["a", "bb", "ccc"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "whitespace", "filter": ["asciifolding", "lowercase"]}"#,
            "Café Ñandú"
        ),
        ["cafe", "nandu"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "whitespace", "filter": ["alphanumonly"]}"#,
            "abc a-b 123"
        ),
        ["abc", "123"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "English"}]}"#,
            "connections connected"
        ),
        ["connect", "connect"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "standard", "filter": [{"type": "decompounder",
                "word_list": ["dampf", "schiff", "fahrt"]}]}"#,
            "dampfschifffahrt"
        ),
        ["dampf", "schiff", "fahrt"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "standard", "filter": [{"type": "regex", "expr": "^(?!test)"}]}"#,
            "test milvus tester"
        ),
        ["milvus"]
    );
    assert_eq!(
        words(
            r#"{"tokenizer": "whitespace", "filter": ["removepunct"]}"#,
            "hello , world ! e.g."
        ),
        ["hello", "world", "e.g."]
    );
}

#[test]
fn jieba_cuts_as_python_jieba_does() {
    // Expected tokens from Python's jieba 0.42.1 (what Milvus's suite compares with).
    let text = "milvus结巴分词器中文测试";
    assert_eq!(
        words(r#"{"tokenizer": "jieba"}"#, text),
        ["milvus", "结巴", "分词", "分词器", "中文", "测试"]
    );
    assert_eq!(
        words(r#"{"tokenizer": {"type": "jieba", "mode": "exact"}}"#, text),
        ["milvus", "结巴", "分词器", "中文", "测试"]
    );
    let mut with_word = words(
        r#"{"tokenizer": {"type": "jieba", "dict": ["_default_", "结巴分词器"],
            "mode": "search", "hmm": false}}"#,
        text,
    );
    with_word.sort();
    let mut expected = [
        "milvus",
        "结巴",
        "分词",
        "分词器",
        "结巴分词器",
        "中文",
        "测试",
    ];
    expected.sort();
    assert_eq!(with_word, expected);
    // A dictionary of one word: the rest is cut by the HMM, or into characters without it.
    for mode in ["exact", "search"] {
        let params = |hmm: bool| {
            format!(
                r#"{{"tokenizer": {{"type": "jieba", "dict": ["结巴分词器"], "mode": "{mode}", "hmm": {hmm}}}}}"#
            )
        };
        assert_eq!(
            words(&params(false), text),
            ["milvus", "结巴分词器", "中", "文", "测", "试"]
        );
        assert_eq!(
            words(&params(true), text),
            ["milvus", "结巴分词器", "中文", "测试"]
        );
    }
    // White space is not a token; unknown keys are ignored; an empty dict still cuts.
    assert_eq!(
        words(
            r#"{"tokenizer": {"type": "jieba", "invalid_param": 1}}"#,
            "测试文本 for jieba analyzer"
        ),
        ["测试", "文本", "for", "jieba", "analyzer"]
    );
    assert!(!words(
        r#"{"tokenizer": {"type": "jieba", "dict": []}}"#,
        "测试文本"
    )
    .is_empty());
    assert_eq!(
        words(r#"{"type": "chinese", "stop_words": ["的"]}"#, "我的，中文"),
        ["我", "中文"]
    );
}

#[test]
fn icu_cuts_at_word_boundaries_in_every_script() {
    let tokens = words(
        r#"{"tokenizer": "icu"}"#,
        "Hello, world! こんにちは世界 ทุกสองสัปดาห์",
    );
    assert_eq!(
        tokens,
        [
            "Hello",
            ",",
            "world",
            "!",
            "こんにちは",
            "世界",
            "ทุก",
            "สอง",
            "สัปดาห์"
        ]
    );
}

#[test]
fn bad_parameters_are_refused_with_milvus_messages() {
    for (params, message) in [
        ("[1]", "params should be a json map"),
        ("{", "invalid json"),
        (
            r#"{"tokenizer": "invalid_tokenizer"}"#,
            "unsupported tokenizer: invalid_tokenizer",
        ),
        (
            r#"{"tokenizer": 123}"#,
            "tokenizer name should be string or dict",
        ),
        (
            r#"{"tokenizer": null}"#,
            "tokenizer name should be string or dict",
        ),
        (
            r#"{"tokenizer": {"type": null}}"#,
            "tokenizer type should be string",
        ),
        (r#"{"tokenizer": {}}"#, "costum tokenizer must set type"),
        (
            r#"{"filter": "invalid_filter"}"#,
            "tokenizer name or type must be set",
        ),
        (
            r#"{"tokenizer": "standard", "filter": "lowercase"}"#,
            "filter params should be array",
        ),
        (
            r#"{"tokenizer": "standard", "filter": ["nope"]}"#,
            "build analyzer failed, filter not found :nope",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": null}]}"#,
            "filter type should be string",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"invalid_key": "v"}]}"#,
            "no type field in filter params",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "stop"}]}"#,
            "stop filter stop_words can't be empty",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": [1]}]}"#,
            "stop_words filter list item should be string",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": null}]}"#,
            "stop_words filter should be array",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "length", "max": -1}]}"#,
            "lenth max param was none or not uint",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "klingon"}]}"#,
            "unsupport language: klingon",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "regex", "expr": "("}]}"#,
            "regex expression invalid, expr:(",
        ),
        (
            r#"{"tokenizer": "standard", "filter": [{"type": "nope"}]}"#,
            "unsupport filter type: nope",
        ),
        (
            r#"{"tokenizer": "standard", "other": 1}"#,
            "unknown analyzer option key: other",
        ),
        (
            r#"{"type": "french"}"#,
            "unknown build-in analyzer type: french",
        ),
        (r#"{"type": 1}"#, "analyzer type shoud be string"),
        (
            r#"{"tokenizer": {"type": "jieba", "dict": "words"}}"#,
            "jieba tokenizer dict must be array",
        ),
        (
            r#"{"tokenizer": {"type": "jieba", "dict": [123]}}"#,
            "jieba tokenizer dict item must be string",
        ),
        (
            r#"{"tokenizer": {"type": "jieba", "dict": ["_default_", "_default_"]}}"#,
            "can only set one default dict",
        ),
        (
            r#"{"tokenizer": {"type": "jieba", "mode": "fast"}}"#,
            "jieba tokenizer mode must be \"exact\" or \"search\"",
        ),
        (
            r#"{"tokenizer": {"type": "jieba", "mode": 1}}"#,
            "jieba tokenizer mode must be string",
        ),
        (
            r#"{"tokenizer": {"type": "jieba", "hmm": "yes"}}"#,
            "jieba tokenizer hmm must be boolean",
        ),
        (
            r#"{"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}}"#,
            "unsupported tokenizer: lindera",
        ),
    ] {
        let got = refused(params);
        assert!(got.contains(message), "{params}: {got}");
    }
}

#[test]
fn token_hash_is_milvus_crc32() {
    // crc32("hello") = 0x3610a686; a long token hashes its first 100 bytes.
    assert_eq!(token_hash("hello"), 0x3610_a686);
    let long = "x".repeat(150);
    assert_eq!(token_hash(&long), token_hash(&long[..100]));
}

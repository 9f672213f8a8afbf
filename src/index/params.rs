//! Index parameters as pymilvus sends them (flattened `extra_params`, or one `params`
//! pair holding JSON), checked the way Milvus checks them: a known type and metric,
//! each build parameter in range. Every refusal names the parameter.

use std::collections::BTreeMap;

use crate::proto::common::KeyValuePair;
use crate::proto::schema::DataType;

/// A distance as Milvus scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Squared Euclidean distance; smaller is better.
    L2,
    /// Inner product; larger is better.
    Ip,
    /// Cosine similarity; larger is better.
    Cosine,
    /// Bits that differ (binary vectors); smaller is better.
    Hamming,
    /// `1 - |a and b| / |a or b|` over bits (binary vectors); smaller is better.
    Jaccard,
    /// Rows holding every bit of the query (binary vectors, BIN_FLAT): a filter, each
    /// match scored 0.
    Substructure,
    /// Rows whose bits are all in the query (binary vectors, BIN_FLAT): a filter, each
    /// match scored 0.
    Superstructure,
    /// BM25 relevance of a text's terms (sparse vectors a BM25 function writes); larger
    /// is better.
    Bm25,
}

impl Metric {
    /// Parses Milvus's name (case-insensitive).
    pub fn parse(s: &str) -> Result<Metric, String> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Ok(Metric::L2),
            "IP" => Ok(Metric::Ip),
            "COSINE" => Ok(Metric::Cosine),
            "HAMMING" => Ok(Metric::Hamming),
            "JACCARD" => Ok(Metric::Jaccard),
            "SUBSTRUCTURE" => Ok(Metric::Substructure),
            "SUPERSTRUCTURE" => Ok(Metric::Superstructure),
            "BM25" => Ok(Metric::Bm25),
            _ => Err(format!(
                "metric type {s} not found or not supported, supported: [L2 IP COSINE HAMMING JACCARD SUBSTRUCTURE SUPERSTRUCTURE]"
            )),
        }
    }

    /// The metric's code in an index file.
    pub fn code(self) -> u8 {
        match self {
            Metric::L2 => 0,
            Metric::Ip => 1,
            Metric::Cosine => 2,
            Metric::Hamming => 3,
            Metric::Jaccard => 4,
            Metric::Substructure => 5,
            Metric::Superstructure => 6,
            Metric::Bm25 => 7,
        }
    }

    /// True for the metrics of binary vectors (HAMMING, JACCARD).
    pub fn is_binary(self) -> bool {
        matches!(
            self,
            Metric::Hamming | Metric::Jaccard | Metric::Substructure | Metric::Superstructure
        )
    }

    /// True for the filter-like metrics (SUBSTRUCTURE, SUPERSTRUCTURE): only rows scoring
    /// 0 are hits.
    pub fn is_structure(self) -> bool {
        matches!(self, Metric::Substructure | Metric::Superstructure)
    }

    /// Milvus's name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "IP",
            Metric::Cosine => "COSINE",
            Metric::Hamming => "HAMMING",
            Metric::Jaccard => "JACCARD",
            Metric::Substructure => "SUBSTRUCTURE",
            Metric::Superstructure => "SUPERSTRUCTURE",
            Metric::Bm25 => "BM25",
        }
    }

    /// True when a larger score is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Ip | Metric::Cosine | Metric::Bm25)
    }
}

/// The bounds of a range search (Milvus's `radius` and `range_filter`): a score is in
/// range when it is strictly better than `radius` and, with a `range_filter`, no
/// better than it. For L2 that is `range_filter <= d < radius`; for IP and COSINE
/// `radius < s <= range_filter`. A search iterator's page also has an exclusive inner
/// bound, `after`: the last score of the page before (only strictly worse ones follow;
/// with `after_inclusive`, that score too: the caller leaves out the rows it already
/// gave at it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The outer bound (exclusive).
    pub radius: f32,
    /// The inner bound (inclusive), if any.
    pub range_filter: Option<f32>,
    /// Larger scores are better (IP, COSINE).
    pub higher: bool,
    /// Only scores strictly worse than this (a search iterator's last bound).
    pub after: Option<f32>,
    /// Scores equal to `after` are in range too.
    pub after_inclusive: bool,
}

impl Range {
    /// Checks Milvus's order rule for `metric` and returns the bounds.
    pub fn new(metric: Metric, radius: f64, range_filter: Option<f64>) -> Result<Range, String> {
        let higher = metric.higher_is_better();
        if let Some(rf) = range_filter {
            if higher && radius >= rf {
                return Err(format!(
                    "range_filter must be greater than radius for IP/COSINE, range_filter:{rf:.6}, radius:{radius:.6}"
                ));
            }
            if !higher && radius <= rf {
                return Err(format!(
                    "range_filter must be less than radius for L2/HAMMING/JACCARD, range_filter:{rf:.6}, radius:{radius:.6}"
                ));
            }
        }
        Ok(Range {
            radius: radius as f32,
            range_filter: range_filter.map(|r| r as f32),
            higher,
            after: None,
            after_inclusive: false,
        })
    }

    /// No bounds: every score (a radius at the worst end of the metric's scale).
    pub fn unbounded(metric: Metric) -> Range {
        let higher = metric.higher_is_better();
        Range {
            radius: if higher {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            },
            range_filter: None,
            higher,
            after: None,
            after_inclusive: false,
        }
    }

    /// These bounds, and only scores strictly worse than `bound`.
    pub fn after(self, bound: f32) -> Range {
        Range {
            after: Some(bound),
            after_inclusive: false,
            ..self
        }
    }

    /// These bounds, and only scores no better than `bound`.
    pub fn at_or_after(self, bound: f32) -> Range {
        Range {
            after: Some(bound),
            after_inclusive: true,
            ..self
        }
    }

    /// Whether score `s` is within the bounds.
    pub fn contains(&self, s: f32) -> bool {
        if self.higher {
            s > self.radius
                && self.range_filter.is_none_or(|rf| s <= rf)
                && self
                    .after
                    .is_none_or(|a| s < a || (self.after_inclusive && s == a))
        } else {
            s < self.radius
                && self.range_filter.is_none_or(|rf| s >= rf)
                && self
                    .after
                    .is_none_or(|a| s > a || (self.after_inclusive && s == a))
        }
    }

    /// Whether `s` is at or past the outer bound: no worse score can be in range.
    pub fn beyond(&self, s: f32) -> bool {
        if self.higher {
            s <= self.radius
        } else {
            s >= self.radius
        }
    }
}

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exact search over the raw vectors.
    Flat,
    /// Inverted lists over `nlist` k-means centroids.
    IvfFlat {
        /// Number of lists.
        nlist: usize,
    },
    /// A hierarchical navigable small world graph.
    Hnsw {
        /// Links per node (`2 * m` on the base layer).
        m: usize,
        /// Candidate list size while building.
        ef_construction: usize,
    },
    /// Inverted lists over `nlist` centroids holding 8-bit scalar-quantized vectors
    /// (`IVF_SQ8`): scores are computed from the codes.
    IvfSq8 {
        /// Number of lists.
        nlist: usize,
    },
    /// Inverted lists holding product-quantized residuals (`IVF_PQ`): `m` subspaces of
    /// `2^nbits` sub-centroids; scores from the codes.
    IvfPq {
        /// Number of lists.
        nlist: usize,
        /// Subspaces (divides the dim).
        m: usize,
        /// Bits a subspace's code takes (1-8).
        nbits: usize,
    },
    /// `SCANN`: inverted lists of 4-bit product-quantized residuals over subspaces of
    /// `sub_dim` values, the best `reorder_k` rescored exactly from the raw vectors when
    /// `with_raw_data` (the default) keeps them.
    Scann {
        /// Number of lists.
        nlist: usize,
        /// Values per subspace (divides the dim).
        sub_dim: usize,
        /// Keep the raw vectors and rescore with them.
        with_raw_data: bool,
    },
    /// HNSW over 8-bit scalar-quantized vectors (`HNSW_SQ`, `sq_type: SQ8`).
    HnswSq {
        /// Links per node (`2 * m` on the base layer).
        m: usize,
        /// Candidate list size while building.
        ef_construction: usize,
    },
    /// `DISKANN`: a Vamana graph (one level, entered at a medoid, links chosen by
    /// RobustPrune), searched with `search_list` candidates. Kept in memory here with
    /// the vectors (Milvus keeps the graph and vectors on a local SSD and PQ codes in
    /// memory).
    DiskAnn {
        /// Links per node at most (`max_degree`, Milvus's `DiskIndex.MaxDegree`).
        max_degree: usize,
        /// Candidate list size while building (`search_list_size`).
        search_list_size: usize,
    },
    /// An inverted index over sparse vectors (`SPARSE_INVERTED_INDEX`, `SPARSE_WAND`:
    /// both answer exactly over the values kept).
    Sparse {
        /// `SPARSE_WAND` (the name `describe_index` shows).
        wand: bool,
        /// BM25's `bm25_k1` (term frequency saturation).
        k1: Ratio,
        /// BM25's `bm25_b` (length normalization).
        b: Ratio,
    },
}

impl Kind {
    /// Whether it builds an HNSW graph (HNSW, HNSW_SQ): the kinds a build can start
    /// from another build's graph (`VectorIndex::build_seeded`).
    pub fn has_graph(&self) -> bool {
        matches!(self, Kind::Hnsw { .. } | Kind::HnswSq { .. })
    }
}

/// A float index parameter, compared by its bits (an [`IndexSpec`] is `Eq`).
#[derive(Debug, Clone, Copy)]
pub struct Ratio(pub f32);

impl PartialEq for Ratio {
    fn eq(&self, other: &Ratio) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Ratio {}

/// A checked index definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    /// The structure.
    pub kind: Kind,
    /// The metric.
    pub metric: Metric,
    /// True for `AUTOINDEX` (built as HNSW `M=18, efConstruction=240`).
    pub auto: bool,
}

/// DISKANN's `max_degree` when the index does not give it (Milvus's
/// `DiskIndex.MaxDegree` default).
pub const DISKANN_MAX_DEGREE: usize = 56;
/// DISKANN's `search_list_size` when the index does not give it (`DiskIndex.SearchListSize`).
pub const DISKANN_SEARCH_LIST_SIZE: usize = 100;
/// DISKANN's `search_list` when a search does not give it (Milvus's default).
pub const DISKANN_SEARCH_LIST: usize = 16;
/// Vamana's pruning slack (DiskANN's alpha for L2 builds).
pub const DISKANN_ALPHA: f32 = 1.2;

/// `AUTOINDEX`'s HNSW parameters (Milvus's self-hosted choice).
pub const AUTO_M: usize = 18;
/// See [`AUTO_M`].
pub const AUTO_EF_CONSTRUCTION: usize = 240;

/// The parameters as key -> value, with a `params` JSON pair flattened in.
pub fn flatten(pairs: &[KeyValuePair]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for p in pairs {
        if p.key == "params" {
            let v: serde_json::Value = serde_json::from_str(&p.value)
                .map_err(|e| format!("params is not a JSON object ({e}): {}", p.value))?;
            let obj = v
                .as_object()
                .ok_or_else(|| format!("params is not a JSON object: {}", p.value))?;
            for (k, v) in obj {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(k.clone(), s);
            }
        } else {
            out.insert(p.key.clone(), p.value.clone());
        }
    }
    Ok(out)
}

/// An integer parameter in `[lo, hi]`.
pub fn int_in(
    params: &BTreeMap<String, String>,
    key: &str,
    default: Option<usize>,
    lo: usize,
    hi: usize,
) -> Result<usize, String> {
    let Some(raw) = params.get(key) else {
        return default.ok_or_else(|| format!("param '{key}' is required"));
    };
    let v: i64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("param '{key}' ({raw}) should be an integer"))?;
    if v < lo as i64 || v > hi as i64 {
        return Err(format!(
            "param '{key}' ({v}) should be in range [{lo}, {hi}]"
        ));
    }
    Ok(v as usize)
}

/// knowhere's refusal of a structure metric on BIN_IVF_FLAT (AUTOINDEX's binary index).
fn ivf_bits_only(metric: Metric) -> String {
    format!(
        "metric type {} not found or not supported, supported: [HAMMING JACCARD]",
        metric.name()
    )
}

/// `AUTOINDEX` on a binary vector field: BIN_IVF_FLAT with this `nlist` (Milvus's
/// `autoIndex.params.binary.build`).
pub const AUTO_BINARY_NLIST: usize = 1024;

/// Checks a dense vector field's index parameters (`vector`: the field's type; binary
/// vectors take BIN_FLAT / BIN_IVF_FLAT with HAMMING or JACCARD, the float types the
/// others with L2, IP or COSINE). No `index_type` means AUTOINDEX, as in Milvus.
pub fn parse(params: &BTreeMap<String, String>, vector: DataType) -> Result<IndexSpec, String> {
    if vector == DataType::SparseFloatVector {
        return parse_sparse(params);
    }
    let binary = vector == DataType::BinaryVector;
    let ty = params
        .get("index_type")
        .map(|s| s.to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "AUTOINDEX".to_string());
    let metric = params.get("metric_type");
    let fits = |m: Metric| -> Result<Metric, String> {
        if m == Metric::Bm25 {
            let kind = if binary { "binary" } else { "float" };
            return Err(format!(
                "{kind} vector index does not support metric type: BM25"
            ));
        }
        match (binary, m.is_binary()) {
            (true, false) => Err(format!(
                "binary vector index does not support metric type: {}",
                m.name()
            )),
            (false, true) => Err(format!(
                "float vector index does not support metric type: {}",
                m.name()
            )),
            _ => Ok(m),
        }
    };
    if ty == "AUTOINDEX" {
        // Index properties (AlterIndex's mmap.enabled, indexoffsetcache.enabled) are
        // not build parameters: allowed beside AUTOINDEX too.
        let extra: Vec<&String> = params
            .keys()
            .filter(|k| {
                !matches!(
                    k.as_str(),
                    "index_type" | "metric_type" | "mmap.enabled" | "indexoffsetcache.enabled"
                )
            })
            .collect();
        if !extra.is_empty() {
            return Err(format!(
                "only metric type can be passed when use AutoIndex, got {extra:?}"
            ));
        }
        let default = if binary {
            Metric::Hamming
        } else {
            Metric::Cosine
        };
        let metric = fits(metric.map_or(Ok(default), |m| Metric::parse(m))?)?;
        if metric.is_structure() {
            return Err(ivf_bits_only(metric));
        }
        let kind = if binary {
            Kind::IvfFlat {
                nlist: AUTO_BINARY_NLIST,
            }
        } else {
            Kind::Hnsw {
                m: AUTO_M,
                ef_construction: AUTO_EF_CONSTRUCTION,
            }
        };
        return Ok(IndexSpec {
            kind,
            metric,
            auto: true,
        });
    }
    let metric = fits(Metric::parse(
        metric.ok_or("metric type not set for vector index")?,
    )?)?;
    let kind = match (binary, ty.as_str()) {
        (false, "FLAT") | (true, "BIN_FLAT") => Kind::Flat,
        (true, "BIN_IVF_FLAT") if metric.is_structure() => return Err(ivf_bits_only(metric)),
        (false, "IVF_FLAT") | (true, "BIN_IVF_FLAT") => Kind::IvfFlat {
            nlist: int_in(params, "nlist", Some(128), 1, 65536)?,
        },
        (false, "IVF_SQ8") => Kind::IvfSq8 {
            nlist: int_in(params, "nlist", Some(128), 1, 65536)?,
        },
        (false, "IVF_PQ") => Kind::IvfPq {
            nlist: int_in(params, "nlist", Some(128), 1, 65536)?,
            m: int_in(params, "m", None, 1, 65536)?,
            // Codes are bytes: Milvus's range goes to 24, this build to 8.
            nbits: int_in(params, "nbits", Some(8), 1, 8)?,
        },
        (false, "SCANN") => Kind::Scann {
            nlist: int_in(params, "nlist", Some(128), 1, 65536)?,
            sub_dim: int_in(params, "sub_dim", Some(2), 1, 65536)?,
            with_raw_data: match params.get("with_raw_data").map(|v| v.to_ascii_lowercase()) {
                None => true,
                Some(v) if v == "true" => true,
                Some(v) if v == "false" => false,
                Some(v) => {
                    return Err(format!(
                        "Type conflict in json: param 'with_raw_data' ({v}) should be a boolean"
                    ))
                }
            },
        },
        (false, "HNSW") => Kind::Hnsw {
            m: int_in(params, "M", None, 2, 2048)?,
            ef_construction: int_in(params, "efConstruction", None, 1, i32::MAX as usize)?,
        },
        (false, "DISKANN") => Kind::DiskAnn {
            max_degree: int_in(params, "max_degree", Some(DISKANN_MAX_DEGREE), 1, 512)?,
            search_list_size: int_in(
                params,
                "search_list_size",
                Some(DISKANN_SEARCH_LIST_SIZE),
                1,
                i32::MAX as usize,
            )?,
        },
        (false, "HNSW_SQ") => {
            if let Some(t) = params.get("sq_type").filter(|t| !t.eq_ignore_ascii_case("SQ8")) {
                return Err(format!(
                    "param 'sq_type' ({t}) is not supported: expected SQ8"
                ));
            }
            if params
                .get("refine")
                .is_some_and(|r| r.eq_ignore_ascii_case("true"))
            {
                return Err("param 'refine' (true) is not supported: expected false".to_string());
            }
            Kind::HnswSq {
                m: int_in(params, "M", None, 2, 2048)?,
                ef_construction: int_in(params, "efConstruction", None, 1, i32::MAX as usize)?,
            }
        }
        (
            true,
            other @ ("FLAT" | "IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" | "SCANN" | "HNSW" | "HNSW_SQ"
            | "DISKANN"),
        ) => {
            return Err(format!(
                "data type BinaryVector can't build with this index {other}, supported on binary vectors: BIN_FLAT, BIN_IVF_FLAT, AUTOINDEX"
            ))
        }
        (false, other @ ("BIN_FLAT" | "BIN_IVF_FLAT")) => {
            return Err(format!(
                "data type {} can't build with this index {other}, supported on float vectors: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN, HNSW, HNSW_SQ, DISKANN, AUTOINDEX",
                vector.as_str_name()
            ))
        }
        (true, other) => {
            return Err(format!(
                "invalid index type: {other}, supported on binary vectors: BIN_FLAT, BIN_IVF_FLAT, AUTOINDEX"
            ))
        }
        (false, other) => {
            return Err(format!(
                "invalid index type: {other}, supported on float vectors: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN, HNSW, HNSW_SQ, DISKANN, AUTOINDEX"
            ))
        }
    };
    Ok(IndexSpec {
        kind,
        metric,
        auto: false,
    })
}

/// A float parameter in `[lo, hi]` (`hi` excluded when `open`), knowhere's messages.
fn float_in(
    params: &BTreeMap<String, String>,
    key: &str,
    default: f32,
    lo: f32,
    hi: f32,
    open: bool,
) -> Result<Ratio, String> {
    let Some(raw) = params.get(key) else {
        return Ok(Ratio(default));
    };
    let v: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("Type conflict in json: param '{key}' ({raw}) should be a number"))?;
    let close = if open { ')' } else { ']' };
    // Compared as knowhere compares them, in single precision (1.3 is in [0.5, 1.3]).
    let x = v as f32;
    if !x.is_finite() || x < lo || x > hi || (open && x >= hi) {
        return Err(format!(
            "Out of range in json: param '{key}' ({raw}) should be in range [{lo:.6}, {hi:.6}{close}"
        ));
    }
    Ok(Ratio(x))
}

/// The index types of sparse vector fields.
pub const SPARSE_INDEX_TYPES: [&str; 2] = ["SPARSE_INVERTED_INDEX", "SPARSE_WAND"];

/// Checks a sparse vector field's index parameters: SPARSE_INVERTED_INDEX or
/// SPARSE_WAND (AUTOINDEX is SPARSE_INVERTED_INDEX), metric IP or BM25,
/// `drop_ratio_build` in [0, 1), BM25's `bm25_k1` in [0, 3] and `bm25_b` in [0, 1]
/// (knowhere's ranges and messages). BM25 only on a BM25 function's output field is
/// the caller's check (it knows the schema).
fn parse_sparse(params: &BTreeMap<String, String>) -> Result<IndexSpec, String> {
    let ty = params
        .get("index_type")
        .map(|s| s.to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "AUTOINDEX".to_string());
    let auto = ty == "AUTOINDEX";
    let wand = match ty.as_str() {
        "AUTOINDEX" | "SPARSE_INVERTED_INDEX" => false,
        "SPARSE_WAND" => true,
        other => {
            return Err(format!(
                "data type SparseFloatVector can't build with this index {other}"
            ))
        }
    };
    let metric = match params.get("metric_type") {
        None if auto => Metric::Ip,
        None => return Err("metric type not set for vector index".to_string()),
        Some(m) => Metric::parse(m)?,
    };
    if !matches!(metric, Metric::Ip | Metric::Bm25) {
        return Err("only IP&BM25 is the supported metric type for sparse index".to_string());
    }
    if let Some(a) = params.get("inverted_index_algo") {
        if !["TAAT_NAIVE", "DAAT_WAND", "DAAT_MAXSCORE"].contains(&a.to_ascii_uppercase().as_str())
        {
            return Err(format!(
                "sparse inverted index algo {a} not found or not supported, supported: [TAAT_NAIVE DAAT_WAND DAAT_MAXSCORE]"
            ));
        }
    }
    // Range-checked, then ignored (as Milvus 2.5: knowhere's "deprecated").
    float_in(params, "drop_ratio_build", 0.0, 0.0, 1.0, true)?;
    Ok(IndexSpec {
        kind: Kind::Sparse {
            wand,
            k1: float_in(params, "bm25_k1", 1.2, 0.0, 3.0, false)?,
            b: float_in(params, "bm25_b", 0.75, 0.0, 1.0, false)?,
        },
        metric,
        auto,
    })
}

/// The scalar index types Milvus builds, by the name `describe_index` shows (RTREE:
/// Milvus 2.6's, on GEOMETRY fields).
pub const SCALAR_INDEX_TYPES: [&str; 5] = ["INVERTED", "STL_SORT", "Trie", "BITMAP", "RTREE"];

/// What a scalar field's index must fit: its type, an array's element type, and whether
/// it is the primary key.
#[derive(Debug, Clone, Copy)]
pub struct ScalarField {
    /// The field's data type.
    pub data_type: DataType,
    /// An array's element type.
    pub element_type: DataType,
    /// The primary key field.
    pub primary: bool,
}

fn is_integer(t: DataType) -> bool {
    matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn is_numeric(t: DataType) -> bool {
    is_integer(t) || matches!(t, DataType::Float | DataType::Double)
}

fn is_string(t: DataType) -> bool {
    matches!(t, DataType::VarChar | DataType::String)
}

/// The JSON cast types an INVERTED index on a JSON field takes.
const JSON_CAST_TYPES: [&str; 6] = [
    "BOOL",
    "DOUBLE",
    "VARCHAR",
    "ARRAY_BOOL",
    "ARRAY_DOUBLE",
    "ARRAY_VARCHAR",
];

/// Checks a scalar field's index parameters as Milvus 2.5 does and returns the index
/// type it gets: no `index_type` or AUTOINDEX picks one by the field's type (BITMAP for
/// booleans, INVERTED otherwise), and each type is refused on fields it cannot index
/// with Milvus's message.
pub fn scalar_index_type(
    params: &BTreeMap<String, String>,
    f: ScalarField,
) -> Result<String, String> {
    if f.data_type == DataType::Json {
        // A JSON path index names an unknown type in other words (Milvus 2.5).
        if let Some(g) = params.get("index_type").map(|s| s.trim()) {
            let known = g.is_empty()
                || g.eq_ignore_ascii_case("AUTOINDEX")
                || SCALAR_INDEX_TYPES.iter().any(|k| k.eq_ignore_ascii_case(g));
            if !known {
                return Err(format!(
                    "invalid parameter[expected=valid index][actual=invalid index type: {g}]"
                ));
            }
        }
    }
    // Milvus's proxy wraps every refusal of its index checkers so.
    check_scalar(params, f).map_err(|e| {
        format!("{e}: invalid parameter[expected=valid index params][actual=invalid index params]")
    })
}

fn check_scalar(params: &BTreeMap<String, String>, f: ScalarField) -> Result<String, String> {
    let given = params
        .get("index_type")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let t = f.data_type;
    let ty = match given.as_deref() {
        None => auto_scalar(f)?,
        Some(g) if g.eq_ignore_ascii_case("AUTOINDEX") => auto_scalar(f)?,
        Some(g) => SCALAR_INDEX_TYPES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(g))
            .map(|k| k.to_string())
            .ok_or_else(|| format!("invalid index type: {g}"))?,
    };
    match ty.as_str() {
        "INVERTED" => {
            if !(t == DataType::Bool
                || is_numeric(t)
                || is_string(t)
                || t == DataType::Array
                || t == DataType::Json)
            {
                return Err(format!(
                    "INVERTED are not supported on {} field",
                    t.as_str_name()
                ));
            }
            if t == DataType::Json {
                let cast = params.get("json_cast_type").ok_or(
                    "json index must specify cast type: missing parameter[missing_param=json_cast_type]",
                )?;
                if !JSON_CAST_TYPES.contains(&cast.to_ascii_uppercase().as_str()) {
                    return Err(format!("json_cast_type {cast} is not supported"));
                }
            }
        }
        "RTREE" if t != DataType::Geometry => {
            return Err(format!(
                "RTREE index can only be built on geometry field, got {}",
                t.as_str_name()
            ))
        }
        _ if t == DataType::Geometry && ty != "RTREE" => {
            return Err(format!("{ty} are not supported on Geometry field"))
        }
        "STL_SORT" if !is_numeric(t) => {
            return Err("STL_SORT are only supported on numeric field".into())
        }
        "Trie" if !is_string(t) => return Err("TRIE are only supported on varchar field".into()),
        "BITMAP" => {
            if f.primary {
                return Err("create bitmap index on primary key not supported".into());
            }
            let fits = |t: DataType| t == DataType::Bool || is_integer(t) || is_string(t);
            if !(fits(t) || t == DataType::Array) {
                return Err(
                    "bitmap index are only supported on bool, int, string and array field".into(),
                );
            }
            if t == DataType::Array && !fits(f.element_type) {
                return Err(
                    "bitmap index are only supported on bool, int, string for array field".into(),
                );
            }
        }
        _ => {}
    }
    Ok(ty)
}

/// AUTOINDEX on a scalar field: Milvus 2.5's self-hosted choice by type.
fn auto_scalar(f: ScalarField) -> Result<String, String> {
    let t = if f.data_type == DataType::Array {
        f.element_type
    } else {
        f.data_type
    };
    match t {
        DataType::Bool => Ok("BITMAP".into()),
        DataType::Geometry => Ok("RTREE".into()),
        DataType::Json => Err(format!(
            "create auto index on type:{} is not supported",
            f.data_type.as_str_name()
        )),
        t if is_numeric(t) || is_string(t) => Ok("INVERTED".into()),
        _ => Err(format!(
            "create auto index on type:{} is not supported",
            f.data_type.as_str_name()
        )),
    }
}

/// Checks what depends on the field's dim: IVF_PQ's `m` and SCANN's `sub_dim` must divide
/// it (knowhere's messages).
pub fn check_dim(spec: &IndexSpec, dim: usize) -> Result<(), String> {
    match spec.kind {
        Kind::IvfPq { m, .. } if !dim.is_multiple_of(m) => Err(format!(
            "The dimension of a vector (dim) should be a multiple of the number of subquantizers (m). Dimension: {dim}, m: {m}"
        )),
        Kind::Scann { sub_dim, .. } if !dim.is_multiple_of(sub_dim) => Err(format!(
            "The dimension of a vector (dim) should be a multiple of sub_dim. Dimension:{dim}, sub_dim:{sub_dim}"
        )),
        _ => Ok(()),
    }
}

/// Search-time knobs, checked against the index and `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchParams {
    /// HNSW candidate list size (`ef`); default `max(limit, 16)`.
    pub ef: Option<usize>,
    /// IVF lists probed (`nprobe`); default 8.
    pub nprobe: Option<usize>,
    /// SCANN's candidates rescored from the raw vectors (`reorder_k`); default `limit`.
    pub reorder_k: Option<usize>,
    /// The smallest share of a sparse query's values left out (`drop_ratio_search`).
    pub drop_ratio_search: Option<Ratio>,
}

impl SearchParams {
    /// Reads `ef` / `nprobe` for `spec` and `limit`.
    pub fn parse(
        params: &BTreeMap<String, String>,
        spec: &IndexSpec,
        limit: usize,
    ) -> Result<SearchParams, String> {
        match spec.kind {
            Kind::Hnsw { .. } | Kind::HnswSq { .. } => {
                let ef = int_in(params, "ef", Some(limit.max(16)), 1, 32768)?;
                if ef < limit {
                    return Err(format!("ef({ef}) should be larger than k({limit})"));
                }
                Ok(SearchParams {
                    ef: Some(ef),
                    ..SearchParams::default()
                })
            }
            Kind::DiskAnn { .. } => {
                // The graph search's candidate list (DiskANN's L), as `ef` is HNSW's.
                let l = int_in(
                    params,
                    "search_list",
                    Some(limit.max(DISKANN_SEARCH_LIST)),
                    1,
                    i32::MAX as usize,
                )?;
                if l < limit {
                    return Err(format!("search_list({l}) should be larger than k({limit})"));
                }
                Ok(SearchParams {
                    ef: Some(l),
                    ..SearchParams::default()
                })
            }
            Kind::IvfFlat { nlist } | Kind::IvfSq8 { nlist } | Kind::IvfPq { nlist, .. } => {
                Ok(SearchParams {
                    nprobe: Some(int_in(params, "nprobe", Some(8.min(nlist)), 1, nlist)?),
                    ..SearchParams::default()
                })
            }
            Kind::Scann { nlist, .. } => {
                let reorder_k = int_in(params, "reorder_k", Some(limit), 1, i32::MAX as usize)?;
                if reorder_k < limit {
                    return Err(format!(
                        "reorder_k({reorder_k}) should be larger than k({limit})"
                    ));
                }
                Ok(SearchParams {
                    nprobe: Some(int_in(params, "nprobe", Some(8.min(nlist)), 1, nlist)?),
                    reorder_k: Some(reorder_k),
                    ..SearchParams::default()
                })
            }
            Kind::Flat => Ok(SearchParams::default()),
            Kind::Sparse { .. } => {
                // knowhere's DAAT_MAXSCORE knob: checked, and without effect on an exact
                // search.
                float_in(params, "dim_max_score_ratio", 1.05, 0.5, 1.3, false)?;
                Ok(SearchParams {
                    drop_ratio_search: Some(float_in(
                        params,
                        "drop_ratio_search",
                        0.0,
                        0.0,
                        1.0,
                        true,
                    )?),
                    ..SearchParams::default()
                })
            }
        }
    }
}

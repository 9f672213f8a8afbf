//! RTREE: a GEOMETRY column's bounding boxes in an R-tree (the `rstar` crate's bulk
//! load, a sort-tile-recursive packing), so a spatial filter tests exactly the rows whose
//! box meets the query's envelope instead of every row.
//!
//! Invariant (R1): the tree holds exactly the rows whose value is set and not empty, each
//! once, with its bounding box. With `geometry`'s G2 (a row satisfying a predicate has a
//! box meeting [`crate::geometry::Spatial::envelope`]), the rows the tree returns for an
//! envelope include every row that can match, so testing only them gives the scan's
//! answer.
//!
//! File layout (little-endian): `MVRT`, version u32, rows u32 (the column's length),
//! count u32, then `count` entries: row u32, min x, min y, max x, max y as f64.

use geo::Rect;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use super::IndexError;
use crate::geometry::{self, GeoColumn};
use crate::proto::schema::{field_data, scalar_field::Data as D, FieldData};

const MAGIC: &[u8; 4] = b"MVRT";
const VERSION: u32 = 1;
const ENTRY: usize = 4 + 4 * 8;

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// A segment's GEOMETRY column as an R-tree of its rows' bounding boxes (R1).
#[derive(Debug)]
pub struct RTreeIndex {
    rows: u32,
    tree: RTree<Entry>,
}

fn entry(row: u32, r: &Rect<f64>) -> Entry {
    GeomWithData::new(
        Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
        row,
    )
}

impl RTreeIndex {
    /// Whether an index file is an RTREE's (the querynode reads the kind from the file).
    pub fn is_file(b: &[u8]) -> bool {
        b.get(..4) == Some(MAGIC.as_slice())
    }

    /// Indexes a GEOMETRY column (canonical WKT, one per row); refuses any other column.
    pub fn build(col: &FieldData) -> Result<RTreeIndex, IndexError> {
        let Some(field_data::Field::Scalars(s)) = &col.field else {
            return Err(IndexError::Shape(format!(
                "field {}: RTREE index can only be built on geometry field",
                col.field_name
            )));
        };
        let Some(D::GeometryWktData(d)) = &s.data else {
            return Err(IndexError::Shape(format!(
                "field {}: RTREE index can only be built on geometry field",
                col.field_name
            )));
        };
        let shapes = GeoColumn::of(&d.data, &col.valid_data);
        Self::of(&shapes)
    }

    /// Indexes parsed values.
    pub fn of(shapes: &GeoColumn) -> Result<RTreeIndex, IndexError> {
        let rows = u32::try_from(shapes.len())
            .map_err(|_| IndexError::Shape(format!("{} rows do not fit an index", shapes.len())))?;
        let entries = (0..shapes.len())
            .filter_map(|r| Some(entry(r as u32, &shapes.get(r)?.rect()?)))
            .collect();
        Ok(RTreeIndex {
            rows,
            tree: RTree::bulk_load(entries),
        })
    }

    /// The column's length when it was built.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// The rows whose box meets `env`, ascending.
    pub fn candidates(&self, env: &Rect<f64>) -> Vec<u32> {
        let aabb = AABB::from_corners([env.min().x, env.min().y], [env.max().x, env.max().y]);
        let mut out: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(&aabb)
            .map(|e| e.data)
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether it is an index of `shapes` (R1 holds), in O(rows): what a reader checks
    /// before trusting a file built elsewhere.
    pub fn fits(&self, shapes: &GeoColumn) -> bool {
        if shapes.len() != self.rows as usize {
            return false;
        }
        let mut seen = vec![false; shapes.len()];
        for e in self.tree.iter() {
            let r = e.data as usize;
            let Some(rect) = shapes.get(r).and_then(geometry::Shape::rect) else {
                return false;
            };
            let (lo, hi) = (e.geom().lower(), e.geom().upper());
            if seen[r] || lo != [rect.min().x, rect.min().y] || hi != [rect.max().x, rect.max().y] {
                return false;
            }
            seen[r] = true;
        }
        (0..shapes.len()).all(|r| seen[r] || shapes.get(r).and_then(|s| s.rect()).is_none())
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        // Leaves and the inner nodes over them (at most one per 2 leaves).
        self.tree.size() * (std::mem::size_of::<Entry>() * 3 / 2)
    }

    /// The index file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.tree.size() * ENTRY);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&(self.tree.size() as u32).to_le_bytes());
        let mut entries: Vec<&Entry> = self.tree.iter().collect();
        entries.sort_unstable_by_key(|e| e.data);
        for e in entries {
            out.extend_from_slice(&e.data.to_le_bytes());
            for v in e.geom().lower().into_iter().chain(e.geom().upper()) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Reads a file written by [`Self::to_bytes`]; every row named must be below the
    /// column length and named once, every box ordered.
    pub fn from_bytes(b: &[u8]) -> Result<RTreeIndex, IndexError> {
        let bad = |why: &str| IndexError::Format(format!("RTREE index file: {why}"));
        let u32_at = |at: usize| -> Result<u32, IndexError> {
            b.get(at..at + 4)
                .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
                .ok_or_else(|| bad("truncated"))
        };
        let f64_at = |at: usize| -> Result<f64, IndexError> {
            b.get(at..at + 8)
                .map(|s| f64::from_le_bytes(s.try_into().expect("8 bytes")))
                .ok_or_else(|| bad("truncated"))
        };
        if !Self::is_file(b) {
            return Err(bad("bad magic"));
        }
        let version = u32_at(4)?;
        if version != VERSION {
            return Err(bad(&format!("version {version}")));
        }
        let rows = u32_at(8)?;
        let count = u32_at(12)? as usize;
        if count > rows as usize || b.len() != 16 + count * ENTRY {
            return Err(bad("length does not match its header"));
        }
        let mut seen = vec![false; rows as usize];
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = 16 + i * ENTRY;
            let r = u32_at(at)?;
            match seen.get_mut(r as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(bad(&format!("row {r} out of range or named twice"))),
            }
            let v = [
                f64_at(at + 4)?,
                f64_at(at + 12)?,
                f64_at(at + 20)?,
                f64_at(at + 28)?,
            ];
            if !(v[0] <= v[2] && v[1] <= v[3]) {
                return Err(bad(&format!("row {r} has a box that is not ordered")));
            }
            entries.push(GeomWithData::new(
                Rectangle::from_corners([v[0], v[1]], [v[2], v[3]]),
                r,
            ));
        }
        Ok(RTreeIndex {
            rows,
            tree: RTree::bulk_load(entries),
        })
    }
}

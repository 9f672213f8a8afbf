//! GEOMETRY values (Milvus 2.6): Well-Known Text in, Well-Known Text out, and the
//! spatial predicates filters test them with.
//!
//! A value is parsed once where it enters (the proxy's insert and a filter's constant)
//! by the `wkt` crate and kept in a canonical text ([`parse`] returns it): the type in
//! capitals, one space before each parenthesis, points of a MULTIPOINT each in
//! parentheses, numbers in their shortest round-trip form (`100`, `1.5`, `NaN`), an
//! empty POINT as `POINT (NaN NaN)`, other empty values as `TYPE EMPTY`: what Milvus
//! (which stores WKB and prints it back) returns for the same input. Parsing the
//! canonical text gives the same canonical text (invariant G1), so stored values are
//! read back as written.
//!
//! Predicates use the `geo` crate's DE-9IM [`Relate`] on the XY coordinates (Z and M are
//! kept in the text, not used): `ST_EQUALS`, `ST_TOUCHES`, `ST_OVERLAPS`, `ST_CROSSES`,
//! `ST_CONTAINS`, `ST_INTERSECTS`, `ST_WITHIN` hold as GEOS's (and so shapely's) do for
//! valid geometries, the row's value first (`ST_CONTAINS(geo, q)`: the row contains
//! `q`). `ST_DWITHIN(geo, 'POINT (lon lat)', meters)` holds when the row's value comes
//! within `meters` of the point on a sphere of radius [`EARTH_RADIUS_M`] (haversine;
//! for a line or polygon, its nearest point). An empty value satisfies no predicate
//! (invariant G2), so every predicate implies that bounding boxes meet as
//! [`Spatial::envelope`] says, which is what lets an R-tree stand for the scan.

use std::str::FromStr;

use geo::{BoundingRect, Contains, Coord, Rect, Relate};
use wkt::types::{Coord as WCoord, Dimension};
use wkt::Wkt;

/// The sphere `ST_DWITHIN` measures on, in meters (the mean radius Milvus uses).
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// Why a text is not a geometry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GeoError(pub String);

/// A parsed geometry: its XY shape and bounding box (None: empty).
#[derive(Debug, Clone)]
pub struct Shape {
    geom: geo::Geometry<f64>,
    rect: Option<Rect<f64>>,
}

impl Shape {
    /// The bounding box (None: an empty value).
    pub fn rect(&self) -> Option<Rect<f64>> {
        self.rect
    }

    /// The point it is, when it is one.
    pub fn point(&self) -> Option<geo::Point<f64>> {
        match self.geom {
            geo::Geometry::Point(p) => Some(p),
            _ => None,
        }
    }

    /// Bytes held (an estimate: coordinates and the enum).
    pub fn memory_usage(&self) -> usize {
        use geo::CoordsIter;
        std::mem::size_of::<Self>() + self.geom.coords_count() * 16
    }
}

/// Parses a WKT text: its canonical text and its shape; a text that is not one valid
/// geometry is refused with what is wrong (GEOS's reasons: too few points in a line, an
/// unclosed or short polygon ring).
pub fn parse(text: &str) -> Result<(String, Shape), GeoError> {
    // go-geom, which Milvus parses with, calls every refusal a syntax error.
    let trimmed = text.trim();
    // The canonical texts of an empty point (G1), the only place NaN is written.
    let words: Vec<String> = trimmed
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let trimmed = match words.join(" ").as_str() {
        "POINT (NAN NAN)" => "POINT EMPTY",
        "POINT Z (NAN NAN NAN)" => "POINT Z EMPTY",
        "POINT M (NAN NAN NAN)" => "POINT M EMPTY",
        "POINT ZM (NAN NAN NAN NAN)" => "POINT ZM EMPTY",
        _ => trimmed,
    };
    let w = Wkt::<f64>::from_str(trimmed)
        .map_err(|e| GeoError(format!("syntax error: {e} in '{text}'")))?;
    check(&w).map_err(|why| GeoError(format!("syntax error: {why} in '{text}'")))?;
    let mut canonical = String::with_capacity(text.len());
    write(&w, &mut canonical);
    let geom = to_geo(&w);
    let rect = geom.bounding_rect();
    Ok((canonical, Shape { geom, rect }))
}

/// Parses a stored (canonical) text; None when it does not parse (not written here).
pub fn shape(text: &str) -> Option<Shape> {
    parse(text).ok().map(|(_, s)| s)
}

/// A GEOMETRY column's values, parsed once: None for a null row (or a text that does not
/// parse, which the proxy never stores).
#[derive(Debug, Clone, Default)]
pub struct GeoColumn {
    shapes: Vec<Option<Shape>>,
}

impl GeoColumn {
    /// Parses `texts`; rows whose `valid` flag is false are null (`valid` empty: none).
    pub fn of(texts: &[String], valid: &[bool]) -> GeoColumn {
        let shapes = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (valid.get(i) != Some(&false)).then(|| shape(t)).flatten())
            .collect();
        GeoColumn { shapes }
    }

    /// Row `row`'s shape (None: null).
    pub fn get(&self, row: usize) -> Option<&Shape> {
        self.shapes.get(row).and_then(Option::as_ref)
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        self.shapes
            .iter()
            .map(|s| s.as_ref().map_or(8, Shape::memory_usage))
            .sum()
    }
}

fn check(w: &Wkt<f64>) -> Result<(), String> {
    fn finite(c: &WCoord<f64>) -> Result<(), String> {
        let zm = [c.z, c.m].into_iter().flatten().all(f64::is_finite);
        if c.x.is_finite() && c.y.is_finite() && zm {
            Ok(())
        } else {
            Err("coordinates must be finite numbers".into())
        }
    }
    fn line(cs: &[WCoord<f64>]) -> Result<(), String> {
        cs.iter().try_for_each(finite)?;
        if cs.len() == 1 {
            return Err("a LineString must have at least 2 points".into());
        }
        Ok(())
    }
    fn ring(cs: &[WCoord<f64>]) -> Result<(), String> {
        cs.iter().try_for_each(finite)?;
        if cs.len() < 4 {
            return Err(format!(
                "invalid number of points in LinearRing found {} - must be >= 4",
                cs.len()
            ));
        }
        let (a, b) = (cs[0], cs[cs.len() - 1]);
        if a.x != b.x || a.y != b.y {
            return Err("points of LinearRing do not form a closed linestring".into());
        }
        Ok(())
    }
    fn polygon(p: &wkt::types::Polygon<f64>) -> Result<(), String> {
        p.rings().iter().try_for_each(|r| ring(r.coords()))
    }
    match w {
        Wkt::Point(p) => p.coord().map_or(Ok(()), finite),
        Wkt::LineString(l) => line(l.coords()),
        Wkt::Polygon(p) => polygon(p),
        Wkt::MultiPoint(m) => m
            .points()
            .iter()
            .try_for_each(|p| p.coord().map_or(Ok(()), finite)),
        Wkt::MultiLineString(m) => m.line_strings().iter().try_for_each(|l| line(l.coords())),
        Wkt::MultiPolygon(m) => m.polygons().iter().try_for_each(polygon),
        Wkt::GeometryCollection(g) => g.geometries().iter().try_for_each(check),
    }
}

fn coord(c: &WCoord<f64>) -> Coord<f64> {
    Coord { x: c.x, y: c.y }
}

fn line_of(cs: &[WCoord<f64>]) -> geo::LineString<f64> {
    geo::LineString(cs.iter().map(coord).collect())
}

fn polygon_of(p: &wkt::types::Polygon<f64>) -> Option<geo::Polygon<f64>> {
    let mut rings = p.rings().iter().map(|r| line_of(r.coords()));
    let exterior = rings.next()?;
    Some(geo::Polygon::new(exterior, rings.collect()))
}

fn empty() -> geo::Geometry<f64> {
    geo::Geometry::GeometryCollection(geo::GeometryCollection(Vec::new()))
}

/// The XY shape (empty parts dropped; an empty value is an empty collection).
fn to_geo(w: &Wkt<f64>) -> geo::Geometry<f64> {
    use geo::Geometry as G;
    match w {
        Wkt::Point(p) => p
            .coord()
            .map_or_else(empty, |c| G::Point(geo::Point(coord(c)))),
        Wkt::LineString(l) if l.coords().is_empty() => empty(),
        Wkt::LineString(l) => G::LineString(line_of(l.coords())),
        Wkt::Polygon(p) => polygon_of(p).map_or_else(empty, G::Polygon),
        Wkt::MultiPoint(m) => G::MultiPoint(geo::MultiPoint(
            m.points()
                .iter()
                .filter_map(|p| p.coord().map(|c| geo::Point(coord(c))))
                .collect(),
        )),
        Wkt::MultiLineString(m) => G::MultiLineString(geo::MultiLineString(
            m.line_strings()
                .iter()
                .filter(|l| !l.coords().is_empty())
                .map(|l| line_of(l.coords()))
                .collect(),
        )),
        Wkt::MultiPolygon(m) => G::MultiPolygon(geo::MultiPolygon(
            m.polygons().iter().filter_map(polygon_of).collect(),
        )),
        Wkt::GeometryCollection(g) => G::GeometryCollection(geo::GeometryCollection(
            g.geometries().iter().map(to_geo).collect(),
        )),
    }
}

/// Appends the canonical text of `w` (G1).
fn write(w: &Wkt<f64>, out: &mut String) {
    write_at(w, out, true)
}

/// As [`write`]; an empty point is `POINT (NaN NaN)` at the top (what Milvus returns) and
/// `POINT EMPTY` inside a collection (which parses back).
fn write_at(w: &Wkt<f64>, out: &mut String, top: bool) {
    let (name, dim) = match w {
        Wkt::Point(p) => ("POINT", p.dimension()),
        Wkt::LineString(l) => ("LINESTRING", l.dimension()),
        Wkt::Polygon(p) => ("POLYGON", p.dimension()),
        Wkt::MultiPoint(m) => ("MULTIPOINT", m.dimension()),
        Wkt::MultiLineString(m) => ("MULTILINESTRING", m.dimension()),
        Wkt::MultiPolygon(m) => ("MULTIPOLYGON", m.dimension()),
        Wkt::GeometryCollection(g) => ("GEOMETRYCOLLECTION", g.dimension()),
    };
    out.push_str(name);
    out.push_str(match dim {
        Dimension::XY => " ",
        Dimension::XYZ => " Z ",
        Dimension::XYM => " M ",
        Dimension::XYZM => " ZM ",
    });
    if let (Wkt::Point(p), false) = (w, top) {
        if p.coord().is_none() {
            out.push_str("EMPTY");
            return;
        }
    }
    match w {
        Wkt::Point(p) => match p.coord() {
            Some(c) => point(c, out),
            // GEOS writes an empty point's WKB as NaN coordinates and reads them back so.
            None => {
                let nan = WCoord {
                    x: f64::NAN,
                    y: f64::NAN,
                    z: matches!(dim, Dimension::XYZ | Dimension::XYZM).then_some(f64::NAN),
                    m: matches!(dim, Dimension::XYM | Dimension::XYZM).then_some(f64::NAN),
                };
                point(&nan, out)
            }
        },
        Wkt::LineString(l) => coords(l.coords(), out),
        Wkt::Polygon(p) => list(p.rings(), out, |r, out| coords(r.coords(), out)),
        Wkt::MultiPoint(m) => list(m.points(), out, |p, out| match p.coord() {
            Some(c) => point(c, out),
            None => out.push_str("EMPTY"),
        }),
        Wkt::MultiLineString(m) => list(m.line_strings(), out, |l, out| coords(l.coords(), out)),
        Wkt::MultiPolygon(m) => list(m.polygons(), out, |p, out| {
            list(p.rings(), out, |r, out| coords(r.coords(), out))
        }),
        Wkt::GeometryCollection(g) => list(g.geometries(), out, |x, out| write_at(x, out, false)),
    }
}

fn list<T>(items: &[T], out: &mut String, each: impl Fn(&T, &mut String)) {
    if items.is_empty() {
        out.push_str("EMPTY");
        return;
    }
    out.push('(');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(x, out);
    }
    out.push(')');
}

fn coords(cs: &[WCoord<f64>], out: &mut String) {
    if cs.is_empty() {
        out.push_str("EMPTY");
        return;
    }
    out.push('(');
    for (i, c) in cs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        numbers(c, out);
    }
    out.push(')');
}

fn point(c: &WCoord<f64>, out: &mut String) {
    out.push('(');
    numbers(c, out);
    out.push(')');
}

fn numbers(c: &WCoord<f64>, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{} {}", c.x, c.y);
    for v in [c.z, c.m].into_iter().flatten() {
        let _ = write!(out, " {v}");
    }
}

/// The spatial predicates of Milvus's filter language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spatial {
    Equals,
    Touches,
    Overlaps,
    Crosses,
    Contains,
    Intersects,
    Within,
    /// `ST_DWITHIN`: within a distance in meters of a point (lon lat), on the sphere.
    DWithin,
}

impl Spatial {
    /// The predicate a function name (any case) names.
    pub fn of(name: &str) -> Option<Spatial> {
        Some(match name.to_ascii_uppercase().as_str() {
            "ST_EQUALS" => Spatial::Equals,
            "ST_TOUCHES" => Spatial::Touches,
            "ST_OVERLAPS" => Spatial::Overlaps,
            "ST_CROSSES" => Spatial::Crosses,
            "ST_CONTAINS" => Spatial::Contains,
            "ST_INTERSECTS" => Spatial::Intersects,
            "ST_WITHIN" => Spatial::Within,
            "ST_DWITHIN" => Spatial::DWithin,
            _ => return None,
        })
    }

    /// Whether `row` stands in the relation to `q` (`meters`: `ST_DWITHIN`'s distance).
    pub fn holds(self, row: &Shape, q: &Shape, meters: f64) -> bool {
        let (Some(a), Some(b)) = (row.rect, q.rect) else {
            return false; // G2
        };
        if self == Spatial::DWithin {
            return within_meters(row, q, meters);
        }
        if !meets(&a, &b) {
            return false;
        }
        // Points against a polygon: the common case, without building a topology graph.
        if let (geo::Geometry::Point(p), geo::Geometry::Polygon(poly)) = (&row.geom, &q.geom) {
            match self {
                Spatial::Within => return poly.contains(p),
                Spatial::Intersects => return geo::Intersects::intersects(poly, p),
                _ => {}
            }
        }
        if let (geo::Geometry::Polygon(poly), geo::Geometry::Point(p)) = (&row.geom, &q.geom) {
            match self {
                Spatial::Contains => return poly.contains(p),
                Spatial::Intersects => return geo::Intersects::intersects(poly, p),
                _ => {}
            }
        }
        let m = row.geom.relate(&q.geom);
        match self {
            Spatial::Equals => m.is_equal_topo(),
            Spatial::Touches => m.is_touches(),
            Spatial::Overlaps => m.is_overlaps(),
            Spatial::Crosses => m.is_crosses(),
            Spatial::Contains => m.is_contains(),
            Spatial::Intersects => m.is_intersects(),
            Spatial::Within => m.is_within(),
            Spatial::DWithin => unreachable!("handled above"),
        }
    }

    /// A box every row satisfying the predicate with `q` has a bounding box meeting
    /// (G2: empty rows satisfy none); None when `q` is empty (no row does).
    pub fn envelope(self, q: &Shape, meters: f64) -> Option<Rect<f64>> {
        let r = q.rect?;
        if self != Spatial::DWithin {
            return Some(r);
        }
        // Degrees of latitude per meter on the sphere, with a margin for rounding; the
        // longitude span widens by 1/cos(latitude) and is the whole circle near a pole or
        // when it crosses the antimeridian (rows are on [-180, 180]: `lon_lat`).
        let dlat = (meters / EARTH_RADIUS_M).to_degrees() * 1.001 + 1e-9;
        let lat_hi = r.max().y.abs().max(r.min().y.abs()) + dlat;
        let dlon = if lat_hi >= 89.0 || dlat >= 45.0 {
            f64::INFINITY
        } else {
            dlat / lat_hi.to_radians().cos()
        };
        let (west, east) = (r.min().x - dlon, r.max().x + dlon);
        let (west, east) = if west < -180.0 || east > 180.0 {
            (f64::NEG_INFINITY, f64::INFINITY)
        } else {
            (west, east)
        };
        Some(Rect::new(
            Coord {
                x: west,
                y: r.min().y - dlat,
            },
            Coord {
                x: east,
                y: r.max().y + dlat,
            },
        ))
    }
}

/// Whether a box lies on the globe's coordinates (lon in [-180, 180], lat in [-90, 90]).
pub fn lon_lat(r: &Rect<f64>) -> bool {
    r.min().x >= -180.0 && r.max().x <= 180.0 && r.min().y >= -90.0 && r.max().y <= 90.0
}

fn meets(a: &Rect<f64>, b: &Rect<f64>) -> bool {
    a.min().x <= b.max().x
        && b.min().x <= a.max().x
        && a.min().y <= b.max().y
        && b.min().y <= a.max().y
}

/// Whether `rect` (a row's bounding box) meets `env` ([`Spatial::envelope`]).
pub fn rect_meets(rect: &Rect<f64>, env: &Rect<f64>) -> bool {
    meets(rect, env)
}

/// The haversine distance between two (lon, lat) points in meters.
fn haversine(a: geo::Point<f64>, b: geo::Point<f64>) -> f64 {
    let (lat1, lat2) = (a.y().to_radians(), b.y().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.x() - a.x()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// `ST_DWITHIN`: a row off the globe's coordinates is never within (haversine repeats
/// every 360 degrees, which would put `POINT (360 0)` at `POINT (0 0)`); otherwise the
/// smallest haversine distance from the center to the row's points and to the point of
/// each of its segments nearest the center in lon/lat (segments are straight in lon/lat,
/// as the row's bounding box takes them; a row holding the center is at 0). Every point
/// measured lies in the row's box, so a row within `meters` has a box meeting
/// [`Spatial::envelope`] (G2).
fn within_meters(row: &Shape, q: &Shape, meters: f64) -> bool {
    use geo::{Closest, ClosestPoint, CoordsIter};
    let (Some(center), Some(rect)) = (q.point(), row.rect) else {
        return false;
    };
    if !lon_lat(&rect) {
        return false;
    }
    let g = &row.geom;
    if let geo::Geometry::Point(p) = g {
        return haversine(*p, center) <= meters;
    }
    if geo::Intersects::intersects(g, &center) {
        return true;
    }
    let near_vertex = g
        .coords_iter()
        .any(|c| haversine(geo::Point(c), center) <= meters);
    let mut near_segment = false;
    segments(g, &mut |l| {
        near_segment = near_segment
            || match l.closest_point(&center) {
                Closest::Intersection(p) | Closest::SinglePoint(p) => {
                    haversine(p, center) <= meters
                }
                Closest::Indeterminate => false,
            };
    });
    near_vertex || near_segment
}

/// Calls `f` with every segment of `g` (lines, rings, and those of collections).
fn segments(g: &geo::Geometry<f64>, f: &mut impl FnMut(geo::Line<f64>)) {
    use geo::Geometry as G;
    use geo::LinesIter;
    match g {
        G::Point(_) | G::MultiPoint(_) => {}
        G::Line(l) => f(*l),
        G::LineString(l) => l.lines_iter().for_each(f),
        G::Polygon(p) => p.lines_iter().for_each(f),
        G::MultiLineString(m) => m.lines_iter().for_each(f),
        G::MultiPolygon(m) => m.lines_iter().for_each(f),
        G::Rect(r) => r.lines_iter().for_each(f),
        G::Triangle(t) => t.lines_iter().for_each(f),
        G::GeometryCollection(c) => c.0.iter().for_each(|x| segments(x, f)),
    }
}

/// The haversine metric `geo` names, kept to check [`haversine`] against in tests.
#[cfg(test)]
fn geo_haversine(a: geo::Point<f64>, b: geo::Point<f64>) -> f64 {
    use geo::{Distance, Haversine};
    Haversine.distance(a, b) * EARTH_RADIUS_M / 6_371_008.8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse(s).unwrap().0
    }

    #[test]
    fn canonical_text_is_what_milvus_returns_and_reads_back_the_same() {
        for (input, out) in [
            ("POINT (100 100)", "POINT (100 100)"),
            ("POINT(1.5 -2)", "POINT (1.5 -2)"),
            ("point (1 2)", "POINT (1 2)"),
            ("POINT EMPTY", "POINT (NaN NaN)"),
            ("LINESTRING EMPTY", "LINESTRING EMPTY"),
            ("POLYGON EMPTY", "POLYGON EMPTY"),
            ("MULTIPOINT EMPTY", "MULTIPOINT EMPTY"),
            ("GEOMETRYCOLLECTION EMPTY", "GEOMETRYCOLLECTION EMPTY"),
            ("MULTIPOINT (0 0, 1 1)", "MULTIPOINT ((0 0), (1 1))"),
            ("MULTIPOINT ((0 0), (1 1))", "MULTIPOINT ((0 0), (1 1))"),
            (
                "GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(2 2, 3 3))",
                "GEOMETRYCOLLECTION (POINT (1 1), LINESTRING (2 2, 3 3))",
            ),
            (
                "MULTIPOLYGON (((0 0, 2 0, 2 2, 0 2, 0 0)), ((3 3, 5 3, 5 5, 3 5, 3 3)))",
                "MULTIPOLYGON (((0 0, 2 0, 2 2, 0 2, 0 0)), ((3 3, 5 3, 5 5, 3 5, 3 3)))",
            ),
            ("POINT Z (1 2 3)", "POINT Z (1 2 3)"),
            (
                "POINT (-73.98765432109876 40.123456789012344)",
                "POINT (-73.98765432109876 40.123456789012344)",
            ),
        ] {
            assert_eq!(canon(input), out, "{input}");
            assert_eq!(canon(out), out, "G1 for {out}");
        }
    }

    #[test]
    fn invalid_texts_are_refused() {
        for bad in [
            "",
            "INVALID WKT STRING",
            "POINT ()",
            "POINT (abc def)",
            "POLYGON ((0 0, 1 1))",
            "LINESTRING (0 0)",
            "POINT (1 2 3 4 5)",
            "POLYGON ((0 0, 1 0, 1 1, 0 1))",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn predicates_follow_the_row_first_order() {
        let sq = shape("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))").unwrap();
        let inside = shape("POINT (5 5)").unwrap();
        let edge = shape("POINT (10 5)").unwrap();
        let empty = shape("POINT EMPTY").unwrap();
        assert!(Spatial::Contains.holds(&sq, &inside, 0.0));
        assert!(!Spatial::Contains.holds(&inside, &sq, 0.0));
        assert!(Spatial::Within.holds(&inside, &sq, 0.0));
        assert!(!Spatial::Within.holds(&edge, &sq, 0.0));
        assert!(Spatial::Touches.holds(&edge, &sq, 0.0));
        assert!(Spatial::Intersects.holds(&edge, &sq, 0.0));
        assert!(Spatial::Equals.holds(&inside, &shape("POINT (5 5)").unwrap(), 0.0));
        for op in [
            Spatial::Equals,
            Spatial::Intersects,
            Spatial::Within,
            Spatial::Contains,
        ] {
            assert!(
                !op.holds(&empty, &sq, 0.0) && !op.holds(&sq, &empty, 0.0),
                "G2"
            );
        }
        let line = shape("LINESTRING (-5 5, 15 5)").unwrap();
        assert!(Spatial::Crosses.holds(&line, &sq, 0.0));
        let other = shape("POLYGON ((5 5, 15 5, 15 15, 5 15, 5 5))").unwrap();
        assert!(Spatial::Overlaps.holds(&other, &sq, 0.0));
    }

    #[test]
    fn dwithin_measures_meters_on_the_sphere() {
        let nyc = shape("POINT (-74.006 40.7128)").unwrap();
        // 0.01 degree of latitude north: 1,111.95 m on this sphere.
        let north = shape("POINT (-74.006 40.7228)").unwrap();
        assert!(Spatial::DWithin.holds(&north, &nyc, 1112.0));
        assert!(!Spatial::DWithin.holds(&north, &nyc, 1111.0));
        let a = geo::Point::new(-74.006, 40.7128);
        let b = geo::Point::new(-73.5, 41.2);
        assert!((haversine(a, b) - geo_haversine(a, b)).abs() < 1e-6);
        let env = Spatial::DWithin.envelope(&nyc, 1112.0).unwrap();
        assert!(rect_meets(&north.rect().unwrap(), &env));
        let line = shape("LINESTRING (-74.1 40.7228, -73.9 40.7228)").unwrap();
        assert!(Spatial::DWithin.holds(&line, &nyc, 1112.0));
        // Across the antimeridian: 0.0002 degrees apart at the equator, about 22 m; the
        // envelope spans every longitude, so a box scan keeps the row.
        let east = shape("POINT (179.9999 0)").unwrap();
        let west = shape("POINT (-179.9999 0)").unwrap();
        assert!(Spatial::DWithin.holds(&west, &east, 100.0));
        let env = Spatial::DWithin.envelope(&east, 100.0).unwrap();
        assert!(rect_meets(&west.rect().unwrap(), &env));
        // Off the globe's coordinates: never within (haversine would wrap 360 to 0).
        let off = shape("POINT (360 0)").unwrap();
        let origin = shape("POINT (0 0)").unwrap();
        assert!(!Spatial::DWithin.holds(&off, &origin, 10.0));
        // The nearest part on the sphere, not the first on the flat map.
        let parts = shape("MULTIPOINT ((10 80), (0 78))").unwrap();
        let pole_side = shape("POINT (0 80)").unwrap();
        assert!(Spatial::DWithin.holds(&parts, &pole_side, 200_000.0));
    }

    #[test]
    fn nested_and_dimensioned_empties_read_back_as_written() {
        for (input, out) in [
            (
                "GEOMETRYCOLLECTION (POINT EMPTY, POINT (1 1))",
                "GEOMETRYCOLLECTION (POINT EMPTY, POINT (1 1))",
            ),
            ("POINT Z EMPTY", "POINT Z (NaN NaN NaN)"),
            (
                "GEOMETRYCOLLECTION (GEOMETRYCOLLECTION (POINT EMPTY), LINESTRING EMPTY)",
                "GEOMETRYCOLLECTION (GEOMETRYCOLLECTION (POINT EMPTY), LINESTRING EMPTY)",
            ),
        ] {
            assert_eq!(canon(input), out, "{input}");
            assert_eq!(canon(out), out, "G1 for {out}");
        }
        assert!(parse("POINT Z (1 2 1e999)").is_err(), "a non-finite z");
        let mixed = shape("GEOMETRYCOLLECTION (POINT EMPTY, POINT (1 1))").unwrap();
        assert!(Spatial::Intersects.holds(&mixed, &shape("POINT (1 1)").unwrap(), 0.0));
    }
}

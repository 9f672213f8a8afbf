//! Segment files: a batch of rows (row IDs, timestamps and one column per schema field,
//! as Milvus's `FieldData`) written as one Parquet file, readable by pyarrow, and read
//! back into the same columns.
//!
//! Columns: `RowID` (int64), `Timestamp` (uint64, hybrid), then every schema field by
//! name, its field ID in the Arrow field metadata (`field_id`). Types: Bool, Int8-64,
//! Float, Double, VarChar/String (utf8), JSON (utf8 JSON text), FloatVector
//! (fixed-size list of float32, `dim`), BinaryVector / Float16Vector / BFloat16Vector
//! (fixed-size binary), SparseFloatVector (binary: each row's (index u32, value f32)
//! pairs as clients send them), Array (a list of the element type). Scalar columns may
//! carry nulls (`valid_data`, one flag per row).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, FixedSizeListArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch,
    StringArray, UInt64Array,
};
use arrow_schema::{DataType as Arrow, Field, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use crate::proto::schema::{
    field_data, scalar_field, vector_field, BoolArray, CollectionSchema, DataType, DoubleArray,
    FieldData, FieldSchema, FloatArray, IntArray, JsonArray, LongArray, ScalarField,
    StringArray as PbStrings, VectorField,
};

/// Name of the row ID column.
pub const ROW_ID: &str = "RowID";
/// Name of the timestamp column.
pub const TIMESTAMP: &str = "Timestamp";

/// Why a batch could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The batch does not fit the schema.
    #[error("segment data does not fit the schema: {0}")]
    Shape(String),
    /// The field type cannot be stored yet.
    #[error("field {field}: type {kind} is not supported in segment files yet")]
    Unsupported {
        /// Field name.
        field: String,
        /// Its type.
        kind: String,
    },
    /// Parquet or Arrow failed.
    #[error("segment file: {0}")]
    Format(String),
    /// The file could not be read from storage.
    #[error(transparent)]
    Storage(#[from] super::StorageError),
}

/// Rows of one segment flush.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentBatch {
    /// One row ID per row.
    pub row_ids: Vec<i64>,
    /// One hybrid timestamp per row.
    pub timestamps: Vec<u64>,
    /// One column per schema field (matched by name), in any order.
    pub fields: Vec<FieldData>,
}

impl SegmentBatch {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.row_ids.len()
    }

    /// Moves `b`'s rows in after `all`'s. The first batch (`all` empty) is taken as it is,
    /// its columns reserved for `total` rows in all, so the columns are not copied as
    /// they grow (a column grown by doubling holds up to twice itself while copied: 512
    /// MiB of vectors at 1,000,000 rows of dim 128). A `total` past 2^31 rows (a file
    /// claiming more than a segment holds) reserves nothing.
    pub fn append(all: &mut Option<SegmentBatch>, b: SegmentBatch, total: usize) {
        match all.as_mut() {
            None => {
                let mut first = b;
                let more = if total > 1 << 31 {
                    0
                } else {
                    total.saturating_sub(first.rows())
                };
                first.row_ids.reserve_exact(more);
                first.timestamps.reserve_exact(more);
                for f in &mut first.fields {
                    crate::schema::reserve_rows(f, more);
                }
                *all = Some(first);
            }
            Some(a) => {
                a.row_ids.extend(b.row_ids);
                a.timestamps.extend(b.timestamps);
                for (x, y) in a.fields.iter_mut().zip(b.fields) {
                    crate::schema::extend_field(x, y);
                }
            }
        }
    }
}

fn format(e: impl std::fmt::Display) -> SegmentError {
    SegmentError::Format(e.to_string())
}

fn dim_of(f: &FieldSchema) -> Result<i32, SegmentError> {
    f.type_params
        .iter()
        .find(|kv| kv.key == "dim")
        .and_then(|kv| kv.value.parse().ok())
        .ok_or_else(|| SegmentError::Shape(format!("vector field {} has no dim", f.name)))
}

fn kind(f: &FieldSchema) -> DataType {
    DataType::try_from(f.data_type).unwrap_or(DataType::None)
}

/// The Arrow type a field is stored as.
fn arrow_type(f: &FieldSchema) -> Result<Arrow, SegmentError> {
    Ok(match kind(f) {
        DataType::Bool => Arrow::Boolean,
        DataType::Int8 => Arrow::Int8,
        DataType::Int16 => Arrow::Int16,
        DataType::Int32 => Arrow::Int32,
        DataType::Int64 => Arrow::Int64,
        DataType::Float => Arrow::Float32,
        DataType::Double => Arrow::Float64,
        DataType::String | DataType::VarChar | DataType::Json | DataType::Geometry => Arrow::Utf8,
        DataType::FloatVector => Arrow::FixedSizeList(
            Arc::new(Field::new("item", Arrow::Float32, false)),
            dim_of(f)?,
        ),
        DataType::BinaryVector => Arrow::FixedSizeBinary(dim_of(f)? / 8),
        DataType::Float16Vector | DataType::BFloat16Vector => {
            Arrow::FixedSizeBinary(dim_of(f)? * 2)
        }
        DataType::SparseFloatVector => Arrow::Binary,
        DataType::Array => Arrow::List(Arc::new(Field::new("item", element_arrow_type(f)?, true))),
        other => {
            return Err(SegmentError::Unsupported {
                field: f.name.clone(),
                kind: other.as_str_name().to_string(),
            })
        }
    })
}

/// The Arrow type of an array field's elements.
fn element_arrow_type(f: &FieldSchema) -> Result<Arrow, SegmentError> {
    let element = DataType::try_from(f.element_type).unwrap_or(DataType::None);
    Ok(match element {
        DataType::Bool => Arrow::Boolean,
        DataType::Int8 => Arrow::Int8,
        DataType::Int16 => Arrow::Int16,
        DataType::Int32 => Arrow::Int32,
        DataType::Int64 => Arrow::Int64,
        DataType::Float => Arrow::Float32,
        DataType::Double => Arrow::Float64,
        DataType::String | DataType::VarChar => Arrow::Utf8,
        other => {
            return Err(SegmentError::Unsupported {
                field: f.name.clone(),
                kind: format!("Array of {}", other.as_str_name()),
            })
        }
    })
}

/// An array field's rows (one `ScalarField` each; `None` for a null row) as an Arrow
/// list column of the element type.
fn array_to_arrow(
    f: &FieldSchema,
    rows: &[ScalarField],
    valid: Option<&[bool]>,
) -> Result<ArrayRef, SegmentError> {
    use scalar_field::Data as S;
    let wrong = |i: usize| {
        SegmentError::Shape(format!(
            "field {}: row {i} does not hold elements of type {}",
            f.name,
            DataType::try_from(f.element_type).map_or("unknown", |t| t.as_str_name())
        ))
    };
    let element = element_arrow_type(f)?;
    let mut offsets: Vec<i32> = Vec::with_capacity(rows.len() + 1);
    offsets.push(0);
    let mut values: Vec<ArrayRef> = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let ok = valid.is_none_or(|v| v[i]);
        let part: ArrayRef = match (&element, r.data.as_ref()) {
            (_, _) if !ok => arrow_array::new_empty_array(&element),
            (_, None) => arrow_array::new_empty_array(&element),
            (Arrow::Boolean, Some(S::BoolData(a))) => Arc::new(BooleanArray::from(a.data.clone())),
            (Arrow::Int8, Some(S::IntData(a))) => {
                Arc::new(Int8Array::from_iter_values(a.data.iter().map(|x| *x as i8)))
            }
            (Arrow::Int16, Some(S::IntData(a))) => Arc::new(Int16Array::from_iter_values(
                a.data.iter().map(|x| *x as i16),
            )),
            (Arrow::Int32, Some(S::IntData(a))) => Arc::new(Int32Array::from(a.data.clone())),
            (Arrow::Int64, Some(S::LongData(a))) => Arc::new(Int64Array::from(a.data.clone())),
            (Arrow::Float32, Some(S::FloatData(a))) => Arc::new(Float32Array::from(a.data.clone())),
            (Arrow::Float64, Some(S::DoubleData(a))) => {
                Arc::new(Float64Array::from(a.data.clone()))
            }
            (Arrow::Utf8, Some(S::StringData(a))) => Arc::new(StringArray::from(a.data.clone())),
            _ => return Err(wrong(i)),
        };
        let last = *offsets.last().expect("offsets start at 0");
        offsets.push(last + part.len() as i32);
        values.push(part);
    }
    let refs: Vec<&dyn Array> = values.iter().map(AsRef::as_ref).collect();
    let flat = if refs.is_empty() {
        arrow_array::new_empty_array(&element)
    } else {
        arrow_select::concat::concat(&refs).map_err(format)?
    };
    let nulls = valid.map(|v| arrow_buffer::NullBuffer::from(v.to_vec()));
    let list = arrow_array::ListArray::try_new(
        Arc::new(Field::new("item", element, true)),
        arrow_buffer::OffsetBuffer::new(offsets.into()),
        flat,
        nulls,
    )
    .map_err(format)?;
    Ok(Arc::new(list))
}

/// An Arrow list column back as one `ScalarField` per row (empty for a null row).
fn array_from_arrow(f: &FieldSchema, a: &dyn Array) -> Result<Vec<ScalarField>, SegmentError> {
    use scalar_field::Data as S;
    let list = a.as_list::<i32>();
    let mut rows = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let v = list.value(i);
        let data = match element_arrow_type(f)? {
            Arrow::Boolean => {
                let b = v.as_boolean();
                S::BoolData(BoolArray {
                    data: (0..b.len()).map(|j| b.value(j)).collect(),
                })
            }
            Arrow::Int8 => S::IntData(IntArray {
                data: natives::<Int8Type>(v.as_ref())
                    .into_iter()
                    .map(i32::from)
                    .collect(),
            }),
            Arrow::Int16 => S::IntData(IntArray {
                data: natives::<Int16Type>(v.as_ref())
                    .into_iter()
                    .map(i32::from)
                    .collect(),
            }),
            Arrow::Int32 => S::IntData(IntArray {
                data: natives::<Int32Type>(v.as_ref()),
            }),
            Arrow::Int64 => S::LongData(LongArray {
                data: natives::<Int64Type>(v.as_ref()),
            }),
            Arrow::Float32 => S::FloatData(FloatArray {
                data: natives::<Float32Type>(v.as_ref()),
            }),
            Arrow::Float64 => S::DoubleData(DoubleArray {
                data: natives::<Float64Type>(v.as_ref()),
            }),
            _ => {
                let s = v.as_string::<i32>();
                S::StringData(PbStrings {
                    data: (0..s.len()).map(|j| s.value(j).to_string()).collect(),
                })
            }
        };
        rows.push(ScalarField { data: Some(data) });
    }
    Ok(rows)
}

/// The Arrow schema of a collection's segment files.
pub fn arrow_schema(schema: &CollectionSchema) -> Result<Schema, SegmentError> {
    let mut fields = vec![
        Field::new(ROW_ID, Arrow::Int64, false),
        Field::new(TIMESTAMP, Arrow::UInt64, false),
    ];
    for f in &schema.fields {
        let meta = HashMap::from([("field_id".to_string(), f.field_id.to_string())]);
        fields.push(Field::new(&f.name, arrow_type(f)?, f.nullable).with_metadata(meta));
    }
    Ok(Schema::new(fields))
}

/// `Some(flags)` when the column has nulls to apply.
fn validity(fd: &FieldData, rows: usize) -> Result<Option<&[bool]>, SegmentError> {
    match fd.valid_data.len() {
        0 => Ok(None),
        n if n == rows => Ok(Some(&fd.valid_data)),
        n => Err(SegmentError::Shape(format!(
            "field {}: {n} validity flags for {rows} rows",
            fd.field_name
        ))),
    }
}

fn with_nulls<T: Copy>(values: &[T], valid: Option<&[bool]>) -> Vec<Option<T>> {
    match valid {
        None => values.iter().map(|v| Some(*v)).collect(),
        Some(flags) => values
            .iter()
            .zip(flags)
            .map(|(v, ok)| ok.then_some(*v))
            .collect(),
    }
}

fn scalars(fd: &FieldData) -> Option<&scalar_field::Data> {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => s.data.as_ref(),
        _ => None,
    }
}

fn vectors(fd: &FieldData) -> Option<&VectorField> {
    match &fd.field {
        Some(field_data::Field::Vectors(v)) => Some(v),
        _ => None,
    }
}

/// One schema field's column as an Arrow array of `rows` values.
fn to_arrow(f: &FieldSchema, fd: &FieldData, rows: usize) -> Result<ArrayRef, SegmentError> {
    let wrong = || {
        SegmentError::Shape(format!(
            "field {} ({}): the column holds other data or another number of rows than {rows}",
            f.name,
            kind(f).as_str_name()
        ))
    };
    let valid = validity(fd, rows)?;
    let check = |n: usize| if n == rows { Ok(()) } else { Err(wrong()) };
    use scalar_field::Data as S;
    let array: ArrayRef = match (kind(f), scalars(fd)) {
        (DataType::Bool, Some(S::BoolData(a))) => {
            check(a.data.len())?;
            Arc::new(BooleanArray::from(with_nulls(&a.data, valid)))
        }
        (DataType::Int8, Some(S::IntData(a))) => {
            check(a.data.len())?;
            let v: Vec<i8> = a.data.iter().map(|x| *x as i8).collect();
            Arc::new(Int8Array::from(with_nulls(&v, valid)))
        }
        (DataType::Int16, Some(S::IntData(a))) => {
            check(a.data.len())?;
            let v: Vec<i16> = a.data.iter().map(|x| *x as i16).collect();
            Arc::new(Int16Array::from(with_nulls(&v, valid)))
        }
        (DataType::Int32, Some(S::IntData(a))) => {
            check(a.data.len())?;
            Arc::new(Int32Array::from(with_nulls(&a.data, valid)))
        }
        (DataType::Int64, Some(S::LongData(a))) => {
            check(a.data.len())?;
            Arc::new(Int64Array::from(with_nulls(&a.data, valid)))
        }
        (DataType::Float, Some(S::FloatData(a))) => {
            check(a.data.len())?;
            Arc::new(Float32Array::from(with_nulls(&a.data, valid)))
        }
        (DataType::Double, Some(S::DoubleData(a))) => {
            check(a.data.len())?;
            Arc::new(Float64Array::from(with_nulls(&a.data, valid)))
        }
        (DataType::String | DataType::VarChar, Some(S::StringData(a))) => {
            check(a.data.len())?;
            let v: Vec<Option<&str>> = match valid {
                None => a.data.iter().map(|s| Some(s.as_str())).collect(),
                Some(flags) => a
                    .data
                    .iter()
                    .zip(flags)
                    .map(|(s, ok)| ok.then_some(s.as_str()))
                    .collect(),
            };
            Arc::new(StringArray::from(v))
        }
        (DataType::Geometry, Some(S::GeometryWktData(a))) => {
            check(a.data.len())?;
            let v: Vec<Option<&str>> = a
                .data
                .iter()
                .enumerate()
                .map(|(i, s)| valid.is_none_or(|f| f[i]).then_some(s.as_str()))
                .collect();
            Arc::new(StringArray::from(v))
        }
        (DataType::Json, Some(S::JsonData(a))) => {
            check(a.data.len())?;
            let mut v = Vec::with_capacity(rows);
            for (i, raw) in a.data.iter().enumerate() {
                let ok = valid.is_none_or(|f| f[i]);
                let text = std::str::from_utf8(raw).map_err(|_| {
                    SegmentError::Shape(format!("field {}: row {i} is not UTF-8 JSON", f.name))
                })?;
                v.push(ok.then_some(text));
            }
            Arc::new(StringArray::from(v))
        }
        (DataType::Array, Some(S::ArrayData(a))) => {
            check(a.data.len())?;
            array_to_arrow(f, &a.data, valid)?
        }
        (DataType::FloatVector, _) => {
            let dim = dim_of(f)?;
            let Some(vector_field::Data::FloatVector(a)) =
                vectors(fd).and_then(|v| v.data.as_ref())
            else {
                return Err(wrong());
            };
            check(a.data.len() / dim as usize)?;
            if a.data.len() % dim as usize != 0 {
                return Err(wrong());
            }
            let values = Arc::new(Float32Array::from(a.data.clone()));
            let item = Arc::new(Field::new("item", Arrow::Float32, false));
            Arc::new(FixedSizeListArray::try_new(item, dim, values, None).map_err(format)?)
        }
        (DataType::BinaryVector | DataType::Float16Vector | DataType::BFloat16Vector, _) => {
            let width = match arrow_type(f)? {
                Arrow::FixedSizeBinary(w) => w,
                _ => unreachable!("fixed-size binary types"),
            };
            let bytes = match vectors(fd).and_then(|v| v.data.as_ref()) {
                Some(vector_field::Data::BinaryVector(b))
                | Some(vector_field::Data::Float16Vector(b))
                | Some(vector_field::Data::Bfloat16Vector(b)) => b,
                _ => return Err(wrong()),
            };
            if bytes.len() != rows * width as usize {
                return Err(wrong());
            }
            Arc::new(
                FixedSizeBinaryArray::try_from_iter(bytes.chunks(width as usize))
                    .map_err(format)?,
            )
        }
        (DataType::SparseFloatVector, _) => {
            let Some(vector_field::Data::SparseFloatVector(a)) =
                vectors(fd).and_then(|v| v.data.as_ref())
            else {
                return Err(wrong());
            };
            check(a.contents.len())?;
            Arc::new(BinaryArray::from_iter_values(a.contents.iter()))
        }
        _ => return Err(wrong()),
    };
    Ok(array)
}

/// Writes `batch` as one Parquet file.
pub fn encode(schema: &CollectionSchema, batch: &SegmentBatch) -> Result<Bytes, SegmentError> {
    encode_all(schema, std::slice::from_ref(batch))
}

/// Writes `batches`, one after the other, as one Parquet file.
pub fn encode_all(
    schema: &CollectionSchema,
    batches: &[SegmentBatch],
) -> Result<Bytes, SegmentError> {
    let mut w = FileWriter::new(schema)?;
    for batch in batches {
        w.write(batch)?;
    }
    w.finish()
}

/// Rows in a row group of the files written here. The writer holds a row group's
/// pages until it is full; the Parquet crate's default (1,048,576 rows) made it hold a
/// whole merged segment (512 MiB of vectors of dim 128) beside its copy in Arrow form
/// and the file being written.
pub const ROW_GROUP: usize = 65_536;

/// Writes the rows `rows` of `batch` (in that order) as one Parquet file, a row group
/// at a time: only one row group is ever copied out of `batch`. `size_hint`: the bytes
/// the file is expected to take (its buffer is reserved once).
pub fn encode_rows(
    schema: &CollectionSchema,
    batch: &SegmentBatch,
    rows: &[usize],
    size_hint: usize,
) -> Result<Bytes, SegmentError> {
    let mut out = Vec::new();
    // A hint past what can be had is no reason to fail: the buffer then grows.
    let _ = out.try_reserve_exact(size_hint);
    let mut w = FileWriter::into(schema, out)?;
    w.write_rows(batch, rows)?;
    w.finish()
}

/// A segment file written in pieces: rows go in a row group ([`ROW_GROUP`] rows) at a
/// time, and the bytes of the row groups written so far can be taken ([`FileWriter::take`])
/// and sent on, so a file larger than memory allows (a compaction's merged segment) is
/// never held whole. The pieces, in the order taken and then the one `finish` returns,
/// are the file.
pub struct FileWriter {
    schema: CollectionSchema,
    arrow: Arc<Schema>,
    w: ArrowWriter<Vec<u8>>,
}

impl FileWriter {
    /// A file of `schema`'s columns (with the row ID and timestamp columns).
    pub fn new(schema: &CollectionSchema) -> Result<FileWriter, SegmentError> {
        FileWriter::into(schema, Vec::new())
    }

    fn into(schema: &CollectionSchema, out: Vec<u8>) -> Result<FileWriter, SegmentError> {
        let arrow = Arc::new(arrow_schema(schema)?);
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_size(ROW_GROUP)
            .build();
        let w = ArrowWriter::try_new(out, arrow.clone(), Some(props)).map_err(format)?;
        Ok(FileWriter {
            schema: schema.clone(),
            arrow,
            w,
        })
    }

    /// Adds every row of `batch`.
    pub fn write(&mut self, batch: &SegmentBatch) -> Result<(), SegmentError> {
        self.w
            .write(&record_batch(&self.schema, &self.arrow, batch)?)
            .map_err(format)
    }

    /// Adds the rows `rows` of `batch`, in that order. The writer holds them (encoded)
    /// until a row group is full.
    pub fn write_rows(&mut self, batch: &SegmentBatch, rows: &[usize]) -> Result<(), SegmentError> {
        for part in rows.chunks(ROW_GROUP) {
            let group = SegmentBatch {
                row_ids: part.iter().map(|i| batch.row_ids[*i]).collect(),
                timestamps: part.iter().map(|i| batch.timestamps[*i]).collect(),
                fields: crate::schema::take_rows(&batch.fields, part),
            };
            self.w
                .write(&record_batch(&self.schema, &self.arrow, &group)?)
                .map_err(format)?;
        }
        Ok(())
    }

    /// Adds the rows `rows` (ascending) of the segment file `file` of `expected` rows,
    /// decoding it `batch_rows` rows at a time (only one batch is decoded at once), and
    /// hands each piece of this file's bytes that is ready to `piece` as it is (its
    /// false: nobody takes them, stop; nobody will, so it is asked before each batch with
    /// an empty piece too).
    pub fn write_file_rows(
        &mut self,
        file: Bytes,
        rows: &[usize],
        expected: usize,
        batch_rows: usize,
        mut piece: impl FnMut(Bytes) -> bool,
    ) -> Result<(), SegmentError> {
        let (mut next, mut base) = (0, 0);
        for b in decode_batches(&self.schema, file, batch_rows)? {
            if !piece(Bytes::new()) {
                return Err(SegmentError::Shape(
                    "the file's pieces are no longer taken".into(),
                ));
            }
            let b = b?;
            let upto = next + rows[next..].partition_point(|&r| r < base + b.rows());
            let local: Vec<usize> = rows[next..upto].iter().map(|r| r - base).collect();
            self.write_rows(&b, &local)?;
            (next, base) = (upto, base + b.rows());
            let ready = self.take();
            if !ready.is_empty() && !piece(ready) {
                return Err(SegmentError::Shape(
                    "the file's pieces are no longer taken".into(),
                ));
            }
        }
        if base != expected {
            return Err(SegmentError::Shape(format!(
                "the file holds {base} rows, {expected} expected"
            )));
        }
        Ok(())
    }

    /// The file's bytes written since the last call (whole row groups; none while the
    /// first row group fills).
    pub fn take(&mut self) -> Bytes {
        // The next row group's bytes go into a buffer of this one's size, not one grown
        // from nothing by doubling.
        let size = self.w.inner_mut().len();
        Bytes::from(std::mem::replace(
            self.w.inner_mut(),
            Vec::with_capacity(size),
        ))
    }

    /// Ends the file: the bytes not yet taken (the last row group and the footer).
    pub fn finish(self) -> Result<Bytes, SegmentError> {
        Ok(Bytes::from(self.w.into_inner().map_err(format)?))
    }
}

fn record_batch(
    schema: &CollectionSchema,
    arrow: &Arc<Schema>,
    batch: &SegmentBatch,
) -> Result<RecordBatch, SegmentError> {
    let rows = batch.rows();
    if batch.timestamps.len() != rows {
        return Err(SegmentError::Shape(format!(
            "{} timestamps for {rows} rows",
            batch.timestamps.len()
        )));
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(batch.row_ids.clone())),
        Arc::new(UInt64Array::from(batch.timestamps.clone())),
    ];
    for f in &schema.fields {
        let fd = batch
            .fields
            .iter()
            .find(|d| d.field_name == f.name)
            .ok_or_else(|| SegmentError::Shape(format!("no column for field {}", f.name)))?;
        columns.push(to_arrow(f, fd, rows)?);
    }
    RecordBatch::try_new(arrow.clone(), columns).map_err(format)
}

fn valid_flags(a: &dyn Array) -> Vec<bool> {
    if a.null_count() == 0 {
        return Vec::new();
    }
    (0..a.len()).map(|i| a.is_valid(i)).collect()
}

/// The values of a primitive column, with the type's default in null slots (whatever a
/// file holds there is not data).
fn natives<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array) -> Vec<T::Native> {
    let p = a.as_primitive::<T>();
    if p.null_count() == 0 {
        return p.values().to_vec();
    }
    p.iter().map(Option::unwrap_or_default).collect()
}

fn scalar_column(f: &FieldSchema, data: scalar_field::Data, valid: Vec<bool>) -> FieldData {
    FieldData {
        r#type: f.data_type,
        field_name: f.name.clone(),
        field_id: f.field_id,
        is_dynamic: f.is_dynamic,
        valid_data: valid,
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
    }
}

/// One Arrow column back as the field's `FieldData` (nulls read as default values with
/// `valid_data` flags).
fn from_arrow(f: &FieldSchema, a: &dyn Array) -> Result<FieldData, SegmentError> {
    use scalar_field::Data as S;
    let valid = valid_flags(a);
    let strings = |a: &dyn Array| -> Vec<String> {
        let s = a.as_string::<i32>();
        (0..s.len())
            .map(|i| {
                if s.is_valid(i) {
                    s.value(i).to_string()
                } else {
                    String::new()
                }
            })
            .collect()
    };
    Ok(match kind(f) {
        DataType::Bool => {
            let b = a.as_boolean();
            let data = (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect();
            scalar_column(f, S::BoolData(BoolArray { data }), valid)
        }
        DataType::Int8 => {
            let data = natives::<Int8Type>(a).into_iter().map(i32::from).collect();
            scalar_column(f, S::IntData(IntArray { data }), valid)
        }
        DataType::Int16 => {
            let data = natives::<Int16Type>(a).into_iter().map(i32::from).collect();
            scalar_column(f, S::IntData(IntArray { data }), valid)
        }
        DataType::Int32 => {
            let data = natives::<Int32Type>(a);
            scalar_column(f, S::IntData(IntArray { data }), valid)
        }
        DataType::Int64 => {
            let data = natives::<Int64Type>(a);
            scalar_column(f, S::LongData(LongArray { data }), valid)
        }
        DataType::Float => {
            let data = natives::<Float32Type>(a);
            scalar_column(f, S::FloatData(FloatArray { data }), valid)
        }
        DataType::Double => {
            let data = natives::<Float64Type>(a);
            scalar_column(f, S::DoubleData(DoubleArray { data }), valid)
        }
        DataType::String | DataType::VarChar => {
            scalar_column(f, S::StringData(PbStrings { data: strings(a) }), valid)
        }
        DataType::Geometry => {
            let data = strings(a);
            scalar_column(
                f,
                S::GeometryWktData(crate::proto::schema::GeometryWktArray { data }),
                valid,
            )
        }
        DataType::Json => {
            let data = strings(a).into_iter().map(String::into_bytes).collect();
            scalar_column(f, S::JsonData(JsonArray { data }), valid)
        }
        DataType::Array => {
            let data = array_from_arrow(f, a)?;
            let array = crate::proto::schema::ArrayArray {
                data,
                element_type: f.element_type,
            };
            scalar_column(f, S::ArrayData(array), valid)
        }
        DataType::FloatVector => {
            let list = a.as_fixed_size_list();
            let data = list
                .values()
                .as_primitive::<Float32Type>()
                .values()
                .to_vec();
            vector_column(f, vector_field::Data::FloatVector(FloatArray { data }))?
        }
        DataType::BinaryVector | DataType::Float16Vector | DataType::BFloat16Vector => {
            let b = a.as_fixed_size_binary();
            let bytes = b.values().to_vec();
            let data = match kind(f) {
                DataType::BinaryVector => vector_field::Data::BinaryVector(bytes),
                DataType::Float16Vector => vector_field::Data::Float16Vector(bytes),
                _ => vector_field::Data::Bfloat16Vector(bytes),
            };
            vector_column(f, data)?
        }
        DataType::SparseFloatVector => crate::index::sparse::column(f, sparse_rows(a)?),
        other => {
            return Err(SegmentError::Unsupported {
                field: f.name.clone(),
                kind: other.as_str_name().to_string(),
            })
        }
    })
}

/// The rows of a sparse vector column.
fn sparse_rows(a: &dyn Array) -> Result<Vec<Vec<u8>>, SegmentError> {
    let b = a
        .as_binary_opt::<i32>()
        .ok_or_else(|| SegmentError::Shape("a sparse vector column is not binary".into()))?;
    Ok(b.iter().map(|r| r.unwrap_or_default().to_vec()).collect())
}

fn vector_column(f: &FieldSchema, data: vector_field::Data) -> Result<FieldData, SegmentError> {
    Ok(FieldData {
        r#type: f.data_type,
        field_name: f.name.clone(),
        field_id: f.field_id,
        field: Some(field_data::Field::Vectors(VectorField {
            dim: i64::from(dim_of(f)?),
            data: Some(data),
        })),
        ..Default::default()
    })
}

/// The schema of delta files: the collection's primary key alone (with the row ID and
/// timestamp columns every segment file has).
pub fn delta_schema(schema: &CollectionSchema) -> CollectionSchema {
    CollectionSchema {
        name: schema.name.clone(),
        fields: schema
            .fields
            .iter()
            .filter(|f| f.is_primary_key)
            .cloned()
            .collect(),
        ..Default::default()
    }
}

/// Reads a segment file written by [`encode`]: the row IDs, the timestamps and the
/// columns of `schema` (the file's other columns are not decoded: a schema of the primary
/// key alone reads the keys).
pub fn decode(schema: &CollectionSchema, file: Bytes) -> Result<SegmentBatch, SegmentError> {
    // Batch by batch into columns reserved for the whole file: concatenating the decoded
    // batches first held the file's rows three times over (the batches, their
    // concatenation and the columns made of it) beside the file.
    let (reader, total) = reader(schema, file, Some(DECODE_ROWS))?;
    let mut all = None;
    for b in reader {
        SegmentBatch::append(&mut all, to_batch(schema, &b.map_err(format)?)?, total);
    }
    match all {
        Some(a) => Ok(a),
        None => to_batch(
            schema,
            &RecordBatch::new_empty(Arc::new(arrow_schema(schema)?)),
        ),
    }
}

/// Rows [`decode`] turns into columns at a time.
const DECODE_ROWS: usize = 8192;

/// Reads a segment file as [`decode`] does, at most `rows` rows at a time: only one such
/// batch is decoded at once.
pub fn decode_batches(
    schema: &CollectionSchema,
    file: Bytes,
    rows: usize,
) -> Result<impl Iterator<Item = Result<SegmentBatch, SegmentError>>, SegmentError> {
    let schema = schema.clone();
    Ok(reader(&schema, file, Some(rows))?
        .0
        .map(move |b| to_batch(&schema, &b.map_err(format)?)))
}

/// A reader of the row ID, timestamp and `schema` columns of `file`, and the file's rows.
fn reader(
    schema: &CollectionSchema,
    file: Bytes,
    rows: Option<usize>,
) -> Result<
    (
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        usize,
    ),
    SegmentError,
> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(format)?;
    let total = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let wanted: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name() == ROW_ID
                || c.name() == TIMESTAMP
                || schema.fields.iter().any(|f| &f.name == c.name())
        })
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), wanted);
    let builder = builder.with_projection(mask);
    let builder = match rows {
        Some(n) => builder.with_batch_size(n.max(1)),
        None => builder,
    };
    Ok((builder.build().map_err(format)?, total))
}

/// The rows of a decoded record batch.
fn to_batch(schema: &CollectionSchema, all: &RecordBatch) -> Result<SegmentBatch, SegmentError> {
    let column = |name: &str| {
        all.column_by_name(name)
            .cloned()
            .ok_or_else(|| SegmentError::Shape(format!("the file has no column {name}")))
    };
    let row_ids = column(ROW_ID)?
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let timestamps = column(TIMESTAMP)?
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec();
    let mut fields = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        fields.push(from_arrow(f, column(&f.name)?.as_ref())?);
    }
    Ok(SegmentBatch {
        row_ids,
        timestamps,
        fields,
    })
}

/// One column of a segment file written by [`encode`], read alone (the others are not
/// decoded): the field `f`'s values, nulls flagged in `valid_data`. The column is found
/// by the field ID in its metadata (so `f.name` may be a display name, such as a
/// dynamic key's), else by name.
pub fn read_column(f: &FieldSchema, file: Bytes) -> Result<FieldData, SegmentError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(format)?;
    let fields = builder.schema().fields();
    let id = f.field_id.to_string();
    let root = fields
        .iter()
        .position(|c| c.metadata().get("field_id") == Some(&id))
        .or_else(|| fields.iter().position(|c| c.name() == &f.name))
        .ok_or_else(|| SegmentError::Shape(format!("the file has no column {}", f.name)))?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [root]);
    let reader = builder.with_projection(mask).build().map_err(format)?;
    let mut parts = Vec::new();
    for b in reader {
        parts.push(b.map_err(format)?.column(0).clone());
    }
    let all = match parts.len() {
        0 => arrow_array::new_empty_array(&arrow_type(f)?),
        1 => parts.remove(0),
        _ => {
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs).map_err(format)?
        }
    };
    from_arrow(f, all.as_ref())
}

/// A vector column as stored: floats (FLOAT_VECTOR), fixed-width bytes per row
/// (BINARY_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR) or a row of bytes each
/// (SPARSE_FLOAT_VECTOR).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredVectors {
    /// Every row's floats, concatenated.
    Floats(Vec<f32>),
    /// Every row's bytes, concatenated.
    Bytes(Vec<u8>),
    /// Every row's bytes, a row each.
    Rows(Vec<Vec<u8>>),
}

/// Reads the vector column `name` alone (what an index build needs).
pub fn read_vectors(file: Bytes, name: &str) -> Result<StoredVectors, SegmentError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(format)?;
    let root = column_root(builder.schema(), name)?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [root]);
    let total = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = builder.with_projection(mask).build().map_err(format)?;
    let mut out = Gathered::new(name, total);
    for b in reader {
        out.add(&b.map_err(format)?)?;
    }
    Ok(out.finish())
}

fn column_root(schema: &Schema, name: &str) -> Result<usize, SegmentError> {
    schema
        .fields()
        .iter()
        .position(|f| f.name() == name)
        .ok_or_else(|| SegmentError::Shape(format!("the file has no column {name}")))
}

/// Reads the vector column `name` of the segment file at `key`, as [`read_vectors`] does,
/// fetching only the file's footer and that column's chunks, one row group's at a time:
/// neither the file nor its other columns are ever held (a build of a merged segment of
/// 738,000 rows of dim 128 held its 400 MB file beside the vectors read from it).
pub async fn fetch_vectors(
    storage: &super::Storage,
    key: &str,
    name: &str,
) -> Result<StoredVectors, SegmentError> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    use parquet::file::metadata::ParquetMetaDataReader;
    let size = storage.size(key).await?;
    let not_parquet = || SegmentError::Format(format!("{key} is not a Parquet file"));
    if size < 12 {
        return Err(not_parquet());
    }
    let tail = storage.get_range(key, size - 8..size).await?;
    let tail: &[u8; 8] = tail.as_ref().try_into().map_err(|_| not_parquet())?;
    let len = ParquetMetaDataReader::decode_footer_tail(tail)
        .map_err(|_| not_parquet())?
        .metadata_length() as u64;
    if len + 8 > size {
        return Err(not_parquet());
    }
    let footer = storage.get_range(key, size - 8 - len..size - 8).await?;
    let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(format)?;
    let meta =
        ArrowReaderMetadata::try_new(Arc::new(meta), ArrowReaderOptions::new()).map_err(format)?;
    let root = column_root(meta.schema(), name)?;
    let descr = meta.metadata().file_metadata().schema_descr_ptr();
    let leaves: Vec<usize> = (0..descr.num_columns())
        .filter(|i| descr.get_column_root_idx(*i) == root)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(&descr, [root]);
    let total = usize::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut out = Gathered::new(name, total);
    for group in 0..meta.metadata().num_row_groups() {
        let mut parts = Vec::new();
        for leaf in &leaves {
            let (start, len) = meta.metadata().row_group(group).column(*leaf).byte_range();
            let end = start.saturating_add(len).min(size);
            parts.push((start, storage.get_range(key, start..end).await?));
        }
        let chunks = Ranges { size, parts };
        let (meta, mask) = (meta.clone(), mask.clone());
        out = tokio::task::spawn_blocking(move || {
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, meta)
                .with_projection(mask)
                .with_row_groups(vec![group])
                .build()
                .map_err(format)?;
            for b in reader {
                out.add(&b.map_err(format)?)?;
            }
            Ok::<_, SegmentError>(out)
        })
        .await
        .map_err(|e| SegmentError::Format(format!("reading {key} stopped: {e}")))??;
    }
    Ok(out.finish())
}

/// Some byte ranges of a file of `size` bytes (the column chunks fetched), read as the
/// file by a Parquet reader that asks for nothing else.
struct Ranges {
    size: u64,
    parts: Vec<(u64, Bytes)>,
}

impl Ranges {
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<Bytes> {
        for (at, bytes) in &self.parts {
            let end = at + bytes.len() as u64;
            if (*at..end).contains(&start) {
                let from = (start - at) as usize;
                let to = len.map_or(bytes.len(), |n| from + n);
                if to <= bytes.len() {
                    return Ok(bytes.slice(from..to));
                }
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "bytes from {start} were not fetched"
        )))
    }
}

impl parquet::file::reader::Length for Ranges {
    fn len(&self) -> u64 {
        self.size
    }
}

impl parquet::file::reader::ChunkReader for Ranges {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// A vector column gathered batch by batch into one buffer, reserved for the file's rows
/// once the first batch shows their width: grown batch by batch, the buffer would be
/// copied at each doubling and hold up to twice the column while copied.
struct Gathered {
    name: String,
    total: usize,
    floats: Vec<f32>,
    bytes: Vec<u8>,
    rows: Option<Vec<Vec<u8>>>,
}

impl Gathered {
    fn new(name: &str, total: usize) -> Gathered {
        Gathered {
            name: name.to_string(),
            total,
            floats: Vec::new(),
            bytes: Vec::new(),
            rows: None,
        }
    }

    fn add(&mut self, b: &RecordBatch) -> Result<(), SegmentError> {
        let (name, total) = (&self.name, self.total);
        let col = b.column(0);
        if col.as_binary_opt::<i32>().is_some() {
            self.rows
                .get_or_insert_with(Vec::new)
                .extend(sparse_rows(col.as_ref())?);
            return Ok(());
        }
        if let Some(fixed) = col.as_fixed_size_binary_opt() {
            if self.bytes.is_empty() {
                // A failed reservation (a file claiming too many rows) grows as it reads.
                let _ = self
                    .bytes
                    .try_reserve_exact(total.saturating_mul(fixed.value_length().max(0) as usize));
            }
            self.bytes.extend_from_slice(fixed.values());
            return Ok(());
        }
        let list = col
            .as_fixed_size_list_opt()
            .ok_or_else(|| SegmentError::Shape(format!("column {name} is not a vector column")))?;
        let values = list
            .values()
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| SegmentError::Shape(format!("column {name} does not hold floats")))?;
        if self.floats.is_empty() {
            let _ = self
                .floats
                .try_reserve_exact(total.saturating_mul(list.value_length().max(0) as usize));
        }
        self.floats.extend_from_slice(values.values());
        Ok(())
    }

    fn finish(self) -> StoredVectors {
        if let Some(rows) = self.rows {
            StoredVectors::Rows(rows)
        } else if self.bytes.is_empty() {
            StoredVectors::Floats(self.floats)
        } else {
            StoredVectors::Bytes(self.bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::take_rows;

    fn field(id: i64, name: &str, t: DataType, dim: Option<&str>, nullable: bool) -> FieldSchema {
        FieldSchema {
            nullable,
            ..crate::testkit::sample::field(id, name, t, dim)
        }
    }

    fn scalar(name: &str, t: DataType, data: scalar_field::Data, valid: Vec<bool>) -> FieldData {
        FieldData {
            r#type: t as i32,
            field_name: name.into(),
            valid_data: valid,
            field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
            ..Default::default()
        }
    }

    /// A FLOAT_VECTOR column of `dim`.
    fn floats(name: &str, dim: i64, data: Vec<f32>) -> FieldData {
        FieldData {
            r#type: DataType::FloatVector as i32,
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(vector_field::Data::FloatVector(FloatArray { data })),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_round_trips_through_parquet() {
        let schema = CollectionSchema {
            name: "books".into(),
            fields: vec![
                field(100, "id", DataType::Int64, None, false),
                field(101, "vec", DataType::FloatVector, Some("4"), false),
                field(102, "title", DataType::VarChar, None, false),
                field(103, "score", DataType::Float, None, true),
                field(104, "$meta", DataType::Json, None, false),
                field(105, "flag", DataType::Bool, None, false),
                field(106, "small", DataType::Int8, None, false),
                field(107, "bits", DataType::BinaryVector, Some("16"), false),
            ],
            ..Default::default()
        };
        use scalar_field::Data as S;
        let batch = SegmentBatch {
            row_ids: vec![7, 8, 9],
            timestamps: vec![1 << 20, 2 << 20, 3 << 20],
            fields: vec![
                scalar(
                    "id",
                    DataType::Int64,
                    S::LongData(LongArray {
                        data: vec![1, 2, 3],
                    }),
                    vec![],
                ),
                floats("vec", 4, (0..12).map(|x| x as f32 / 2.0).collect()),
                scalar(
                    "title",
                    DataType::VarChar,
                    S::StringData(PbStrings {
                        data: vec!["a".into(), "bé".into(), "".into()],
                    }),
                    vec![],
                ),
                scalar(
                    "score",
                    DataType::Float,
                    S::FloatData(FloatArray {
                        data: vec![0.5, 0.0, 2.5],
                    }),
                    vec![true, false, true],
                ),
                scalar(
                    "$meta",
                    DataType::Json,
                    S::JsonData(JsonArray {
                        data: vec![
                            b"{}".to_vec(),
                            b"{\"k\":1}".to_vec(),
                            b"{\"x\":[1,2]}".to_vec(),
                        ],
                    }),
                    vec![],
                ),
                scalar(
                    "flag",
                    DataType::Bool,
                    S::BoolData(BoolArray {
                        data: vec![true, false, true],
                    }),
                    vec![],
                ),
                scalar(
                    "small",
                    DataType::Int8,
                    S::IntData(IntArray {
                        data: vec![-3, 0, 127],
                    }),
                    vec![],
                ),
                FieldData {
                    r#type: DataType::BinaryVector as i32,
                    field_name: "bits".into(),
                    field: Some(field_data::Field::Vectors(VectorField {
                        dim: 16,
                        data: Some(vector_field::Data::BinaryVector(vec![1, 2, 3, 4, 5, 6])),
                    })),
                    ..Default::default()
                },
            ],
        };
        let file = encode(&schema, &batch).unwrap();
        assert_eq!(&file[..4], b"PAR1");
        // The vector column alone, as an index build reads it.
        let vectors = read_vectors(file.clone(), "vec").unwrap();
        assert_eq!(
            vectors,
            StoredVectors::Floats((0..12).map(|x| x as f32 / 2.0).collect())
        );
        assert_eq!(
            read_vectors(file.clone(), "bits").unwrap(),
            StoredVectors::Bytes(vec![1, 2, 3, 4, 5, 6])
        );
        assert!(read_vectors(file.clone(), "title").is_err());
        assert!(read_vectors(file.clone(), "nope").is_err());
        let back = decode(&schema, file).unwrap();
        assert_eq!(back.row_ids, batch.row_ids);
        assert_eq!(back.timestamps, batch.timestamps);
        for (got, want) in back.fields.iter().zip(&batch.fields) {
            assert_eq!(got.field_name, want.field_name);
            assert_eq!(got.field, want.field, "{}", want.field_name);
            assert_eq!(got.valid_data, want.valid_data, "{}", want.field_name);
        }
        assert_eq!(back.fields[0].field_id, 100);
        // Chosen rows, in the order given (nulls and all).
        let picked = decode(&schema, encode_rows(&schema, &batch, &[2, 1], 0).unwrap()).unwrap();
        assert_eq!(picked.row_ids, vec![9, 8]);
        assert_eq!(picked.timestamps, vec![3 << 20, 2 << 20]);
        for (got, want) in picked.fields.iter().zip(take_rows(&batch.fields, &[2, 1])) {
            assert_eq!(got.field, want.field, "{}", want.field_name);
            assert_eq!(got.valid_data, want.valid_data, "{}", want.field_name);
        }
    }

    /// A schema of an Int64 `id` and a 2-dim `vec`, and `n` rows of it (row i: ID i,
    /// timestamp i, vector [2i, 2i + 1]).
    fn ids_and_vectors(n: usize) -> (CollectionSchema, SegmentBatch) {
        let schema = CollectionSchema {
            fields: vec![
                field(100, "id", DataType::Int64, None, false),
                field(101, "vec", DataType::FloatVector, Some("2"), false),
            ],
            ..Default::default()
        };
        let batch = SegmentBatch {
            row_ids: (0..n as i64).collect(),
            timestamps: (0..n as u64).collect(),
            fields: vec![
                scalar(
                    "id",
                    DataType::Int64,
                    scalar_field::Data::LongData(LongArray {
                        data: (0..n as i64).collect(),
                    }),
                    vec![],
                ),
                floats("vec", 2, (0..2 * n).map(|x| x as f32).collect()),
            ],
        };
        (schema, batch)
    }

    #[test]
    fn rows_written_a_row_group_at_a_time_read_back_as_one_column() {
        let n = 2 * ROW_GROUP + 3;
        let (schema, batch) = ids_and_vectors(n);
        // Every row but a few, the last first: three row groups, the last one short.
        let rows: Vec<usize> = (0..n).rev().filter(|r| r % 1000 != 7).collect();
        let file = encode_rows(&schema, &batch, &rows, 1 << 20).unwrap();
        let groups = ParquetRecordBatchReaderBuilder::try_new(file.clone())
            .unwrap()
            .metadata()
            .num_row_groups();
        assert_eq!(groups, rows.len().div_ceil(ROW_GROUP));
        let back = decode(&schema, file.clone()).unwrap();
        let want = take_rows(&batch.fields, &rows);
        assert_eq!(back.fields[0].field, want[0].field);
        assert_eq!(back.fields[1].field, want[1].field);
        let floats: Vec<f32> = rows
            .iter()
            .flat_map(|r| [2 * r, 2 * r + 1])
            .map(|x| x as f32)
            .collect();
        assert_eq!(
            read_vectors(file, "vec").unwrap(),
            StoredVectors::Floats(floats)
        );
    }

    #[test]
    fn a_file_written_in_pieces_holds_the_rows_and_row_groups_of_one_written_whole() {
        let n = ROW_GROUP + ROW_GROUP / 2 + 5;
        let (schema, batch) = ids_and_vectors(n);
        let mut pk = field(100, "id", DataType::Int64, None, false);
        pk.is_primary_key = true;
        let keys_of = CollectionSchema {
            fields: vec![pk.clone(), schema.fields[1].clone()],
            ..Default::default()
        };
        // Two sources' worth of rows, a few left out, written in small writes: pieces
        // come out only as row groups fill, and all of them with the tail are a file of
        // the same rows and row groups.
        let rows: Vec<usize> = (0..n).filter(|r| r % 97 != 3).collect();
        let whole = encode_rows(&schema, &batch, &rows, 0).unwrap();
        let mut w = FileWriter::new(&schema).unwrap();
        let mut pieces = Vec::new();
        for part in rows.chunks(5000) {
            w.write_rows(&batch, part).unwrap();
            pieces.push(w.take());
        }
        assert!(pieces[0].is_empty(), "nothing before a row group is full");
        assert!(pieces.iter().filter(|p| !p.is_empty()).count() >= 1);
        pieces.push(w.finish().unwrap());
        let joined: Vec<u8> = pieces.concat();
        let groups = |f: Bytes| {
            ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .metadata()
                .num_row_groups()
        };
        assert_eq!(groups(Bytes::from(joined.clone())), groups(whole.clone()));
        // Read back 1,000 rows at a time, the rows are those written.
        let mut back = SegmentBatch::default();
        let mut sizes = Vec::new();
        for b in decode_batches(&schema, Bytes::from(joined.clone()), 1000).unwrap() {
            let b = b.unwrap();
            sizes.push(b.rows());
            back.row_ids.extend(b.row_ids);
            back.timestamps.extend(b.timestamps);
            if back.fields.is_empty() {
                back.fields = b.fields;
            } else {
                for (x, y) in back.fields.iter_mut().zip(b.fields) {
                    crate::schema::extend_field(x, y);
                }
            }
        }
        assert!(sizes.iter().all(|s| *s <= 1000), "{sizes:?}");
        let want = decode(&schema, whole.clone()).unwrap();
        assert_eq!(want.row_ids.len(), rows.len());
        assert!(decode(&schema, Bytes::from(joined)).unwrap() == want);
        assert_eq!(back.row_ids, want.row_ids);
        assert_eq!(back.timestamps, want.timestamps);
        assert_eq!(back.fields, want.fields);
        // The primary key's schema reads the keys alone.
        let keys = decode(&delta_schema(&keys_of), whole).unwrap();
        assert_eq!(keys.fields.len(), 1);
        assert_eq!(keys.fields[0].field, want.fields[0].field);
        assert_eq!(keys.row_ids, want.row_ids);
    }

    #[test]
    fn rows_kept_of_a_file_read_batch_by_batch_are_the_rows_written_whole() {
        let n = 5000;
        let (schema, batch) = ids_and_vectors(n);
        let file = encode(&schema, &batch).unwrap();
        // Every third row and the last, read 700 rows at a time (batches across which the
        // kept rows fall unevenly), twice over into one file: two sources of a merge.
        let rows: Vec<usize> = (0..n).filter(|r| r % 3 == 1 || *r == n - 1).collect();
        let mut w = FileWriter::new(&schema).unwrap();
        let mut pieces = Vec::new();
        for _ in 0..2 {
            w.write_file_rows(file.clone(), &rows, n, 700, |p| {
                pieces.push(p);
                true
            })
            .unwrap();
        }
        pieces.push(w.finish().unwrap());
        let got = decode(&schema, Bytes::from(pieces.concat())).unwrap();
        let twice: Vec<usize> = rows.iter().chain(&rows).copied().collect();
        let want = decode(&schema, encode_rows(&schema, &batch, &twice, 0).unwrap()).unwrap();
        assert!(
            got == want,
            "the rows written batch by batch differ from those written whole: {} rows, {} expected",
            got.rows(),
            want.rows()
        );
        // A file of another length than its keys said, or pieces nobody takes: refused.
        let mut w = FileWriter::new(&schema).unwrap();
        let e = w
            .write_file_rows(file.clone(), &rows, n + 1, 700, |_| true)
            .unwrap_err();
        assert!(e.to_string().contains("5000 rows, 5001 expected"), "{e}");
        let mut w = FileWriter::new(&schema).unwrap();
        let all: Vec<usize> = (0..n).collect();
        let e = w
            .write_file_rows(file, &all, n, 700, |_| false)
            .unwrap_err();
        assert!(e.to_string().contains("no longer taken"), "{e}");
    }

    #[test]
    fn array_fields_round_trip_as_list_columns() {
        use scalar_field::Data as S;
        let mut tags = field(101, "tags", DataType::Array, None, true);
        tags.element_type = DataType::Int64 as i32;
        let mut names = field(102, "names", DataType::Array, None, false);
        names.element_type = DataType::VarChar as i32;
        let schema = CollectionSchema {
            fields: vec![field(100, "id", DataType::Int64, None, false), tags, names],
            ..Default::default()
        };
        let row = |d: S| ScalarField { data: Some(d) };
        let longs = |v: &[i64]| row(S::LongData(LongArray { data: v.to_vec() }));
        let strs = |v: &[&str]| {
            row(S::StringData(PbStrings {
                data: v.iter().map(|s| s.to_string()).collect(),
            }))
        };
        let array = |name: &str, data: Vec<ScalarField>, element: DataType, valid: Vec<bool>| {
            scalar(
                name,
                DataType::Array,
                S::ArrayData(crate::proto::schema::ArrayArray {
                    data,
                    element_type: element as i32,
                }),
                valid,
            )
        };
        let batch = SegmentBatch {
            row_ids: vec![1, 2, 3],
            timestamps: vec![5, 6, 7],
            fields: vec![
                scalar(
                    "id",
                    DataType::Int64,
                    S::LongData(LongArray {
                        data: vec![1, 2, 3],
                    }),
                    vec![],
                ),
                array(
                    "tags",
                    vec![longs(&[1, 2, 3]), longs(&[]), longs(&[])],
                    DataType::Int64,
                    vec![true, true, false],
                ),
                array(
                    "names",
                    vec![strs(&["a"]), strs(&["bé", "c"]), strs(&[])],
                    DataType::VarChar,
                    vec![],
                ),
            ],
        };
        let back = decode(&schema, encode(&schema, &batch).unwrap()).unwrap();
        for (got, want) in back.fields.iter().zip(&batch.fields) {
            assert_eq!(got.valid_data, want.valid_data, "{}", want.field_name);
            assert_eq!(got.field, want.field, "{}", want.field_name);
        }
        // Elements of another type than the field's are refused, not stored.
        let mut wrong = batch.clone();
        wrong.fields[2] = array(
            "names",
            vec![longs(&[1]), longs(&[2]), longs(&[3])],
            DataType::Int64,
            vec![],
        );
        let e = encode(&schema, &wrong).unwrap_err().to_string();
        assert!(e.contains("names") && e.contains("VarChar"), "{e}");
    }

    #[test]
    fn a_column_of_the_wrong_length_or_type_is_refused() {
        let schema = CollectionSchema {
            fields: vec![field(100, "id", DataType::Int64, None, false)],
            ..Default::default()
        };
        let short = SegmentBatch {
            row_ids: vec![1, 2],
            timestamps: vec![1, 2],
            fields: vec![scalar(
                "id",
                DataType::Int64,
                scalar_field::Data::LongData(LongArray { data: vec![1] }),
                vec![],
            )],
        };
        let e = encode(&schema, &short).unwrap_err().to_string();
        assert!(e.contains("field id"), "{e}");
        let missing = SegmentBatch {
            row_ids: vec![1],
            timestamps: vec![1],
            fields: vec![],
        };
        assert!(encode(&schema, &missing)
            .unwrap_err()
            .to_string()
            .contains("no column for field id"));
    }
}

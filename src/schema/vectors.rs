//! Dense vectors of every type in one in-memory form, for the nodes that compute on them
//! (querynodes, indexnodes): "words" of `f32`.
//!
//! - FLOAT_VECTOR: the floats themselves.
//! - FLOAT16_VECTOR / BFLOAT16_VECTOR: each value widened to `f32`. Widening is exact and
//!   narrowing a widened value gives the same 16 bits back, so a vector returned to a
//!   client is the one it wrote.
//! - BINARY_VECTOR: the bits packed 32 to a word (`f32::from_bits`; byte `i` of a vector
//!   is bits `8 * (i % 4)..` of word `i / 4`, the last word padded with zero bits). Such
//!   words are only copied and read by the bit metrics (HAMMING, JACCARD, which count
//!   bits: padding adds nothing to either), never used as numbers.
//!
//! Everything else (the WAL, segment files, the proxy's columns) keeps the client's
//! bytes; the conversions are at the edges of a node's computation: [`to_words`] when a
//! column enters a querynode's memory, [`from_words`] when a column leaves it, and
//! [`Encoding::decode`] for search vectors and segment files read by an indexnode.

use crate::proto::schema::{field_data, vector_field, DataType, FieldData, FloatArray};

/// How a dense vector type is held as words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// FLOAT_VECTOR.
    Float,
    /// FLOAT16_VECTOR (IEEE 754 half precision).
    Float16,
    /// BFLOAT16_VECTOR.
    BFloat16,
    /// BINARY_VECTOR (`dim` bits).
    Binary,
}

impl Encoding {
    /// The encoding of a dense vector type (None for others, sparse vectors included).
    pub fn of(t: DataType) -> Option<Encoding> {
        match t {
            DataType::FloatVector => Some(Encoding::Float),
            DataType::Float16Vector => Some(Encoding::Float16),
            DataType::BFloat16Vector => Some(Encoding::BFloat16),
            DataType::BinaryVector => Some(Encoding::Binary),
            _ => None,
        }
    }

    /// The encoding of a type given as its protobuf number.
    pub fn of_code(t: i32) -> Option<Encoding> {
        DataType::try_from(t).ok().and_then(Encoding::of)
    }

    /// Words one vector of `dim` takes.
    pub fn words(self, dim: usize) -> usize {
        match self {
            Encoding::Binary => dim.div_ceil(32),
            _ => dim,
        }
    }

    /// Bytes one vector of `dim` takes as clients send it.
    pub fn bytes(self, dim: usize) -> usize {
        match self {
            Encoding::Float => dim * 4,
            Encoding::Float16 | Encoding::BFloat16 => dim * 2,
            Encoding::Binary => dim.div_ceil(8),
        }
    }

    /// The words of vectors of `dim` given as clients' bytes (little-endian floats for
    /// FLOAT_VECTOR); a trailing partial vector is ignored.
    pub fn decode(self, bytes: &[u8], dim: usize) -> Vec<f32> {
        match self {
            Encoding::Float => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Encoding::Float16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Encoding::BFloat16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Encoding::Binary => {
                let (width, words) = (self.bytes(dim).max(1), self.words(dim));
                let mut out = Vec::with_capacity(bytes.len() / width * words);
                for v in bytes.chunks_exact(width) {
                    for w in 0..words {
                        let mut b = [0u8; 4];
                        let part = &v[(w * 4).min(width)..(w * 4 + 4).min(width)];
                        b[..part.len()].copy_from_slice(part);
                        out.push(f32::from_bits(u32::from_le_bytes(b)));
                    }
                }
                out
            }
        }
    }

    /// The clients' bytes of vectors of `dim` held as words (the inverse of
    /// [`Encoding::decode`]).
    pub fn encode(self, words: &[f32], dim: usize) -> Vec<u8> {
        match self {
            Encoding::Float => words.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Encoding::Float16 => words
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
            Encoding::BFloat16 => words
                .iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                .collect(),
            Encoding::Binary => {
                let (width, n) = (self.bytes(dim), self.words(dim).max(1));
                let mut out = Vec::with_capacity(words.len() / n * width);
                for v in words.chunks_exact(n) {
                    let bytes: Vec<u8> = v.iter().flat_map(|w| w.to_bits().to_le_bytes()).collect();
                    out.extend_from_slice(&bytes[..width]);
                }
                out
            }
        }
    }
}

/// The bytes of binary or half-float vector data (None for float and sparse data).
pub fn bytes_of(d: &vector_field::Data) -> Option<&Vec<u8>> {
    match d {
        vector_field::Data::BinaryVector(b)
        | vector_field::Data::Float16Vector(b)
        | vector_field::Data::Bfloat16Vector(b) => Some(b),
        _ => None,
    }
}

/// A BINARY_VECTOR, FLOAT16_VECTOR or BFLOAT16_VECTOR column with its data as words
/// (`FloatVector` data; the column's type and `dim` stay the client's). Other columns
/// are left as they are.
pub fn to_words(fd: &mut FieldData) {
    let Some(enc) = Encoding::of_code(fd.r#type).filter(|e| *e != Encoding::Float) else {
        return;
    };
    let Some(field_data::Field::Vectors(v)) = &mut fd.field else {
        return;
    };
    let Some(bytes) = v.data.as_ref().and_then(bytes_of) else {
        return;
    };
    let data = enc.decode(bytes, v.dim.max(0) as usize);
    v.data = Some(vector_field::Data::FloatVector(FloatArray { data }));
}

/// A column made by [`to_words`] (or taken from one) back in the client's form.
pub fn from_words(fd: &mut FieldData) {
    let Some(enc) = Encoding::of_code(fd.r#type).filter(|e| *e != Encoding::Float) else {
        return;
    };
    let Some(field_data::Field::Vectors(v)) = &mut fd.field else {
        return;
    };
    let Some(vector_field::Data::FloatVector(words)) = &v.data else {
        return;
    };
    let bytes = enc.encode(&words.data, v.dim.max(0) as usize);
    v.data = Some(match enc {
        Encoding::Binary => vector_field::Data::BinaryVector(bytes),
        Encoding::Float16 => vector_field::Data::Float16Vector(bytes),
        _ => vector_field::Data::Bfloat16Vector(bytes),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_and_bits_round_trip_exactly() {
        // Every 16-bit pattern but NaNs survives widening and narrowing.
        for enc in [Encoding::Float16, Encoding::BFloat16] {
            let all: Vec<u8> = (0..=u16::MAX).flat_map(|x| x.to_le_bytes()).collect();
            let back = enc.encode(&enc.decode(&all, 2), 2);
            for (i, (a, b)) in all.chunks(2).zip(back.chunks(2)).enumerate() {
                let x = f32::from(half::f16::from_le_bytes([a[0], a[1]]));
                let nan = match enc {
                    Encoding::Float16 => x.is_nan(),
                    _ => half::bf16::from_le_bytes([a[0], a[1]]).is_nan(),
                };
                assert!(nan || a == b, "{enc:?} pattern {i}");
            }
        }
        // Bits: dims that fill words and dims that do not.
        for dim in [8usize, 16, 32, 40, 64, 72, 128, 136] {
            let width = dim / 8;
            let bytes: Vec<u8> = (0..width * 3).map(|i| (i * 37 + 11) as u8).collect();
            let words = Encoding::Binary.decode(&bytes, dim);
            assert_eq!(words.len(), 3 * dim.div_ceil(32));
            assert_eq!(Encoding::Binary.encode(&words, dim), bytes, "dim {dim}");
        }
    }

    #[test]
    fn bit_metrics_count_the_bits_of_the_packed_words() {
        let enc = Encoding::Binary;
        let a = enc.decode(&[0b1010_1010, 0xff, 0x00, 0x0f, 0x01], 40);
        let b = enc.decode(&[0b0110_1010, 0xff, 0xf0, 0x0f, 0x00], 40);
        // Differences: 2 bits in byte 0, 4 in byte 2, 1 in byte 4.
        assert_eq!(crate::index::distance::hamming(&a, &b), 7.0);
        // and: 3 + 8 + 0 + 4 + 0 = 15; or: 5 + 8 + 4 + 4 + 1 = 22.
        let j = crate::index::distance::jaccard(&a, &b);
        assert!((j - (1.0 - 15.0 / 22.0)).abs() < 1e-6, "{j}");
        let zero = enc.decode(&[0; 5], 40);
        assert_eq!(crate::index::distance::jaccard(&zero, &zero), 1.0);
    }

    #[test]
    fn columns_go_to_words_and_back() {
        use crate::proto::schema::VectorField;
        let column = |t: DataType, data: vector_field::Data, dim: i64| FieldData {
            r#type: t as i32,
            field_id: 101,
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(data),
            })),
            ..Default::default()
        };
        let half: Vec<u8> = [1.5f32, -2.0, 0.25, 1024.0]
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        for original in [
            column(
                DataType::Float16Vector,
                vector_field::Data::Float16Vector(half.clone()),
                2,
            ),
            column(
                DataType::BinaryVector,
                vector_field::Data::BinaryVector(vec![1, 2, 3, 4, 5, 6]),
                16,
            ),
        ] {
            let mut fd = original.clone();
            to_words(&mut fd);
            let Some(field_data::Field::Vectors(v)) = &fd.field else {
                panic!("vectors")
            };
            assert!(matches!(v.data, Some(vector_field::Data::FloatVector(_))));
            from_words(&mut fd);
            assert_eq!(fd, original);
        }
        let mut fd = column(
            DataType::Float16Vector,
            vector_field::Data::Float16Vector(half),
            2,
        );
        to_words(&mut fd);
        let Some(field_data::Field::Vectors(v)) = &fd.field else {
            panic!("vectors")
        };
        let Some(vector_field::Data::FloatVector(f)) = &v.data else {
            panic!("words")
        };
        assert_eq!(f.data, vec![1.5, -2.0, 0.25, 1024.0]);
    }
}

//! GGUF reader and dequantisation tests that run without any model file.
//!
//! `tests/fixtures/gguf/quants.gguf` is written by gguf-py 0.19.0 (`GGUFWriter`) with random
//! blocks of every supported quantisation type and the outputs of gguf-py's
//! `gguf.quants.dequantize` (see `tests/interop/make_gguf_fixtures.py`); the kernels must match
//! them bit for bit. Synthetic files for the error paths are built with
//! `peftlab::gguf::writer::GgufWriter`.

use peftlab::gguf::writer::GgufWriter;
use peftlab::gguf::{GgmlType, GgufError, GgufFile, GgufModel, MetaArray, MetaValue};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

#[test]
fn quants_fixture_metadata_matches_gguf_py_writer() {
    let f = GgufFile::open(&fixture("quants.gguf")).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset() % 32, 0);
    let md = f.metadata();
    // values as written by the script
    assert_eq!(md.get_str("general.architecture").unwrap(), "test");
    assert_eq!(md.get("t.u8"), Some(&MetaValue::U8(200)));
    assert_eq!(md.get("t.i8"), Some(&MetaValue::I8(-100)));
    assert_eq!(md.get("t.u16"), Some(&MetaValue::U16(60000)));
    assert_eq!(md.get("t.i16"), Some(&MetaValue::I16(-30000)));
    assert_eq!(md.get("t.u32"), Some(&MetaValue::U32(4_000_000_000)));
    assert_eq!(md.get("t.i32"), Some(&MetaValue::I32(-2_000_000_000)));
    assert_eq!(md.get("t.f32"), Some(&MetaValue::F32(0.1)));
    assert_eq!(md.get("t.u64"), Some(&MetaValue::U64((1 << 63) + 5)));
    assert_eq!(md.get("t.i64"), Some(&MetaValue::I64(-(1 << 62))));
    assert_eq!(md.get("t.f64"), Some(&MetaValue::F64(-2.5e-300)));
    assert_eq!(md.get("t.bool"), Some(&MetaValue::Bool(true)));
    assert_eq!(md.get_str("t.str").unwrap(), "héllo ✓");
    assert_eq!(
        md.get_array("t.arr_i32").unwrap(),
        &MetaArray::I32(vec![1, -2, 3])
    );
    assert_eq!(md.get_str_array("t.arr_str").unwrap(), ["a", "", "ü"]);
    assert_eq!(
        md.get_array("t.arr_f32").unwrap(),
        &MetaArray::F32(vec![0.5, -1.25])
    );
    assert_eq!(
        md.get_array("t.nested").unwrap(),
        &MetaArray::Array(vec![MetaArray::I32(vec![1, 2]), MetaArray::I32(vec![3])])
    );
    assert_eq!(f.tensors().len(), 26);
}

#[test]
fn every_kernel_matches_gguf_py_bit_for_bit() {
    let f = GgufFile::open(&fixture("quants.gguf")).unwrap();
    let types = [
        "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K",
    ];
    for ty in types {
        let q = f.tensor(&format!("q.{ty}")).unwrap();
        assert_eq!(q.ty.name(), ty);
        let e = f.tensor(&format!("expected.{ty}")).unwrap();
        assert_eq!(e.ty, GgmlType::F32);
        assert_eq!(q.dims, e.dims, "{ty}");
        assert_eq!(q.dims[1], 2, "{ty}: two rows");
        let got = f.read_tensor_f32(&q.name).unwrap();
        let want = f.read_tensor_f32(&e.name).unwrap();
        assert_eq!(got.len(), want.len());
        // bit-exact: the kernels multiply in the same order as gguf-py's numpy code
        let mismatches = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(mismatches, 0, "{ty}: {mismatches} values differ");
        // the fixture is not degenerate
        assert!(want.iter().any(|v| *v != 0.0), "{ty}");
    }
}

#[test]
fn truncating_the_fixture_anywhere_gives_an_error_not_a_panic() {
    let bytes = std::fs::read(fixture("quants.gguf")).unwrap();
    let last_tensor_end = {
        let f = GgufFile::from_bytes(bytes.clone()).unwrap();
        f.tensors()
            .iter()
            .map(|t| f.data_offset() + t.offset + t.n_bytes)
            .max()
            .unwrap()
    };
    for cut in 0..bytes.len() {
        let r = GgufFile::from_bytes(bytes[..cut].to_vec());
        if (cut as u64) < last_tensor_end {
            match r {
                Err(GgufError::Truncated {
                    offset, file_len, ..
                }) => {
                    assert_eq!(file_len, cut as u64);
                    assert!(offset > file_len, "cut {cut}: offset {offset}");
                }
                other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
            }
        } else {
            // only padding after the last tensor was cut
            assert!(r.is_ok(), "cut at {cut}");
        }
    }
}

#[test]
fn corrupting_bytes_never_panics() {
    // Flip each header byte to a few values; any outcome but a panic is acceptable, and the
    // reader must never try to allocate for absurd counts (this runs in well under a second).
    let bytes = std::fs::read(fixture("quants.gguf")).unwrap();
    let header_len = GgufFile::from_bytes(bytes.clone()).unwrap().data_offset() as usize;
    for i in 0..header_len {
        for v in [0x00, 0xFF, 0x7F, bytes[i] ^ 0x01] {
            let mut b = bytes.clone();
            b[i] = v;
            if let Ok(f) = GgufFile::from_bytes(b) {
                for t in f.tensors() {
                    let _ = f.read_tensor_f32(&t.name);
                }
            }
        }
    }
}

fn small_file() -> GgufWriter {
    GgufWriter::new()
        .kv("general.architecture", MetaValue::Str("llama".into()))
        .kv(
            "tokens",
            MetaValue::Array(MetaArray::Str(vec!["a".into(), "bb".into()])),
        )
        .tensor_f32("w", &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
        .tensor_f32("b", &[3], &[-1.0, 0.5, 9.0])
}

#[test]
fn synthetic_file_round_trips() {
    let f = GgufFile::from_bytes(small_file().to_bytes()).unwrap();
    let w = f.tensor("w").unwrap();
    assert_eq!(w.dims, vec![4, 2]);
    assert_eq!(w.shape_row_major(), vec![2, 4]);
    assert_eq!(w.offset, 0);
    assert_eq!(f.tensor("b").unwrap().offset, 32); // 32 bytes of w, already aligned
    assert_eq!(
        f.read_tensor_f32("w").unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    );
    assert_eq!(f.read_tensor_f32("b").unwrap(), vec![-1.0, 0.5, 9.0]);
    // version 2 has the same layout
    let f2 = GgufFile::from_bytes(small_file().version(2).to_bytes()).unwrap();
    assert_eq!(f2.version(), 2);
    // custom alignment
    let f3 = GgufFile::from_bytes(small_file().alignment(64).to_bytes()).unwrap();
    assert_eq!(f3.alignment(), 64);
    assert_eq!(f3.data_offset() % 64, 0);
    assert_eq!(f3.tensor("b").unwrap().offset, 64);
    assert_eq!(f3.read_tensor_f32("b").unwrap(), vec![-1.0, 0.5, 9.0]);
}

#[test]
fn truncated_synthetic_file_names_what_was_cut() {
    let bytes = small_file().to_bytes();
    for cut in 0..bytes.len() - 32 {
        let e = GgufFile::from_bytes(bytes[..cut].to_vec()).unwrap_err();
        assert!(matches!(e, GgufError::Truncated { .. }), "cut {cut}: {e}");
    }
    let e = GgufFile::from_bytes(bytes[..bytes.len() - 30].to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gguf: file truncated: data of tensor 'b'"),
        "{e}"
    );
    let e = GgufFile::from_bytes(bytes[..30].to_vec())
        .unwrap_err()
        .to_string();
    assert!(e.contains("metadata"), "{e}");
}

#[test]
fn unknown_tensor_type_names_the_tensor() {
    let bytes = GgufWriter::new()
        .tensor_raw("blk.3.attn_q.weight", &[32, 1], 4, vec![0; 20])
        .to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(&e, GgufError::UnknownType { tensor, type_id: 4 } if tensor == "blk.3.attn_q.weight")
    );
    assert_eq!(
        e.to_string(),
        "gguf: tensor 'blk.3.attn_q.weight' has unknown ggml type id 4"
    );
}

#[test]
fn known_but_undequantisable_type_is_named() {
    let bytes = GgufWriter::new()
        .tensor("x", &[256], GgmlType::IQ2_XXS, vec![0; 66])
        .to_bytes();
    let f = GgufFile::from_bytes(bytes).unwrap();
    let e = f.read_tensor_f32("x").unwrap_err().to_string();
    assert!(
        e.starts_with("gguf: tensor 'x' has type IQ2_XXS, which peftlab cannot dequantise"),
        "{e}"
    );
}

#[test]
fn bad_headers_give_clear_errors() {
    let e = GgufFile::from_bytes(b"GGML\x03\0\0\0".to_vec()).unwrap_err();
    assert!(matches!(e, GgufError::BadMagic { .. }), "{e}");
    let e = GgufFile::from_bytes(b"GG".to_vec()).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    let e = GgufFile::from_bytes(Vec::new()).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");

    let e = GgufFile::from_bytes(small_file().version(1).to_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("version 1") && e.contains("supported: 2, 3"),
        "{e}"
    );
    let mut be = small_file().to_bytes();
    be[4..8].copy_from_slice(&3u32.to_be_bytes());
    let e = GgufFile::from_bytes(be).unwrap_err().to_string();
    assert!(e.contains("big-endian"), "{e}");
}

#[test]
fn absurd_counts_are_rejected_before_allocating() {
    // n_kv = u64::MAX
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    let e = GgufFile::from_bytes(b).unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::Truncated {
                offset: u64::MAX,
                ..
            }
        ),
        "{e}"
    );

    // an array claiming 2^40 strings
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes()); // array
    b.extend_from_slice(&8u32.to_le_bytes()); // of strings
    b.extend_from_slice(&(1u64 << 40).to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    let e = GgufFile::from_bytes(b).unwrap_err().to_string();
    assert!(e.contains("1099511627776 elements of array 'k'"), "{e}");

    // a string longer than the file
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(u64::MAX - 3).to_le_bytes());
    let e = GgufFile::from_bytes(b).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
}

#[test]
fn structural_errors() {
    // unknown value type
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&3u64.to_le_bytes());
    b.extend_from_slice(b"key");
    b.extend_from_slice(&13u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    let e = GgufFile::from_bytes(b).unwrap_err().to_string();
    assert_eq!(
        e,
        "gguf: metadata 'key' has unknown value type id 13 (valid: 0..=12)"
    );

    // alignment not a power of two
    let bytes = small_file()
        .kv("general.alignment", MetaValue::U32(24))
        .to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(e.contains("general.alignment") && e.contains("24"), "{e}");

    // duplicate keys and tensor names
    let bytes = small_file().kv("tokens", MetaValue::U8(1)).to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(e.contains("'tokens'") && e.contains("duplicate"), "{e}");
    let bytes = small_file().tensor_f32("w", &[1], &[0.0]).to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(e.contains("duplicate tensor name 'w'"), "{e}");

    // first dimension not a multiple of the block size
    let bytes = GgufWriter::new()
        .tensor("q", &[16, 2], GgmlType::Q4_0, vec![0; 18])
        .to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(
        e.contains("tensor 'q'") && e.contains("block size 32"),
        "{e}"
    );

    // too many dimensions
    let bytes = GgufWriter::new()
        .tensor_f32("t", &[1, 1, 1, 1, 1], &[0.0])
        .to_bytes();
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(e.contains("5 dimensions"), "{e}");
}

#[test]
fn unsupported_architecture_lists_supported_ones() {
    let bytes = GgufWriter::new()
        .kv("general.architecture", MetaValue::Str("gpt2".into()))
        .to_bytes();
    let e = GgufModel::from_file(GgufFile::from_bytes(bytes).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gguf: unsupported architecture 'gpt2' (supported: llama)"
    );
}

#[test]
fn open_reports_missing_file_with_path() {
    let e = GgufFile::open(std::path::Path::new("/nonexistent/x.gguf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gguf: cannot read '/nonexistent/x.gguf'"),
        "{e}"
    );
}

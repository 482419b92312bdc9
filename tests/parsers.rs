//! Property tests of every parser of outside input — the safetensors header, the manifest,
//! the `.pth` pickle and its zip, the state embedded in exported PNGs and GIFs, IDX files
//! and images — on arbitrary bytes and on valid files with random damage. The property:
//! an answer (a value or an error), never a panic, a hang or an unbounded allocation. The
//! test process runs under an address-space limit, so an allocation the parsers should
//! have refused aborts it and fails the suite instead of exhausting the machine.

use latentflow::store::pickle;
use proptest::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;

/// Address space the process may add to what it has mapped at the first test.
const HEADROOM: u64 = 3 << 30;

/// Puts the whole test process under `ulimit -v` (what it maps now plus [`HEADROOM`]).
fn limit_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mapped_kib: u64 = status
            .lines()
            .find(|l| l.starts_with("VmSize:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let limit = mapped_kib * 1024 + HEADROOM;
        let rl = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads the struct we pass and changes only this process's limit.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) };
        assert_eq!(rc, 0, "setrlimit failed");
    });
}

/// A file in a fresh temporary folder holding `bytes`.
fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Random damage to valid bytes: overwritten bytes, then optionally a cut.
fn damage(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 1..8),
        proptest::option::of(0..len),
    )
        .prop_map(move |(edits, cut)| {
            let mut b = valid.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Some(n) = cut {
                b.truncate(n);
            }
            b
        })
}

fn valid_safetensors() -> Vec<u8> {
    let a: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let b: Vec<u8> = (0..4u16)
        .flat_map(|i| (0x3C00u16 + i).to_le_bytes())
        .collect();
    let views = vec![
        (
            "a.weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 4], &a).unwrap(),
        ),
        (
            "b",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![4], &b).unwrap(),
        ),
    ];
    safetensors::tensor::serialize(views, None).unwrap()
}

fn valid_manifest() -> Vec<u8> {
    br#"{"format":"latentflow","format_version":1,"model":"generator",
"architecture":{"kind":"vae","latent":4,"channels":3,"base":8,"image_size":64},
"weights":"model.safetensors","tensors":{"a.weight":{"shape":[3,4],"dtype":"F32"}}}"#
        .to_vec()
}

/// A state dict pickle with one tensor `w` of 4 floats in storage "0".
fn valid_pickle() -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w".to_vec();
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu.");
    p
}

fn valid_pth() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", o).unwrap();
        z.write_all(&valid_pickle()).unwrap();
        z.start_file("archive/data/0", o).unwrap();
        z.write_all(&[0u8; 16]).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// An app state as the app saves it.
const STATE: &str = r#"{"model":"m","state":{"seed":1,"method":0,"sliders":[0.5],"max_t":10.0,"step_scale":1.0,"switch_on":false,"switch":{"k":0,"then":1,"at":5,"steps":10},"batch_view":false,"batch_n":7,"zoom":5.0,"dark":true}}"#;

fn valid_state_png() -> Vec<u8> {
    latentflow::files::png::encode_rgb8(2, 2, &[9; 12], &[("latentflow-state", STATE)]).unwrap()
}

/// A 2×2 GIF with the state in a comment (split into sub-blocks of 255 bytes).
fn valid_gif() -> Vec<u8> {
    let mut g = b"GIF89a\x02\x00\x02\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff".to_vec();
    let text = format!("latentflow-state:{STATE}");
    g.extend_from_slice(&[0x21, 0xFE]);
    for chunk in text.as_bytes().chunks(255) {
        g.push(chunk.len() as u8);
        g.extend_from_slice(chunk);
    }
    g.extend_from_slice(&[
        0, 0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B,
    ]);
    g
}

fn valid_idx() -> Vec<u8> {
    let mut b = Vec::new();
    for w in [0x0803u32, 2, 3, 3] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    b.extend(0..18u8);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn valid_png() -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(5, 3, image::Rgb([10, 200, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

fn valid_jpeg() -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

fn load_safetensors_bytes(bytes: &[u8]) {
    let (_d, path) = file_with("w.safetensors", bytes);
    if let Ok(read) = latentflow::store::tensors::read_safetensors(&path, &candle_core::Device::Cpu)
    {
        for t in read.tensors.values() {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }
}

fn load_manifest_bytes(bytes: &[u8]) {
    let (d, path) = file_with("manifest.json", bytes);
    if let Ok(m) = latentflow::store::Manifest::load(&path)
        && let Ok(w) = m.weights_path(d.path())
    {
        assert_eq!(w.parent(), Some(d.path()), "{w:?}");
    }
}

fn load_pth_bytes(bytes: &[u8]) {
    let (_d, path) = file_with("x.pth", bytes);
    let _ = latentflow::store::pth::read_pth(&path, &candle_core::Device::Cpu);
}

fn read_state(name: &str, bytes: &[u8]) {
    let (_d, path) = file_with(name, bytes);
    if let Ok(Some(saved)) = latentflow::session::state::read_embedded_state(&path) {
        saved.state.validate().unwrap();
    }
}

fn open_idx(bytes: &[u8]) {
    let (_d, path) = file_with("images-idx3-ubyte", bytes);
    if let Ok(m) = latentflow::data::mnist::Mnist::open(path, 8) {
        use latentflow::data::Dataset;
        for i in 0..m.len().min(3) {
            m.image(i).unwrap();
        }
    }
}

fn decode_image(bytes: &[u8]) {
    let (_d, path) = file_with("x.png", bytes);
    let _ = latentflow::data::folder::decode(&path);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn safetensors_files(bytes in prop_oneof![
        damage(valid_safetensors()),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]) {
        limit_memory();
        load_safetensors_bytes(&bytes);
    }

    #[test]
    fn safetensors_headers_that_declare_huge_shapes(dim in any::<u64>(), n in 0u64..1 << 40) {
        limit_memory();
        let header = format!(
            r#"{{"w":{{"dtype":"F32","shape":[{dim},{dim}],"data_offsets":[0,{n}]}}}}"#
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 64]);
        load_safetensors_bytes(&bytes);
    }

    #[test]
    fn manifests(bytes in damage(valid_manifest())) {
        limit_memory();
        load_manifest_bytes(&bytes);
    }

    #[test]
    fn manifest_fields(
        weights in prop_oneof![
            Just("../x".to_string()), Just("/etc/passwd".to_string()), Just("a/b".to_string()),
            Just("..".to_string()), Just(String::new()), "[a-z./]{0,12}",
        ],
        dtype in prop_oneof![Just("F32"), Just("F16"), Just("I64"), Just(""), Just("f32")],
        dims in proptest::collection::vec(any::<u64>(), 0..12),
    ) {
        limit_memory();
        let shape = dims.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let text = format!(
            r#"{{"format":"latentflow","format_version":1,"model":"generator","architecture":{{}},"weights":{weights:?},"tensors":{{"t":{{"shape":[{shape}],"dtype":"{dtype}"}}}}}}"#
        );
        load_manifest_bytes(text.as_bytes());
    }

    #[test]
    fn pickles(bytes in prop_oneof![
        damage(valid_pickle()),
        proptest::collection::vec(any::<u8>(), 0..512),
    ]) {
        limit_memory();
        let _ = pickle::parse(&bytes);
    }

    #[test]
    fn pytorch_files(bytes in damage(valid_pth())) {
        limit_memory();
        load_pth_bytes(&bytes);
    }

    #[test]
    fn embedded_states(png in damage(valid_state_png()), gif in damage(valid_gif())) {
        limit_memory();
        read_state("s.png", &png);
        read_state("s.gif", &gif);
    }

    #[test]
    fn idx_files(
        words in proptest::collection::vec(any::<u32>(), 4),
        magic_ok in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        zipped in any::<bool>(),
    ) {
        limit_memory();
        let mut bytes = Vec::new();
        let magic = if magic_ok { 0x0803 } else { words[0] };
        for w in [magic, words[1] % 64, words[2], words[3]] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        bytes.extend_from_slice(&data);
        if zipped {
            bytes = gzip(&bytes);
        }
        open_idx(&bytes);
    }

    #[test]
    fn damaged_idx_files(bytes in damage(valid_idx())) {
        limit_memory();
        open_idx(&bytes);
        open_idx(&gzip(&bytes));
    }

    #[test]
    fn images(png in damage(valid_png()), jpeg in damage(valid_jpeg())) {
        limit_memory();
        decode_image(&png);
        decode_image(&jpeg);
    }
}

#[test]
fn the_valid_inputs_of_the_properties_are_accepted() {
    limit_memory();
    let dev = candle_core::Device::Cpu;
    let (_d, p) = file_with("w.safetensors", &valid_safetensors());
    let read = latentflow::store::tensors::read_safetensors(&p, &dev).unwrap();
    assert_eq!(read.dtypes["b"], "F16");
    let (d, p) = file_with("manifest.json", &valid_manifest());
    let m = latentflow::store::Manifest::load(&p).unwrap();
    assert_eq!(
        m.weights_path(d.path()).unwrap(),
        d.path().join("model.safetensors")
    );
    let (_d, p) = file_with("x.pth", &valid_pth());
    let read = latentflow::store::pth::read_pth(&p, &dev).unwrap();
    assert_eq!(read.tensors["w"].dims(), &[4]);
    let (_d, p) = file_with("s.png", &valid_state_png());
    assert!(
        latentflow::session::state::read_embedded_state(&p)
            .unwrap()
            .is_some()
    );
    let (_d, p) = file_with("s.gif", &valid_gif());
    assert!(
        latentflow::session::state::read_embedded_state(&p)
            .unwrap()
            .is_some()
    );
    let (_d, p) = file_with("i", &valid_idx());
    assert_eq!(
        latentflow::data::mnist::Mnist::open(p, 3)
            .unwrap()
            .native_size(),
        (3, 3)
    );
    for bytes in [valid_png(), valid_jpeg()] {
        let (_d, p) = file_with("x.png", &bytes);
        latentflow::data::folder::decode(&p).unwrap();
    }
}

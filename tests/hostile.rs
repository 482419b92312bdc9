//! Hostile inputs, one test per class: inputs that once deleted a user's files, crashed the
//! program, exhausted the machine, hung, were silently accepted, or whose error vanished.
//! Every case is made here in code (no large file is committed) and runs the real binary
//! under an address-space limit (`ulimit -v`), so an unbounded allocation fails the case
//! instead of the machine. Each must end with a one-line `error: ...` that names the file
//! or argument (and the limit), exit code 1, and nothing that existed changed.

mod common;

use common::{ok, s, tiny_model};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Address space each run may take (KiB): far below what the hostile inputs ask for, far
/// above what the tiny models need.
const VMEM_KIB: u64 = 4 << 20;

/// Longest a case may run before it counts as a hang.
const HANG: Duration = Duration::from_secs(300);

/// A run of the binary with `args` under `ulimit -v` (and `extra` shell limits before it),
/// in `cwd`, with `env` set and any display removed.
fn run_in(cwd: Option<&Path>, extra: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {VMEM_KIB}; {extra} exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_latentflow"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run latentflow: {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("{args:?} hung for more than {} s", HANG.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
}

fn run(args: &[&str]) -> Output {
    run_in(None, "", &[], args)
}

/// Checks that a run was refused properly: exit code 1 (not a signal, not a panic), one
/// line `error: ...` containing every string of `needles`. Returns the line.
fn check_refused(args: &[&str], out: &Output, needles: &[&str]) -> String {
    let all = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} exited with {:?}: {all}",
        out.status
    );
    // The only line allowed before the error is the note naming the default potentials.
    let mut lines: Vec<&str> = all.lines().collect();
    let e = lines.pop().unwrap_or_default().to_string();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("using the potentials in")),
        "{args:?}: {all}"
    );
    assert!(e.starts_with("error: "), "{args:?}: {all}");
    for n in needles {
        assert!(e.contains(n), "{args:?}: '{n}' not in: {e}");
    }
    e
}

fn refused(args: &[&str], needles: &[&str]) -> String {
    check_refused(args, &run(args), needles)
}

/// Every file below `dir` with its content (links as their target), to compare before and
/// after a hostile run.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(p.clone(), b"<dir>".to_vec());
                todo.push(p);
            } else if t.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.insert(p, target.to_string_lossy().as_bytes().to_vec());
            } else if t.is_file() {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            } else {
                out.insert(p, b"<special>".to_vec());
            }
        }
    }
    out
}

/// A copy of the tiny model (generator and potentials) that a test may damage.
fn copy_model(to: &Path) -> PathBuf {
    let dst = to.join("model");
    let mut todo = vec![(tiny_model().to_path_buf(), dst.clone())];
    while let Some((from, to)) = todo.pop() {
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                todo.push((e.path(), target));
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    dst
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

// ---------------------------------------------------------------------------------------
// PyTorch files made in code: a pickle program and the zip around it.

/// A pickle program, built opcode by opcode (protocol 2, as torch.save writes).
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }
    fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn int(&mut self, v: u32) -> &mut Self {
        self.0.push(b'J');
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    fn ints(&mut self, v: &[u32]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    /// One state-dict value: `_rebuild_tensor_v2(storage, offset, shape, stride, False,
    /// OrderedDict())`.
    fn tensor(
        &mut self,
        class: &str,
        key: &str,
        numel: u32,
        offset: u32,
        shape: &[u32],
    ) -> &mut Self {
        let mut stride = vec![1u32; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1].saturating_mul(shape[i + 1]);
        }
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        self.op(b"(")
            .str("storage")
            .global("torch", class)
            .str(key)
            .str("cpu")
            .int(numel);
        self.op(b"tQ").int(offset).ints(shape).ints(&stride);
        self.op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")R")
            .op(b"tR")
    }
    fn done(&mut self) -> Vec<u8> {
        self.0.push(b'.');
        std::mem::take(&mut self.0)
    }
}

/// One state-dict entry: (name, storage class, storage key, storage numel, offset, shape).
type Entry<'a> = (&'a str, &'a str, &'a str, u32, u32, &'a [u32]);

/// A state dict of the given entries.
fn state_dict(tensors: &[Entry]) -> Vec<u8> {
    let mut p = Pickle::new();
    p.global("collections", "OrderedDict").op(b")R").op(b"(");
    for (name, class, key, numel, offset, shape) in tensors {
        p.str(name).tensor(class, key, *numel, *offset, shape);
    }
    p.op(b"u").done()
}

/// A `.pth` zip: `archive/data.pkl`, `archive/data/KEY` for each blob.
fn pth(pickle: &[u8], blobs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", opts).unwrap();
        z.write_all(pickle).unwrap();
        for (key, data) in blobs {
            z.start_file(format!("archive/data/{key}"), opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.start_file("archive/version", opts).unwrap();
        z.write_all(b"3\n").unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn import_args<'a>(pth: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "import-pth",
        "--pth",
        pth,
        "--kind",
        "vae",
        "--latent",
        "2",
        "--channels",
        "1",
        "--base",
        "4",
        "--out",
        out,
    ]
}

// ---------------------------------------------------------------------------------------
// Data loss.

#[test]
fn import_never_deletes_or_reuses_a_users_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("child")).unwrap();
    std::fs::write(work.join("thesis.tex"), b"years of work").unwrap();
    std::fs::write(work.join("child/notes.txt"), b"more").unwrap();
    std::fs::create_dir(work.join("out.importing")).unwrap();
    std::fs::write(work.join("out.importing/keep.txt"), b"mine").unwrap();
    // A valid state dict for another architecture: the check after writing fails, which
    // is when the folder used to be deleted.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-vae.pth");
    let fixture = s(&fixture);
    let before = snapshot(&work);
    let wrong_arch = |out: &'static str| {
        let mut a = import_args(fixture, out);
        a[6] = "3"; // --latent 3
        a
    };
    for out in [".", "child/..", "./"] {
        let args = wrong_arch(out);
        let o = run_in(Some(&work), "", &[], &args);
        check_refused(&args, &o, &["new folder"]);
    }
    let args = wrong_arch("out");
    let o = run_in(Some(&work), "", &[], &args);
    check_refused(&args, &o, &["does not match"]);
    assert_eq!(before, snapshot(&work), "the user's files changed");

    // A successful import leaves the user's folder of the old temporary name alone.
    let args = import_args(fixture, "out");
    let o = run_in(Some(&work), "", &[], &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!work.join("out/keep.txt").exists());
    assert_eq!(
        std::fs::read(work.join("out.importing/keep.txt")).unwrap(),
        b"mine"
    );
    // Into a non-empty folder: refused.
    let args = import_args(fixture, "child");
    let o = run_in(Some(&work), "", &[], &args);
    check_refused(&args, &o, &["child", "not empty"]);

    // Temporary folders of killed imports: removed at the next import of that name when
    // they hold only what an import writes, kept otherwise.
    let stale = work.join(".again.importing-4194304");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("manifest.json"), b"{}").unwrap();
    let kept = work.join(".again.importing-4194303");
    std::fs::create_dir(&kept).unwrap();
    std::fs::write(kept.join("manifest.json"), b"{}").unwrap();
    std::fs::write(kept.join("diary.txt"), b"mine").unwrap();
    let args = import_args(fixture, "again");
    let o = run_in(Some(&work), "", &[], &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stale.exists());
    assert!(kept.join("diary.txt").exists() && kept.join("manifest.json").exists());
    let leftovers: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".importing-") && !n.ends_with("4194303"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn training_never_replaces_another_kind_of_model_or_a_users_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let m = s(&model);
    let before = snapshot(tmp.path());
    let pots = model.join("potentials-pde");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "train-potentials",
                "--generator",
                m,
                "--out",
                m,
                "--restart",
                "--iters",
                "1",
            ],
            vec!["holds a generator model, not potentials"],
        ),
        (
            vec![
                "train-generator",
                "--dataset",
                "sprites",
                "--latent",
                "4",
                "--base",
                "8",
                "--iters",
                "1",
                "--batch-size",
                "2",
                "--restart",
                "--out",
                s(&pots),
            ],
            vec!["holds a potentials model, not generator"],
        ),
    ];
    for (args, needles) in &cases {
        refused(args, needles);
    }
    assert_eq!(before, snapshot(tmp.path()), "a model changed");

    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("holiday.jpg"), b"jpeg").unwrap();
    std::fs::write(photos.join("samples.png"), b"not ours").unwrap();
    let args = [
        "train-generator",
        "--dataset",
        "sprites",
        "--latent",
        "4",
        "--base",
        "8",
        "--iters",
        "1",
        "--batch-size",
        "2",
        "--restart",
        "--out",
        s(&photos),
    ];
    refused(&args, &["photos", "not empty"]);
    assert_eq!(
        std::fs::read(photos.join("samples.png")).unwrap(),
        b"not ours"
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let args = [
        "train-potentials",
        "--generator",
        m,
        "--out",
        s(&file),
        "--iters",
        "1",
    ];
    refused(&args, &["is a file"]);
}

#[test]
fn outputs_replace_only_latentflow_files_and_only_when_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let m = s(tiny_model());
    let theirs = tmp.path().join("photo.png");
    image::RgbImage::new(3, 3).save(&theirs).unwrap();
    let their_gif = tmp.path().join("cat.gif");
    image::RgbImage::new(3, 3).save(&their_gif).unwrap();
    let their_json = tmp.path().join("data.json");
    std::fs::write(&their_json, br#"{"steps": []}"#).unwrap();
    let before = snapshot(tmp.path());
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "sample",
            "--model",
            m,
            "--n",
            "2",
            "--force",
            "--out",
            s(&theirs),
        ],
        vec![
            "dataset",
            "preview",
            "--dataset",
            "sprites",
            "--n",
            "2",
            "--force",
            "--out",
            s(&theirs),
        ],
        vec!["traverse", "--model", m, "--force", "--out", s(&theirs)],
        vec![
            "export-gif",
            "--model",
            m,
            "--steps",
            "2",
            "--force",
            "--out",
            s(&their_gif),
        ],
    ];
    for args in &cases {
        refused(args, &["not a", "latentflow wrote"]);
    }
    let fresh = tmp.path().join("fresh.png");
    let args = [
        "traverse",
        "--model",
        m,
        "--force",
        "--out",
        s(&fresh),
        "--json",
        s(&their_json),
    ];
    refused(&args, &["data.json", "not a JSON that latentflow wrote"]);
    assert!(
        !fresh.exists(),
        "nothing is written when one output is refused"
    );
    assert_eq!(before, snapshot(tmp.path()));

    // Its own files: replaced with --force only.
    let ours = tmp.path().join("ours.png");
    ok(&["sample", "--model", m, "--n", "2", "--out", s(&ours)]);
    refused(
        &["sample", "--model", m, "--n", "3", "--out", s(&ours)],
        &["ours.png", "pass --force"],
    );
    ok(&[
        "sample",
        "--model",
        m,
        "--n",
        "3",
        "--force",
        "--out",
        s(&ours),
    ]);
    let json = tmp.path().join("walk.json");
    ok(&[
        "traverse",
        "--model",
        m,
        "--out",
        s(&fresh),
        "--json",
        s(&json),
    ]);
    ok(&[
        "traverse",
        "--model",
        m,
        "--force",
        "--out",
        s(&fresh),
        "--json",
        s(&json),
    ]);
    let gif = tmp.path().join("walk.gif");
    ok(&[
        "export-gif",
        "--model",
        m,
        "--steps",
        "2",
        "--scale",
        "1",
        "--out",
        s(&gif),
    ]);
    ok(&[
        "export-gif",
        "--model",
        m,
        "--steps",
        "2",
        "--scale",
        "1",
        "--force",
        "--out",
        s(&gif),
    ]);
    refused(
        &["sample", "--model", m, "--out", s(tmp.path())],
        &["is a folder"],
    );
}

// ---------------------------------------------------------------------------------------
// Interrupted writes and litter.

#[test]
fn an_interrupted_write_keeps_the_old_file_and_its_litter_is_removed_later() {
    let tmp = tempfile::tempdir().unwrap();
    let m = s(tiny_model());
    let out = tmp.path().join("grid.png");
    ok(&["sample", "--model", m, "--n", "1", "--out", s(&out)]);
    let before = std::fs::read(&out).unwrap();
    // The second write dies at its first kilobyte (file-size limit: SIGXFSZ, as a full disk
    // or a kill mid-write would).
    let args = [
        "sample",
        "--model",
        m,
        "--n",
        "16",
        "--seed",
        "5",
        "--force",
        "--out",
        s(&out),
    ];
    let o = run_in(None, "ulimit -f 2;", &[], &args);
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the old picture was damaged"
    );
    // A temporary file of a killed process, as kill -9 leaves it.
    let litter = tmp.path().join(".grid.png.tmp-4194304-0");
    std::fs::write(&litter, vec![0u8; 4096]).unwrap();
    ok(&[
        "sample",
        "--model",
        m,
        "--n",
        "16",
        "--force",
        "--out",
        s(&out),
    ]);
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["grid.png"], "temporary files were left");
    assert_ne!(std::fs::read(&out).unwrap(), before);
}

// ---------------------------------------------------------------------------------------
// Crashes: malformed PyTorch files.

#[test]
fn malformed_pytorch_files_are_errors_not_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let nested = {
        let mut p = Pickle::new();
        p.op(b"N");
        p.op(&vec![0x85u8; 1_000_000]);
        p.done()
    };
    let laughs = {
        let mut p = Pickle::new();
        p.op(b"]q\x00");
        for _ in 0..40 {
            p.op(b"(");
            for _ in 0..10 {
                p.op(b"h\x00");
            }
            p.op(b"lq\x00");
        }
        p.op(b"}(").str("w").op(b"h\x00u").done()
    };
    // _rebuild_tensor_v2 with too few arguments (candle's reader panicked here).
    let short_tuple = {
        let mut p = Pickle::new();
        p.op(b"}(").str("w");
        p.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"(")
            .int(1)
            .op(b"tR");
        p.op(b"u").done()
    };
    let big = 100_000u32;
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "garbage.pth",
            b"this is not a zip file".to_vec(),
            vec!["not a PyTorch zip file"],
        ),
        (
            "empty-zip.pth",
            pth(b"", &[]),
            vec!["not a readable pickle"],
        ),
        ("nested.pth", pth(&nested, &[]), vec!["not a state dict"]),
        ("laughs.pth", pth(&laughs, &[]), vec!["holds no tensors"]),
        (
            "short.pth",
            pth(&short_tuple, &[]),
            vec!["tensor w", "too few arguments"],
        ),
        (
            "beyond.pth",
            pth(
                &state_dict(&[("w", "FloatStorage", "0", 10, 0, &[big, big])]),
                &[("0", &f32s(&[0.0; 10]))],
            ),
            vec!["tensor w", "beyond its storage"],
        ),
        (
            "declared.pth",
            pth(
                &state_dict(&[("w", "FloatStorage", "0", 2_000_000_000, 0, &[big, big / 5])]),
                &[("0", &f32s(&[0.0; 10]))],
            ),
            vec!["needs about", "limit"],
        ),
        (
            "short-data.pth",
            pth(
                &state_dict(&[("w", "FloatStorage", "0", 100, 0, &[10, 10])]),
                &[("0", &f32s(&[0.0; 10]))],
            ),
            vec!["tensor w", "fewer than the tensor needs"],
        ),
        (
            "missing-data.pth",
            pth(&state_dict(&[("w", "FloatStorage", "7", 4, 0, &[4])]), &[]),
            vec!["tensor w", "archive/data/7"],
        ),
        (
            "nan.pth",
            pth(
                &state_dict(&[("w", "FloatStorage", "0", 4, 0, &[4])]),
                &[("0", &f32s(&[0.0, f32::NAN, 1.0, 2.0]))],
            ),
            vec!["tensor w", "non-finite", "index 1"],
        ),
        (
            "ints.pth",
            pth(
                &state_dict(&[("w", "LongStorage", "0", 1, 0, &[1])]),
                &[("0", &7i64.to_le_bytes())],
            ),
            vec!["tensor w", "floating-point"],
        ),
        (
            "key.pth",
            pth(
                &state_dict(&[("w", "FloatStorage", "../../etc/passwd", 1, 0, &[1])]),
                &[],
            ),
            vec!["bad storage key"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let file = write(name, &bytes);
        let out = tmp.path().join(format!("out-{name}"));
        refused(&import_args(s(&file), s(&out)), &needles);
        assert!(!out.exists(), "{name}: an output was left");
    }
    // The builder writes what the reader accepts: a well-formed state dict of the wrong
    // architecture gets as far as the architecture check.
    let file = write(
        "valid.pth",
        &pth(
            &state_dict(&[("module.w", "FloatStorage", "0", 4, 0, &[2, 2])]),
            &[("0", &f32s(&[1.0, 2.0, 3.0, 4.0]))],
        ),
    );
    let out = tmp.path().join("out-valid");
    refused(&import_args(s(&file), s(&out)), &["does not match"]);
}

// ---------------------------------------------------------------------------------------
// Exhaustion and hangs: decompression, streams and special files.

#[test]
fn streams_special_files_and_bombs_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("p.png");
    // A gzip "IDX file" that decompresses to 96 MiB of zeros, against a 32 MiB budget.
    let bomb = tmp.path().join("bomb.gz");
    {
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&bomb).unwrap(),
            flate2::Compression::fast(),
        );
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..96 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap();
    }
    let spec = format!("mnist:{}", bomb.display());
    let args = ["dataset", "preview", "--dataset", &spec, "--out", s(&png)];
    let o = run_in(None, "", &[("LATENTFLOW_MEMORY_LIMIT", "32M")], &args);
    check_refused(&args, &o, &["bomb.gz", "decompressed", "limit"]);

    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    for file in [Path::new("/dev/zero"), fifo.as_path()] {
        let spec = format!("mnist:{}", file.display());
        refused(
            &["dataset", "preview", "--dataset", &spec, "--out", s(&png)],
            &["not a regular file"],
        );
    }
    let folder = tmp.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    mkfifo(&folder.join("a.png"));
    std::os::unix::fs::symlink("/dev/zero", folder.join("b.png")).unwrap();
    let spec = format!("folder:{}", folder.display());
    refused(
        &["dataset", "preview", "--dataset", &spec, "--out", s(&png)],
        &["no PNG or JPEG images"],
    );

    // A model folder whose files are a FIFO or a device.
    let model = copy_model(tmp.path());
    let weights = model.join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    mkfifo(&weights);
    refused(
        &["sample", "--model", s(&model), "--out", s(&png)],
        &["model.safetensors", "not a regular file"],
    );
    std::fs::remove_file(&weights).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &weights).unwrap();
    refused(
        &["sample", "--model", s(&model), "--out", s(&png)],
        &["model.safetensors", "/dev/zero, outside the model folder"],
    );
    let manifest = model.join("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    refused(
        &["sample", "--model", s(&model), "--out", s(&png)],
        &["manifest", "not a regular file"],
    );
    assert!(!png.exists());
}

// ---------------------------------------------------------------------------------------
// Exhaustion and hangs: arguments.

#[test]
fn arguments_beyond_the_resource_policy_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let m = s(tiny_model());
    let out = tmp.path().join("x.png");
    let gif = tmp.path().join("x.gif");
    let o = s(&out);
    let new_model = tmp.path().join("new-model");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "sample", "--model", m, "--n", "4096", "--scale", "16", "--out", o,
            ],
            vec!["sample --n 4096 --scale 16", "needs about", "limit"],
        ),
        (
            vec!["sample", "--model", m, "--n", "5000", "--out", o],
            vec!["--n is 5000, above the limit of 4096"],
        ),
        (
            vec![
                "export-gif",
                "--model",
                m,
                "--seeds",
                "1000",
                "--scale",
                "16",
                "--out",
                s(&gif),
            ],
            vec!["1000 seeds at scale 16", "limit"],
        ),
        (
            vec![
                "export-gif",
                "--model",
                m,
                "--seeds",
                "5000",
                "--out",
                s(&gif),
            ],
            vec!["seeds is 5000, above the limit of 1024"],
        ),
        (
            vec!["traverse", "--model", m, "--steps", "100000", "--out", o],
            vec!["--steps is 100000, above the limit of 10000"],
        ),
        (
            vec![
                "traverse",
                "--model",
                m,
                "--steps",
                "1000000000",
                "--out",
                o,
            ],
            vec!["--steps is 1000000000"],
        ),
        (
            vec!["traverse", "--model", m, "--step-scale", "1e30", "--out", o],
            vec!["--step-scale is 1000000000000000000000000000000", "1000"],
        ),
        (
            vec![
                "traverse",
                "--model",
                m,
                "--superpose",
                "0:1e30",
                "--out",
                o,
            ],
            vec!["superposition weight", "limit"],
        ),
        (
            vec![
                "traverse", "--model", m, "--steps", "3000", "--scale", "16", "--out", o,
            ],
            vec!["traverse --steps 3000 --scale 16", "needs about"],
        ),
        (
            vec![
                "dataset",
                "preview",
                "--dataset",
                "sprites",
                "--n",
                "1000000000",
                "--out",
                o,
            ],
            vec!["--n × --frames", "above the limit of 100000"],
        ),
        (
            vec![
                "train-generator",
                "--dataset",
                "sprites",
                "--base",
                "1024",
                "--out",
                s(&new_model),
            ],
            vec!["base width 1024", "needs about", "limit"],
        ),
        (
            vec![
                "train-generator",
                "--dataset",
                "sprites",
                "--batch-size",
                "10000000",
                "--out",
                s(&new_model),
            ],
            vec!["--batch-size is 10000000"],
        ),
        (
            vec![
                "train-potentials",
                "--generator",
                m,
                "--k",
                "1000000",
                "--out",
                s(&new_model),
            ],
            vec!["--k is 1000000, above the limit of 1024"],
        ),
        (
            vec![
                "train-potentials",
                "--generator",
                m,
                "--hidden",
                "100000000",
                "--out",
                s(&new_model),
            ],
            vec!["--hidden is 100000000"],
        ),
        (
            vec!["eval", "vp", "--model", m, "--pairs", "1000000000"],
            vec!["--pairs is 1000000000, above the limit of 1000000"],
        ),
        (
            vec!["eval", "vp", "--model", m, "--pairs", "900000"],
            vec!["900000 pairs", "needs about"],
        ),
    ];
    for (args, needles) in &cases {
        refused(args, needles);
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "{left:?}: nothing may be written, not even a folder"
    );
}

// ---------------------------------------------------------------------------------------
// Accepted bad input: checkpoints.

#[test]
fn checkpoints_are_read_only_from_their_folder_with_their_dtypes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let manifest = model.join("manifest.json");
    let original = std::fs::read(&manifest).unwrap();
    let png = tmp.path().join("p.png");
    let sample = |needles: &[&str]| {
        refused(&["sample", "--model", s(&model), "--out", s(&png)], needles);
    };
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::copy(
        model.join("model.safetensors"),
        elsewhere.join("w.safetensors"),
    )
    .unwrap();
    let absolute = elsewhere.join("w.safetensors").display().to_string();
    for weights in ["../elsewhere/w.safetensors", absolute.as_str(), "", "."] {
        std::fs::write(&manifest, &original).unwrap();
        edit_json(&manifest, |v| v["weights"] = weights.into());
        sample(&["manifest.json", "must name a file inside the model folder"]);
    }
    std::fs::write(&manifest, &original).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.join("w.safetensors"),
        model.join("link.safetensors"),
    )
    .unwrap();
    edit_json(&manifest, |v| v["weights"] = "link.safetensors".into());
    sample(&["outside the model folder"]);

    // Dtypes: the manifest's must be a float type and match the file's.
    std::fs::write(&manifest, &original).unwrap();
    let name = {
        let v: serde_json::Value = serde_json::from_slice(&original).unwrap();
        v["tensors"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone()
    };
    edit_json(&manifest, |v| v["tensors"][&name]["dtype"] = "F16".into());
    sample(&[&name, "stored as F32 but the manifest says F16"]);
    edit_json(&manifest, |v| v["tensors"][&name]["dtype"] = "I64".into());
    sample(&[&name, "dtype 'I64'"]);
    // F16 weights under the F32 manifest.
    std::fs::write(&manifest, &original).unwrap();
    let weights = model.join("model.safetensors");
    let tensors = latentflow::store::load_safetensors(&weights, &candle_core::Device::Cpu).unwrap();
    let half: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_dtype(candle_core::DType::F16).unwrap()))
        .collect();
    candle_core::safetensors::save(&half, &weights).unwrap();
    sample(&["stored as F16 but the manifest says F32"]);

    // A manifest too large to be one.
    let mut big = original.clone();
    big.extend(std::iter::repeat_n(b' ', 17 << 20));
    std::fs::write(&manifest, &big).unwrap();
    sample(&["manifest", "above the limit of 16.0 MiB"]);
    assert!(!png.exists());
}

#[test]
fn potentials_are_used_only_with_the_generator_they_were_trained_on() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let png = tmp.path().join("p.png");
    let traverse = || -> Vec<String> {
        vec![
            "traverse".into(),
            "--model".into(),
            s(&model).into(),
            "--out".into(),
            s(&png).into(),
        ]
    };
    let argv = traverse();
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    ok(&args);
    std::fs::remove_file(&png).unwrap();
    // Other weights in the generator folder (retrained, or potentials copied next to
    // another generator of the same latent size).
    let weights = model.join("model.safetensors");
    let mut tensors =
        latentflow::store::load_safetensors(&weights, &candle_core::Device::Cpu).unwrap();
    let (name, t) = tensors
        .iter()
        .next()
        .map(|(n, t)| (n.clone(), t.clone()))
        .unwrap();
    tensors.insert(name, (t + 0.01).unwrap());
    latentflow::store::save_safetensors(&weights, &tensors).unwrap();
    refused(&args, &["potentials-pde", "trained on other weights"]);
    // Without a digest, the recorded folder decides.
    let pm = model.join("potentials-pde/manifest.json");
    edit_json(&pm, |v| {
        v.as_object_mut().unwrap().remove("generator_digest");
        v["generator"] = "../../somewhere-else".into();
    });
    refused(
        &args,
        &["trained on the generator in '../../somewhere-else'"],
    );
    edit_json(&pm, |v| v["generator"] = "..".into());
    ok(&args);
}

#[test]
fn non_finite_results_and_damaged_training_states_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let json = tmp.path().join("v.json");
    let png = tmp.path().join("p.png");
    refused(
        &[
            "traverse",
            "--model",
            s(&model),
            "--step-scale",
            "1e300",
            "--out",
            s(&png),
            "--json",
            s(&json),
        ],
        &["--step-scale", "limit"],
    );
    assert!(!json.exists() && !png.exists());

    // A training state that lacks a tensor must not resume with fresh weights.
    let out = model.join("potentials-new");
    let train = |iters: &'static str| -> Vec<String> {
        [
            "train-potentials",
            "--generator",
            s(&model),
            "--k",
            "2",
            "--steps",
            "2",
            "--iters",
            iters,
            "--batch-size",
            "2",
            "--hidden",
            "8",
            "--time-dim",
            "4",
            "--checkpoint-every",
            "1",
            "--out",
            s(&out),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let argv = train("2");
    ok(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let state_path = out.join("train-state.safetensors");
    let mut state =
        latentflow::train::state::TrainState::load(&state_path, &candle_core::Device::Cpu).unwrap();
    let victim = state
        .tensors
        .keys()
        .find(|n| n.starts_with("pot."))
        .unwrap()
        .clone();
    state.tensors.remove(&victim);
    state.save(&state_path).unwrap();
    let before = snapshot(&out);
    let argv = train("3");
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    refused(&args, &["lacks tensor", victim.trim_start_matches("pot.")]);
    assert_eq!(before, snapshot(&out));
}

// ---------------------------------------------------------------------------------------
// Errors that vanished: the app's command-line options.

#[test]
fn the_app_fails_fast_on_a_bad_restore_or_an_unloadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.gif");
    std::fs::write(&garbage, b"GIF89a and then nonsense").unwrap();
    let short = tmp.path().join("short.gif");
    std::fs::write(&short, b"GIF8").unwrap();
    let plain = tmp.path().join("plain.gif");
    image::RgbImage::new(3, 3).save(&plain).unwrap();
    let missing = tmp.path().join("missing.png");
    let shot = tmp.path().join("shot.png");
    let m = s(tiny_model());
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["app", "--model", m, "--restore", s(&garbage)],
            vec!["garbage.gif", "holds no latentflow state"],
        ),
        (
            vec!["app", "--model", m, "--restore", s(&short)],
            vec!["short.gif", "not a GIF"],
        ),
        (
            vec!["app", "--model", m, "--restore", s(&plain)],
            vec!["plain.gif", "holds no latentflow state"],
        ),
        (
            vec!["app", "--model", m, "--restore", s(&missing)],
            vec!["missing.png"],
        ),
        (
            vec!["app", "--model", s(tmp.path()), "--screenshot", s(&shot)],
            vec!["manifest.json is missing"],
        ),
    ];
    for (args, needles) in &cases {
        refused(args, needles);
    }
    assert!(!shot.exists());
    // A restore file with a state outside what the app can set.
    let state = serde_json::json!({
        "model": m,
        "state": {
            "seed": 0, "method": 0, "sliders": [1e300], "max_t": 10.0, "step_scale": 1.0,
            "switch_on": false, "switch": {"k": 0, "then": 1, "at": 5, "steps": 10},
            "batch_view": false, "batch_n": 7, "zoom": 5.0, "dark": true
        }
    });
    let crafted = tmp.path().join("crafted.png");
    let bytes = latentflow::files::png::encode_rgb8(
        1,
        1,
        &[0, 0, 0],
        &[("latentflow-state", &state.to_string())],
    )
    .unwrap();
    std::fs::write(&crafted, bytes).unwrap();
    refused(
        &["app", "--restore", s(&crafted)],
        &["crafted.png", "embedded state is invalid", "slider value"],
    );
}

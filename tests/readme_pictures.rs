//! The README's example commands reproduce the pictures shown beside them: each command
//! is taken as the README prints it (the test fails if the README's text changes), run
//! with its `--out` in a temporary folder, and its output compared with the picture in
//! docs/images. Byte-identical on the machine that made them; elsewhere a different SIMD
//! path in the matrix kernels may move a pixel value by a few levels, so the comparison
//! allows that and nothing more (another seed or model differs by tens of levels on
//! average).

mod common;
use common::s;
use image::AnimationDecoder;
use std::path::Path;

/// (the command as the README prints it, the picture beside it); a command without
/// `--out` writes a folder (given here with `--out`) holding the picture as `strips.png`.
const CASES: &[(&str, &str)] = &[
    (
        "latentflow fit-directions --generator models/scenes-vae --method sefa --k 6",
        "docs/images/scenes-sefa-strips.png",
    ),
    (
        "latentflow fit-directions --generator models/scenes-vae --method ganspace --k 6",
        "docs/images/scenes-ganspace-strips.png",
    ),
    (
        "latentflow sample --model models/scenes-vae --n 32 --cols 8 --seed 1 --out grid.png",
        "docs/images/scenes-vae-samples.png",
    ),
    (
        "latentflow sample --model models/sprites-vae --n 32 --cols 8 --seed 1 --out grid.png",
        "docs/images/sprites-vae-samples.png",
    ),
    (
        "latentflow dataset preview --dataset scenes --n 16 --seed 1 --out scenes.png",
        "docs/images/scenes-dataset.png",
    ),
    (
        "latentflow dataset preview --dataset scenes --sequence hue --n 2 --seed 1 --out hue.png",
        "docs/images/scenes-sequence-hue.png",
    ),
    (
        "latentflow dataset preview --dataset sprites --sequence orientation --n 2 --seed 1 --out orientation.png",
        "docs/images/sprites-sequence-orientation.png",
    ),
    (
        "latentflow export-gif --model models/scenes-vae --potentials models/scenes-vae/potentials-pde --k 3 --steps 8 --seed 3 --seeds 4 --ping-pong --out walk.gif",
        "docs/images/scenes-pde-k3.gif",
    ),
    (
        "latentflow traverse --model models/scenes-ffvae --k 1 --steps 7 --seed 3 --out strip.png",
        "docs/images/scenes-ffvae-wall-hue.png",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The frames of a PNG (one) or GIF (all), as RGBA.
fn frames(path: &Path) -> Vec<image::RgbaImage> {
    if path.extension().is_some_and(|e| e == "gif") {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
        decoder
            .into_frames()
            .map(|f| f.unwrap().into_buffer())
            .collect()
    } else {
        vec![image::open(path).unwrap().to_rgba8()]
    }
}

/// (largest, mean) absolute difference of two pictures' channel values, 0..255.
fn difference(a: &Path, b: &Path) -> (u8, f64) {
    let (fa, fb) = (frames(a), frames(b));
    assert_eq!(
        fa.len(),
        fb.len(),
        "frames of {} and {}",
        a.display(),
        b.display()
    );
    let (mut largest, mut sum, mut n) = (0u8, 0f64, 0usize);
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.dimensions(), y.dimensions(), "{}", a.display());
        for (p, q) in x.as_raw().iter().zip(y.as_raw()) {
            let d = p.abs_diff(*q);
            largest = largest.max(d);
            sum += f64::from(d);
            n += 1;
        }
    }
    (largest, sum / n.max(1) as f64)
}

#[test]
fn every_example_command_reproduces_the_picture_beside_it() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    // The README wraps long commands over lines.
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let tmp = tempfile::tempdir().unwrap();
    for (command, picture) in CASES {
        assert!(
            flat.contains(command),
            "the README no longer shows `{command}`"
        );
        let name = Path::new(picture).file_name().unwrap();
        assert!(
            flat.contains(&format!("({picture})")),
            "the README no longer shows {picture}"
        );
        let out = tmp.path().join(name);
        let mut args: Vec<String> = command.split(' ').skip(1).map(str::to_string).collect();
        let made = match args.iter().position(|a| a == "--out") {
            Some(at) => {
                args[at + 1] = s(&out).to_string();
                out
            }
            None => {
                let folder = tmp.path().join(format!("{}.d", name.to_string_lossy()));
                args.extend(["--out".to_string(), s(&folder).to_string()]);
                folder.join("strips.png")
            }
        };
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_latentflow"))
            .args(&args)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (largest, mean) = difference(&made, &root().join(picture));
        assert!(
            mean <= 0.5 && largest <= 48,
            "{command} differs from {picture}: mean {mean:.3}, largest {largest} (of 255)"
        );
    }
}

/// The README's pictures of trained sets are the shipped sets' own `strips.png` (or
/// `sequences.png`), written by the training commands in models/README.md (about 90 s each: too long to rerun here;
/// the sets themselves were checked to be byte-identical to those commands' output).
#[test]
fn the_trained_sets_pictures_are_the_shipped_sets_own_strips() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let models = std::fs::read_to_string(root().join("models/README.md")).unwrap();
    for (own, picture, command) in [
        (
            "models/scenes-vae/warped/strips.png",
            "docs/images/scenes-warped-strips.png",
            "latentflow train-warped --generator models/scenes-vae --k 6 --seed 1",
        ),
        (
            "models/scenes-vae/ode/strips.png",
            "docs/images/scenes-ode-strips.png",
            "latentflow train-ode --generator models/scenes-vae --seed 1",
        ),
        (
            "models/scenes-ffvae/sequences.png",
            "docs/images/scenes-ffvae-sequences.png",
            "latentflow train-ffvae --dataset scenes --transforms factors --supervision full --k 5 --steps 7",
        ),
    ] {
        assert!(readme.contains(&format!("({picture})")), "{picture}");
        assert!(models.contains(command), "{command}");
        let shown = std::fs::read(root().join(picture)).unwrap();
        let bytes = std::fs::read(root().join(own)).unwrap();
        assert!(shown == bytes, "{picture} is not {own}");
    }
}

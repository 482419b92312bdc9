//! The potential-landscape panel: u^k(·, t) on the plane through the current code spanned by
//! ∇u^k and a random orthogonal direction, as a heat map with contour lines and the
//! trajectory drawn on it. The worker evaluates it with the WGSL shader on eframe's wgpu
//! device (or on the CPU when there is none).

use crate::session::LandscapeFrame;
use eframe::egui;

/// Panel state.
pub struct LandscapePanel {
    /// Whether the landscape is shown (and requested).
    pub show: bool,
    /// Which potential.
    pub k: usize,
    /// The second axis: another potential's gradient, or random when None.
    pub second: Option<usize>,
    /// Half the side of the square.
    pub extent: f32,
    /// Points per side.
    pub n: usize,
    /// The newest evaluated landscape.
    pub frame: Option<LandscapeFrame>,
    texture: Option<egui::TextureHandle>,
}

impl Default for LandscapePanel {
    fn default() -> Self {
        Self {
            show: false,
            k: 0,
            second: None,
            extent: 3.0,
            n: 96,
            frame: None,
            texture: None,
        }
    }
}

/// A blue → white → red colour for s ∈ [0, 1], darkened on contour lines.
fn colour(s: f32, contour: bool) -> egui::Color32 {
    let s = s.clamp(0.0, 1.0);
    let (r, g, b) = if s < 0.5 {
        let a = s * 2.0;
        (0.15 + 0.85 * a, 0.3 + 0.7 * a, 0.8 + 0.2 * a)
    } else {
        let a = (s - 0.5) * 2.0;
        (1.0, 1.0 - 0.75 * a, 1.0 - 0.85 * a)
    };
    let k = if contour { 0.35 } else { 1.0 };
    egui::Color32::from_rgb(
        (r * k * 255.0) as u8,
        (g * k * 255.0) as u8,
        (b * k * 255.0) as u8,
    )
}

/// The lowest and highest value of a landscape (the ends of its colour scale).
pub fn value_range(f: &LandscapeFrame) -> (f32, f32) {
    f.values
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)))
}

/// The colour scale under the heat map: the colours from the lowest to the highest u,
/// with both values written at its ends.
fn colour_scale(ui: &mut egui::Ui, width: f32, lo: f32, hi: f32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, 12.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let slices = 64;
    let w = rect.width() / slices as f32;
    for i in 0..slices {
        let x = rect.left() + w * i as f32;
        let r = egui::Rect::from_min_max(
            egui::pos2(x, rect.top()),
            egui::pos2(x + w + 0.5, rect.bottom()),
        );
        painter.rect_filled(r, 0.0, colour((i as f32 + 0.5) / slices as f32, false));
    }
    ui.horizontal(|ui| {
        ui.set_width(width);
        ui.label(format!("u = {lo:.3}"));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(format!("{hi:.3}"));
        });
    });
}

/// The heat map of a landscape with 10 contour levels, as an image (row 0 = top = +b).
pub fn heat_map(f: &LandscapeFrame) -> egui::ColorImage {
    let n = f.n;
    let (lo, hi) = value_range(f);
    let range = (hi - lo).max(1e-12);
    let level = |v: f32| ((v - lo) / range * 10.0).floor() as i32;
    let mut pixels = Vec::with_capacity(n * n);
    for row in 0..n {
        let j = n - 1 - row;
        for i in 0..n {
            let v = f.values[j * n + i];
            let right = (i + 1 < n).then(|| f.values[j * n + i + 1]);
            let down = (j > 0).then(|| f.values[(j - 1) * n + i]);
            let contour = [right, down]
                .iter()
                .flatten()
                .any(|w| level(*w) != level(v));
            pixels.push(colour((v - lo) / range, contour));
        }
    }
    egui::ColorImage::new([n, n], pixels)
}

impl LandscapePanel {
    /// Takes a new landscape.
    pub fn set(&mut self, ctx: &egui::Context, frame: LandscapeFrame) {
        self.texture =
            Some(ctx.load_texture("landscape", heat_map(&frame), egui::TextureOptions::LINEAR));
        self.frame = Some(frame);
    }

    /// The controls and the picture; `k_total` is the number of potentials.
    pub fn ui(&mut self, ui: &mut egui::Ui, k_total: usize) {
        ui.heading("Landscape");
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.show, "Show landscape")
                .on_hover_text("u of one potential on the plane through the current code spanned by its gradient and a random direction");
            ui.label("k");
            ui.add(egui::DragValue::new(&mut self.k).range(0..=k_total.saturating_sub(1)))
                .on_hover_text("Which potential");
            ui.label("extent");
            ui.add(egui::DragValue::new(&mut self.extent).speed(0.05).range(0.1..=20.0))
                .on_hover_text("Half the side of the square, in latent units");
        });
        ui.horizontal(|ui| {
            let mut chosen = self.second.is_some();
            ui.checkbox(&mut chosen, "second axis from potential")
                .on_hover_text(
                    "Span the plane with this potential's gradient instead of a random direction",
                );
            let mut j = self.second.unwrap_or(0);
            ui.add_enabled(
                chosen,
                egui::DragValue::new(&mut j).range(0..=k_total.saturating_sub(1)),
            )
            .on_hover_text("The potential whose gradient is the second axis");
            self.second = chosen.then_some(j.min(k_total.saturating_sub(1)));
        });
        self.k = self.k.min(k_total.saturating_sub(1));
        if !self.show {
            return;
        }
        let (Some(tex), Some(f)) = (&self.texture, &self.frame) else {
            ui.label("evaluating…");
            return;
        };
        // Fit the picture, its scale and its caption in the visible height left (in a
        // scroll area the available height is unbounded), between 120 and 360 points.
        let visible = ui.clip_rect().bottom() - ui.cursor().top() - 72.0;
        let side = ui.available_width().min(visible).clamp(120.0, 360.0);
        let response = ui.image((tex.id(), egui::vec2(side, side)));
        let rect = response.rect;
        let to_screen = |(a, b): (f32, f32)| {
            egui::pos2(
                rect.left() + (a / f.extent * 0.5 + 0.5) * rect.width(),
                rect.top() + (0.5 - b / f.extent * 0.5) * rect.height(),
            )
        };
        let points: Vec<egui::Pos2> = f.path.iter().map(|p| to_screen(*p)).collect();
        let painter = ui.painter_at(rect);
        painter.add(egui::Shape::line(
            points.clone(),
            egui::Stroke::new(2.0, egui::Color32::BLACK),
        ));
        if let Some(last) = points.last() {
            painter.circle_filled(*last, 4.0, egui::Color32::BLACK);
        }
        let (lo, hi) = value_range(f);
        colour_scale(ui, side, lo, hi);
        ui.label(format!(
            "u(z_t, t) on the plane, {}×{} points, {:.1} ms on the {}",
            f.n,
            f.n,
            f.ms,
            if f.on_gpu { "GPU (WGSL)" } else { "CPU" }
        ));
    }
}

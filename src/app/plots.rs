//! Live plots of the potentials along the current path: u(z_t, t) against t with the
//! current t marked, and optionally ‖∇u‖ and the wave residual.

use super::App;
use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};

/// Plots of the newest frame's records.
pub fn plot_ui(app: &mut App, ui: &mut egui::Ui) {
    ui.heading("Along the path");
    let Some(frame) = &app.frame else {
        return;
    };
    if frame.records.is_empty() {
        ui.label("Move a slider to see u(z_t, t) along the path.");
        return;
    }
    let series = |f: &dyn Fn(&crate::methods::StepRecord) -> f32| -> PlotPoints {
        frame.records.iter().map(|r| [r.t, f(r) as f64]).collect()
    };
    let last_t = frame.records.last().map_or(0.0, |r| r.t);
    Plot::new("u-plot")
        .height(170.0)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_axis_label("t")
        .show(ui, |plot| {
            plot.line(Line::new("u(z_t, t)", series(&|r| r.u[0])));
            plot.line(Line::new("|grad u|", series(&|r| r.grad_norm[0])));
            plot.line(Line::new("residual", series(&|r| r.residual[0])));
            plot.vline(VLine::new("current t", last_t));
        });
}

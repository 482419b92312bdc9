//! Live plots along the current path against t, the current t marked: the step length
//! every method has, and the series the method records (potentials: u(z_t, t) and the
//! wave residual; WarpedSpace: its warping function as u; NeuralODE: the ODE speed), and
//! for a density-preserving walk its log-density on a second plot.

use super::App;
use crate::methods::{StepRecord, series};
use eframe::egui;
use egui_plot::{
    AxisHints, GridInput, GridMark, Legend, Line, Plot, PlotPoints, VLine, uniform_grid_spacer,
};

/// The method-specific series drawn when a method records them, with their labels.
const PLOTTED: [(&str, &str); 3] = [
    (series::U, "u(z_t, t)"),
    (series::RESIDUAL, "residual"),
    (series::ODE_SPEED, "|dz/dt|"),
];

/// Plots of the newest frame's records.
pub fn plot_ui(app: &mut App, ui: &mut egui::Ui) {
    ui.heading("Along the path");
    let Some(frame) = &app.frame else {
        return;
    };
    if frame.records.is_empty() {
        ui.label("Move a slider to see the path's values along t.");
        return;
    }
    let points = |f: &dyn Fn(&StepRecord) -> Option<f32>| -> Option<PlotPoints> {
        frame
            .records
            .iter()
            .map(|r| f(r).map(|v| [r.t, f64::from(v)]))
            .collect()
    };
    let last_t = frame.records.last().map_or(0.0, |r| r.t);
    Plot::new("u-plot")
        .height(170.0)
        .legend(Legend::default())
        .allow_scroll(false)
        // Times are short numbers: label every unit from 20 points apart (egui_plot's
        // default of 60 left a 0..8 path with a single label).
        .custom_x_axes(vec![
            AxisHints::new_x().label("t").label_spacing(20.0..=30.0),
        ])
        // About four labelled values on the y axis whatever the range (base-10 steps left
        // only "0" on most paths).
        .custom_y_axes(vec![AxisHints::new_y().formatter(|mark: GridMark, _| {
            let decimals = (-mark.step_size.log10().floor()).max(0.0) as usize;
            format!("{:.*}", decimals, mark.value)
        })])
        .y_grid_spacer(uniform_grid_spacer(|input: GridInput| {
            let step = nice_step((input.bounds.1 - input.bounds.0) / 4.0);
            [step / 5.0, step, step * 5.0]
        }))
        .show(ui, |plot| {
            if let Some(p) = points(&|r| r.step_norm.first().copied()) {
                plot.line(Line::new("|step|", p));
            }
            for (name, label) in PLOTTED {
                if let Some(p) = points(&|r| r.get(name).and_then(|v| v.first().copied())) {
                    plot.line(Line::new(label, p));
                }
            }
            plot.vline(VLine::new("current t", last_t));
        });
    // A density-preserving walk's log-density, and the log-density a flow-factorized VAE's
    // flow carries, on their own axis (their values are far from the step lengths'): flat
    // when the walk keeps it.
    let densities: Vec<(&str, PlotPoints)> = [
        (series::LOG_DENSITY, "log-density"),
        (series::FLOW_LOG_DENSITY, "log q(z_t) − log q(z_0)"),
    ]
    .into_iter()
    .filter_map(|(name, label)| {
        points(&|r| r.get(name).and_then(|v| v.first().copied())).map(|p| (label, p))
    })
    .collect();
    if !densities.is_empty() {
        Plot::new("log-density-plot")
            .height(80.0)
            .legend(Legend::default())
            .allow_scroll(false)
            .custom_x_axes(vec![
                AxisHints::new_x().label("t").label_spacing(20.0..=30.0),
            ])
            .show(ui, |plot| {
                for (label, p) in densities {
                    plot.line(Line::new(label, p));
                }
                plot.vline(VLine::new("current t", last_t));
            });
    }
}

/// The step among 1, 2 and 5 times a power of ten closest above `rough` (positive and
/// finite, else 1).
fn nice_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * base)
}

#[cfg(test)]
mod tests {
    use super::nice_step;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten_at_least_the_rough_step() {
        let cases = [
            (0.3, 0.5),
            (0.5, 0.5),
            (0.51, 1.0),
            (1.2, 2.0),
            (7.0, 10.0),
            (0.013, 0.02),
            (250.0, 500.0),
        ];
        for (rough, want) in cases {
            let got = nice_step(rough);
            assert!(
                (got - want).abs() < 1e-12 * want,
                "{rough}: {got} != {want}"
            );
        }
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }
}

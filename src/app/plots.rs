//! Live plots of the potentials along the current path: u(z_t, t) against t with the
//! current t marked, and optionally ‖∇u‖ and the wave residual.

use super::App;
use eframe::egui;
use egui_plot::{
    AxisHints, GridInput, GridMark, Legend, Line, Plot, PlotPoints, VLine, uniform_grid_spacer,
};

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
            plot.line(Line::new("u(z_t, t)", series(&|r| r.u[0])));
            plot.line(Line::new("|grad u|", series(&|r| r.grad_norm[0])));
            plot.line(Line::new("residual", series(&|r| r.residual[0])));
            plot.vline(VLine::new("current t", last_t));
        });
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

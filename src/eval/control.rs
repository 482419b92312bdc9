//! Control/Disentanglement curves (after Khrulkov et al., ICCV 2021, §5): how much a method
//! changes a factor (control) against how much it changes the others with it
//! (entanglement), as its walks grow longer.
//!
//! For every ordered or cyclic factor f, the method's direction for f is the one that
//! changes f most at the longest length (for NeuralODE, its field for f). At each matched
//! path length L (every step rescaled so that the mean ‖z_T − z_0‖ is L), with M_L the
//! factor score's change matrix ([`super::factors::change_matrix`]: changes relative to
//! those between independent samples),
//!
//! - control C(L) = M_L[k_f][f],
//! - entanglement D(L) = mean over the other factors j of M_L[k_f][j].
//!
//! The curve joins (0, 0) and the points (C(L), D(L)) in order of L. Its area under D as a
//! function of C, divided by the control it reaches (C at the longest length), is the
//! entanglement per unit of control ("C/D AUC", lower is better); it is read together with
//! the control reached (higher is better): a method that barely moves its factor has a
//! small area for that reason alone. Categorical factors (shape) have no direction to move
//! in and get no curve.

use super::factors::{FactorScoreConfig, change_matrix};
use crate::methods::Traversal;
use crate::models::Generator;
use crate::models::factors::{FactorRegressor, FactorSpec};
use crate::{Error, Result};
use candle_core::Device;
use serde::Serialize;

/// One point of a curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdPoint {
    /// The matched path length L.
    pub length: f64,
    /// C(L).
    pub control: f64,
    /// D(L).
    pub entanglement: f64,
}

/// One factor's curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdCurve {
    /// The factor.
    pub factor: String,
    /// The method's direction for it.
    pub direction: usize,
    /// One point per length, in order of length.
    pub points: Vec<CdPoint>,
    /// Entanglement per unit of control (see [`area`]).
    pub auc: f64,
}

/// Every factor's curve and their means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdSummary {
    /// One curve per ordered or cyclic factor.
    pub curves: Vec<CdCurve>,
    /// The mean control at the longest length.
    pub control: f64,
    /// The mean C/D AUC.
    pub auc: f64,
}

/// The area under D(C) along the polyline from (0, 0) through `points` (C, D) (trapezoids;
/// a step back in C subtracts), divided by the last point's C; 0 when it reaches no control.
pub fn area(points: &[(f64, f64)]) -> f64 {
    let mut total = 0.0;
    let mut last = (0.0, 0.0);
    for &p in points {
        total += (p.0 - last.0) * (p.1 + last.1) / 2.0;
        last = p;
    }
    if last.0 > 0.0 { total / last.0 } else { 0.0 }
}

/// The curves from change matrices `matrices[i]` (K × F) measured at `lengths[i]`
/// (increasing).
pub fn curves_from_matrices(
    factors: &[FactorSpec],
    lengths: &[f64],
    matrices: &[Vec<Vec<f64>>],
) -> Result<CdSummary> {
    let Some(longest) = matrices.last() else {
        return Err(Error::config("C/D curves need at least one path length"));
    };
    if lengths.len() != matrices.len() {
        return Err(Error::config("one change matrix per path length"));
    }
    let mut curves = Vec::new();
    for (f, spec) in factors.iter().enumerate().filter(|(_, s)| !s.categorical) {
        let direction = (0..longest.len())
            .max_by(|&a, &b| longest[a][f].total_cmp(&longest[b][f]))
            .ok_or_else(|| Error::config("a method without directions has no curves"))?;
        let others = (factors.len() - 1).max(1) as f64;
        let points: Vec<CdPoint> = lengths
            .iter()
            .zip(matrices)
            .map(|(&length, m)| {
                let row = &m[direction];
                let rest: f64 = row
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != f)
                    .map(|(_, v)| v)
                    .sum();
                CdPoint {
                    length,
                    control: row[f],
                    entanglement: rest / others,
                }
            })
            .collect();
        let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.control, p.entanglement)).collect();
        curves.push(CdCurve {
            factor: spec.name.clone(),
            direction,
            auc: area(&xy),
            points,
        });
    }
    if curves.is_empty() {
        return Err(Error::config(
            "the regressor reads no ordered or cyclic factor: no C/D curves",
        ));
    }
    let n = curves.len() as f64;
    let control = curves
        .iter()
        .filter_map(|c| c.points.last().map(|p| p.control))
        .sum::<f64>()
        / n;
    let auc = curves.iter().map(|c| c.auc).sum::<f64>() / n;
    Ok(CdSummary {
        curves,
        control,
        auc,
    })
}

/// The C/D curves of `method` on `g`, read by `regressor`, at the step scales `scales`
/// (one per matched length in `lengths`), `steps` steps each, from `codes` codes.
#[allow(clippy::too_many_arguments)]
pub fn cd_curves(
    g: &dyn Generator,
    method: &dyn Traversal,
    regressor: &FactorRegressor,
    lengths: &[f64],
    scales: &[f64],
    steps: usize,
    codes: usize,
    device: &Device,
) -> Result<CdSummary> {
    let mut matrices = Vec::with_capacity(scales.len());
    for &scale in scales {
        let cfg = FactorScoreConfig {
            codes,
            steps,
            scale,
            seed: 0,
        };
        matrices.push(change_matrix(g, method, regressor, &cfg, device)?.0);
    }
    curves_from_matrices(&regressor.config().factors, lengths, &matrices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, categorical: bool) -> FactorSpec {
        FactorSpec {
            name: name.into(),
            values: 4,
            cyclic: false,
            categorical,
        }
    }

    #[test]
    fn the_area_is_the_entanglement_per_unit_of_control() {
        // (0,0) → (0.5, 0.1) → (1, 0.3): 0.5·0.05 + 0.5·0.2 = 0.125, over C = 1.
        assert!((area(&[(0.5, 0.1), (1.0, 0.3)]) - 0.125).abs() < 1e-12);
        // (0,0) → (2, 1): area 1, over C = 2.
        assert!((area(&[(2.0, 1.0)]) - 0.5).abs() < 1e-12);
        assert_eq!(area(&[(0.0, 0.4)]), 0.0);
        assert_eq!(area(&[]), 0.0);
    }

    #[test]
    fn curves_pick_the_direction_that_moves_each_factor_most_by_hand() {
        // Factors a, b (ordered) and s (categorical); two directions, two lengths.
        let factors = [spec("a", false), spec("b", false), spec("s", true)];
        let short = vec![vec![0.4, 0.1, 0.1], vec![0.1, 0.2, 0.0]];
        let long = vec![vec![0.8, 0.2, 0.4], vec![0.3, 0.6, 0.0]];
        let s = curves_from_matrices(&factors, &[1.0, 2.0], &[short, long]).unwrap();
        assert_eq!(s.curves.len(), 2, "no curve for the categorical factor");
        let a = &s.curves[0];
        assert_eq!((a.factor.as_str(), a.direction), ("a", 0));
        assert_eq!(a.points[1].control, 0.8);
        assert!((a.points[0].entanglement - 0.1).abs() < 1e-12);
        assert!((a.points[1].entanglement - 0.3).abs() < 1e-12);
        // (0,0) → (0.4, 0.1) → (0.8, 0.3): 0.02 + 0.08 = 0.1, over 0.8.
        assert!((a.auc - 0.125).abs() < 1e-12);
        let b = &s.curves[1];
        assert_eq!(b.direction, 1);
        // b: (0,0) → (0.2, 0.05) → (0.6, 0.15): 0.005 + 0.04 = 0.045, over 0.6.
        assert!((b.auc - 0.075).abs() < 1e-12, "{}", b.auc);
        assert!((s.control - 0.7).abs() < 1e-12);
        assert!((s.auc - 0.1).abs() < 1e-12);
        assert!(curves_from_matrices(&[spec("s", true)], &[1.0], &[vec![vec![0.1]]]).is_err());
    }
}

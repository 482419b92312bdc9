//! One comparison of every method on one generator: each method folder is scored by the
//! same protocol (the VP score at one matched path length, the diversity of its
//! directions, and where a factor regressor exists the factor score and the
//! Control/Disentanglement curves), and folders of the same method (its training seeds)
//! are summarised as mean ± standard deviation.

use serde::Serialize;
use std::fmt::Write as _;

/// One method folder's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The method ("pde", "linear", "sefa", ...).
    pub method: String,
    /// Its folder.
    pub dir: String,
    /// Directions K.
    pub k: usize,
    /// VP accuracy (mean over the classifier seeds; none when left out).
    pub vp: Option<f64>,
    /// Largest |cos| between two directions' mean displacements.
    pub max_cos: f64,
    /// Factor score: the mean share of the main factor (none without a regressor).
    pub share: Option<f64>,
    /// Factor score: how many factors are some direction's main factor.
    pub distinct: Option<usize>,
    /// C/D curves: the mean control at the longest length.
    pub control: Option<f64>,
    /// C/D curves: the mean entanglement per unit of control.
    pub cd_auc: Option<f64>,
    /// The step scale that matched the path length.
    pub step_scale: f64,
}

/// Mean and (population) standard deviation; (NaN, NaN) for no values.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A method's rows summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The method.
    pub method: String,
    /// How many folders (training seeds).
    pub n: usize,
    /// VP: mean and std over the folders, when every folder has one.
    pub vp: Option<(f64, f64)>,
    /// max |cos|: mean and std.
    pub max_cos: (f64, f64),
    /// Factor share: mean and std, when every folder has one.
    pub share: Option<(f64, f64)>,
    /// Distinct main factors: mean.
    pub distinct: Option<f64>,
    /// C/D control: mean and std.
    pub control: Option<(f64, f64)>,
    /// C/D AUC: mean and std.
    pub cd_auc: Option<(f64, f64)>,
}

/// The rows grouped by method, in the order each method first appears.
pub fn summarise(rows: &[Row]) -> Vec<Summary> {
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    methods
        .into_iter()
        .map(|m| {
            let group: Vec<&Row> = rows.iter().filter(|r| r.method == m).collect();
            let of = |f: &dyn Fn(&Row) -> f64| -> Vec<f64> { group.iter().map(|r| f(r)).collect() };
            let all = |f: &dyn Fn(&Row) -> Option<f64>| -> Option<(f64, f64)> {
                let v: Option<Vec<f64>> = group.iter().map(|r| f(r)).collect();
                v.map(|v| mean_std(&v))
            };
            let shares: Option<Vec<f64>> = group.iter().map(|r| r.share).collect();
            let distinct: Option<Vec<f64>> =
                group.iter().map(|r| r.distinct.map(|d| d as f64)).collect();
            Summary {
                method: m.to_string(),
                n: group.len(),
                vp: all(&|r| r.vp),
                max_cos: mean_std(&of(&|r| r.max_cos)),
                share: shares.map(|s| mean_std(&s)),
                distinct: distinct.map(|d| mean_std(&d).0),
                control: all(&|r| r.control),
                cd_auc: all(&|r| r.cd_auc),
            }
        })
        .collect()
}

fn pm((mean, std): (f64, f64), n: usize) -> String {
    if n > 1 {
        format!("{mean:.3} ± {std:.3}")
    } else {
        format!("{mean:.3}")
    }
}

/// The summaries as a Markdown table (± only where a method has several folders).
pub fn markdown(summaries: &[Summary]) -> String {
    let mut s = String::from(
        "| method | runs | VP ↑ | max \\|cos\\| ↓ | factor share ↑ | distinct main factors ↑ | control ↑ | C/D AUC ↓ |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for m in summaries {
        let opt = |v: Option<(f64, f64)>| v.map_or("–".to_string(), |v| pm(v, m.n));
        let distinct = m.distinct.map_or("–".to_string(), |d| format!("{d:.1}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.method,
            m.n,
            opt(m.vp),
            pm(m.max_cos, m.n),
            opt(m.share),
            distinct,
            opt(m.control),
            opt(m.cd_auc)
        );
    }
    s
}

/// Every row as CSV (one line per folder).
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from("method,dir,k,vp,max_cos,share,distinct,control,cd_auc,step_scale\n");
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for r in rows {
        let _ = writeln!(
            s,
            "{},\"{}\",{},{},{:.6},{},{},{},{},{:.6}",
            r.method,
            r.dir.replace('"', "\"\""),
            r.k,
            opt(r.vp),
            r.max_cos,
            opt(r.share),
            r.distinct.map(|d| d.to_string()).unwrap_or_default(),
            opt(r.control),
            opt(r.cd_auc),
            r.step_scale
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, vp: f64, max_cos: f64, share: Option<f64>) -> Row {
        Row {
            method: method.into(),
            dir: format!("m/{method}"),
            k: 6,
            vp: Some(vp),
            max_cos,
            share,
            distinct: share.map(|_| 4),
            control: share.map(|s| s * 2.0),
            cd_auc: share.map(|s| s / 2.0),
            step_scale: 1.5,
        }
    }

    #[test]
    fn methods_with_several_runs_get_mean_and_std_and_the_table_shows_them() {
        let rows = [
            row("pde", 0.99, 0.4, Some(0.2)),
            row("sefa", 0.95, 0.0, Some(0.3)),
            row("pde", 0.97, 0.6, Some(0.3)),
        ];
        let s = summarise(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].method, "pde");
        assert_eq!(s[0].n, 2);
        let vp = s[0].vp.unwrap();
        assert!((vp.0 - 0.98).abs() < 1e-12 && (vp.1 - 0.01).abs() < 1e-12);
        assert!((s[0].max_cos.0 - 0.5).abs() < 1e-12 && (s[0].max_cos.1 - 0.1).abs() < 1e-12);
        assert_eq!(
            markdown(&s),
            "| method | runs | VP ↑ | max \\|cos\\| ↓ | factor share ↑ | distinct main factors ↑ | control ↑ | C/D AUC ↓ |\n\
             |---|---|---|---|---|---|---|---|\n\
             | pde | 2 | 0.980 ± 0.010 | 0.500 ± 0.100 | 0.250 ± 0.050 | 4.0 | 0.500 ± 0.100 | 0.125 ± 0.025 |\n\
             | sefa | 1 | 0.950 | 0.000 | 0.300 | 4.0 | 0.600 | 0.150 |\n"
        );
        // Without a regressor the factor columns are empty, in the table and the CSV.
        let s = summarise(&[row("linear", 0.9, 0.1, None)]);
        assert!(markdown(&s).contains("| linear | 1 | 0.900 | 0.100 | – | – | – | – |"));
        assert_eq!(
            csv(&[row("linear", 0.9, 0.1, None)]).lines().nth(1),
            Some("linear,\"m/linear\",6,0.900000,0.100000,,,,,1.500000")
        );
        // Without the VP score its column is empty.
        let mut r = row("sefa", 0.9, 0.0, None);
        r.vp = None;
        assert!(markdown(&summarise(&[r])).contains("| sefa | 1 | – | 0.000 |"));
    }
}

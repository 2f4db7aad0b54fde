//! The studentized range distribution (the distribution of the range of k iid N(0, 1) values
//! divided by an independent √(χ²_ν/ν)): cdf, survival function and quantile.
//!
//! Written from the description of Copenhaver & Holland (1988), *J. Statist. Comput. Simul.*
//! 30:1–15 (the scheme behind R's `ptukey`), with a change of variable that makes the outer
//! integral smooth, and checked against `scipy.stats.studentized_range` (scipy 1.17.1, an
//! adaptive `nquad` integral with epsabs 1e-11).
//!
//! **Inner integral** (Hartley's form): for w > 0,
//! P_R(w) = (2Φ(w/2) − 1)^k + 2k ∫_{w/2}^{∞} φ(y) [Φ(y) − Φ(y − w)]^{k−1} dy,
//! integrated on [w/2, 9] by composite 16-point Gauss–Legendre on panels at most 2.25 wide
//! (the tail beyond 9 is below 2k·Q(9) ≈ 2e-19·k). Φ is evaluated by
//! [`normal_upper_tail`] (a table plus Taylor series, as precise as [`super::dist::erfc`]
//! and ~10× faster).
//!
//! **Outer integral**: with S = √(χ²_ν/ν), F(q) = ∫₀^∞ f_S(s) P_R(q s) ds, where
//! f_S(s) ∝ s^{ν−1} e^{−νs²/2}. Integrating in s rather than in u = 2s² (R's variable)
//! removes the √u behaviour at the origin: for integer ν the integrand is a polynomial times
//! a Gaussian near 0, which Gauss–Legendre integrates to machine precision (for non-integer ν
//! the first panel is refined geometrically towards 0). The range is cut where ln f_S falls
//! 45 below its mode (relative mass < 1e-19) and split into [`OUTER_PANELS`] equal panels,
//! merged with breakpoints s = w/q for w = 18·j/8, the scale on which P_R(qs) rises from 0
//! to 1 (this matters for large q with small ν); each piece gets 16 points. The result is
//! divided by ∫f_S on the same nodes, so the density's normalising constant (lnΓ(ν/2), large
//! for large ν) is never needed.
//!
//! **Accuracy** (checked in the tests): against the fixture's 280 scipy cdf values
//! (k = 2..20, ν = 2..1e6) the largest error is ~1e-14, and against 240 further scipy cdf values
//! (k up to 100, ν = 1, 1.5, 3, …, 99 999, q up to 40) ~1e-11, which is scipy's own
//! integration tolerance. Validated for k ≤ 100.
//!
//! **Large ν**: like scipy (which switches at ν > 100 000; R's `ptukey` at 25 000), ν ≥
//! [`ASYMPTOTIC_DF`] uses the ν = ∞ form P_R(q). The finite-ν value differs from it by
//! O(1/ν) (≈ 2e-6 at ν = 1e6, k = 20, q = 4.5); we follow scipy so that results agree with it.
//!
//! **Quantile**: bracketed (doubling from 1) and solved with Brent's method on F(q) − p to
//! 1e-12 absolute.

use super::dist::{erf, norm_sf};
use super::quad::{brent, GaussLegendre};
use super::{Result, StatsError};
use std::sync::OnceLock;

/// Gauss–Legendre points per panel (inner and outer integrals).
pub const GL_POINTS: usize = 16;
/// Widest panel of the inner (range) integral on [w/2, 9].
pub const INNER_PANEL_WIDTH: f64 = 2.25;
/// Equal panels of the outer (chi) integral, before the P_R breakpoints are merged in.
pub const OUTER_PANELS: usize = 8;
/// Breakpoints s = w/q for w = 18·j/W_PANELS, j = 1..=W_PANELS.
const W_PANELS: usize = 8;
/// Geometric refinement towards s = 0 for non-integer ν (panels halving 40 times).
const GRADING_LEVELS: i32 = 40;
/// From this many degrees of freedom on, the ν = ∞ form is used (scipy's threshold).
pub const ASYMPTOTIC_DF: f64 = 100_000.0;
/// Upper limit of the inner integral.
const Y_MAX: f64 = 9.0;
/// ln-density drop that bounds the outer integration range.
const LOG_CUT: f64 = 45.0;
/// Grid step and end of the tabulated normal tail.
const TABLE_STEP: f64 = 1.0 / 32.0;
const TABLE_MAX: f64 = 9.5;

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

fn rule() -> &'static GaussLegendre {
    static RULE: OnceLock<GaussLegendre> = OnceLock::new();
    RULE.get_or_init(|| GaussLegendre::new(GL_POINTS))
}

/// Q(z_j) and φ(z_j) at z_j = j/32, j = 0..=304, from the precise [`norm_sf`].
fn normal_table() -> &'static (Vec<f64>, Vec<f64>) {
    static TABLE: OnceLock<(Vec<f64>, Vec<f64>)> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = (TABLE_MAX / TABLE_STEP).round() as usize;
        (0..=n)
            .map(|j| {
                let z = j as f64 * TABLE_STEP;
                (norm_sf(z), (-0.5 * z * z).exp() * FRAC_1_SQRT_2PI)
            })
            .unzip()
    })
}

/// Fast standard normal upper tail Q(z) with the precision of [`norm_sf`]: the nearest
/// tabulated point z_j (|δ| = |z − z_j| ≤ 1/64) and the Taylor series
/// Q(z_j + δ) = Q(z_j) − φ(z_j) Σₙ (−1)ⁿ Heₙ(z_j) δⁿ⁺¹/(n + 1)!  (Heₙ: Hermite polynomials,
/// since dⁿφ/dzⁿ = (−1)ⁿ Heₙ φ), summed to n = 13.
pub fn normal_upper_tail(z: f64) -> f64 {
    if z < 0.0 {
        return 1.0 - normal_upper_tail(-z);
    }
    if z.is_nan() || z > TABLE_MAX {
        return norm_sf(z);
    }
    let (qt, phit) = normal_table();
    let j = (z / TABLE_STEP).round() as usize;
    let (q0, phi0) = match (qt.get(j), phit.get(j)) {
        (Some(q), Some(p)) => (*q, *p),
        _ => return norm_sf(z),
    };
    let zj = j as f64 * TABLE_STEP;
    let d = z - zj;
    if d == 0.0 {
        return q0;
    }
    // n = 0 term: He₀ δ / 1!
    let mut pow = d;
    let mut sum = d;
    let (mut he_prev, mut he) = (1.0, zj);
    // A fixed number of terms: single terms can vanish (Heₙ(z_j) = 0), so no early exit.
    // For |z| ≤ 9.5 and |δ| ≤ 1/64 the term n = 13 is below 1e-30 φ(z_j).
    for n in 1..14 {
        pow *= d / (n + 1) as f64;
        sum += if n % 2 == 0 { he * pow } else { -he * pow };
        let next = zj * he - n as f64 * he_prev;
        he_prev = he;
        he = next;
    }
    q0 - phi0 * sum
}

/// P(range of k iid standard normals ≤ w), k ≥ 2 (the ν = ∞ studentized range cdf).
pub fn normal_range_cdf(w: f64, k: f64) -> f64 {
    if w.is_nan() {
        return f64::NAN;
    }
    if w <= 0.0 {
        return 0.0;
    }
    let h = 0.5 * w;
    if h >= Y_MAX {
        return 1.0;
    }
    let first = erf(h / std::f64::consts::SQRT_2).powf(k);
    let km1 = k - 1.0;
    let panels = ((Y_MAX - h) / INNER_PANEL_WIDTH).ceil().max(1.0) as usize;
    let integral = rule().integrate(h, Y_MAX, panels, |y| {
        let bracket = normal_upper_tail(y - w) - normal_upper_tail(y);
        if bracket <= 0.0 {
            return 0.0;
        }
        (-0.5 * y * y).exp() * FRAC_1_SQRT_2PI * bracket.powf(km1)
    });
    (first + 2.0 * k * integral).clamp(0.0, 1.0)
}

fn check_args(func: &'static str, k: usize, df: f64) -> Result<()> {
    if k < 2 {
        return Err(StatsError::InvalidArgument {
            func,
            name: "k",
            value: k.to_string(),
            expected: "k >= 2 groups",
        });
    }
    if df.is_nan() || df < 1.0 {
        return Err(StatsError::InvalidArgument {
            func,
            name: "df",
            value: df.to_string(),
            expected: "df >= 1",
        });
    }
    Ok(())
}

/// The density of S = √(χ²_ν/ν) up to a constant: ln f(s) = (ν − 1) ln s − νs²/2 − ln f(mode).
/// The constant is not needed because the cdf is normalised by ∫f on the same nodes.
struct ChiDensity {
    nu: f64,
    mode: f64,
    ln_mode: f64,
}

impl ChiDensity {
    fn new(nu: f64) -> Self {
        let mode = ((nu - 1.0) / nu).max(0.0).sqrt();
        let mut d = ChiDensity {
            nu,
            mode,
            ln_mode: 0.0,
        };
        d.ln_mode = d.ln_pdf(mode);
        d
    }

    fn ln_pdf(&self, s: f64) -> f64 {
        let log_s_term = if self.nu == 1.0 {
            0.0
        } else if s <= 0.0 {
            return f64::NEG_INFINITY;
        } else {
            (self.nu - 1.0) * s.ln()
        };
        log_s_term - 0.5 * self.nu * s * s - self.ln_mode
    }

    /// Bisection for the point between `inside` (above the cut) and `outside` (below it).
    fn cut_point(&self, mut inside: f64, mut outside: f64) -> f64 {
        for _ in 0..200 {
            let m = 0.5 * (inside + outside);
            if m == inside || m == outside {
                break;
            }
            if self.ln_pdf(m) > -LOG_CUT {
                inside = m;
            } else {
                outside = m;
            }
        }
        0.5 * (inside + outside)
    }

    /// [lo, hi] outside of which the density is below e^−45 of its maximum.
    fn range(&self) -> (f64, f64) {
        let lo = if self.ln_pdf(0.0) > -LOG_CUT {
            0.0
        } else {
            self.cut_point(self.mode, 0.0)
        };
        let mut step = self.mode.max(1.0);
        while self.ln_pdf(self.mode + step) > -LOG_CUT {
            step *= 2.0;
        }
        (lo, self.cut_point(self.mode, self.mode + step))
    }
}

/// Breakpoints of the outer integral: [`OUTER_PANELS`] equal panels of [lo, hi] (the scale of
/// the chi density) merged with s = w/q for w = 18·j/8 (the scale on which P_R(q s) rises
/// from 0 to 1), so that every panel is smooth on its own scale. For non-integer ν the
/// density behaves like s^{ν−1} at 0; the first panel is then refined geometrically towards 0
/// (hp-refinement), which restores full precision.
fn outer_breakpoints(lo: f64, hi: f64, q: f64, nu: f64) -> Vec<f64> {
    let mut pts: Vec<f64> = (0..=OUTER_PANELS)
        .map(|i| lo + (hi - lo) * i as f64 / OUTER_PANELS as f64)
        .collect();
    for j in 1..=W_PANELS {
        let s = 2.0 * Y_MAX * j as f64 / W_PANELS as f64 / q;
        if s > lo && s < hi {
            pts.push(s);
        }
    }
    pts.sort_by(f64::total_cmp);
    pts.dedup();
    if nu.fract() != 0.0 && lo < 1e-3 * hi {
        if let Some(&first) = pts.get(1) {
            for j in 1..=GRADING_LEVELS {
                pts.push(lo + (first - lo) * 0.5f64.powi(j));
            }
            pts.sort_by(f64::total_cmp);
            pts.dedup();
        }
    }
    pts
}

fn cdf_unchecked(q: f64, k: f64, df: f64) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q <= 0.0 {
        return 0.0;
    }
    if q.is_infinite() {
        return 1.0;
    }
    if df >= ASYMPTOTIC_DF {
        return normal_range_cdf(q, k);
    }
    let dens = ChiDensity::new(df);
    let (lo, hi) = dens.range();
    let rule = rule();
    let (mut num, mut den) = (0.0, 0.0);
    for pair in outer_breakpoints(lo, hi, q, df).windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
        for (x, w) in rule.nodes.iter().zip(&rule.weights) {
            let s = c + h * x;
            let fw = w * h * dens.ln_pdf(s).exp();
            den += fw;
            if fw > 0.0 {
                num += fw * normal_range_cdf(q * s, k);
            }
        }
    }
    if den > 0.0 {
        (num / den).clamp(0.0, 1.0)
    } else {
        f64::NAN
    }
}

/// Cdf P(Q ≤ q) of the studentized range with `k` groups (k ≥ 2) and `df` degrees of freedom
/// (df ≥ 1; `f64::INFINITY` allowed). Absolute accuracy ~1e-13.
pub fn studentized_range_cdf(q: f64, k: usize, df: f64) -> Result<f64> {
    check_args("studentized_range_cdf", k, df)?;
    Ok(cdf_unchecked(q, k as f64, df))
}

/// Survival function P(Q > q) = 1 − cdf (the Tukey HSD p-value, as scipy's
/// `studentized_range.sf`); absolute accuracy ~1e-13.
pub fn studentized_range_sf(q: f64, k: usize, df: f64) -> Result<f64> {
    check_args("studentized_range_sf", k, df)?;
    Ok(1.0 - cdf_unchecked(q, k as f64, df))
}

/// Quantile: the q with P(Q ≤ q) = p, for p in [0, 1) (p = 0 gives 0), to 1e-12 absolute.
pub fn studentized_range_quantile(p: f64, k: usize, df: f64) -> Result<f64> {
    const FN: &str = "studentized_range_quantile";
    check_args(FN, k, df)?;
    if !(0.0..1.0).contains(&p) {
        return Err(StatsError::InvalidArgument {
            func: FN,
            name: "p",
            value: p.to_string(),
            expected: "0 <= p < 1",
        });
    }
    if p == 0.0 {
        return Ok(0.0);
    }
    let kf = k as f64;
    let g = |x: f64| cdf_unchecked(x, kf, df) - p;
    let (mut lo, mut glo) = (0.0, -p);
    let mut hi = 1.0;
    let mut ghi = g(hi);
    while ghi < 0.0 {
        if hi > 1e7 {
            return Err(StatsError::InvalidArgument {
                func: FN,
                name: "p",
                value: p.to_string(),
                expected: "p far enough below 1 that the quantile is below 1e7",
            });
        }
        lo = hi;
        glo = ghi;
        hi *= 2.0;
        ghi = g(hi);
    }
    brent(g, lo, hi, glo, ghi, 1e-12).ok_or(StatsError::Degenerate {
        func: FN,
        reason: format!("no root bracketed for p = {p}, k = {k}, df = {df}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn research_note_vectors() {
        // Research note A4 (scipy): qtukey(.95, 3, 12) = 3.772929.
        let q = studentized_range_quantile(0.95, 3, 12.0).unwrap();
        assert!((q - 3.772929).abs() < 1e-6, "{q}");
        // k = 2, ν = ∞: the range of two normals is √2·|Z|, so P(R ≤ w) = 2Φ(w/√2) − 1.
        let w = 2.5;
        let exact = erf(w / 2.0);
        assert!((studentized_range_cdf(w, 2, f64::INFINITY).unwrap() - exact).abs() < 1e-14);
        // k = 2, ν = 2 has a closed form: Q/√2 = |t₂|, and P(|t₂| ≤ t) = t/√(2 + t²); at
        // q = 1.5, t² = 1.125 and t/√3.125 = 0.6 exactly (the fixture's scipy value is 0.6).
        let v = studentized_range_cdf(1.5, 2, 2.0).unwrap();
        assert!((v - 0.6).abs() < 1e-13, "{v}");
    }

    #[test]
    fn fast_normal_tail_matches_precise_one() {
        // z from −12.6 to 12.6 in steps that fall between the table points. Both sides carry
        // ~1e-16 absolute error (1 − erf below z = 2√2), hence 5e-16.
        for i in -4000..=4000 {
            let z = i as f64 * 0.003_141_59;
            let (fast, precise) = (normal_upper_tail(z), norm_sf(z));
            let err = (fast - precise).abs();
            assert!(
                err <= 5e-16 + 1e-14 * precise,
                "z = {z}: {fast} vs {precise}"
            );
        }
    }

    #[test]
    fn extra_scipy_points() {
        // 240 cdf and 96 ppf values of scipy.stats.studentized_range (scipy 1.17.1) outside
        // the main fixture: k = 2, 3, 7, 20, 50, 100; ν = 1, 1.5, 3, 7, 30, 250, 5000, 99999;
        // q = 0.2, 2, 5, 12, 40; p = 0.5, 0.999 (tests/fixtures/stats/studentized_range_extra.json,
        // made by tests/fixtures/stats/make_extra.py).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/stats/studentized_range_extra.json"
        );
        let pts: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (mut worst_cdf, mut worst_ppf) = (0.0f64, 0.0f64);
        let n_cdf = pts.iter().filter(|p| p.get("cdf").is_some()).count();
        assert_eq!((n_cdf, pts.len() - n_cdf), (240, 96));
        for p in &pts {
            let k = p["k"].as_u64().unwrap() as usize;
            let df = p["df"].as_f64().unwrap();
            if let Some(want) = p["cdf"].as_f64() {
                let q = p["q"].as_f64().unwrap();
                let got = studentized_range_cdf(q, k, df).unwrap();
                assert!(
                    (got - want).abs() < 1e-9,
                    "cdf({q}, {k}, {df}) = {got} vs {want}"
                );
                worst_cdf = worst_cdf.max((got - want).abs());
            } else {
                let pr = p["p"].as_f64().unwrap();
                let want = p["ppf"].as_f64().unwrap();
                let got = studentized_range_quantile(pr, k, df).unwrap();
                assert!(
                    (got - want).abs() < 1e-6 * want.max(1.0),
                    "ppf({pr}, {k}, {df}) = {got} vs {want}"
                );
                worst_ppf = worst_ppf.max((got - want).abs() / want.max(1.0));
            }
        }
        eprintln!("extra points: max cdf err {worst_cdf:e}, max rel ppf err {worst_ppf:e}");
    }

    #[test]
    fn bad_arguments() {
        assert!(studentized_range_cdf(1.0, 1, 10.0).is_err());
        assert!(studentized_range_cdf(1.0, 3, 0.5).is_err());
        assert!(studentized_range_quantile(1.0, 3, 10.0).is_err());
        assert!(studentized_range_quantile(f64::NAN, 3, 10.0).is_err());
        assert_eq!(studentized_range_cdf(-1.0, 3, 10.0).unwrap(), 0.0);
        assert_eq!(studentized_range_quantile(0.0, 3, 10.0).unwrap(), 0.0);
    }
}

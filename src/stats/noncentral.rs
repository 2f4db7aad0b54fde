//! Noncentral t and noncentral F distributions (both tails), and central t and F quantiles
//! (checked to 1e-12 relative), for power analysis ([`super::power`]) and effect-size confidence
//! intervals ([`super::effect_sizes`]). Checked against `scipy.stats.nct` / `ncf` (Boost) in
//! `src/stats/power_tests.rs`.
//!
//! **Regularized incomplete beta.** [`ibeta`] returns I_x(a, b) and its complement
//! 1 − I_x(a, b) = I_y(b, a) from x and y = 1 − x given separately (so that neither tail is
//! formed by subtraction): the prefactor xᵃ yᵇ / (a B(a, b)) (for parameters ≥ 15 by
//! Stirling's series with the large terms cancelled analytically:
//! a·ln(x(a + b)/a) + b·ln(y(a + b)/b) + ½·ln(ab/(2π(a + b))) + Stirling
//! remainders; otherwise from log-gamma), times the
//! continued fraction of Numerical Recipes §6.4 (modified Lentz), evaluated on the side where
//! it converges fast (x < (a + 1)/(a + b + 2)); the other tail is 1 minus it.
//!
//! **Noncentral F** with d₁, d₂ degrees of freedom and noncentrality λ is a Poisson(λ/2)
//! mixture of scaled beta variables. With y = d₁x/(d₁x + d₂), 1 − y = d₂/(d₁x + d₂) and
//! wⱼ = e^{−λ/2}(λ/2)ʲ/j!:
//! cdf(x) = Σⱼ wⱼ I_y(d₁/2 + j, d₂/2),  sf(x) = Σⱼ wⱼ I_{1−y}(d₂/2, d₁/2 + j).
//! Both are sums of positive terms. The sum starts at the Poisson mode ⌊λ/2⌋ (weight from
//! log-gamma) and goes outward in both directions (weights by the recurrences
//! wⱼ₊₁ = wⱼ·(λ/2)/(j + 1), wⱼ₋₁ = wⱼ·j/(λ/2)) until a term and the Poisson weight are both
//! below 1e-17 of the running sum; at most [`MAX_TERMS`] terms each way.
//!
//! **Noncentral t** with ν degrees of freedom and noncentrality δ (Guenther 1978; Lenth 1989,
//! AS 243): for t ≥ 0, with x = t²/(t² + ν), 1 − x = ν/(t² + ν), μ = δ²/2,
//! Pⱼ = e^{−μ}μʲ/j! and Qⱼ = (δ/√2)·e^{−μ}μʲ/Γ(j + 3/2),
//! cdf(t) = Φ(−δ) + ½ Σⱼ [Pⱼ I_x(j + ½, ν/2) + Qⱼ I_x(j + 1, ν/2)],
//! sf(t) = ½ Σⱼ [Pⱼ I_{1−x}(ν/2, j + ½) + Qⱼ I_{1−x}(ν/2, j + 1)]
//! (the second from the first because ½ Σⱼ (Pⱼ + Qⱼ) = Φ(δ)), summed from the mode of μ
//! outward as for F. For t < 0, cdf(t; ν, δ) = sf(−t; ν, −δ). When δ ≥ 0 (after the
//! reflection) every term is positive and both tails have full relative precision. When the
//! signs of t and δ differ, the Qⱼ are negative and the far tail (P(T > t) for t > 0 > δ) would
//! be accurate to ~1e-16 absolute only: when it is below 1e-3 (and ν ≥ 1) it is computed instead
//! as the positive integral E[Q(t·U + |δ|)], U = √(χ²_ν/ν), Q the normal upper tail (see
//! `nct_far_tail`), good to ~1e-13 relative; for ν < 1 it stays absolute. At t = 0 the result
//! is exact: (Φ(−δ), Φ(δ)).
//!
//! **Central quantiles.** [`t_isf`] and [`f_isf`] invert the upper tails (computed with
//! [`ibeta`]) by Brent's method ([`super::quad::brent`]) on a bracket found by doubling,
//! to ~4e-16 relative in x (`statrs`' `inverse_cdf` is not used).
//!
//! Every function checks its arguments and returns a [`StatsError`] instead of a NaN; the
//! noncentrality is limited to λ (or δ²) ≤ 1e5 and the F numerator df to ≤ 1e6, which keeps
//! every evaluation bounded (a few ms); the series honour Ctrl-C.

use super::dist::norm_sf;
use super::quad::brent;
use super::{Result, StatsError};
use statrs::function::gamma::ln_gamma;

/// Most terms summed in each direction from the Poisson mode (the sums need about
/// 40·√(λ/2) + 50 terms; the arguments are limited to λ ≤ [`MAX_NONCENTRALITY`]).
pub const MAX_TERMS: usize = 200_000;

/// Largest accepted noncentrality λ of F (and δ² of t).
pub const MAX_NONCENTRALITY: f64 = 1.0e5;

/// Largest accepted numerator degrees of freedom of the noncentral F (with both df near 1e15
/// the incomplete betas need ~10⁷ continued-fraction steps each; power analysis and effect
/// sizes use df_num = k − 1).
pub const MAX_DF_NUM: f64 = 1.0e6;

/// Most continued-fraction steps in [`ibeta`].
const MAX_CF: usize = 100_000;

/// Regularized incomplete beta: `(I_x(a, b), 1 − I_x(a, b))` for a, b > 0, from x and
/// y = 1 − x (both in [0, 1], given separately to keep the small one exact).
pub fn ibeta(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    let ln_pre = ln_prefactor(a, b, x, y);
    if x < (a + 1.0) / (a + b + 2.0) {
        let v = (ln_pre.exp() * betacf(a, b, x, y) / a).clamp(0.0, 1.0);
        (v, 1.0 - v)
    } else {
        let v = (ln_pre.exp() * betacf(b, a, y, x) / b).clamp(0.0, 1.0);
        (1.0 - v, v)
    }
}

/// The Stirling remainder e(z) = ln Γ(z) − ((z − ½) ln z − z + ½ ln 2π), for z ≥ 15 (five
/// terms of the asymptotic series; the first omitted one is below 3e-16).
fn stirling_err(z: f64) -> f64 {
    let r = 1.0 / z;
    let r2 = r * r;
    r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 / 1188.0))))
}

/// ln(xᵃ yᵇ / B(a, b)), y = 1 − x. For large parameters the log-gammas are not subtracted
/// (that would lose ~|ln Γ|·ε): with Stirling's formula the large parts cancel analytically,
/// a·ln x + … becomes a·ln(1 + (x·b − y·a)/a) + …, which is small near the peak.
fn ln_prefactor(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const BIG: f64 = 15.0;
    let ln_x = if x < 0.5 { x.ln() } else { (-y).ln_1p() };
    let ln_y = if y < 0.5 { y.ln() } else { (-x).ln_1p() };
    if a >= BIG && b >= BIG {
        let c = a + b;
        a * ((x * b - y * a) / a).ln_1p()
            + b * ((y * a - x * b) / b).ln_1p()
            + 0.5 * (a * b / (2.0 * std::f64::consts::PI * c)).ln()
            + stirling_err(c)
            - stirling_err(a)
            - stirling_err(b)
    } else if a >= BIG || b >= BIG {
        // l the large parameter (its variable xl), s the small one (xs).
        let (l, s, xl, xs, ln_xs) = if a >= BIG {
            (a, b, x, y, ln_y)
        } else {
            (b, a, y, x, ln_x)
        };
        l * ((xl * s - xs * l) / l).ln_1p() - 0.5 * (s / l).ln_1p() + s * (ln_xs + (l + s).ln())
            - s
            - ln_gamma(s)
            + stirling_err(l + s)
            - stirling_err(l)
    } else {
        a * ln_x + b * ln_y + ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b)
    }
}

/// The continued fraction of I_x(a, b) (modified Lentz), for x < (a + 1)/(a + b + 2).
fn betacf(a: f64, b: f64, x: f64, _y: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_CF {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() <= 1e-16 {
            break;
        }
    }
    h
}

fn bad(func: &'static str, name: &'static str, value: f64, expected: &'static str) -> StatsError {
    StatsError::InvalidArgument {
        func,
        name,
        value: value.to_string(),
        expected,
    }
}

fn check_df(func: &'static str, name: &'static str, df: f64) -> Result<()> {
    if df > 0.0 && df.is_finite() {
        Ok(())
    } else {
        Err(bad(
            func,
            name,
            df,
            "a positive, finite number of degrees of freedom",
        ))
    }
}

/// Upper tail P(T > t) of Student's t with `df` degrees of freedom (full relative precision).
pub fn t_sf(t: f64, df: f64) -> Result<f64> {
    check_df("t_sf", "df", df)?;
    if t.is_nan() {
        return Err(bad("t_sf", "t", t, "a number"));
    }
    if t.is_infinite() {
        return Ok(if t > 0.0 { 0.0 } else { 1.0 });
    }
    let t2 = t * t;
    // I_{ν/(ν+t²)}(ν/2, ½) = P(|T| > |t|).
    let (two_tail, inner) = ibeta(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2));
    Ok(if t >= 0.0 {
        0.5 * two_tail
    } else {
        0.5 + 0.5 * inner
    })
}

/// Upper tail P(F > f) of the F distribution with `(d1, d2)` degrees of freedom.
pub fn f_sf(f: f64, d1: f64, d2: f64) -> Result<f64> {
    check_df("f_sf", "df_num", d1)?;
    check_df("f_sf", "df_denom", d2)?;
    if f.is_nan() {
        return Err(bad("f_sf", "f", f, "a number"));
    }
    if f <= 0.0 {
        return Ok(1.0);
    }
    if f.is_infinite() {
        return Ok(0.0);
    }
    let s = d1 * f + d2;
    Ok(ibeta(d2 / 2.0, d1 / 2.0, d2 / s, d1 * f / s).0)
}

/// Solves `sf(x) = p` for a decreasing `sf` on (lo, ∞), with sf(lo) ≥ p: doubles `hi` from
/// `start` until sf(hi) < p, then Brent.
fn invert_sf(
    func: &'static str,
    sf: impl Fn(f64) -> Result<f64>,
    p: f64,
    lo: f64,
    start: f64,
) -> Result<f64> {
    let mut hi = start;
    let mut f_hi = sf(hi)? - p;
    let mut a = lo;
    let mut f_a = sf(lo)? - p;
    let mut steps = 0;
    while f_hi > 0.0 {
        a = hi;
        f_a = f_hi;
        hi *= 2.0;
        f_hi = sf(hi)? - p;
        steps += 1;
        if steps > 2000 || !hi.is_finite() {
            return Err(StatsError::Degenerate {
                func,
                reason: format!("no quantile found for tail probability {p}"),
            });
        }
    }
    let mut err = None;
    let root = brent(
        |x| match sf(x) {
            Ok(v) => v - p,
            Err(e) => {
                err.get_or_insert(e);
                0.0
            }
        },
        a,
        hi,
        f_a,
        f_hi,
        1e-300,
    );
    if let Some(e) = err {
        return Err(e);
    }
    root.ok_or_else(|| StatsError::Degenerate {
        func,
        reason: format!("root finding failed for tail probability {p}"),
    })
}

fn check_p(func: &'static str, p: f64) -> Result<()> {
    if p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(bad(func, "p", p, "0 < p < 1"))
    }
}

/// The t with P(T > t) = p (scipy `t.isf(p, df)`), 0 < p < 1.
pub fn t_isf(p: f64, df: f64) -> Result<f64> {
    check_p("t_isf", p)?;
    check_df("t_isf", "df", df)?;
    if p == 0.5 {
        return Ok(0.0);
    }
    if p > 0.5 {
        return Ok(-t_isf(1.0 - p, df)?);
    }
    invert_sf("t_isf", |x| t_sf(x, df), p, 0.0, 1.0)
}

/// The f with P(F > f) = p (scipy `f.isf(p, d1, d2)`), 0 < p < 1.
pub fn f_isf(p: f64, d1: f64, d2: f64) -> Result<f64> {
    check_p("f_isf", p)?;
    check_df("f_isf", "df_num", d1)?;
    check_df("f_isf", "df_denom", d2)?;
    invert_sf("f_isf", |x| f_sf(x, d1, d2), p, 0.0, 1.0)
}

/// Both tails `(cdf, sf)` of a Poisson(μ) mixture Σⱼ wⱼ·(lowerⱼ, upperⱼ), where `term(j)`
/// gives the pair for component j; summed from the mode outward.
/// Stops a Poisson series that has run `n` terms without converging, and honours Ctrl-C.
fn series_budget(func: &'static str, n: usize, mu: f64) -> Result<()> {
    if n >= MAX_TERMS {
        return Err(StatsError::Degenerate {
            func,
            reason: format!("the series did not converge in {MAX_TERMS} terms (mean {mu})"),
        });
    }
    if n.is_multiple_of(1024) {
        crate::interrupt::check()?;
    }
    Ok(())
}

fn poisson_mixture(
    func: &'static str,
    mu: f64,
    mut term: impl FnMut(usize) -> (f64, f64),
) -> Result<(f64, f64)> {
    let mode = mu.floor();
    let w0 = if mu == 0.0 {
        1.0
    } else {
        (-mu + mode * mu.ln() - ln_gamma(mode + 1.0)).exp()
    };
    let mode = mode as usize;
    let (mut lo_sum, mut up_sum) = (0.0, 0.0);
    let (l, u) = term(mode);
    lo_sum += w0 * l;
    up_sum += w0 * u;
    const EPS: f64 = 1e-17;
    // Forward.
    let mut w = w0;
    let mut j = mode;
    let mut n = 0;
    loop {
        w *= mu / (j + 1) as f64;
        j += 1;
        n += 1;
        if w == 0.0 || !w.is_finite() {
            break;
        }
        let (l, u) = term(j);
        lo_sum += w * l;
        up_sum += w * u;
        // Beyond the mode the weights fall; a term and its weight both negligible end it.
        if w * l <= EPS * lo_sum && w * u <= EPS * up_sum && w <= EPS * lo_sum.max(up_sum) {
            break;
        }
        series_budget(func, n, mu)?;
    }
    // Backward.
    let mut w = w0;
    let mut j = mode;
    let mut n = 0;
    while j > 0 {
        w *= j as f64 / mu;
        j -= 1;
        n += 1;
        if w == 0.0 {
            break;
        }
        let (l, u) = term(j);
        lo_sum += w * l;
        up_sum += w * u;
        // Terms are at most the weight (lowerⱼ, upperⱼ ≤ 1) and weights fall geometrically.
        if w <= EPS * lo_sum && w <= EPS * up_sum {
            break;
        }
        series_budget(func, n, mu)?;
    }
    Ok((lo_sum, up_sum))
}

fn check_nc(func: &'static str, name: &'static str, nc: f64, max: f64) -> Result<()> {
    if nc.is_finite() && nc.abs() <= max {
        Ok(())
    } else {
        Err(bad(
            func,
            name,
            nc,
            "a finite noncentrality within the supported range (λ or δ² at most 1e5)",
        ))
    }
}

/// `(cdf, sf)` of the noncentral F with `d1`, `d2` degrees of freedom and noncentrality
/// `lambda` ≥ 0 at `x` (scipy `ncf.cdf`, `ncf.sf`).
pub fn ncf_cdf_sf(x: f64, d1: f64, d2: f64, lambda: f64) -> Result<(f64, f64)> {
    const FN: &str = "ncf";
    check_df(FN, "df_num", d1)?;
    if d1 > MAX_DF_NUM {
        return Err(bad(
            FN,
            "df_num",
            d1,
            "at most 1e6 numerator degrees of freedom",
        ));
    }
    check_df(FN, "df_denom", d2)?;
    check_nc(FN, "noncentrality", lambda, MAX_NONCENTRALITY)?;
    if lambda < 0.0 {
        return Err(bad(FN, "noncentrality", lambda, "λ ≥ 0"));
    }
    if x.is_nan() {
        return Err(bad(FN, "x", x, "a number"));
    }
    if x <= 0.0 {
        return Ok((0.0, 1.0));
    }
    if x.is_infinite() {
        return Ok((1.0, 0.0));
    }
    let s = d1 * x + d2;
    let (y, y1) = (d1 * x / s, d2 / s);
    let (a, b) = (d1 / 2.0, d2 / 2.0);
    let (cdf, sf) = poisson_mixture(FN, lambda / 2.0, |j| ibeta(a + j as f64, b, y, y1))?;
    Ok((cdf.clamp(0.0, 1.0), sf.clamp(0.0, 1.0)))
}

/// P(F ≤ x) of the noncentral F (see [`ncf_cdf_sf`]).
pub fn ncf_cdf(x: f64, d1: f64, d2: f64, lambda: f64) -> Result<f64> {
    Ok(ncf_cdf_sf(x, d1, d2, lambda)?.0)
}

/// P(F > x) of the noncentral F (see [`ncf_cdf_sf`]).
pub fn ncf_sf(x: f64, d1: f64, d2: f64, lambda: f64) -> Result<f64> {
    Ok(ncf_cdf_sf(x, d1, d2, lambda)?.1)
}

/// ln of the density of U = √(V/ν), V ~ χ²_ν: ln 2 + (ν/2)ln(ν/2) − ln Γ(ν/2) + (ν − 1)ln u −
/// νu²/2; for ν ≥ 30 in the form ln 2 + ½ln(ν/(4π)) − e(ν/2) − ln u + (ν/2)(2(ln(1 + w) − w) − w²),
/// w = u − 1, so that no large terms cancel.
fn ln_chi_density(u: f64, nu: f64) -> f64 {
    if u <= 0.0 {
        return if nu == 1.0 {
            (2.0 / std::f64::consts::PI).sqrt().ln()
        } else {
            f64::NEG_INFINITY
        };
    }
    if nu >= 30.0 {
        let w = u - 1.0;
        std::f64::consts::LN_2 + 0.5 * (nu / (4.0 * std::f64::consts::PI)).ln()
            - stirling_err(nu / 2.0)
            - u.ln()
            + 0.5 * nu * (2.0 * (w.ln_1p() - w) - w * w)
    } else {
        std::f64::consts::LN_2 + 0.5 * nu * (nu / 2.0).ln() - ln_gamma(nu / 2.0)
            + (nu - 1.0) * u.ln()
            - 0.5 * nu * u * u
    }
}

/// P(T > t) for t > 0 and δ = −a < 0 (ν ≥ 1) as the integral E[Q(t·U + a)] over the density of
/// U = √(V/ν): every contribution is positive, so the far tail keeps its relative precision
/// (the series subtracts O(1) terms there). The integrand is log-concave: its mode is found by
/// golden-section search, the range where it is above e⁻⁶⁰ of the mode by bisection, and the
/// range is integrated by 64 panels of 20-point Gauss–Legendre. A mode below e⁻⁸⁰⁰ gives 0; a
/// non-finite integral (not seen in tests) falls back to the `series` value.
fn nct_far_tail(t: f64, nu: f64, a: f64, series: f64) -> f64 {
    let h = |u: f64| norm_sf(t * u + a).ln() + ln_chi_density(u, nu);
    // The density's mode is below 1 and Q falls with u, so the mode of h is in [0, 1].
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..200 {
        let (m1, m2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if h(m1) < h(m2) {
            lo = m1;
        } else {
            hi = m2;
        }
        if hi - lo <= 1e-15 {
            break;
        }
    }
    let mode = 0.5 * (lo + hi);
    let peak = h(mode);
    // The integral is at most e^peak times the range length (< 1e6): below e^-800 it is 0.
    if !peak.is_finite() || peak < -800.0 {
        return 0.0;
    }
    let cut = peak - 60.0;
    // Left end: 0 if h(0) is above the cut, else bisection on [0, mode].
    let left = if h(0.0) >= cut {
        0.0
    } else {
        let (mut a0, mut b0) = (0.0, mode);
        for _ in 0..200 {
            let m = 0.5 * (a0 + b0);
            if h(m) < cut {
                a0 = m;
            } else {
                b0 = m;
            }
        }
        a0
    };
    let mut right = mode + 1.0;
    while h(right) >= cut && right < 1e6 {
        right *= 2.0;
    }
    let (mut a0, mut b0) = (mode, right);
    for _ in 0..200 {
        let m = 0.5 * (a0 + b0);
        if h(m) >= cut {
            a0 = m;
        } else {
            b0 = m;
        }
    }
    let right = b0;
    let integral = super::quad::gl20().integrate(left, right, 64, |u| (h(u) - peak).exp());
    let v = peak.exp() * integral;
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        series
    }
}

/// `(cdf, sf)` of the noncentral t for t ≥ 0 (any δ).
fn nct_nonneg(t: f64, df: f64, delta: f64) -> Result<(f64, f64)> {
    let t2 = t * t;
    let (x, x1) = (t2 / (t2 + df), df / (t2 + df));
    let mu = delta * delta / 2.0;
    let b = df / 2.0;
    // Qⱼ/Pⱼ = (δ/√2)·j!/Γ(j + 3/2), computed in logs per term.
    let c = delta / std::f64::consts::SQRT_2;
    let (series_lo, series_up) = poisson_mixture("nct", mu, |j| {
        let jf = j as f64;
        let ratio = c * (ln_gamma(jf + 1.0) - ln_gamma(jf + 1.5)).exp();
        let (p_lo, p_up) = ibeta(jf + 0.5, b, x, x1);
        let (q_lo, q_up) = ibeta(jf + 1.0, b, x, x1);
        (p_lo + ratio * q_lo, p_up + ratio * q_up)
    })?;
    let cdf = norm_sf(delta) + 0.5 * series_lo;
    let mut sf = 0.5 * series_up;
    if delta < 0.0 && sf < 1e-3 && df >= 1.0 {
        // The series lost the relative precision of this far tail.
        sf = nct_far_tail(t, df, -delta, sf);
    }
    Ok((cdf.clamp(0.0, 1.0), sf.clamp(0.0, 1.0)))
}

/// `(cdf, sf)` of the noncentral t with `df` degrees of freedom and noncentrality `delta` at
/// `t` (scipy `nct.cdf`, `nct.sf`).
pub fn nct_cdf_sf(t: f64, df: f64, delta: f64) -> Result<(f64, f64)> {
    const FN: &str = "nct";
    check_df(FN, "df", df)?;
    check_nc(FN, "noncentrality", delta, MAX_NONCENTRALITY.sqrt())?;
    if t.is_nan() {
        return Err(bad(FN, "t", t, "a number"));
    }
    if t.is_infinite() {
        return Ok(if t > 0.0 { (1.0, 0.0) } else { (0.0, 1.0) });
    }
    if delta == 0.0 {
        let sf = t_sf(t, df)?;
        let cdf = t_sf(-t, df)?;
        return Ok((cdf, sf));
    }
    if t == 0.0 {
        // P(T ≤ 0) = P(Z + δ ≤ 0), exactly, without the series' cancellation for δ < 0.
        return Ok((norm_sf(delta), norm_sf(-delta)));
    }
    if t > 0.0 {
        nct_nonneg(t, df, delta)
    } else {
        let (c, s) = nct_nonneg(-t, df, -delta)?;
        Ok((s, c))
    }
}

/// P(T ≤ t) of the noncentral t (see [`nct_cdf_sf`]).
pub fn nct_cdf(t: f64, df: f64, delta: f64) -> Result<f64> {
    Ok(nct_cdf_sf(t, df, delta)?.0)
}

/// P(T > t) of the noncentral t (see [`nct_cdf_sf`]).
pub fn nct_sf(t: f64, df: f64, delta: f64) -> Result<f64> {
    Ok(nct_cdf_sf(t, df, delta)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_tails_and_quantiles() {
        // scipy.stats.t.sf(2.0, 10) = 0.03669401738537018; t.isf(0.025, 4) = 2.7764451051977934
        assert!((t_sf(2.0, 10.0).unwrap() - 0.03669401738537018).abs() < 1e-16);
        let q = t_isf(0.025, 4.0).unwrap();
        assert!((q - 2.7764451051977934).abs() < 1e-14 * q, "{q}");
        // scipy.stats.f.isf(0.05, 2, 27) = 3.3541308285291986
        let q = f_isf(0.05, 2.0, 27.0).unwrap();
        assert!((q - 3.3541308285291986).abs() < 1e-13 * q, "{q}");
        assert_eq!(t_isf(0.5, 3.0).unwrap(), 0.0);
        assert!(t_isf(1.0, 3.0).is_err() && f_isf(0.05, 0.0, 3.0).is_err());
    }

    #[test]
    fn noncentral_zero_reduces_to_central() {
        let (c, s) = ncf_cdf_sf(2.5, 3.0, 20.0, 0.0).unwrap();
        assert!((s - f_sf(2.5, 3.0, 20.0).unwrap()).abs() < 1e-16 && (c + s - 1.0).abs() < 1e-15);
        let (c, s) = nct_cdf_sf(1.3, 7.0, 1e-300).unwrap();
        assert!((s - t_sf(1.3, 7.0).unwrap()).abs() < 1e-15 && (c + s - 1.0).abs() < 1e-15);
        assert!(ncf_sf(1.0, 2.0, 3.0, -1.0).is_err());
        assert!(ncf_sf(1.0, 2.0, 3.0, f64::NAN).is_err());
        assert!(nct_sf(f64::NAN, 2.0, 1.0).is_err());
    }

    #[test]
    fn extreme_arguments_give_probabilities_or_errors() {
        // Every combination ends (bounded series and continued fractions) with a probability
        // pair in [0, 1] or an error, never a NaN.
        let xs = [
            0.0,
            1e-300,
            1e-8,
            0.5,
            1.0,
            7.0,
            1e8,
            1e300,
            f64::INFINITY,
            -3.0,
        ];
        let dfs = [1e-3, 0.5, 1.0, 30.0, 1e6, 1e15];
        let ncs = [0.0, 1e-12, 0.3, 40.0, 2e4, 1e5, 1.1e5];
        for &x in &xs {
            for &d1 in &dfs {
                for &d2 in &dfs {
                    for &nc in &ncs {
                        if let Ok((c, s)) = ncf_cdf_sf(x, d1, d2, nc) {
                            assert!(
                                (0.0..=1.0).contains(&c) && (0.0..=1.0).contains(&s),
                                "ncf({x}, {d1}, {d2}, {nc}) = ({c}, {s})"
                            );
                        } else {
                            assert!(
                                nc > MAX_NONCENTRALITY || d1 > MAX_DF_NUM,
                                "ncf({x}, {d1}, {d2}, {nc})"
                            );
                        }
                    }
                }
                for &nc in &ncs {
                    for delta in [nc.sqrt(), -nc.sqrt()] {
                        match nct_cdf_sf(x, d1, delta) {
                            Ok((c, s)) => assert!(
                                (0.0..=1.0).contains(&c) && (0.0..=1.0).contains(&s),
                                "nct({x}, {d1}, {delta}) = ({c}, {s})"
                            ),
                            Err(_) => assert!(delta * delta > MAX_NONCENTRALITY),
                        }
                    }
                }
            }
        }
        for p in [1e-300, 1e-10, 0.3, 0.999999] {
            for &df in &dfs {
                assert!(t_isf(p, df).unwrap().is_finite());
                // The 1e-300 quantile of F(0.001, 3) is beyond the largest double: an error.
                match f_isf(p, df, 3.0) {
                    Ok(q) => assert!(q.is_finite() && q >= 0.0, "f_isf({p}, {df}) = {q}"),
                    Err(e) => assert!(p < 1e-100, "f_isf({p}, {df}): {e}"),
                }
            }
        }
    }
}

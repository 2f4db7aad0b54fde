//! Numerical building blocks for the studentized range distribution: Gauss–Legendre rules
//! (nodes by Newton's iteration on the Legendre recurrence, the textbook method, e.g.
//! Press et al., *Numerical Recipes* §4.6), composite Gauss–Legendre integration, and Brent's
//! bracketed root finder (Brent 1973, *Algorithms for Minimization without Derivatives*,
//! ch. 4: inverse quadratic interpolation / secant with bisection safeguards).

use std::sync::OnceLock;

/// An n-point Gauss–Legendre rule on [−1, 1]: nodes ascending, with their weights.
#[derive(Debug, Clone)]
pub struct GaussLegendre {
    /// Nodes in (−1, 1), ascending.
    pub nodes: Vec<f64>,
    /// Weights (sum 2).
    pub weights: Vec<f64>,
}

impl GaussLegendre {
    /// Computes the n-point rule (n ≥ 1) to full double precision.
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let mut nodes = vec![0.0; n];
        let mut weights = vec![0.0; n];
        let nf = n as f64;
        for i in 0..n.div_ceil(2) {
            // Initial guess of the i-th largest root (Tricomi), then Newton.
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
            let mut dp = 1.0;
            for _ in 0..100 {
                let (p, d) = legendre_and_derivative(n, x);
                dp = d;
                let dx = p / d;
                x -= dx;
                if dx.abs() <= 1e-16 {
                    break;
                }
            }
            let (_, d) = legendre_and_derivative(n, x);
            if d.is_finite() {
                dp = d;
            }
            let w = 2.0 / ((1.0 - x * x) * dp * dp);
            nodes[n - 1 - i] = x;
            nodes[i] = -x;
            weights[n - 1 - i] = w;
            weights[i] = w;
        }
        GaussLegendre { nodes, weights }
    }

    /// ∫ₐᵇ f by this rule on `panels` equal panels.
    pub fn integrate(&self, a: f64, b: f64, panels: usize, mut f: impl FnMut(f64) -> f64) -> f64 {
        let panels = panels.max(1);
        let h = (b - a) / panels as f64;
        let mut total = 0.0;
        for p in 0..panels {
            let c = a + (p as f64 + 0.5) * h;
            let mut s = 0.0;
            for (x, w) in self.nodes.iter().zip(&self.weights) {
                s += w * f(c + 0.5 * h * x);
            }
            total += 0.5 * h * s;
        }
        total
    }
}

/// P_n(x) and P_n'(x) by the three-term recurrence.
fn legendre_and_derivative(n: usize, x: f64) -> (f64, f64) {
    let mut p0 = 1.0;
    let mut p1 = x;
    for j in 2..=n {
        let jf = j as f64;
        let p2 = ((2.0 * jf - 1.0) * x * p1 - (jf - 1.0) * p0) / jf;
        p0 = p1;
        p1 = p2;
    }
    if n == 1 {
        return (x, 1.0);
    }
    let d = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, d)
}

/// The shared 20-point rule.
pub fn gl20() -> &'static GaussLegendre {
    static RULE: OnceLock<GaussLegendre> = OnceLock::new();
    RULE.get_or_init(|| GaussLegendre::new(20))
}

/// Brent's method: a root of `f` in [a, b] given f(a) and f(b) of opposite signs (or zero),
/// to an absolute tolerance `xtol` (plus 2ε|x|). Returns `None` if the bracket is invalid.
pub fn brent(
    mut f: impl FnMut(f64) -> f64,
    mut a: f64,
    mut b: f64,
    mut fa: f64,
    mut fb: f64,
    xtol: f64,
) -> Option<f64> {
    if fa == 0.0 {
        return Some(a);
    }
    if fb == 0.0 {
        return Some(b);
    }
    if !(fa.is_finite() && fb.is_finite()) || (fa > 0.0) == (fb > 0.0) {
        return None;
    }
    let (mut c, mut fc) = (a, fa);
    let mut d = b - a;
    let mut e = d;
    for _ in 0..200 {
        if (fb > 0.0) == (fc > 0.0) {
            c = a;
            fc = fa;
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol1 = 2.0 * f64::EPSILON * b.abs() + 0.5 * xtol;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol1 || fb == 0.0 {
            return Some(b);
        }
        if e.abs() >= tol1 && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                // Secant step.
                p = 2.0 * xm * s;
                q = 1.0 - s;
            } else {
                // Inverse quadratic interpolation.
                let qq = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * xm * qq * (qq - r) - (b - a) * (r - 1.0));
                q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if 2.0 * p < (3.0 * xm * q - (tol1 * q).abs()).min((e * q).abs()) {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        a = b;
        fa = fb;
        b += if d.abs() > tol1 { d } else { tol1.copysign(xm) };
        fb = f(b);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gl_nodes_match_published_tables() {
        // Positive 12- and 16-point nodes/weights quoted (15 digits) in the research note A2.
        let r = GaussLegendre::new(12);
        assert!((r.nodes[11] - 0.981560634246719).abs() < 1e-14);
        assert!((r.weights[11] - 0.047175336386512).abs() < 1e-14);
        assert!((r.nodes[6] - 0.125233408511469).abs() < 1e-14);
        assert!((r.weights[6] - 0.249147045813403).abs() < 1e-14);
        let r = GaussLegendre::new(16);
        assert!((r.nodes[15] - 0.989400934991650).abs() < 1e-14);
        assert!((r.weights[8] - 0.189450610455068).abs() < 1e-14);
        // The weights sum to 2 and the rule is exact for x^38 (degree 2n − 1 = 39).
        let g = gl20();
        assert!((g.weights.iter().sum::<f64>() - 2.0).abs() < 1e-14);
        let v = g.integrate(0.0, 1.0, 1, |x| x.powi(38));
        assert!((v - 1.0 / 39.0).abs() < 1e-15);
        // Composite: ∫₀^π sin = 2.
        assert!((g.integrate(0.0, std::f64::consts::PI, 3, f64::sin) - 2.0).abs() < 1e-14);
    }

    #[test]
    fn brent_finds_roots() {
        let f = |x: f64| x * x * x - 2.0;
        let r = brent(f, 0.0, 2.0, f(0.0), f(2.0), 1e-14).unwrap();
        assert!((r - 2f64.cbrt()).abs() < 1e-13);
        assert!(brent(f, 2.0, 3.0, f(2.0), f(3.0), 1e-14).is_none());
    }
}

//! Small dense symmetric linear algebra for the mixed model (matrices of the size of the
//! fixed-effect design or of the random-effect levels, tens to hundreds): a row-major
//! square matrix, Cholesky factorisation, solves, log-determinant and inverse.

// Dense matrix code indexes several arrays with the same indices; iterators would obscure it.
#![allow(clippy::needless_range_loop)]

/// A dense row-major square matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    /// Number of rows (= columns).
    pub n: usize,
    /// Entries, row-major.
    pub a: Vec<f64>,
}

impl Mat {
    /// The n × n zero matrix.
    pub fn zeros(n: usize) -> Mat {
        Mat {
            n,
            a: vec![0.0; n * n],
        }
    }

    /// The n × n identity.
    pub fn eye(n: usize) -> Mat {
        let mut m = Mat::zeros(n);
        for i in 0..n {
            m.a[i * n + i] = 1.0;
        }
        m
    }

    /// Entry (i, j).
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    /// Mutable entry (i, j).
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f64 {
        &mut self.a[i * self.n + j]
    }
}

/// A Cholesky factor L (lower triangular, row-major) with A = L Lᵀ.
#[derive(Debug, Clone)]
pub struct Cholesky {
    l: Mat,
}

impl Cholesky {
    /// Factorises a symmetric matrix; `None` when it is not positive definite (a pivot
    /// below `1e-13` times the largest diagonal entry, which also catches singular designs).
    pub fn new(m: &Mat) -> Option<Cholesky> {
        let n = m.n;
        let scale = (0..n).map(|i| m.at(i, i).abs()).fold(0.0, f64::max);
        let mut l = Mat::zeros(n);
        for j in 0..n {
            let mut d = m.at(j, j);
            for k in 0..j {
                d -= l.at(j, k) * l.at(j, k);
            }
            if d.is_nan() || d <= 1e-13 * scale {
                return None;
            }
            let d = d.sqrt();
            *l.at_mut(j, j) = d;
            for i in j + 1..n {
                let mut s = m.at(i, j);
                for k in 0..j {
                    s -= l.at(i, k) * l.at(j, k);
                }
                *l.at_mut(i, j) = s / d;
            }
        }
        Some(Cholesky { l })
    }

    /// log det A = 2 Σ log Lᵢᵢ.
    pub fn logdet(&self) -> f64 {
        (0..self.l.n).map(|i| self.l.at(i, i).ln()).sum::<f64>() * 2.0
    }

    /// Solves A x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.l.n;
        let mut y = b.to_vec();
        for i in 0..n {
            let mut s = y[i];
            for k in 0..i {
                s -= self.l.at(i, k) * y[k];
            }
            y[i] = s / self.l.at(i, i);
        }
        for i in (0..n).rev() {
            let mut s = y[i];
            for k in i + 1..n {
                s -= self.l.at(k, i) * y[k];
            }
            y[i] = s / self.l.at(i, i);
        }
        y
    }

    /// Solves A X = B for the columns of `b`, given as `cols` columns of length n
    /// (column-major `b[c * n + i]`).
    pub fn solve_cols(&self, b: &[f64], cols: usize) -> Vec<f64> {
        let n = self.l.n;
        let mut out = Vec::with_capacity(n * cols);
        for c in 0..cols {
            out.extend(self.solve(&b[c * n..(c + 1) * n]));
        }
        out
    }

    /// A⁻¹.
    pub fn inverse(&self) -> Mat {
        let n = self.l.n;
        let mut inv = Mat::zeros(n);
        let mut e = vec![0.0; n];
        for j in 0..n {
            e.iter_mut().for_each(|x| *x = 0.0);
            e[j] = 1.0;
            let col = self.solve(&e);
            for (i, v) in col.into_iter().enumerate() {
                *inv.at_mut(i, j) = v;
            }
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_inverts_a_hand_checked_matrix() {
        // A = [[4, 2], [2, 3]]: det 8, A⁻¹ = [[3, -2], [-2, 4]] / 8.
        let a = Mat {
            n: 2,
            a: vec![4.0, 2.0, 2.0, 3.0],
        };
        let c = Cholesky::new(&a).unwrap();
        assert!((c.logdet() - 8f64.ln()).abs() < 1e-15);
        let x = c.solve(&[2.0, 1.0]);
        // x = A⁻¹ b = [(6 - 2)/8, (-4 + 4)/8] = [0.5, 0]
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15);
        let inv = c.inverse();
        assert!((inv.at(0, 0) - 0.375).abs() < 1e-15);
        assert!((inv.at(0, 1) + 0.25).abs() < 1e-15);
        assert!((inv.at(1, 1) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn singular_and_indefinite_matrices_are_refused() {
        let singular = Mat {
            n: 2,
            a: vec![1.0, 1.0, 1.0, 1.0],
        };
        assert!(Cholesky::new(&singular).is_none());
        let indefinite = Mat {
            n: 2,
            a: vec![1.0, 2.0, 2.0, 1.0],
        };
        assert!(Cholesky::new(&indefinite).is_none());
        let nan = Mat {
            n: 1,
            a: vec![f64::NAN],
        };
        assert!(Cholesky::new(&nan).is_none());
    }
}

//! Ranking of groups from Tukey HSD decisions: a hierarchy string of the kind papers report
//! ("LoRA = DoRA = AdaLoRA > PiSSA > VeRA") and, underneath, a compact letter display (CLD).
//!
//! **Letters** — Piepho's insert-and-absorb algorithm (Piepho 2004, *J. Comput. Graph. Stat.*
//! 13:456–466; the algorithm of R `multcompView::multcompLetters`): start with one column
//! holding every group; for each significantly different pair (i, j), split every column that
//! holds both into a copy without i and a copy without j, then drop columns contained in
//! another. Two groups share a letter exactly when they are not significantly different.
//! Columns are lettered a, b, c, … in order of their highest-ranked member (then the next
//! members), so the best group gets "a".
//!
//! **Hierarchy string** — the groups sorted by mean, descending (ties in order of first
//! appearance), cut greedily into *runs*: a group joins the current run if it is not
//! significantly different from every member of the run; the groups of a run are joined by
//! " = " and are therefore pairwise indistinguishable. Between runs the separator is
//! " > " when the two neighbouring groups differ significantly, and " >= " when they do not —
//! the non-transitive case: with A = B, B = C but A > C the string is "A = B >= C" (C is tied
//! with its neighbour B but not with A, so it starts a new run). The letters (A "a", B "ab",
//! C "b") show the full picture.

use super::tukey::TukeyHsd;
use crate::table::Table;
use crate::value::{num, Row, Value};

/// A ranking of groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The hierarchy string, e.g. "LoRA = DoRA > VeRA".
    pub hierarchy: String,
    /// Group names by mean, descending.
    pub order: Vec<String>,
    /// Means in the same order.
    pub means: Vec<f64>,
    /// Compact letters in the same order (e.g. "a", "ab", "b").
    pub letters: Vec<String>,
}

impl Ranking {
    /// A table with one row per group (best first): `group, mean, letters`.
    pub fn to_table(&self) -> Table {
        let rows = self
            .order
            .iter()
            .zip(&self.means)
            .zip(&self.letters)
            .map(|((g, m), l)| {
                let mut r = Row::new();
                r.insert("group".into(), Value::String(g.clone()));
                r.insert("mean".into(), num(*m));
                r.insert("letters".into(), Value::String(l.clone()));
                r
            })
            .collect();
        Table::from_rows(rows)
    }
}

/// Indices of the groups sorted by mean, descending; ties keep their original order.
fn order_by_mean(means: &[f64]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..means.len()).collect();
    o.sort_by(|&a, &b| means[b].total_cmp(&means[a]));
    o
}

fn letter_name(i: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    match ALPHABET.get(i) {
        Some(c) => char::from(*c).to_string(),
        None => format!("<{}>", i + 1),
    }
}

/// Compact letter display for `k` groups with means `means` and the decision
/// `differs(i, j)` (symmetric); letters are returned per group in the input order.
pub fn compact_letters(means: &[f64], differs: impl Fn(usize, usize) -> bool) -> Vec<String> {
    let k = means.len();
    let mut columns: Vec<Vec<bool>> = vec![vec![true; k]];
    for i in 0..k {
        for j in i + 1..k {
            if !differs(i, j) {
                continue;
            }
            // Insert: split every column holding both i and j.
            let mut next = Vec::with_capacity(columns.len() + 1);
            for col in columns {
                if col[i] && col[j] {
                    let mut without_i = col.clone();
                    without_i[i] = false;
                    let mut without_j = col;
                    without_j[j] = false;
                    next.push(without_i);
                    next.push(without_j);
                } else {
                    next.push(col);
                }
            }
            // Absorb: drop empty columns and columns contained in another (keep the first of
            // equal ones).
            let mut kept: Vec<Vec<bool>> = Vec::with_capacity(next.len());
            for (c, col) in next.iter().enumerate() {
                let empty = !col.iter().any(|&b| b);
                let absorbed = next.iter().enumerate().any(|(d, other)| {
                    d != c
                        && col.iter().zip(other).all(|(&x, &y)| !x || y)
                        && (col != other || d < c)
                });
                if !empty && !absorbed {
                    kept.push(col.clone());
                }
            }
            columns = kept;
        }
    }
    // Order the columns by the mean ranks of their members (best first).
    let order = order_by_mean(means);
    let mut rank = vec![0; k];
    for (r, &g) in order.iter().enumerate() {
        rank[g] = r;
    }
    let mut keyed: Vec<(Vec<usize>, Vec<bool>)> = columns
        .into_iter()
        .map(|col| {
            let mut key: Vec<usize> = (0..k).filter(|&g| col[g]).map(|g| rank[g]).collect();
            key.sort_unstable();
            (key, col)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    (0..k)
        .map(|g| {
            keyed
                .iter()
                .enumerate()
                .filter(|(_, (_, col))| col[g])
                .map(|(l, _)| letter_name(l))
                .collect()
        })
        .collect()
}

/// Ranking of named groups with means `means` from the decision `differs(i, j)`.
pub fn ranking_from_decisions(
    names: &[String],
    means: &[f64],
    differs: impl Fn(usize, usize) -> bool,
) -> Ranking {
    let order = order_by_mean(means);
    let letters = compact_letters(means, &differs);
    let mut hierarchy = String::new();
    let mut run: Vec<usize> = Vec::new();
    for (pos, &g) in order.iter().enumerate() {
        let name = names.get(g).map_or("?", String::as_str);
        if pos > 0 {
            let prev = order[pos - 1];
            if run.iter().all(|&m| !differs(m, g)) {
                hierarchy.push_str(" = ");
            } else {
                hierarchy.push_str(if differs(prev, g) { " > " } else { " >= " });
                run.clear();
            }
        }
        run.push(g);
        hierarchy.push_str(name);
    }
    Ranking {
        hierarchy,
        order: order
            .iter()
            .map(|&g| names.get(g).cloned().unwrap_or_default())
            .collect(),
        means: order.iter().map(|&g| means[g]).collect(),
        letters: order.iter().map(|&g| letters[g].clone()).collect(),
    }
}

/// Ranking from a Tukey HSD result (decision: `reject` of the pair).
pub fn ranking(hsd: &TukeyHsd) -> Ranking {
    ranking_from_decisions(&hsd.groups, &hsd.means, |i, j| hsd.differs(i, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// Builds a symmetric decision function from a list of differing pairs.
    fn pairs(p: &'static [(usize, usize)]) -> impl Fn(usize, usize) -> bool {
        move |i, j| p.iter().any(|&(a, b)| (a, b) == (i, j) || (b, a) == (i, j))
    }

    #[test]
    fn paper_shape() {
        // Groups in order of appearance: VeRA, LoRA, PiSSA, DoRA, AdaLoRA. LoRA, DoRA and
        // AdaLoRA are mutually indistinguishable; PiSSA differs from all three; VeRA differs
        // from everyone.
        let n = names(&["VeRA", "LoRA", "PiSSA", "DoRA", "AdaLoRA"]);
        let means = [0.40, 0.62, 0.55, 0.61, 0.60];
        let d = pairs(&[(0, 1), (0, 2), (0, 3), (0, 4), (2, 1), (2, 3), (2, 4)]);
        let r = ranking_from_decisions(&n, &means, d);
        assert_eq!(r.hierarchy, "LoRA = DoRA = AdaLoRA > PiSSA > VeRA");
        assert_eq!(r.letters, ["a", "a", "a", "b", "c"]);
        assert_eq!(r.order, ["LoRA", "DoRA", "AdaLoRA", "PiSSA", "VeRA"]);
    }

    #[test]
    fn non_transitive_equality() {
        // A = B, B = C, A > C (means descending A, B, C).
        let n = names(&["A", "B", "C"]);
        let r = ranking_from_decisions(&n, &[3.0, 2.0, 1.0], pairs(&[(0, 2)]));
        assert_eq!(r.hierarchy, "A = B >= C");
        assert_eq!(r.letters, ["a", "ab", "b"]);
        // Four groups, A = B = C = D along the chain, A > C, A > D, B = D:
        // runs {A, B}, {C, D}; letters by hand: split (A,C) → {ABD}{BCD}; split (A,D) on
        // {ABD} → {AB}{BD} ⊂ {BCD} absorbed → {AB}, {BCD}.
        let n = names(&["A", "B", "C", "D"]);
        let r = ranking_from_decisions(&n, &[4.0, 3.0, 2.0, 1.0], pairs(&[(0, 2), (0, 3)]));
        assert_eq!(r.hierarchy, "A = B >= C = D");
        assert_eq!(r.letters, ["a", "ab", "b", "b"]);
    }

    #[test]
    fn all_equal_and_all_different() {
        let n = names(&["x", "y", "z"]);
        let r = ranking_from_decisions(&n, &[1.0, 3.0, 2.0], |_, _| false);
        assert_eq!(r.hierarchy, "y = z = x");
        assert_eq!(r.letters, ["a", "a", "a"]);
        let r = ranking_from_decisions(&n, &[1.0, 3.0, 2.0], |i, j| i != j);
        assert_eq!(r.hierarchy, "y > z > x");
        assert_eq!(r.letters, ["a", "b", "c"]);
    }
}

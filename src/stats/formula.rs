//! Model formulas in the notation of R / patsy / lme4, for [`super::mixed`]:
//!
//! ```text
//! score ~ variant * share + C(seed_count) + (1 | seed) + (1 | language)
//! ```
//!
//! - `y ~ …`: the response, a numeric column.
//! - `a`: a column. A column of numbers is a continuous covariate; any other column (strings,
//!   booleans) is a categorical factor. `C(a)` makes a numeric column categorical.
//! - `a:b`: the interaction (product columns); `a * b` is `a + b + a:b` (and `a * b * c` all
//!   subsets). `:` binds tighter than `*`, `*` tighter than `+`.
//! - `(1 | g)`: a random intercept per level of `g` (a variance component). Several are
//!   crossed: `(1 | seed) + (1 | language)`.
//! - An intercept is always fitted; `1` may be written and means nothing more.
//!
//! Categorical factors are treatment-coded as patsy does: levels sorted (numerically when all
//! are numbers, else as text), the first one (or the `reference` the caller gives) is the
//! baseline, and the other levels get 0/1 columns named `a[T.level]` (`C(a)[T.level]`).
//! Interaction columns are the products of their factors' columns, named with `:`.
//! Terms are ordered by degree (main effects before two-way interactions …), as patsy does.
//! An interaction with a categorical factor needs all of its lower-order terms in the formula
//! (write `a * b`), so that the treatment coding stays full rank.

use super::{Result, StatsError};
use crate::table::Table;
use std::collections::BTreeMap;

const FN: &str = "mixed_lm";

/// A factor of a fixed-effect term: a column, forced categorical by `C(…)` or not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Factor {
    /// The column name.
    pub column: String,
    /// Written as `C(column)`.
    pub categorical: bool,
}

impl Factor {
    /// The factor as written in column names: `a` or `C(a)`.
    pub fn label(&self) -> String {
        if self.categorical {
            format!("C({})", self.column)
        } else {
            self.column.clone()
        }
    }
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    /// The response column.
    pub response: String,
    /// Fixed-effect terms other than the intercept, each a set of factors in the order written,
    /// ordered by degree and then by first appearance.
    pub terms: Vec<Vec<Factor>>,
    /// Grouping columns of the random intercepts, in order of appearance.
    pub groups: Vec<String>,
}

fn err(formula: &str, pos: usize, message: impl Into<String>) -> StatsError {
    StatsError::Formula {
        func: FN,
        formula: formula.to_string(),
        column: pos + 1,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(String),
    Sym(char),
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.')
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().map(|x| x.1).collect();
            out.push((pos, Tok::Ident(s)));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().map(|x| x.1).collect();
            out.push((pos, Tok::Num(s)));
        } else if "~+*:()|-".contains(c) {
            out.push((pos, Tok::Sym(c)));
            i += 1;
        } else {
            return Err(err(src, pos, format!("unexpected character {c:?}")));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.1)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|t| t.0).unwrap_or(self.src.len())
    }

    fn expect_sym(&mut self, c: char, what: &str) -> Result<()> {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.i += 1;
            Ok(())
        } else {
            Err(err(self.src, self.pos(), format!("expected {what}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(err(self.src, self.pos(), format!("expected {what}"))),
        }
    }

    fn factor(&mut self) -> Result<Factor> {
        let pos = self.pos();
        let name = self.ident("a column name")?;
        if name == "C" && self.peek() == Some(&Tok::Sym('(')) {
            self.i += 1;
            let column = self.ident("a column name inside C(…)")?;
            self.expect_sym(')', "')' closing C(…)")?;
            return Ok(Factor {
                column,
                categorical: true,
            });
        }
        if self.peek() == Some(&Tok::Sym('(')) {
            return Err(err(
                self.src,
                pos,
                format!("unknown function {name}(…); only C(column) is supported"),
            ));
        }
        Ok(Factor {
            column: name,
            categorical: false,
        })
    }

    /// `f1 : f2 : …` → one term.
    fn interaction(&mut self) -> Result<Vec<Factor>> {
        let mut t = vec![self.factor()?];
        while self.peek() == Some(&Tok::Sym(':')) {
            self.i += 1;
            t.push(self.factor()?);
        }
        let mut uniq: Vec<Factor> = Vec::new();
        for f in t {
            if !uniq.contains(&f) {
                uniq.push(f);
            }
        }
        Ok(uniq)
    }

    /// `i1 * i2 * …` → all unions of non-empty subsets.
    fn product(&mut self) -> Result<Vec<Vec<Factor>>> {
        let mut acc = vec![self.interaction()?];
        while self.peek() == Some(&Tok::Sym('*')) {
            self.i += 1;
            let next = self.interaction()?;
            let mut grown = acc.clone();
            grown.push(next.clone());
            for a in &acc {
                let mut u = a.clone();
                for f in &next {
                    if !u.contains(f) {
                        u.push(f.clone());
                    }
                }
                grown.push(u);
            }
            acc = grown;
        }
        Ok(acc)
    }
}

/// Whether two terms have the same factors (`a:b` is `b:a`).
fn same_term(a: &[Factor], b: &[Factor]) -> bool {
    a.len() == b.len() && a.iter().all(|f| b.contains(f))
}

/// Parses `response ~ terms + (1 | group) …`.
pub fn parse(src: &str) -> Result<Formula> {
    let toks = tokenize(src)?;
    let mut p = Parser { src, toks, i: 0 };
    let response = p.ident("the response column before '~'")?;
    p.expect_sym('~', "'~' after the response")?;
    let mut terms: Vec<Vec<Factor>> = Vec::new();
    // Where each term was first written (for errors).
    let mut term_pos: Vec<usize> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    loop {
        let pos = p.pos();
        match p.peek().cloned() {
            Some(Tok::Sym('(')) => {
                p.i += 1;
                match p.peek() {
                    Some(Tok::Num(n)) if n == "1" => p.i += 1,
                    _ => {
                        return Err(err(
                            src,
                            p.pos(),
                            "expected '1 | group' (only random intercepts are supported)",
                        ))
                    }
                }
                p.expect_sym('|', "'|' in (1 | group)")?;
                let g = p.ident("a grouping column after '|'")?;
                p.expect_sym(')', "')' closing (1 | group)")?;
                if groups.contains(&g) {
                    return Err(err(src, pos, format!("(1 | {g}) appears twice")));
                }
                groups.push(g);
            }
            Some(Tok::Num(n)) if n == "1" => p.i += 1,
            Some(Tok::Num(n)) if n == "0" => return Err(err(
                src,
                pos,
                "models without an intercept are not supported (the intercept is always fitted)",
            )),
            Some(Tok::Sym('-')) => {
                return Err(err(
                    src,
                    pos,
                    "removing terms with '-' is not supported (the intercept is always fitted)",
                ))
            }
            Some(Tok::Ident(_)) => {
                for t in p.product()? {
                    if !terms.iter().any(|x| same_term(x, &t)) {
                        terms.push(t);
                        term_pos.push(pos);
                    }
                }
            }
            _ => return Err(err(src, pos, "expected a term, (1 | group) or 1")),
        }
        match p.peek() {
            None => break,
            Some(Tok::Sym('+')) => p.i += 1,
            _ => return Err(err(src, p.pos(), "expected '+' or the end of the formula")),
        }
    }
    let mut order: Vec<usize> = (0..terms.len()).collect();
    order.sort_by_key(|&i| terms[i].len());
    let term_pos: Vec<usize> = order.iter().map(|&i| term_pos[i]).collect();
    let terms: Vec<Vec<Factor>> = order.iter().map(|&i| terms[i].clone()).collect();
    for (t, &pos) in terms.iter().zip(&term_pos) {
        if t.iter().any(|f| f.column == response) {
            return Err(err(
                src,
                pos,
                format!("the response '{response}' also appears as a predictor"),
            ));
        }
    }
    for (t, &pos) in terms.iter().zip(&term_pos).filter(|(t, _)| t.len() > 1) {
        for skip in 0..t.len() {
            let sub: Vec<Factor> = t
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, f)| f.clone())
                .collect();
            if !terms.iter().any(|x| same_term(x, &sub)) {
                let name = |t: &[Factor]| t.iter().map(Factor::label).collect::<Vec<_>>();
                return Err(err(
                    src,
                    pos,
                    format!(
                        "the interaction {} needs its lower-order term {} in the formula (write {})",
                        name(t).join(":"),
                        name(&sub).join(":"),
                        name(t).join(" * ")
                    ),
                ));
            }
        }
    }
    for g in &groups {
        if let Some(k) = terms.iter().position(|t| t.iter().any(|f| &f.column == g)) {
            return Err(err(
                src,
                term_pos[k],
                format!(
                    "'{g}' is both a fixed effect and a random intercept (1 | {g}): the variance of its intercepts cannot be told apart from its fixed effects; use one or the other"
                ),
            ));
        }
        if *g == response {
            return Err(err(
                src,
                0,
                format!("the response '{g}' is also a grouping factor"),
            ));
        }
    }
    Ok(Formula {
        response,
        terms,
        groups,
    })
}

/// A categorical column: its levels (reference first) and each row's level index.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// Level names, the reference first.
    pub names: Vec<String>,
    /// Level index of each row.
    pub codes: Vec<usize>,
}

/// Levels of a key column, sorted as patsy sorts them (numerically when every label is a
/// number), with `reference` moved first.
pub fn levels(keys: &[String], reference: Option<&str>, column: &str) -> Result<Levels> {
    let mut names: Vec<String> = keys.to_vec();
    names.sort();
    names.dedup();
    let nums: Option<Vec<f64>> = names.iter().map(|s| s.parse::<f64>().ok()).collect();
    if let Some(nums) = nums {
        let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(names).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        names = pairs.into_iter().map(|p| p.1).collect();
    }
    if let Some(r) = reference {
        let i = names
            .iter()
            .position(|n| n == r)
            .ok_or_else(|| StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "reference level {r:?} is not a level of '{column}' (levels: {})",
                    names.join(", ")
                ),
            })?;
        let r = names.remove(i);
        names.insert(0, r);
    }
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let codes = keys.iter().map(|k| index[k.as_str()]).collect();
    Ok(Levels { names, codes })
}

/// The fixed-effect design and grouping factors of a formula over a table.
#[derive(Debug, Clone)]
pub struct Design {
    /// Response values.
    pub y: Vec<f64>,
    /// Column names, `Intercept` first.
    pub names: Vec<String>,
    /// Design columns (each of the length of `y`), `Intercept` first.
    pub columns: Vec<Vec<f64>>,
    /// Random-intercept grouping factors: (column name, levels).
    pub groups: Vec<(String, Levels)>,
}

/// Builds the design of `f` over `t`. `reference` maps a categorical column to its baseline
/// level.
pub fn design(t: &Table, f: &Formula, reference: &BTreeMap<String, String>) -> Result<Design> {
    let y = t.numeric_column_for(FN, &f.response)?;
    for col in reference.keys() {
        let used = f.terms.iter().flatten().any(|x| &x.column == col);
        if !used {
            return Err(StatsError::Degenerate {
                func: FN,
                reason: format!(
                    "reference given for '{col}', which is not a factor in the formula"
                ),
            });
        }
    }
    // Columns of each factor: (name suffix list, values).
    let mut cache: BTreeMap<Factor, Vec<(String, Vec<f64>)>> = BTreeMap::new();
    for fac in f.terms.iter().flatten() {
        if cache.contains_key(fac) {
            continue;
        }
        let numeric = if fac.categorical {
            None
        } else {
            match t.numeric_column_for(FN, &fac.column) {
                Ok(v) => Some(v),
                Err(crate::table::TableError::NonNumeric { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let cols = match numeric {
            Some(v) => {
                if reference.contains_key(&fac.column) {
                    return Err(StatsError::Degenerate {
                        func: FN,
                        reason: format!(
                            "reference given for '{}', a numeric column; write C({}) to treat it as categorical",
                            fac.column, fac.column
                        ),
                    });
                }
                vec![(fac.label(), v)]
            }
            None => {
                let keys = t.key_column(FN, &fac.column)?;
                let lv = levels(
                    &keys,
                    reference.get(&fac.column).map(String::as_str),
                    &fac.column,
                )?;
                if lv.names.len() < 2 {
                    return Err(StatsError::Degenerate {
                        func: FN,
                        reason: format!(
                            "factor '{}' has a single level ({:?}); it cannot be estimated",
                            fac.column,
                            lv.names.first().cloned().unwrap_or_default()
                        ),
                    });
                }
                (1..lv.names.len())
                    .map(|l| {
                        let v = lv
                            .codes
                            .iter()
                            .map(|&c| f64::from(u8::from(c == l)))
                            .collect();
                        (format!("{}[T.{}]", fac.label(), lv.names[l]), v)
                    })
                    .collect()
            }
        };
        cache.insert(fac.clone(), cols);
    }
    let n = y.len();
    let mut names = vec!["Intercept".to_string()];
    let mut columns = vec![vec![1.0; n]];
    for term in &f.terms {
        let mut acc: Vec<(String, Vec<f64>)> = vec![(String::new(), vec![1.0; n])];
        for fac in term {
            let mut next = Vec::new();
            for (cname, cv) in &cache[fac] {
                for (aname, av) in &acc {
                    let name = if aname.is_empty() {
                        cname.clone()
                    } else {
                        format!("{aname}:{cname}")
                    };
                    next.push((name, av.iter().zip(cv).map(|(a, b)| a * b).collect()));
                }
            }
            acc = next;
        }
        for (name, col) in acc {
            names.push(name);
            columns.push(col);
        }
    }
    let mut groups = Vec::new();
    for g in &f.groups {
        let keys = t.key_column(FN, g)?;
        let lv = levels(&keys, None, g)?;
        groups.push((g.clone(), lv));
    }
    Ok(Design {
        y,
        names,
        columns,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fac(c: &str) -> Factor {
        Factor {
            column: c.into(),
            categorical: false,
        }
    }

    #[test]
    fn parses_products_interactions_and_random_intercepts() {
        let f = parse("score ~ variant * C(share) + x + (1 | seed) + (1|language)").unwrap();
        assert_eq!(f.response, "score");
        assert_eq!(f.groups, vec!["seed", "language"]);
        let share = Factor {
            column: "share".into(),
            categorical: true,
        };
        assert_eq!(
            f.terms,
            vec![
                vec![fac("variant")],
                vec![share.clone()],
                vec![fac("x")],
                vec![fac("variant"), share],
            ]
        );
        let g = parse("y ~ a*b*c + (1|g)").unwrap();
        assert_eq!(g.terms.len(), 7);
        assert_eq!(g.terms[6], vec![fac("a"), fac("b"), fac("c")]);
    }

    #[test]
    fn formula_errors_point_at_the_problem() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert!(
            e("score variant").contains("column 7: expected '~'"),
            "{}",
            e("score variant")
        );
        assert!(e("y ~ a + (x | g)").contains("only random intercepts"));
        assert!(e("y ~ 0 + a").contains("without an intercept"));
        assert!(
            e("y ~ a:b + a").contains("column 5: the interaction a:b needs its lower-order term b")
        );
        assert!(
            e("y ~ a + b:a").contains("column 9: the interaction b:a needs"),
            "{}",
            e("y ~ a + b:a")
        );
        assert!(e("y ~ a + C(g) + (1 | g)").contains("column 9: 'g' is both a fixed effect"));
        assert!(e("y ~ log(a)").contains("unknown function log"));
        assert!(e("y ~ y + a").contains("also appears as a predictor"));
        assert!(e("y ~ a + (1|g) + (1|g)").contains("appears twice"));
        assert!(e("y ~ a $ b").contains("unexpected character '$'"));
        assert!(e("y ~ a +").contains("expected a term"));
    }

    #[test]
    fn treatment_coding_as_patsy() {
        let t = Table::from_values(vec![
            json!({"y": 1.0, "v": "lora", "s": 0.5, "g": 1}),
            json!({"y": 2.0, "v": "dora", "s": 1.0, "g": 2}),
            json!({"y": 3.0, "v": "vera", "s": 0.5, "g": 1}),
            json!({"y": 4.0, "v": "lora", "s": 1.0, "g": 2}),
        ])
        .unwrap();
        let f = parse("y ~ v * s + (1 | g)").unwrap();
        let d = design(&t, &f, &BTreeMap::new()).unwrap();
        assert_eq!(
            d.names,
            vec![
                "Intercept",
                "v[T.lora]",
                "v[T.vera]",
                "s",
                "v[T.lora]:s",
                "v[T.vera]:s"
            ]
        );
        assert_eq!(d.columns[1], vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(d.columns[4], vec![0.5, 0.0, 0.0, 1.0]);
        let mut r = BTreeMap::new();
        r.insert("v".to_string(), "lora".to_string());
        let d = design(&t, &f, &r).unwrap();
        assert_eq!(d.names[1..3], ["v[T.dora]", "v[T.vera]"]);
        assert_eq!(d.groups[0].1.names, vec!["1", "2"]);
        assert_eq!(d.groups[0].1.codes, vec![0, 1, 0, 1]);
        r.insert("v".to_string(), "qlora".to_string());
        let e = design(&t, &f, &r).unwrap_err().to_string();
        assert!(e.contains("\"qlora\" is not a level of 'v'"), "{e}");
    }

    #[test]
    fn numeric_levels_sort_numerically() {
        let keys: Vec<String> = ["10", "9", "1.5", "10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let l = levels(&keys, None, "k").unwrap();
        assert_eq!(l.names, vec!["1.5", "9", "10"]);
        assert_eq!(l.codes, vec![2, 1, 0, 2]);
    }
}

//! Seeded data mixtures, stratified samples and the Bactrian-X style language partition.
//!
//! * `mixture`: exact integer counts per source from `ratios · total` by largest-remainder
//!   rounding ([`super::sampling::largest_remainder`]), counted in examples or in tokens.
//! * `stratified_sample`: proportional allocation over the values of one field, again with
//!   largest-remainder rounding.
//! * `bactrian_partition`: the multilingual sampling of the rank×quantisation study on
//!   Bactrian-X (Li et al. 2023, parallel instructions in 52 languages): shuffle the indices
//!   `0..N` with the seed, split them into `partitions` contiguous parts (sizes as numpy's
//!   `array_split`: the first `N mod partitions` parts get one extra index), and language `i`
//!   (in the order given) takes part `i mod partitions`. With 22 languages and 10 parts every
//!   index is taken by two or three languages.

use std::collections::HashMap;
use std::str::FromStr;

use super::sampling::{choose, largest_remainder, largest_remainder_counts, permutation};
use super::{DataError, Dataset};
use crate::rng;
use crate::value::{Row, Value};

/// What a mixture's `total` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixBy {
    /// Rows.
    Examples,
    /// Tokens, as counted by a caller-supplied closure.
    Tokens,
}

impl FromStr for MixBy {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "examples" => Ok(MixBy::Examples),
            "tokens" => Ok(MixBy::Tokens),
            other => Err(DataError::Invalid {
                func: "mixture",
                msg: format!(
                    "unknown value '{other}' for 'by' (expected one of: examples, tokens)"
                ),
            }),
        }
    }
}

/// A token counter for mixtures counted in tokens (the host builds it from the model).
pub type TokenCounter<'a, E> = &'a mut dyn FnMut(&Row) -> Result<usize, E>;

/// Options of [`mixture`].
#[derive(Debug, Clone)]
pub struct MixtureOptions {
    /// One non-negative ratio per dataset; they must sum to 1 (within 1e-6).
    pub ratios: Vec<f64>,
    /// Total number of examples (or tokens) in the mixture.
    pub total: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Whether `total` counts examples or tokens.
    pub by: MixBy,
}

fn invalid(func: &'static str, msg: String) -> DataError {
    DataError::Invalid { func, msg }
}

/// The exact per-dataset budgets of a mixture: `ratios · total` rounded by largest remainder
/// (so they sum to `total`). Ratios must be finite, non-negative and sum to 1 within 1e-6.
pub fn mixture_counts(ratios: &[f64], total: usize) -> Result<Vec<usize>, DataError> {
    let sum: f64 = ratios.iter().sum();
    if ratios.iter().all(|r| r.is_finite()) && (sum - 1.0).abs() > 1e-6 {
        return Err(invalid(
            "mixture",
            format!("ratios must sum to 1 (got {sum})"),
        ));
    }
    largest_remainder(ratios, total).map_err(|m| invalid("mixture", format!("ratios: {m}")))
}

/// Mixes datasets in exact proportions.
///
/// `by: Examples`: dataset `i` contributes exactly `counts[i]` rows ([`mixture_counts`]) drawn
/// without replacement in a seeded order (`rng::derived(seed, "mixture/<i>")`); asking for more
/// rows than it has is an error. `by: Tokens`: `counts[i]` is a token budget; rows are taken in
/// the same seeded order while the running token count (from `count_tokens`) stays within the
/// budget, stopping at the first row that would exceed it (so each source gets at most its
/// budget and falls short by less than one row); a source whose rows are all used before its
/// budget is reached is an error. The selected rows of all sources are
/// then shuffled together with `rng::derived(seed, "mixture/order")`.
pub fn mixture<E: From<DataError>>(
    datasets: &[&Dataset],
    opts: &MixtureOptions,
    mut count_tokens: Option<TokenCounter<'_, E>>,
) -> Result<Dataset, E> {
    if datasets.len() != opts.ratios.len() {
        return Err(invalid(
            "mixture",
            format!(
                "{} datasets but {} ratios",
                datasets.len(),
                opts.ratios.len()
            ),
        )
        .into());
    }
    let counts = mixture_counts(&opts.ratios, opts.total)?;
    let mut picked: Vec<Row> = Vec::new();
    let mut taken = Vec::with_capacity(datasets.len());
    for (i, (d, &budget)) in datasets.iter().zip(&counts).enumerate() {
        let mut r = rng::derived(opts.seed, &format!("mixture/{i}"));
        match opts.by {
            MixBy::Examples => {
                if budget > d.len() {
                    return Err(invalid(
                        "mixture",
                        format!("dataset {i} has {} rows but {budget} are needed", d.len()),
                    )
                    .into());
                }
                let idx = choose(&mut r, d.len(), budget);
                picked.extend(idx.iter().filter_map(|&j| d.get(j).cloned()));
                taken.push(budget);
            }
            MixBy::Tokens => {
                let counter = count_tokens.as_mut().ok_or_else(|| {
                    invalid(
                        "mixture",
                        "by: \"tokens\" needs a token counter".to_string(),
                    )
                })?;
                let order = permutation(&mut r, d.len());
                let (mut used, mut rows_taken) = (0usize, 0usize);
                let mut exhausted = true;
                for &j in &order {
                    let Some(row) = d.get(j) else { continue };
                    let t = counter(row)?;
                    if used + t > budget {
                        exhausted = false;
                        break;
                    }
                    used += t;
                    rows_taken += 1;
                    picked.push(row.clone());
                }
                if exhausted && used < budget {
                    return Err(invalid(
                        "mixture",
                        format!("dataset {i} has only {used} tokens but {budget} are needed"),
                    )
                    .into());
                }
                taken.push(rows_taken);
            }
        }
    }
    let mut r = rng::derived(opts.seed, "mixture/order");
    let order = permutation(&mut r, picked.len());
    let rows: Vec<Row> = order
        .iter()
        .filter_map(|&j| picked.get(j).cloned())
        .collect();
    let by = match opts.by {
        MixBy::Examples => "examples",
        MixBy::Tokens => "tokens",
    };
    let sources: Vec<&str> = datasets
        .iter()
        .map(|d| d.source().unwrap_or("dataset"))
        .collect();
    let source = format!(
        "mixture(by={by}, budgets={counts:?}, rows={taken:?}, seed={}, sources=[{}])",
        opts.seed,
        sources.join("; ")
    );
    Ok(Dataset::with_source(rows, source))
}

/// The indices each language takes in a Bactrian-X style partition of `n` parallel rows:
/// shuffle `0..n` with `rng::derived(seed, "bactrian_partition")`, split into `partitions`
/// contiguous parts (the first `n mod partitions` parts one longer), language `i` takes the
/// `per_lang` parts `(per_lang·i + j) mod partitions`, `j < per_lang` (indices in shuffled
/// order). `per_lang = 1` is the rule as the rank×quantisation study writes it; `per_lang = 2`
/// is our resolution of its Bactrian-X-11 gap (11 languages × 2 of 10 parts = 20 % each, every
/// index in at least two languages).
pub fn bactrian_assignment(
    n: usize,
    n_langs: usize,
    partitions: usize,
    per_lang: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, DataError> {
    if partitions == 0 {
        return Err(invalid(
            "bactrian_partition",
            "partitions must be at least 1".into(),
        ));
    }
    if per_lang == 0 || per_lang > partitions {
        return Err(invalid(
            "bactrian_partition",
            format!("parts_per_lang must be in 1..={partitions} (the partitions), got {per_lang}"),
        ));
    }
    let mut r = rng::derived(seed, "bactrian_partition");
    let perm = permutation(&mut r, n);
    let (base, extra) = (n / partitions, n % partitions);
    // Only the first `n_langs` parts are ever taken: a huge `partitions` costs nothing.
    let used = partitions.min(n_langs.saturating_mul(per_lang));
    let mut parts = Vec::with_capacity(used);
    let mut start = 0;
    for p in 0..used {
        let len = base + usize::from(p < extra);
        parts.push(
            perm.get(start..start + len)
                .map(<[usize]>::to_vec)
                .unwrap_or_default(),
        );
        start += len;
    }
    Ok((0..n_langs)
        .map(|i| {
            (0..per_lang)
                .flat_map(|j| {
                    parts
                        .get((per_lang * i + j) % partitions)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect())
}

/// Bactrian-X style sampling over parallel datasets (`(language, dataset)` pairs, all of the
/// same length; language `i` is the `i`-th pair). Returns the rows of every language's part,
/// language by language, each with its `lang` field set to the language name.
pub fn bactrian_partition(
    langs: &[(String, Dataset)],
    partitions: usize,
    per_lang: usize,
    seed: u64,
) -> Result<Dataset, DataError> {
    let Some((first_lang, first)) = langs.first() else {
        return Err(invalid("bactrian_partition", "no datasets given".into()));
    };
    let n = first.len();
    for (l, d) in langs {
        if d.len() != n {
            return Err(invalid(
                "bactrian_partition",
                format!(
                    "datasets must be parallel (same length): {first_lang} has {n} rows, {l} has {}",
                    d.len()
                ),
            ));
        }
    }
    let assign = bactrian_assignment(n, langs.len(), partitions, per_lang, seed)?;
    let mut rows = Vec::new();
    for ((lang, d), idx) in langs.iter().zip(&assign) {
        for &j in idx {
            if let Some(row) = d.get(j) {
                let mut row = row.clone();
                row.insert("lang".into(), Value::String(lang.clone()));
                rows.push(row);
            }
        }
    }
    let names: Vec<&str> = langs.iter().map(|(l, _)| l.as_str()).collect();
    Ok(Dataset::with_source(
        rows,
        format!(
            "bactrian_partition(langs=[{}], partitions={partitions}, parts_per_lang={per_lang}, seed={seed})",
            names.join(", ")
        ),
    ))
}

impl Dataset {
    /// `n` rows sampled proportionally to the groups of `field` (string values without quotes
    /// as group keys; missing field is an error). Group `g` gets `n·|g|/N` rows rounded by largest
    /// remainder in exact integer arithmetic ([`largest_remainder_counts`]; ties to the group
    /// seen first), drawn without replacement with
    /// `rng::derived(seed, "stratified_sample")` group by group in order of first appearance;
    /// the result keeps the dataset's row order.
    pub fn stratified_sample(
        &self,
        n: usize,
        field: &str,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        if n > self.len() {
            return Err(invalid(
                "stratified_sample",
                format!("n = {n} exceeds the {} rows of the dataset", self.len()),
            ));
        }
        let mut keys: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for i in 0..self.len() {
            let k = self.key_of(i, field, "stratified_sample")?;
            if !groups.contains_key(&k) {
                keys.push(k.clone());
            }
            groups.entry(k).or_default().push(i);
        }
        if self.is_empty() {
            return Ok(self.take(0));
        }
        let sizes: Vec<usize> = keys
            .iter()
            .map(|k| groups.get(k).map_or(0, Vec::len))
            .collect();
        let alloc =
            largest_remainder_counts(&sizes, n).map_err(|m| invalid("stratified_sample", m))?;
        let mut r = rng::derived(seed, "stratified_sample");
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        for (k, &m) in keys.iter().zip(&alloc) {
            if let Some(g) = groups.get(k) {
                chosen.extend(choose(&mut r, g.len(), m).iter().filter_map(|&j| g.get(j)));
            }
        }
        chosen.sort_unstable();
        let rows = chosen
            .iter()
            .filter_map(|&i| self.get(i).cloned())
            .collect();
        Ok(Dataset::with_source(
            rows,
            format!(
                "{} | stratified_sample({n}, {field}, {seed})",
                self.source().unwrap_or("dataset")
            ),
        ))
    }
}

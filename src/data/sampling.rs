//! Seeded sampling primitives: uniform integers, Fisher–Yates shuffles, draws without
//! replacement and largest-remainder (Hamilton) apportionment.
//!
//! Everything draws from [`crate::rng`] (ChaCha8) through `next_u64` only, so the sequences do
//! not depend on the distribution code of a `rand` release. The shuffle is the Durstenfeld form
//! of Fisher–Yates (Knuth, TAOCP vol. 2, Algorithm 3.4.2 P); apportionment follows the
//! largest-remainder method (Hamilton/Hare–Niemeyer).

use rand::Rng as _;

use crate::rng::Rng;

/// A uniform integer in `0..n` (`n > 0`), by rejection sampling on 64-bit words so that every
/// value has exactly the same probability. Returns 0 when `n == 0`.
pub fn below(rng: &mut Rng, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let n64 = n as u64;
    // The largest multiple of n that fits in u64; words at or above it are rejected.
    let zone = u64::MAX - (u64::MAX % n64);
    loop {
        let x = rng.next_u64();
        if x < zone {
            return (x % n64) as usize;
        }
    }
}

/// Shuffles a slice in place (Fisher–Yates, from the last position down).
pub fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    let len = items.len();
    for i in (1..len).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// A uniformly random permutation of `0..n`.
pub fn permutation(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    shuffle(rng, &mut idx);
    idx
}

/// `k` distinct indices drawn uniformly from `0..n`, in the order they were drawn
/// (a partial Fisher–Yates shuffle from the front). `k` is clamped to `n`.
pub fn choose(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + below(rng, n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

/// Splits `total` into integer parts proportional to `weights` by the largest-remainder method:
/// every part gets `floor(w_i / Σw · total)`, and the units still missing go, one each, to the
/// parts with the largest fractional remainders (ties to the lower index). The parts sum to
/// `total` exactly. Weights must be finite and non-negative with a positive sum.
pub fn largest_remainder(weights: &[f64], total: usize) -> Result<Vec<usize>, String> {
    if weights.is_empty() {
        return Err("no weights given".into());
    }
    for (i, w) in weights.iter().enumerate() {
        if !w.is_finite() || *w < 0.0 {
            return Err(format!("weight {i} is {w} (must be finite and >= 0)"));
        }
    }
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 {
        return Err("weights sum to 0".into());
    }
    let quotas: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut parts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let assigned: usize = parts.iter().sum();
    let mut missing = total.saturating_sub(assigned);
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest fractional part first; the sort is stable, so ties keep the lower index first.
    let frac = |i: usize| quotas.get(i).map_or(0.0, |q| q - q.floor());
    order.sort_by(|&a, &b| frac(b).total_cmp(&frac(a)));
    let mut k = 0;
    while missing > 0 {
        if let Some(&i) = order.get(k % order.len()) {
            if let Some(p) = parts.get_mut(i) {
                *p += 1;
            }
        }
        missing -= 1;
        k += 1;
    }
    Ok(parts)
}

/// Largest-remainder apportionment of `total` units over integer `counts` (stratum sizes), in
/// exact integer arithmetic: part `i` gets `floor(c_i · total / N)` with `N = Σ c`, and the
/// units still missing go, one each, to the parts with the largest remainders
/// `c_i · total mod N` (ties to the lower index). Unlike [`largest_remainder`] on floats, equal
/// fractions are equal here: counts 1, 1, 7 of total 3 give 1, 0, 2 (remainders 1/3 each, the
/// tie goes to the first stratum), where the rounded quotients would favour the third. The
/// parts sum to `total`; `total` may not exceed `N`, so no part exceeds its count.
pub fn largest_remainder_counts(counts: &[usize], total: usize) -> Result<Vec<usize>, String> {
    let n: u128 = counts.iter().map(|&c| c as u128).sum();
    if n == 0 {
        return Err("no rows to apportion (all strata are empty)".into());
    }
    if total as u128 > n {
        return Err(format!("n = {total} exceeds the {n} rows of the strata"));
    }
    let t = total as u128;
    let mut parts: Vec<usize> = Vec::with_capacity(counts.len());
    let mut rems: Vec<u128> = Vec::with_capacity(counts.len());
    for &c in counts {
        let prod = c as u128 * t;
        // prod / n <= c, so it fits in usize.
        parts.push(usize::try_from(prod / n).unwrap_or(c));
        rems.push(prod % n);
    }
    let assigned: usize = parts.iter().sum();
    let missing = total.saturating_sub(assigned);
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep the lower index first. At most
    // one unit goes to a part (missing < number of parts with a non-zero remainder).
    order.sort_by(|&a, &b| rems[b].cmp(&rems[a]));
    for &i in order.iter().take(missing) {
        if let Some(p) = parts.get_mut(i) {
            *p += 1;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    #[test]
    fn below_is_in_range_and_covers_all_values() {
        let mut rng = seeded(3);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            let v = below(&mut rng, 7);
            assert!(v < 7);
            seen[v] += 1;
        }
        // Each value expected 1000 times; 800..1200 is > 6 standard deviations wide.
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn permutation_is_a_permutation_and_seeded() {
        let p = permutation(&mut seeded(5), 100);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_eq!(p, permutation(&mut seeded(5), 100));
        assert_ne!(p, permutation(&mut seeded(6), 100));
    }

    #[test]
    fn choose_gives_distinct_indices() {
        let c = choose(&mut seeded(1), 10, 4);
        assert_eq!(c.len(), 4);
        let mut s = c.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 4);
        assert!(c.iter().all(|&i| i < 10));
        assert_eq!(choose(&mut seeded(1), 3, 10).len(), 3);
    }

    #[test]
    fn largest_remainder_examples() {
        // 0.99/0.01 of 5000: quotas 4950 and 50 exactly.
        assert_eq!(
            largest_remainder(&[0.99, 0.01], 5000).unwrap(),
            vec![4950, 50]
        );
        // Thirds of 10: quotas 3.33.. each, floors 3+3+3 = 9, the one missing unit goes to the
        // lowest index among equal remainders.
        assert_eq!(
            largest_remainder(&[1.0, 1.0, 1.0], 10).unwrap(),
            vec![4, 3, 3]
        );
        // Quotas 0.5·7 = 3.5, 0.3·7 = 2.1, 0.2·7 = 1.4: floors 3, 2, 1 (sum 6); remainders
        // .5 > .4 > .1, so the missing unit goes to the first part.
        assert_eq!(
            largest_remainder(&[0.5, 0.3, 0.2], 7).unwrap(),
            vec![4, 2, 1]
        );
        assert!(largest_remainder(&[0.0, 0.0], 3).is_err());
        assert!(largest_remainder(&[f64::NAN, 1.0], 3).is_err());
        assert!(largest_remainder(&[-1.0, 2.0], 3).is_err());
    }

    #[test]
    fn largest_remainder_counts_is_exact() {
        // Counts 1, 1, 7 (N = 9), total 3: exact quotas 1/3, 1/3, 7/3; floors 0, 0, 2 and three
        // equal remainders 1/3, so the missing unit goes to the first stratum. Rounded float
        // quotients (7/9·3 = 2.3333333333333335 > 2 + 1/9·3) would give it to the third.
        assert_eq!(
            largest_remainder_counts(&[1, 1, 7], 3).unwrap(),
            vec![1, 0, 2]
        );
        assert_eq!(
            largest_remainder(&[1.0, 1.0, 7.0], 3).unwrap(),
            vec![0, 0, 3]
        );
        // Three nearly equal labels of N = 392,702 rows (XNLI's train size), 5,000 of them: quotas 1666.64.., 1666.65.., 1666.69..; floors sum to
        // 4,998, and the two missing units go to labels 2 and 1 (largest remainders).
        assert_eq!(
            largest_remainder_counts(&[130_899, 130_900, 130_903], 5000).unwrap(),
            vec![1666, 1667, 1667]
        );
        // Proportions kept exactly when they divide: 300 of 6,000 in 1:2:3.
        assert_eq!(
            largest_remainder_counts(&[1000, 2000, 3000], 300).unwrap(),
            vec![50, 100, 150]
        );
        assert_eq!(
            largest_remainder_counts(&[4, 0, 2], 6).unwrap(),
            vec![4, 0, 2]
        );
        assert!(largest_remainder_counts(&[0, 0], 1).is_err());
        assert!(largest_remainder_counts(&[2, 3], 6).is_err());
        assert_eq!(largest_remainder_counts(&[2, 3], 0).unwrap(), vec![0, 0]);
    }
}

//! [`SparseHistogram`]: quantiles of a group's durations or sizes, at the precision of an
//! HdrHistogram with three significant digits, in memory that grows with the distinct values
//! seen rather than with their range.
//!
//! A dense `hdrhistogram::Histogram<u64>` of 3 digits starts at 16 KiB and grows to ~170 KiB
//! for values up to a second in nanoseconds, even for a group of one task: a trace with 100,000
//! groups needed gigabytes (issue 11). This one keeps only the occupied buckets, with the same
//! bucket boundaries, so it answers exactly as the dense histogram would.
//!
//! ```
//! let mut durations = traces::SparseHistogram::new();
//! for ns in [1_000, 2_000, 3_000_000] {
//!     durations.record(ns);
//! }
//! assert_eq!(durations.len(), 3);
//! assert_eq!(durations.value_at_quantile(0.5), 2_000);
//! ```

use std::collections::BTreeMap;

/// HdrHistogram's layout for 3 significant figures and a lowest value of 1: each power of two
/// from 2^11 on is split into 1,024 sub-buckets (below 2^11, every value is its own bucket).
/// `sub_bucket_half_count_magnitude` is 10; `leading_zero_count_base` is `64 - 0 - 10 - 1`.
const LEADING_ZERO_COUNT_BASE: u32 = 53;
const SUB_BUCKET_MASK: u64 = 2_047;

/// Occupied buckets kept in a sorted vector up to this many, then in a B-tree: a vector is
/// smallest for the many small groups, a tree keeps inserts cheap for groups whose values
/// spread over thousands of buckets (at most 1,024 per power of two).
const SMALL: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseHistogram {
    buckets: Buckets,
    total: u64,
}

/// Count per bucket, keyed by the bucket's lowest value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Buckets {
    Small(Vec<(u64, u64)>),
    Large(BTreeMap<u64, u64>),
}

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets::Small(Vec::new())
    }
}

/// log2 of the width of the bucket holding `value`.
fn magnitude(value: u64) -> u32 {
    LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros()
}

/// The lowest value counted in the same bucket as `value` (`Histogram::lowest_equivalent`).
fn lowest_equivalent(value: u64) -> u64 {
    let shift = magnitude(value);
    (value >> shift) << shift
}

/// The highest value counted in the same bucket as `value` (`Histogram::highest_equivalent`).
fn highest_equivalent(value: u64) -> u64 {
    if value == u64::MAX {
        return u64::MAX;
    }
    lowest_equivalent(value).saturating_add(1 << magnitude(value)) - 1
}

impl SparseHistogram {
    pub fn new() -> SparseHistogram {
        SparseHistogram::default()
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn record(&mut self, value: u64) {
        self.add_count(lowest_equivalent(value), 1);
    }

    /// Adds another histogram's counts (of another part of the same trace).
    pub fn add(&mut self, other: &SparseHistogram) {
        match &other.buckets {
            Buckets::Small(buckets) => {
                for &(bucket, count) in buckets {
                    self.add_count(bucket, count);
                }
            }
            Buckets::Large(buckets) => {
                for (&bucket, &count) in buckets {
                    self.add_count(bucket, count);
                }
            }
        }
    }

    fn add_count(&mut self, bucket: u64, count: u64) {
        self.total = self.total.saturating_add(count);
        match &mut self.buckets {
            Buckets::Small(buckets) => match buckets.binary_search_by_key(&bucket, |b| b.0) {
                Ok(at) => buckets[at].1 = buckets[at].1.saturating_add(count),
                Err(_) if buckets.len() == SMALL => {
                    let mut large: BTreeMap<u64, u64> = buckets.drain(..).collect();
                    large.insert(bucket, count);
                    self.buckets = Buckets::Large(large);
                }
                Err(at) => buckets.insert(at, (bucket, count)),
            },
            Buckets::Large(buckets) => {
                let known = buckets.entry(bucket).or_default();
                *known = known.saturating_add(count);
            }
        }
    }

    /// The highest recorded value, as `hdrhistogram::Histogram::max` answers it (the upper end
    /// of its bucket); 0 when empty.
    pub fn max(&self) -> u64 {
        let last = match &self.buckets {
            Buckets::Small(buckets) => buckets.last().map(|b| b.0),
            Buckets::Large(buckets) => buckets.last_key_value().map(|(&b, _)| b),
        };
        last.map_or(0, highest_equivalent)
    }

    /// Counts per power of two, from the one holding the lowest value to the one holding the
    /// highest (empty ones between included): `(2^k - 1, count of values from 2^(k-1) to
    /// 2^k - 1)`, the steps of `hdrhistogram`'s `iter_log(1, 2.0)`. Empty when nothing was
    /// recorded.
    pub fn powers_of_two(&self) -> Vec<(u64, u64)> {
        let mut counts: Vec<(u64, u64)> = Vec::new();
        let buckets: Box<dyn Iterator<Item = (u64, u64)>> = match &self.buckets {
            Buckets::Small(buckets) => Box::new(buckets.iter().copied()),
            Buckets::Large(buckets) => Box::new(buckets.iter().map(|(&b, &c)| (b, c))),
        };
        let mut first = None;
        for (bucket, count) in buckets {
            // Buckets never straddle a power of two: the bucket's lowest value tells its power.
            let k = 64 - bucket.leading_zeros();
            let first = *first.get_or_insert(k);
            let at = (k - first) as usize;
            if counts.len() <= at {
                counts.extend((counts.len()..=at).map(|i| {
                    let k = first + i as u32;
                    (u64::MAX.checked_shr(64 - k).unwrap_or(0), 0)
                }));
            }
            counts[at].1 = counts[at].1.saturating_add(count);
        }
        counts
    }

    /// The value below which `quantile` (0 to 1) of the recorded values fall, as
    /// `hdrhistogram::Histogram::value_at_quantile` answers it: the upper end of its bucket
    /// (the lower end for quantile 0), within 0.1 % of the value; 0 when empty.
    pub fn value_at_quantile(&self, quantile: f64) -> u64 {
        let quantile = quantile.min(1.0);
        let rank = ((quantile * self.total as f64).ceil() as u64).max(1);
        let mut seen: u64 = 0;
        let mut counts: Box<dyn Iterator<Item = (u64, u64)>> = match &self.buckets {
            Buckets::Small(buckets) => Box::new(buckets.iter().copied()),
            Buckets::Large(buckets) => Box::new(buckets.iter().map(|(&b, &c)| (b, c))),
        };
        let Some(bucket) = counts.find_map(|(bucket, count)| {
            seen = seen.saturating_add(count);
            (seen >= rank).then_some(bucket)
        }) else {
            return 0;
        };
        if quantile == 0.0 {
            bucket
        } else {
            highest_equivalent(bucket)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    fn dense() -> Histogram<u64> {
        Histogram::new(3).unwrap()
    }

    /// Deterministic values over every magnitude, with clusters and repeats.
    fn values(n: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let shift = (x >> 58) as u32; // 0..63
                ((x >> 7) >> shift).max(1) % (1 << 62)
            })
            .collect()
    }

    #[test]
    fn buckets_match_hdrhistogram() {
        let h = dense();
        for v in values(100_000, 7).into_iter().chain([
            1,
            2,
            2_047,
            2_048,
            2_049,
            4_095,
            4_096,
            1 << 40,
            (1 << 62) - 1,
        ]) {
            assert_eq!(lowest_equivalent(v), h.lowest_equivalent(v), "{v}");
            assert_eq!(highest_equivalent(v), h.highest_equivalent(v), "{v}");
        }
    }

    #[test]
    fn quantiles_match_hdrhistogram() {
        for (n, seed) in [
            (1, 1),
            (2, 2),
            (3, 3),
            (10, 4),
            (63, 5),
            (64, 6),
            (65, 7),
            (5_000, 8),
        ] {
            let mut sparse = SparseHistogram::new();
            let mut hdr = dense();
            for v in values(n, seed) {
                sparse.record(v);
                hdr.record(v).unwrap();
            }
            assert_eq!(sparse.len(), hdr.len());
            for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0] {
                assert_eq!(
                    sparse.value_at_quantile(q),
                    hdr.value_at_quantile(q),
                    "n {n}, q {q}"
                );
            }
        }
    }

    #[test]
    fn max_and_powers_of_two_match_hdrhistogram() {
        for (n, seed) in [(1, 21), (3, 22), (64, 23), (65, 24), (5_000, 25)] {
            let mut sparse = SparseHistogram::new();
            let mut hdr = dense();
            for v in values(n, seed) {
                sparse.record(v);
                hdr.record(v).unwrap();
            }
            assert_eq!(sparse.max(), hdr.max(), "n {n}");
            // The TUI's column per power of two, as it drew them from hdrhistogram.
            let mut steps: Vec<(u64, u64)> = Vec::new();
            for v in hdr.iter_log(1, 2.0) {
                let count = v.count_since_last_iteration();
                if count > 0 || !steps.is_empty() {
                    steps.push((v.value_iterated_to(), count));
                }
            }
            while steps.last().is_some_and(|s| s.1 == 0) {
                steps.pop();
            }
            assert_eq!(sparse.powers_of_two(), steps, "n {n}");
        }
        assert_eq!(SparseHistogram::new().max(), 0);
        assert!(SparseHistogram::new().powers_of_two().is_empty());
        let mut zero = SparseHistogram::new();
        zero.record(0);
        zero.record(3);
        assert_eq!(zero.powers_of_two(), [(0, 1), (1, 0), (3, 1)]);
    }

    #[test]
    fn halves_add_up_to_the_whole() {
        let all = values(3_000, 11);
        let (mut whole, mut first, mut second) = (
            SparseHistogram::new(),
            SparseHistogram::new(),
            SparseHistogram::new(),
        );
        for (i, &v) in all.iter().enumerate() {
            whole.record(v);
            if i % 3 == 0 { &mut first } else { &mut second }.record(v);
        }
        first.add(&second);
        assert_eq!(first.len(), whole.len());
        for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
            assert_eq!(first.value_at_quantile(q), whole.value_at_quantile(q));
        }
    }

    #[test]
    fn empty_and_extreme_values() {
        let mut h = SparseHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.value_at_quantile(0.5), 0);
        let mut hdr = dense();
        for _ in 0..2 {
            h.record(u64::MAX);
            hdr.record(u64::MAX).unwrap();
        }
        assert_eq!(h.len(), 2);
        assert_eq!(h.value_at_quantile(0.5), hdr.value_at_quantile(0.5));
        assert!(h.value_at_quantile(0.5) >= u64::MAX - 1);
        h.record(0);
        assert_eq!(h.value_at_quantile(0.0), 0);
    }
}

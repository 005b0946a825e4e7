//! The worker slots holding a task's result. The engine's in-process clusters (at most
//! [`MAX_WORKERS`](super::MAX_WORKERS)) fit the inline 64-bit mask, so the hot path is a bit
//! test; a replay of a larger Dask cluster keeps the slots past 63 in a bitmap allocated only for
//! results that live there.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Holders {
    /// Slots 0–63.
    low: u64,
    /// Slots 64 and up, 64 a word; `None` when none of them holds the result.
    high: Option<Box<[u64]>>,
}

impl Holders {
    pub fn contains(&self, slot: usize) -> bool {
        if slot < 64 {
            return self.low & (1 << slot) != 0;
        }
        let (word, bit) = (slot / 64 - 1, slot % 64);
        self.high
            .as_ref()
            .and_then(|high| high.get(word))
            .is_some_and(|w| w & (1 << bit) != 0)
    }

    pub fn insert(&mut self, slot: usize) {
        if slot < 64 {
            self.low |= 1 << slot;
            return;
        }
        let (word, bit) = (slot / 64 - 1, slot % 64);
        if self.high.as_ref().is_none_or(|high| high.len() <= word) {
            let mut grown = self.high.take().map(Vec::from).unwrap_or_default();
            grown.resize(word + 1, 0);
            self.high = Some(grown.into_boxed_slice());
        }
        if let Some(high) = self.high.as_mut() {
            high[word] |= 1 << bit;
        }
    }

    pub fn remove(&mut self, slot: usize) {
        if slot < 64 {
            self.low &= !(1 << slot);
            return;
        }
        let (word, bit) = (slot / 64 - 1, slot % 64);
        if let Some(high) = self.high.as_mut() {
            if let Some(w) = high.get_mut(word) {
                *w &= !(1 << bit);
            }
            // Keeps `is_empty` a test of two words.
            if high.iter().all(|&w| w == 0) {
                self.high = None;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_none()
    }

    /// The holding slots, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let high = self.high.as_deref().unwrap_or_default();
        std::iter::once(self.low)
            .chain(high.iter().copied())
            .enumerate()
            .flat_map(|(word, mut bits)| {
                std::iter::from_fn(move || {
                    if bits == 0 {
                        return None;
                    }
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    Some(word * 64 + bit)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_on_both_sides_of_the_inline_mask_are_held_and_let_go() {
        let mut holders = Holders::default();
        assert!(holders.is_empty());
        for slot in [0, 63, 64, 200, 4095] {
            holders.insert(slot);
        }
        assert_eq!(holders.iter().collect::<Vec<_>>(), [0, 63, 64, 200, 4095]);
        assert!(holders.contains(200) && !holders.contains(199) && !holders.contains(9999));
        for slot in [64, 200, 4095] {
            holders.remove(slot);
        }
        assert_eq!(holders.iter().collect::<Vec<_>>(), [0, 63]);
        // The bitmap of high slots went with the last of them.
        assert_eq!(holders.high, None);
        holders.remove(0);
        holders.remove(63);
        assert!(holders.is_empty());
        holders.insert(300);
        assert!(!holders.is_empty() && holders.contains(300));
    }
}

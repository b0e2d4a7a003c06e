//! Which archive entries of a zone already have a `prune` entry. Retention deletes entries
//! roughly in log order, so the indexes are kept as ranges: memory follows the number of holes,
//! not the number of pruned archives.

use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrunedTargets {
    /// start → end (exclusive); ranges never touch or overlap.
    ranges: BTreeMap<u64, u64>,
}

impl PrunedTargets {
    pub fn contains(&self, index: u64) -> bool {
        self.ranges
            .range(..=index)
            .next_back()
            .is_some_and(|(_, end)| index < *end)
    }

    pub fn insert(&mut self, index: u64) {
        if self.contains(index) {
            return;
        }
        let mut start = index;
        let mut end = index.saturating_add(1);
        if let Some((&before_start, &before_end)) = self.ranges.range(..index).next_back()
            && before_end == index
        {
            start = before_start;
        }
        if let Some(&after_end) = self.ranges.get(&end) {
            self.ranges.remove(&end);
            end = after_end;
        }
        self.ranges.insert(start, end);
    }

    /// Number of disjoint ranges (what the memory is proportional to).
    #[cfg(test)]
    fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_membership_is_exact() {
        let mut pruned = PrunedTargets::default();
        for index in [5, 3, 4, 10, 6, 0, 11, 9] {
            pruned.insert(index);
        }
        pruned.insert(4);
        let members: Vec<u64> = (0..13).filter(|i| pruned.contains(*i)).collect();
        assert_eq!(members, [0, 3, 4, 5, 6, 9, 10, 11]);
        assert_eq!(pruned.ranges(), 3, "{pruned:?}");
        pruned.insert(7);
        pruned.insert(8);
        pruned.insert(1);
        pruned.insert(2);
        assert_eq!(pruned.ranges(), 1, "{pruned:?}");
        assert!(pruned.contains(11) && !pruned.contains(12));
    }
}

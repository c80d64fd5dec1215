//! Placing orgs on shards, and the rule a shard move is verified by.
//!
//! Every org's rows live on one shard database; the directory records which. New orgs go to the
//! shard with the fewest orgs (ties to the lowest index, so placement is deterministic), which
//! spreads orgs evenly as shards are added: a new, empty shard takes every new org until it
//! catches up.

use std::collections::BTreeMap;

/// How many orgs a shard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLoad {
    pub shard: u32,
    pub orgs: u64,
}

/// The shard a new org goes to among shards `0..shard_count`: the one with the fewest orgs, the
/// lowest index among equals. Loads of shards outside the range (a shard no longer bound) are
/// ignored; a shard absent from `loads` holds none.
pub fn least_loaded(loads: &[ShardLoad], shard_count: u32) -> u32 {
    let mut orgs = vec![0u64; shard_count as usize];
    for load in loads {
        if let Some(slot) = orgs.get_mut(load.shard as usize) {
            *slot += load.orgs;
        }
    }
    orgs.iter()
        .enumerate()
        .min_by_key(|(index, count)| (**count, *index))
        .map_or(0, |(index, _)| index as u32)
}

/// Rows per table of one org on one shard.
pub type TableCounts = BTreeMap<String, u64>;

/// Why a copied org does not match its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMismatch {
    pub table: String,
    pub source: u64,
    pub copy: u64,
}

impl std::fmt::Display for CountMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows at the source, {} in the copy",
            self.table, self.source, self.copy
        )
    }
}

/// A move may flip the directory only when the copy holds exactly the source's rows, table by
/// table (a table missing on one side counts as empty).
pub fn verify_copy(source: &TableCounts, copy: &TableCounts) -> Result<(), Vec<CountMismatch>> {
    let tables: std::collections::BTreeSet<&String> = source.keys().chain(copy.keys()).collect();
    let mismatches: Vec<CountMismatch> = tables
        .into_iter()
        .filter_map(|table| {
            let (s, c) = (
                source.get(table).copied().unwrap_or(0),
                copy.get(table).copied().unwrap_or(0),
            );
            (s != c).then(|| CountMismatch {
                table: table.clone(),
                source: s,
                copy: c,
            })
        })
        .collect();
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load(shard: u32, orgs: u64) -> ShardLoad {
        ShardLoad { shard, orgs }
    }

    #[test]
    fn a_new_org_goes_to_the_shard_with_the_fewest_orgs() {
        assert_eq!(least_loaded(&[load(0, 3), load(1, 2)], 2), 1);
        assert_eq!(least_loaded(&[load(0, 2), load(1, 2)], 2), 0);
        // An empty or missing shard wins; shards beyond the bound ones are ignored.
        assert_eq!(least_loaded(&[load(0, 1), load(1, 1)], 3), 2);
        assert_eq!(least_loaded(&[load(5, 0), load(0, 4)], 2), 1);
        assert_eq!(least_loaded(&[], 4), 0);
    }

    proptest! {
        #[test]
        fn placing_orgs_one_by_one_keeps_shards_within_one_org(count in 1u32..8, orgs in 0usize..200) {
            let mut loads: Vec<ShardLoad> = (0..count).map(|shard| load(shard, 0)).collect();
            for _ in 0..orgs {
                let shard = least_loaded(&loads, count);
                prop_assert!(shard < count);
                loads[shard as usize].orgs += 1;
            }
            let max = loads.iter().map(|l| l.orgs).max().unwrap();
            let min = loads.iter().map(|l| l.orgs).min().unwrap();
            prop_assert!(max - min <= 1);
        }
    }

    #[test]
    fn a_copy_is_verified_table_by_table() {
        let source: TableCounts =
            [("leads".to_string(), 3), ("interactions".to_string(), 9)].into();
        assert_eq!(verify_copy(&source, &source.clone()), Ok(()));
        let mut short = source.clone();
        short.insert("interactions".to_string(), 8);
        short.insert("lead_tags".to_string(), 1);
        assert_eq!(
            verify_copy(&source, &short),
            Err(vec![
                CountMismatch {
                    table: "interactions".into(),
                    source: 9,
                    copy: 8
                },
                CountMismatch {
                    table: "lead_tags".into(),
                    source: 0,
                    copy: 1
                },
            ])
        );
    }
}

//! Merging one series' points from several segments ([I5]): the segments
//! are given in commit order and a later segment's point wins over an
//! earlier one's at the same time.

/// Merges `parts` (each with strictly increasing times, given in commit
/// order) into `times`/`values`, which must be empty. Returns quickly when
/// the parts do not overlap in time, the usual case of appended snapshots.
/// A part's values are either as many as its times or none (a scan that
/// reads no value column); with none, only the times are merged.
pub(crate) fn merge_parts<V: Copy>(
    parts: &[(&[i64], &[V])],
    times: &mut Vec<i64>,
    values: &mut Vec<V>,
) {
    let mut last_time: Option<i64> = None;
    let mut disjoint_in_order = true;
    for (t, _) in parts {
        if let (Some(last), Some(&first)) = (last_time, t.first()) {
            disjoint_in_order &= last < first;
        }
        last_time = t.last().copied().or(last_time);
    }
    if disjoint_in_order {
        for (t, v) in parts {
            times.extend_from_slice(t);
            values.extend_from_slice(v);
        }
        return;
    }
    // Overlapping parts: sort (time, part index, position) triples and keep
    // the last part's point for each time. This path is taken only for
    // rewritten history, so clarity wins over speed. The points are walked
    // by their times: a scan that reads no value column hands in parts
    // without values, and gets the times alone back.
    let mut all: Vec<(i64, usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(i, (t, _))| t.iter().enumerate().map(move |(k, &t)| (t, i, k)))
        .collect();
    all.sort_unstable_by_key(|&(t, i, _)| (t, i));
    for (n, &(t, i, k)) in all.iter().enumerate() {
        let next_same_time = all.get(n + 1).is_some_and(|next| next.0 == t);
        if !next_same_time {
            times.push(t);
            if let Some(&v) = parts.get(i).and_then(|(_, v)| v.get(k)) {
                values.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn merged(parts: &[(Vec<i64>, Vec<u64>)]) -> Vec<(i64, u64)> {
        let refs: Vec<(&[i64], &[u64])> = parts.iter().map(|(t, v)| (&t[..], &v[..])).collect();
        let (mut t, mut v) = (Vec::new(), Vec::new());
        merge_parts(&refs, &mut t, &mut v);
        t.into_iter().zip(v).collect()
    }

    #[test]
    fn parts_without_values_merge_their_times() {
        // A scan that reads no value column ([I5] still decides which
        // point stands, so the times are those of the merge with values).
        let parts: Vec<(&[i64], &[u64])> = vec![(&[1, 2, 3], &[]), (&[2, 4], &[])];
        let (mut t, mut v) = (Vec::new(), Vec::new());
        merge_parts(&parts, &mut t, &mut v);
        assert_eq!(t, [1, 2, 3, 4]);
        assert!(v.is_empty());
    }

    #[test]
    fn later_part_wins_at_equal_times() {
        // [I5]
        let parts = vec![
            (vec![1, 2, 3], vec![10, 20, 30]),
            (vec![2, 4], vec![99, 40]),
        ];
        assert_eq!(merged(&parts), vec![(1, 10), (2, 99), (3, 30), (4, 40)]);
    }

    proptest! {
        #[test]
        fn matches_a_map_model(parts in prop::collection::vec(prop::collection::btree_map(0i64..40, 0u64..5, 0..10), 0..5)) {
            let mut model = std::collections::BTreeMap::new();
            let mut input = Vec::new();
            for p in &parts {
                for (t, v) in p { model.insert(*t, *v); }
                input.push((p.keys().copied().collect::<Vec<_>>(), p.values().copied().collect::<Vec<_>>()));
            }
            prop_assert_eq!(merged(&input), model.into_iter().collect::<Vec<_>>());
        }
    }
}

//! "Did you mean": the edit distance between names, and the closest of a
//! list of names to one that was not found. The checker suggests function
//! names and the label with it (docs/query-language.md, rule Q13), and the
//! notices suggest metrics and accounts (rules Q51 and Q52).

/// The number of single-character insertions, deletions, substitutions and
/// swaps of neighbours that turn `a` into `b` (the optimal string alignment
/// distance): `dorp` is 1 from `drop`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic-programming table: two back, one back, and
    // the current one.
    let mut before_previous: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let mut best = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                best = best.min(before_previous[j - 1] + 1);
            }
            current[j + 1] = best;
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The largest distance at which a name is suggested for `name`: one edit,
/// plus one per three characters (rules Q13 and Q51).
pub(crate) fn bound(name: &str) -> usize {
    1 + name.chars().count() / 3
}

/// The candidate closest to `name` when it is within [`bound`], comparing
/// lower-cased names; ties go to the first in byte order. Candidates whose
/// length alone puts them out of reach are skipped before any distance is
/// computed, so a list of a million account names costs one pass.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let length = lower.chars().count();
    let limit = bound(name);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate.chars().count().abs_diff(length) > limit {
            continue;
        }
        let distance = edit_distance(&lower, &candidate.to_lowercase());
        if distance > limit {
            continue;
        }
        if best.is_none_or(|(d, b)| (distance, candidate) < (d, b)) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("dorp", "drop"), 1);
        assert_eq!(edit_distance("folowers", "followers"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("ünï", "uni"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_within_the_bound_ties_to_byte_order() {
        // [Q51]
        let metrics = ["posts", "following", "followers"];
        assert_eq!(closest("folowers", metrics), Some("followers"));
        assert_eq!(closest("Followers", metrics), Some("followers"));
        assert_eq!(closest("likes", metrics), None);
        // "pots" is one edit from "posts" and one swap from "post": the
        // tie goes to the first in byte order.
        assert_eq!(closest("pots", ["posts", "post"]), Some("post"));
        assert_eq!(closest("x", Vec::<&str>::new()), None);
    }
}

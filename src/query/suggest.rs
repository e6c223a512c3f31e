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
    Rows::default()
        .distance(&a, &b, usize::MAX)
        .unwrap_or(usize::MAX)
}

/// Three rows of the dynamic-programming table (two back, one back, and the
/// current one), kept between calls so that comparing a name with a million
/// others allocates nothing per comparison.
#[derive(Default)]
struct Rows {
    before_previous: Vec<usize>,
    previous: Vec<usize>,
    current: Vec<usize>,
}

impl Rows {
    /// The distance from `a` to `b` when it is at most `limit`, else
    /// `None`. It stops as soon as a whole row exceeds the limit: no later
    /// row can then come back under it.
    fn distance(&mut self, a: &[char], b: &[char], limit: usize) -> Option<usize> {
        let width = b.len() + 1;
        self.before_previous.clear();
        self.before_previous.resize(width, 0);
        self.previous.clear();
        self.previous.extend(0..width);
        self.current.clear();
        self.current.resize(width, 0);
        for (i, &ca) in a.iter().enumerate() {
            self.current[0] = i + 1;
            let mut row_min = self.current[0];
            for (j, &cb) in b.iter().enumerate() {
                let substitution = self.previous[j] + usize::from(ca != cb);
                let mut best = substitution
                    .min(self.previous[j + 1] + 1)
                    .min(self.current[j] + 1);
                if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                    best = best.min(self.before_previous[j - 1] + 1);
                }
                self.current[j + 1] = best;
                row_min = row_min.min(best);
            }
            if row_min > limit {
                return None;
            }
            std::mem::swap(&mut self.before_previous, &mut self.previous);
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        let distance = self.previous[b.len()];
        (distance <= limit).then_some(distance)
    }
}

/// The largest distance at which a name is suggested for `name`: one edit,
/// plus one per three characters (rules Q13 and Q51).
pub(crate) fn bound(name: &str) -> usize {
    1 + name.chars().count() / 3
}

/// Appends `name`, lower-cased, to `out`.
fn lower_chars(name: &str, out: &mut Vec<char>) {
    out.clear();
    for c in name.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// How many characters of a name fall in each of 64 classes (the code
/// point modulo 64).
type Bag = [i32; 64];

fn bag(chars: &[char]) -> Bag {
    let mut bag = [0; 64];
    for &c in chars {
        bag[c as usize % 64] += 1;
    }
    bag
}

/// A lower bound of the edit distance between the name of `target` and
/// `chars`: each insertion, deletion or substitution changes the count of a
/// class by one on each side at most, and a swap changes none, so the
/// distance is at least the larger of the surplus and the shortfall.
/// Classes shared by several characters only make the bound weaker, never
/// wrong.
fn bag_distance(target: &Bag, chars: &[char]) -> usize {
    let mut diff = *target;
    for &c in chars {
        diff[c as usize % 64] -= 1;
    }
    let (mut surplus, mut shortfall) = (0usize, 0usize);
    for d in diff {
        if d > 0 {
            surplus += d.unsigned_abs() as usize;
        } else {
            shortfall += d.unsigned_abs() as usize;
        }
    }
    surplus.max(shortfall)
}

/// The candidate closest to `name` when it is within [`bound`], comparing
/// lower-cased names; ties go to the first in byte order. Once a candidate
/// at distance d is found, the others are only compared as far as they
/// could still be within d, and candidates whose length alone puts them
/// out of reach are skipped, so a list of a million account names costs
/// about one pass over their bytes.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    closest_with_distance(name, candidates).map(|(_, candidate)| candidate)
}

/// [`closest`], with the candidate's distance: parts of a set of names (the
/// shards of a cluster) each propose their closest, and the least
/// `(distance, name)` of the proposals is the closest of the whole set.
pub(crate) fn closest_with_distance<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(usize, &'a str)> {
    let mut target = Vec::new();
    lower_chars(name, &mut target);
    let mut limit = bound(name);
    let target_bag = bag(&target);
    let mut best: Option<(usize, &str)> = None;
    let mut candidate_chars = Vec::new();
    let mut rows = Rows::default();
    for candidate in candidates {
        // A quick test on bytes first: a name has at least a quarter as
        // many characters as bytes, and at most as many.
        if candidate.len() / 4 > target.len() + limit {
            continue;
        }
        lower_chars(candidate, &mut candidate_chars);
        if candidate_chars.len().abs_diff(target.len()) > limit
            || bag_distance(&target_bag, &candidate_chars) > limit
        {
            continue;
        }
        let Some(distance) = rows.distance(&target, &candidate_chars, limit) else {
            continue;
        };
        if best.is_none_or(|(d, b)| (distance, candidate) < (d, b)) {
            best = Some((distance, candidate));
            limit = distance;
        }
    }
    best
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
        let mut rows = Rows::default();
        let chars = |s: &str| s.chars().collect::<Vec<char>>();
        assert_eq!(
            rows.distance(&chars("kitten"), &chars("sitting"), 3),
            Some(3)
        );
        assert_eq!(rows.distance(&chars("kitten"), &chars("sitting"), 2), None);
        assert_eq!(rows.distance(&chars(""), &chars(""), 0), Some(0));
    }

    #[test]
    fn the_bag_distance_is_a_lower_bound() {
        let names = [
            "", "a", "ab", "ba", "abc", "acb", "kiru", "kirux", "ünï", "uni", "xyzzy", "zzzzq",
        ];
        for a in names {
            let bag_a = bag(&a.chars().collect::<Vec<_>>());
            for b in names {
                let cb: Vec<char> = b.chars().collect();
                assert!(bag_distance(&bag_a, &cb) <= edit_distance(a, b), "{a} {b}");
            }
        }
    }

    #[test]
    fn the_bounded_distance_agrees_with_the_full_one() {
        let names = [
            "", "a", "ab", "ba", "abc", "acb", "kiru", "kirux", "ünï", "uni", "xyzzy",
        ];
        let mut rows = Rows::default();
        for a in names {
            for b in names {
                let (ca, cb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                let full = edit_distance(a, b);
                for limit in 0..6 {
                    let bounded = rows.distance(&ca, &cb, limit);
                    assert_eq!(bounded, (full <= limit).then_some(full), "{a} {b} {limit}");
                }
            }
        }
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

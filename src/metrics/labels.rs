//! The `business` label: a business's own name for the top N by volume, "other" for the rest.

use std::collections::{HashMap, HashSet};

/// The label of every business outside the top N (and of ids and names not known yet).
pub const OTHER: &str = "other";

#[derive(Debug, Default)]
pub struct BusinessLabels {
    by_id: HashMap<i64, String>,
    named: HashSet<String>,
}

/// A business as the collector ranks it.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub id: i64,
    pub name: String,
    /// Calls finished in the last hour + backlog + DLQ + review: a business that is stuck
    /// (large backlog, no throughput) ranks high, which is when its own series matter.
    pub volume: u64,
}

impl BusinessLabels {
    /// The top `n` by volume (ties: lower id first) get their own label.
    pub fn rank(mut all: Vec<Ranked>, n: usize) -> BusinessLabels {
        all.sort_by(|a, b| b.volume.cmp(&a.volume).then(a.id.cmp(&b.id)));
        all.truncate(n);
        let mut l = BusinessLabels::default();
        for r in all {
            let v = bounded_value(&r.name);
            l.named.insert(r.name);
            l.by_id.insert(r.id, v);
        }
        l
    }

    pub fn for_id(&self, id: i64) -> String {
        self.by_id.get(&id).cloned().unwrap_or_else(|| OTHER.into())
    }

    pub fn for_name(&self, name: &str) -> String {
        if self.named.contains(name) {
            bounded_value(name)
        } else {
            OTHER.into()
        }
    }
}

/// A label value fit for a series: controls and escape sequences stripped, at most 64
/// characters (the exposition format escapes quotes and backslashes itself).
pub fn bounded_value(s: &str) -> String {
    let clean = crate::domain::text::sanitize(s);
    let clean = clean.trim();
    match clean.char_indices().nth(64) {
        Some((i, _)) => clean[..i].to_string(),
        None => clean.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_n_by_volume_get_their_own_label() {
        let all = (1..=5)
            .map(|i| Ranked {
                id: i,
                name: format!("b{i}"),
                volume: [3, 50, 7, 50, 0][(i - 1) as usize],
            })
            .collect();
        let l = BusinessLabels::rank(all, 2);
        assert_eq!(l.for_id(2), "b2");
        assert_eq!(l.for_id(4), "b4", "a tie goes to the lower id, both fit");
        assert_eq!(l.for_id(3), OTHER);
        assert_eq!(l.for_id(99), OTHER, "unknown ids are other");
        assert_eq!(l.for_name("b4"), "b4");
        assert_eq!(l.for_name("nope\u{1b}[2J"), OTHER);
        assert_eq!(BusinessLabels::rank(vec![], 0).for_id(1), OTHER);
    }
}

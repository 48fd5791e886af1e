//! Circles in a directed graph: its strongly connected groups of nodes, each
//! shown as one closed walk through all of its nodes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// For each strongly connected group of two or more of the nodes `0..n`
/// (edges `a -> b` in `edges`), a walk that starts and ends at the group's
/// first node and visits all of its nodes along edges inside the group.
pub fn closed_walks(n: usize, edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<usize>> {
    let mut next = vec![Vec::new(); n];
    for &(a, b) in edges {
        next[a].push(b);
    }
    let reach = |from: usize| {
        let (mut seen, mut stack) = (vec![false; n], vec![from]);
        while let Some(v) = stack.pop() {
            for &w in &next[v] {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    let reaches: Vec<Vec<bool>> = (0..n).map(reach).collect();
    let mut done = vec![false; n];
    let mut out = Vec::new();
    for v in 0..n {
        let group: Vec<usize> = (0..n).filter(|&w| reaches[v][w] && reaches[w][v]).collect();
        if done[v] || group.len() < 2 {
            continue;
        }
        for &w in &group {
            done[w] = true;
        }
        out.push(walk_through(&group, &next));
    }
    out
}

/// A closed walk from `group[0]` through every node of `group`.
fn walk_through(group: &[usize], next: &[Vec<usize>]) -> Vec<usize> {
    let inside: BTreeSet<usize> = group.iter().copied().collect();
    // Shortest path from `a` to `b != a` within the group, breadth first.
    let path = |a: usize, b: usize| {
        let mut prev = BTreeMap::from([(a, a)]);
        let mut queue = VecDeque::from([a]);
        while let Some(v) = queue.pop_front() {
            for &w in next[v].iter().filter(|w| inside.contains(w)) {
                if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let mut hops = vec![b];
        while hops.last() != Some(&a) {
            hops.push(prev[hops.last().expect("nonempty")]);
        }
        hops.reverse();
        hops
    };
    let mut walk = vec![group[0]];
    for &target in group[1..].iter().chain([&group[0]]) {
        let here = *walk.last().expect("nonempty");
        if target != group[0] && walk.contains(&target) {
            continue;
        }
        walk.extend(path(here, target).into_iter().skip(1));
    }
    walk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_walked_and_dags_have_none() {
        let edges = BTreeSet::from([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 3), (5, 0)]);
        assert_eq!(closed_walks(6, &edges), [vec![0, 1, 2, 0], vec![3, 4, 3]]);
        let dag = BTreeSet::from([(0, 1), (1, 2), (0, 2)]);
        assert!(closed_walks(3, &dag).is_empty());
    }
}

//! Reading tokens back from per-step log-probabilities: the best path, and prefix beam search.

use std::collections::BTreeMap;

use super::log_add;

/// A decoded token sequence and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// The tokens, repeats merged and blanks removed.
    pub tokens: Vec<usize>,
    /// Natural log of its probability: of the single best path for [`greedy`]; summed over the
    /// alignments the beam kept for [`beam_search`].
    pub log_prob: f64,
}

/// The best path: the most likely class at each step (the lowest index among equals), then repeats
/// merged and blanks removed. `log_probs` is `[steps, classes]`, row-major.
pub fn greedy(log_probs: &[f32], classes: usize, blank: usize) -> Hypothesis {
    assert!(classes > 0 && log_probs.len().is_multiple_of(classes));
    let mut tokens = Vec::new();
    let mut log_prob = 0.0;
    let mut previous = blank;
    for row in log_probs.chunks_exact(classes) {
        let (best, value) =
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                });
        log_prob += f64::from(value);
        if best != blank && best != previous {
            tokens.push(best);
        }
        previous = best;
    }
    Hypothesis { tokens, log_prob }
}

/// The probability, in logs, of a prefix's alignments so far: those ending in a blank and those
/// ending in its last token.
#[derive(Debug, Clone, Copy)]
struct Ending {
    blank: f64,
    token: f64,
}

impl Ending {
    const NONE: Ending = Ending {
        blank: f64::NEG_INFINITY,
        token: f64::NEG_INFINITY,
    };

    fn total(self) -> f64 {
        log_add(self.blank, self.token)
    }
}

/// How per-step distributions become one output: the best path, or prefix beam search of a width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoding {
    /// [`greedy`]: the most probable class at each step, repeats merged, blanks dropped.
    #[default]
    Greedy,
    /// [`beam_search`] of this width (at least 1), its most probable prefix.
    Beam(usize),
}

impl Decoding {
    /// The most probable output of `log_probs` (`[steps, classes]`, row-major) by this decoding.
    pub fn best(self, log_probs: &[f32], classes: usize, blank: usize) -> Hypothesis {
        match self {
            Decoding::Greedy => greedy(log_probs, classes, blank),
            Decoding::Beam(width) => beam_search(log_probs, classes, blank, width, 1)
                .into_iter()
                .next()
                .expect("beam search keeps at least one prefix"),
        }
    }
}

/// Prefix beam search (Graves 2012, §7.5; Hannun et al. 2014 without a language model): at each step
/// every kept prefix is extended by a blank, by its own last token (merged) or by another token,
/// the probabilities of alignments that give the same prefix summed, and the `beam` most probable
/// prefixes kept (ties broken by the prefixes' order, so the result does not depend on the
/// platform). Returns the best `n_best` (at most `beam`), most probable first. `log_probs` is
/// `[steps, classes]`, row-major.
pub fn beam_search(
    log_probs: &[f32],
    classes: usize,
    blank: usize,
    beam: usize,
    n_best: usize,
) -> Vec<Hypothesis> {
    assert!(classes > 0 && log_probs.len().is_multiple_of(classes));
    assert!(blank < classes, "the blank is one of the classes");
    let beam = beam.max(1);
    let mut kept: Vec<(Vec<usize>, Ending)> = vec![(
        Vec::new(),
        Ending {
            blank: 0.0,
            token: f64::NEG_INFINITY,
        },
    )];
    for row in log_probs.chunks_exact(classes) {
        let p = |c: usize| f64::from(row[c]);
        let mut next: BTreeMap<Vec<usize>, Ending> = BTreeMap::new();
        for (prefix, ending) in &kept {
            let entry = next.entry(prefix.clone()).or_insert(Ending::NONE);
            entry.blank = log_add(entry.blank, ending.total() + p(blank));
            let last = prefix.last().copied();
            for c in (0..classes).filter(|&c| c != blank) {
                if last == Some(c) {
                    // The same token again: merged unless a blank came between.
                    let same = next.get_mut(prefix).expect("inserted above");
                    same.token = log_add(same.token, ending.token + p(c));
                    let mut longer = prefix.clone();
                    longer.push(c);
                    let entry = next.entry(longer).or_insert(Ending::NONE);
                    entry.token = log_add(entry.token, ending.blank + p(c));
                } else {
                    let mut longer = prefix.clone();
                    longer.push(c);
                    let entry = next.entry(longer).or_insert(Ending::NONE);
                    entry.token = log_add(entry.token, ending.total() + p(c));
                }
            }
        }
        let mut ranked: Vec<(Vec<usize>, Ending)> = next.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total().total_cmp(&a.1.total()).then(a.0.cmp(&b.0)));
        ranked.truncate(beam);
        kept = ranked;
    }
    kept.into_iter()
        .take(n_best.max(1))
        .map(|(tokens, ending)| Hypothesis {
            tokens,
            log_prob: ending.total(),
        })
        .collect()
}

/// The Levenshtein distance between two token sequences: insertions, deletions and substitutions,
/// each counting one.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(x != y));
            diagonal = above;
        }
    }
    row[b.len()]
}

//! Next-token sampling with Hugging Face transformers' semantics.
//!
//! The order is transformers': repetition penalty on the raw logits, then temperature, top-k (ties with the
//! k-th logit are kept), top-p (a token goes when the probability mass of it and every less likely token is at
//! most 1 − p), min-p (a token goes when its probability is below min-p times the top one); each filter works on
//! the renormalized survivors of the one before. Defaults are the study's (vLLM's) settings.

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 means no top-k.
    pub top_k: usize,
    pub min_p: f64,
    /// 1 means none.
    pub repetition_penalty: f64,
    pub max_new_tokens: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.7, top_p: 0.8, top_k: 20, min_p: 0.0, repetition_penalty: 1.0, max_new_tokens: 1024 }
    }
}

impl Sampling {
    /// One line naming the first setting out of range.
    pub fn check(&self) -> Result<(), String> {
        let bad = |what: &str, value: f64| Err(format!("{what} {value} is out of range"));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top-p", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min-p", self.min_p);
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad("repetition penalty", self.repetition_penalty);
        }
        if self.max_new_tokens == 0 {
            return Err("max new tokens must be at least 1".into());
        }
        Ok(())
    }
}

/// Draws tokens for one sequence from its own seeded generator.
pub struct Sampler {
    settings: Sampling,
    rng: StdRng,
}

impl Sampler {
    pub fn new(settings: Sampling, seed: u64) -> Self {
        Self { settings, rng: StdRng::seed_from_u64(seed) }
    }

    /// The next token, given its logits and the tokens so far (prompt and generated, for the penalty).
    pub fn sample(&mut self, logits: &[f32], seen: &[u32]) -> u32 {
        let s = &self.settings;
        let mut logits = logits.to_vec();
        if s.repetition_penalty != 1.0 {
            penalize(&mut logits, seen, s.repetition_penalty as f32);
        }
        if s.temperature == 0.0 {
            return argmax(&logits);
        }
        let candidates = filter(&logits, s);
        let total: f64 = candidates.iter().map(|c| c.1).sum();
        let mut draw = self.rng.random::<f64>() * total;
        for &(token, p) in &candidates {
            draw -= p;
            if draw < 0.0 {
                return token;
            }
        }
        candidates.last().map_or(argmax(&logits), |c| c.0)
    }
}

/// transformers' RepetitionPenaltyLogitsProcessor: each seen token's logit is divided by the penalty when
/// positive and multiplied by it when negative, once however often the token was seen.
fn penalize(logits: &mut [f32], seen: &[u32], penalty: f32) {
    let mut done = vec![false; logits.len()];
    for &t in seen {
        let t = t as usize;
        if t < logits.len() && !done[t] {
            done[t] = true;
            logits[t] = if logits[t] < 0.0 { logits[t] * penalty } else { logits[t] / penalty };
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The tokens that survive temperature, top-k, top-p and min-p, with their probabilities (renormalized over
/// the survivors), most likely first.
fn filter(logits: &[f32], s: &Sampling) -> Vec<(u32, f64)> {
    let t = s.temperature;
    let mut ranked: Vec<(u32, f64)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, f64::from(l) / t)).collect();
    let by_logit = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if s.top_k > 0 && s.top_k < ranked.len() {
        // Keep every token whose logit is at least the k-th largest, as transformers does (ties included).
        ranked.select_nth_unstable_by(s.top_k - 1, by_logit);
        let kth = ranked[s.top_k - 1].1;
        ranked.retain(|c| c.1 >= kth);
    }
    ranked.sort_unstable_by(by_logit);
    let mut probs = softmax(&ranked);
    if s.top_p < 1.0 {
        // Walk from the least likely token up; drop while the mass so far is at most 1 - p; keep at least one.
        let mut mass = 0.0;
        let mut keep = probs.len();
        for i in (1..probs.len()).rev() {
            mass += probs[i].1;
            if mass <= 1.0 - s.top_p {
                keep = i;
            } else {
                break;
            }
        }
        probs.truncate(keep);
        probs = renormalize(probs);
    }
    if s.min_p > 0.0 {
        let floor = probs[0].1 * s.min_p;
        probs.retain(|c| c.1 >= floor);
        probs = renormalize(probs);
    }
    probs
}

fn softmax(ranked: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let top = ranked.first().map_or(0.0, |c| c.1);
    renormalize(ranked.iter().map(|&(t, l)| (t, (l - top).exp())).collect())
}

fn renormalize(mut probs: Vec<(u32, f64)>) -> Vec<(u32, f64)> {
    let total: f64 = probs.iter().map(|c| c.1).sum();
    for c in &mut probs {
        c.1 /= total;
    }
    probs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(top_k: usize, top_p: f64, min_p: f64) -> Sampling {
        Sampling { temperature: 1.0, top_p, top_k, min_p, ..Sampling::default() }
    }

    fn tokens(c: &[(u32, f64)]) -> Vec<u32> {
        c.iter().map(|c| c.0).collect()
    }

    #[test]
    fn top_k_keeps_ties_with_the_kth_logit() {
        let logits = [1.0, 3.0, 2.0, 2.0, 0.5];
        assert_eq!(tokens(&filter(&logits, &settings(2, 1.0, 0.0))), vec![1, 2, 3]);
        assert_eq!(tokens(&filter(&logits, &settings(0, 1.0, 0.0))), vec![1, 2, 3, 0, 4]);
    }

    #[test]
    fn top_p_matches_transformers() {
        // Probabilities 0.5, 0.3, 0.15, 0.05. transformers drops tokens whose ascending cumulative mass is
        // <= 1 - top_p: with top_p 0.8 that is 0.05 and 0.05 + 0.15 = 0.2, leaving 0.5 and 0.3.
        let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let kept = filter(&logits, &settings(0, 0.8, 0.0));
        assert_eq!(tokens(&kept), vec![0, 1]);
        assert!((kept[0].1 - 0.625).abs() < 1e-6, "renormalized: {kept:?}");
        assert_eq!(tokens(&filter(&logits, &settings(0, 0.81, 0.0))), vec![0, 1, 2]);
        assert_eq!(tokens(&filter(&logits, &settings(0, 0.01, 0.0))), vec![0], "at least one token is kept");
    }

    #[test]
    fn min_p_applies_after_top_k_and_top_p() {
        let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        // 0.15 / 0.5 = 0.3 of the top probability: kept at min-p 0.29, dropped at 0.31.
        assert_eq!(tokens(&filter(&logits, &settings(3, 1.0, 0.29))), vec![0, 1, 2]);
        assert_eq!(tokens(&filter(&logits, &settings(3, 1.0, 0.31))), vec![0, 1]);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
        let mut logits = [2.0, -2.0, 1.0];
        penalize(&mut logits, &[0, 1, 1], 2.0);
        assert_eq!(logits, [1.0, -4.0, 1.0]);
    }

    #[test]
    fn same_seed_same_draws_and_greedy_is_argmax() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 / 3.0).collect();
        let draws = |seed| {
            let mut s = Sampler::new(Sampling::default(), seed);
            (0..20).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let mut greedy = Sampler::new(Sampling { temperature: 0.0, ..Sampling::default() }, 0);
        assert_eq!(greedy.sample(&logits, &[]), argmax(&logits));
    }
}

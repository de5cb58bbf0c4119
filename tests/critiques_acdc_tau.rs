//! The 9.5 lab's ACDC card across thresholds: the circuit changes with τ as well as with the metric. Each metric
//! is run at the card's three thresholds (`ACDC_TAUS`) on the IOI model and the chapter's sentence, as the page
//! runs them (a step at a time, through `AcdcFinding::of`), and the figures the card's text gives are pinned.
//!
//! `--nocapture` prints each run, its time and what each step up in τ drops.
use std::time::Instant;

use glassbox::app::labs::critiques::{acdc_runs, metric_pair, tau_steps, AcdcFinding, ACDC_RUNS, ACDC_TAUS};
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::methods::acdc::{AcdcEvent, AcdcMetric, AcdcRun, KlPositions};
use glassbox::lens::methods::ioi;
use glassbox::lens::Transformer;

fn findings() -> Vec<AcdcFinding> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/ioi");
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).unwrap();
    let model = Transformer::from_bytes(&cfg, &std::fs::read(format!("{dir}/model.safetensors")).unwrap()).unwrap();
    let vocab = Vocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap();
    let input = ioi::chapter_input(&vocab).unwrap();
    acdc_runs()
        .into_iter()
        .map(|(metric, tau)| {
            let t = Instant::now();
            let mut run = AcdcRun::with_metric(&model, &input, tau, KlPositions::Last, metric).unwrap();
            while run.step().unwrap() != AcdcEvent::Finished {}
            let f = AcdcFinding::of(&run.finish().unwrap());
            eprintln!(
                "{} τ = {tau}: {} edges, heads {:?}, KL {:.3}, logit diff {:?} ({:.0} ms native)",
                f.metric,
                f.edges,
                f.heads,
                f.kl,
                f.logit_diff,
                t.elapsed().as_secs_f64() * 1e3
            );
            f
        })
        .collect()
}

#[test]
fn the_circuit_shrinks_as_tau_rises_and_each_step_drops_named_edges() {
    let runs = findings();
    assert_eq!(runs.len(), 6);
    for s in tau_steps(&runs) {
        eprintln!("{} τ {} -> {}: dropped {:?}, added {:?}", s.metric, s.from, s.to, s.dropped, s.added);
    }
    // Every metric's τ list is ascending and holds the metric comparison's τ.
    for (m, taus) in ACDC_TAUS {
        assert!(taus.windows(2).all(|w| w[0] < w[1]));
        assert!(ACDC_RUNS.iter().any(|&(rm, t)| rm == m && taus.contains(&t)));
    }
    let counts: Vec<(AcdcMetric, f32, usize)> = runs.iter().map(|r| (r.metric, r.tau, r.edges)).collect();
    eprintln!("{counts:?}");
    // The pinned counts (the card's text): KL 16, 14, 9 edges; logit difference 35, 12, 8. Lowering τ from 0.1
    // to 0.03 almost triples the logit-difference circuit (it takes in all 16 heads but L0H0's... see the heads
    // below), while KL's hardly grows from 0.01 to 0.001.
    let edges: Vec<usize> = runs.iter().map(|r| r.edges).collect();
    assert_eq!(edges, vec![16, 14, 9, 35, 12, 8]);
    let heads: Vec<usize> = runs.iter().map(|r| r.heads.len()).collect();
    assert_eq!(heads, vec![6, 5, 4, 11, 6, 5]);
    assert!(runs.iter().all(|r| r.edge_names.len() == r.edges));
    // The comparison pair is the one the metric card has always shown.
    let [kl, ld] = metric_pair(&runs).unwrap();
    assert_eq!((kl.edges, ld.edges), (14, 12));
    // Each step up in τ drops edges, and what it drops are named edges of the lower run.
    let steps = tau_steps(&runs);
    assert_eq!(steps.len(), 4);
    let dropped: Vec<usize> = steps.iter().map(|s| s.dropped.len()).collect();
    assert_eq!(dropped, vec![2, 5, 23, 4]);
    assert!(steps.iter().all(|s| s.added.is_empty()), "here a higher τ never brings an edge back");
    for s in &steps {
        let lower = runs.iter().find(|r| r.metric == s.metric && r.tau == s.from).unwrap();
        assert!(!s.dropped.is_empty() && s.dropped.iter().all(|e| lower.edge_names.contains(e)), "{s:?}");
    }
}

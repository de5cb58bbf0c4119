//! The 9.5 lab's polysemantic-channel card on the shipped MNIST CNN (`public/models/mnist-cnn/`): its feature
//! visualizations (`featvis.bin`) and its 2,000 test digits (`samples.bin`), read as the page reads them
//! (`ChannelScan`, a few samples per step).
//!
//! The card's rule (conv3; clean = among the smoothest quarter of the layer's pictures and read by the CNN as one
//! digit with probability at least 0.9; then the most class-mixed top 20) picks channel 11: the CNN reads its
//! picture as a 7 with probability over 0.99, yet none of its 20 top digits is a 7; they are 2s (9), 6s (8) and
//! 0s (3). `--nocapture` prints every channel's reading.
use glassbox::app::labs::critiques::polysemantic::{channel_readings, pick, total_variation, PolyFinding, LAYER, TOP};
use glassbox::lens::cnn::mnist::Samples;
use glassbox::lens::cnn::model::{Cnn, VisionHook};
use glassbox::lens::methods::atlas::FeatureAtlas;
use glassbox::lens::methods::units::{polysemanticity, top_examples, ChannelScan};

const CNN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/mnist-cnn");

#[test]
fn total_variation_by_hand() {
    // 2x2: one bright pixel: two edges of height 1, over 4 pixels.
    assert_eq!(total_variation(&[1.0, 0.0, 0.0, 0.0], 2), 0.5);
    assert_eq!(total_variation(&[0.3; 9], 3), 0.0);
    // A checkerboard: every one of the 12 neighbour pairs of a 3x3 changes by 1.
    assert_eq!(total_variation(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0], 3), 12.0 / 9.0);
}

#[test]
fn the_card_picks_a_channel_that_looks_like_a_7_and_fires_on_no_7() {
    let read = |f: &str| std::fs::read(format!("{CNN}/{f}")).unwrap();
    let model = Cnn::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors")).unwrap();
    let samples = Samples::from_bytes(&read("samples.bin")).unwrap();
    let atlas = FeatureAtlas::from_bytes(&read("featvis.bin")).unwrap();
    let mut scan = ChannelScan::new(VisionHook::Conv(LAYER)).unwrap();
    while !scan.step(&model, &samples).unwrap() {}
    let means = scan.finish();
    let mixes = polysemanticity(&means, &samples.labels, TOP).unwrap();
    let readings = channel_readings(&model, &atlas, &mixes).unwrap();
    for r in &readings {
        eprintln!(
            "conv3 c{:2} tv {:.3} read as {} p {:.2} clean {} | top share {:.2} in {} classes {:?}",
            r.channel, r.tv, r.read_as, r.prob, r.clean, r.mix.top_share, r.mix.classes_present, r.mix.counts
        );
    }
    let clean = readings.iter().filter(|r| r.clean).count();
    assert_eq!((readings.len(), clean), (32, 4), "a quarter of 32 is smooth, and four of those read as one digit");
    let r = pick(&readings).unwrap().clone();
    let top: Vec<(usize, f32, u8)> =
        top_examples(&means, r.channel, TOP).unwrap().into_iter().map(|(i, a)| (i, a, samples.labels[i])).collect();
    let pixels = atlas.get(LAYER, r.channel).unwrap().pixels.clone();
    let f = PolyFinding { reading: r, pixels, side: atlas.side, top, clean, channels: readings.len() };
    eprintln!("picked {:?}\nclasses {:?}", f.reading, f.classes());
    // What the card says.
    assert_eq!((f.reading.channel, f.reading.read_as), (11, 7));
    assert!(f.reading.prob > 0.99, "{}", f.reading.prob);
    assert_eq!(f.of_read_class(), 0, "no 7 among the top digits");
    assert_eq!(f.classes(), vec![(2, 9), (6, 8), (0, 3)]);
    assert!(f.reading.mix.polysemantic, "the vision lab flags it too");
    // The picture is a real maximiser: it drives the channel harder than any of the 2,000 digits.
    let best = means.iter().map(|m| m[11]).fold(0.0f32, f32::max);
    assert!(atlas.get(LAYER, 11).unwrap().activation > best, "{best}");
    assert_eq!(f.top[0].1, best);
    assert!(f.top.iter().all(|t| t.2 as usize == 2 || t.2 == 6 || t.2 == 0));
    // The reveal: 19 of conv3's 32 channels have no class above 60% of their top 20 (flagged in 9.2.1).
    assert_eq!(mixes.iter().filter(|m| m.polysemantic).count(), 19);
    assert_eq!((samples.len(), TOP), (2_000, 20));
}

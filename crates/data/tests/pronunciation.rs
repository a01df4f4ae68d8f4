//! Pronouncing dictionaries: CMUdict's format and the pairs format, the split by word, the step
//! layout and CTC's step count.

use std::path::Path;

use data::{
    Part, PronunciationError, StepLayout, Stress, parse_cmudict, parse_pairs, part_of,
    steps_needed, token_vocabulary,
};

const DICT: &str = "\
abbey AE1 B IY0
abbey(2) AE1 B IY2 # a comment
x EH1 K S

d'artagnan D AH0 R T AE1 NG Y AH0 N
";

#[test]
fn cmudict_lines_give_words_letters_and_phonemes() {
    let entries = parse_cmudict(DICT, Path::new("dict"), Stress::Strip).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[1].word, "abbey");
    assert_eq!(entries[1].output, ["AE", "B", "IY"]);
    assert_eq!(entries[3].input.concat(), "d'artagnan");
    assert_eq!(entries[2].input, ["x"]);
    let kept = parse_cmudict(DICT, Path::new("dict"), Stress::Keep).unwrap();
    assert_eq!(kept[1].output, ["AE1", "B", "IY2"]);
    let phonemes = token_vocabulary(entries.iter().map(|e| e.output.as_slice()));
    assert_eq!(phonemes[0], "AE");
    assert!(phonemes.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn bad_lines_are_named_with_file_and_line() {
    let error = |text: &str| parse_cmudict(text, Path::new("d.dict"), Stress::Strip).unwrap_err();
    let message = error("abbey AE1 B IY0\nlonely\n").to_string();
    assert!(
        message.starts_with("d.dict:2:") && message.contains("no pronunciation"),
        "{message}"
    );
    let message = error("(2) AH0\n").to_string();
    assert!(message.contains("names no word"), "{message}");
    let message = error("word(2 AH0\n").to_string();
    assert!(message.contains("word(2)"), "{message}");
    assert!(matches!(
        error("# only a comment\n\n"),
        PronunciationError::Empty { .. }
    ));
    let pairs = |text: &str| parse_pairs(text, Path::new("p.tsv"));
    let message = pairs("a b\tA B\nno tab here\n").unwrap_err().to_string();
    assert!(
        message.starts_with("p.tsv:2:") && message.contains("tab"),
        "{message}"
    );
    assert!(pairs("\tA\n").unwrap_err().to_string().contains("no input"));
    assert!(
        pairs("a\t \n")
            .unwrap_err()
            .to_string()
            .contains("no output")
    );
    let ok = pairs("h e l l o\tHH AH L OW\n\n").unwrap();
    assert_eq!(ok[0].word, "h e l l o");
    assert_eq!(ok[0].output.len(), 4);
}

#[test]
fn the_split_keeps_a_word_whole_and_hits_its_fractions() {
    let words: Vec<String> = (0..20_000).map(|i| format!("w{i}")).collect();
    let parts: Vec<Part> = words.iter().map(|w| part_of(w, 0.05, 0.1)).collect();
    let count = |p: Part| parts.iter().filter(|&&q| q == p).count() as f64 / words.len() as f64;
    assert!((count(Part::Test) - 0.1).abs() < 0.01);
    assert!((count(Part::Validation) - 0.05).abs() < 0.01);
    // The same word, the same part; nothing depends on the other words.
    assert_eq!(part_of("abbey", 0.05, 0.1), part_of("abbey", 0.05, 0.1));
    assert_eq!(part_of("abbey", 0.0, 0.0), Part::Train);
}

#[test]
fn the_step_layout_makes_room_for_longer_pronunciations() {
    let layout = StepLayout {
        repeat: 2,
        padding: 1,
    };
    assert_eq!(layout.steps(&[3, 5], 0), [3, 3, 5, 5, 0]);
    assert_eq!(layout.len(2), 5);
    // `x` → EH K S: three steps needed, one letter.
    assert_eq!(steps_needed(&["EH", "K", "S"]), 3);
    assert!(layout.len(1) >= 3);
    // A repeat needs a blank between.
    assert_eq!(steps_needed(&[1, 1, 2]), 4);
    assert_eq!(steps_needed::<u32>(&[]), 0);
    // An abbreviation read as words gets the padding it needs to train on.
    assert_eq!(layout.training_steps(&[3], 0, 6), [3, 3, 0, 0, 0, 0]);
    assert_eq!(layout.training_steps(&[3], 0, 2), [3, 3, 0]);
}

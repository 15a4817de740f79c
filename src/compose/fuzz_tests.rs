//! Property tests over hostile input: arbitrary text and mutated real Compose files never make
//! the loader panic or hang, and every error it reports has a location. (The coverage-guided
//! fuzzer in `fuzz/` runs the same check for longer; see README.)

use proptest::prelude::*;

use super::check_loader_invariants;

fn fixture_texts() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/loader");
    let mut texts: Vec<String> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    std::fs::read_to_string(entry.ok()?.path().join("compose.yaml")).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    texts.sort();
    texts
}

/// A mutation of a text: replace, insert or delete a character at a position.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        ':', '-', ' ', '\n', '&', '*', '<', '$', '{', '}', '[', ']', '"', '\'', '!', '#', '|', '>',
        '0', 'x', '\t', '?',
    ]);
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(at, c)| Edit::Replace(at, c)),
        (any::<usize>(), interesting).prop_map(|(at, c)| Edit::Insert(at, c)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len().max(1);
        match *edit {
            Edit::Replace(at, c) if !chars.is_empty() => chars[at % len] = c,
            Edit::Insert(at, c) => chars.insert(at % (chars.len() + 1), c),
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at % len);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check_loader_invariants(&text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(text in "([a-z$&*<{}\\[\\]:\\- \n\"'!#|>0-9]){0,300}") {
        check_loader_invariants(&text);
    }

    #[test]
    fn mutated_fixtures_never_panic(index in any::<usize>(), edits in prop::collection::vec(edit(), 1..8)) {
        let texts = fixture_texts();
        prop_assume!(!texts.is_empty());
        let text = apply(&texts[index % texts.len()], &edits);
        check_loader_invariants(&text);
    }
}

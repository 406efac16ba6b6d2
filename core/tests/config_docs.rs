//! Every field of every configuration type states its default in its rustdoc, so a
//! user tuning one limit never has to read `impl Default` to learn what they change.
//! The check reads the sources themselves: a field added without its default fails
//! here, not in review.

/// The `pub` fields of `pub struct {name}` in `src` whose doc comment does not say
/// "default", and how many `pub` fields the struct has.
fn undocumented_defaults(src: &str, name: &str) -> (Vec<String>, usize) {
    let open = format!("pub struct {name} {{");
    let start = src
        .find(&open)
        .unwrap_or_else(|| panic!("`{open}` not found"));
    let mut doc = String::new();
    let (mut missing, mut fields) = (Vec::new(), 0);
    for line in src[start + open.len()..].lines() {
        if line.starts_with('}') {
            break;
        }
        let t = line.trim_start();
        if let Some(text) = t.strip_prefix("///") {
            doc.push_str(text);
            doc.push(' ');
        } else if t.starts_with("#[") {
            // Attributes sit between a field's doc and the field.
        } else if let Some(rest) = t.strip_prefix("pub ") {
            fields += 1;
            if !doc.to_ascii_lowercase().contains("default") {
                missing.push(rest.split(':').next().unwrap_or(rest).to_string());
            }
            doc.clear();
        } else {
            doc.clear();
        }
    }
    (missing, fields)
}

#[test]
fn every_config_field_states_its_default() {
    let types: [(&str, &str, usize); 4] = [
        (include_str!("../src/config.rs"), "Config", 20),
        (include_str!("../src/wire/params.rs"), "Params", 13),
        (include_str!("../src/router/mod.rs"), "RouterConfig", 4),
        (include_str!("../src/stream/types.rs"), "StreamConfig", 7),
    ];
    let mut report = Vec::new();
    for (src, name, at_least) in types {
        let (missing, fields) = undocumented_defaults(src, name);
        // A parser that found no fields would pass vacuously.
        assert!(
            fields >= at_least,
            "{name}: found {fields} pub fields, expected at least {at_least}"
        );
        report.extend(missing.into_iter().map(|f| format!("{name}::{f}")));
    }
    assert!(
        report.is_empty(),
        "fields whose rustdoc does not state the default: {report:?}"
    );
}

#[test]
fn the_check_sees_a_missing_default() {
    let src = "pub struct T {\n    /// Has one (default 3).\n    pub a: u8,\n    /// Has none.\n    #[doc(hidden)]\n    pub b: u8,\n}\n";
    assert_eq!(undocumented_defaults(src, "T"), (vec!["b".to_string()], 2));
}

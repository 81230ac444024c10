//! Prometheus' text exposition format, as the node's, the job queue's and the prover workers'
//! `/metrics` write it: one `# HELP` / `# TYPE` header per family, then its series.

use std::fmt::{Display, Write};

/// Appends a family of one unlabelled series.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl Display) {
    write_family(out, name, kind, help, [("", value)]);
}

/// Appends a family: `rows` are `(labels, value)`, labels already rendered (`code="x"`, or ""
/// for none; values escaped with [`label_value`]).
pub fn write_family<L: AsRef<str>, V: Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in rows {
        let labels = labels.as_ref();
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value with backslashes, quotes and newlines escaped.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_the_text_format() {
        let mut s = String::new();
        write_metric(&mut s, "a_total", "counter", "As.", 3);
        write_family(
            &mut s,
            "b",
            "gauge",
            "Bs.",
            [(format!("w=\"{}\"", label_value("x\"y")), 1.5)],
        );
        assert_eq!(
            s,
            "# HELP a_total As.\n# TYPE a_total counter\na_total 3\n\
             # HELP b Bs.\n# TYPE b gauge\nb{w=\"x\\\"y\"} 1.5\n"
        );
    }
}

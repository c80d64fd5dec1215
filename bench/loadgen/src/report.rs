//! Figures, and the Markdown table and JSON file they end up in.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::util::round;

/// One reported figure: Leadheat's number, the baseline measured in the same run, their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub part: &'static str,
    pub name: String,
    /// Which size ran (e.g. `100k leads / 1.03M touchpoints`, `c=16, 1 entry`).
    pub size: String,
    pub unit: String,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    /// What the baseline is.
    pub baseline_label: String,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    pub target: String,
    /// `None` when the figure has no target (or could not be measured).
    pub met: Option<bool>,
    pub note: String,
}

impl Figure {
    pub fn new(
        part: &'static str,
        name: impl Into<String>,
        size: impl Into<String>,
        unit: &str,
    ) -> Figure {
        Figure {
            part,
            name: name.into(),
            size: size.into(),
            unit: unit.to_string(),
            value: None,
            baseline: None,
            baseline_label: String::new(),
            ratio: None,
            target: String::new(),
            met: None,
            note: String::new(),
        }
    }

    pub fn value(mut self, value: f64) -> Figure {
        self.value = value.is_finite().then_some(value);
        self.update_ratio();
        self
    }

    pub fn baseline(mut self, label: impl Into<String>, value: f64) -> Figure {
        self.baseline_label = label.into();
        self.baseline = value.is_finite().then_some(value);
        self.update_ratio();
        self
    }

    pub fn target(mut self, target: impl Into<String>, met: Option<bool>) -> Figure {
        self.target = target.into();
        self.met = met;
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }

    fn update_ratio(&mut self) {
        self.ratio = match (self.value, self.baseline) {
            (Some(v), Some(b)) if b != 0.0 => Some(v / b),
            _ => None,
        };
    }
}

/// What a part hands back.
#[derive(Debug, Default, Serialize)]
pub struct PartOutput {
    pub figures: Vec<Figure>,
    pub details: Value,
    pub notes: Vec<String>,
    pub error: Option<String>,
    pub seconds: f64,
}

/// A ratio with two significant digits below 1 (0.0042×), two decimals above.
fn ratio(r: f64) -> String {
    if r.abs() >= 1.0 || r == 0.0 {
        format!("{}×", round(r, 2))
    } else {
        let digits = (2 - r.abs().log10().floor() as i32 - 1).max(2);
        format!("{}×", round(r, digits))
    }
}

fn number(x: Option<f64>, unit: &str) -> String {
    match x {
        None => "–".to_string(),
        Some(v) => {
            let whole = unit.is_empty() && v.fract() == 0.0;
            let text = if whole || v.abs() >= 1000.0 {
                format!("{:.0}", v)
            } else if v.abs() >= 100.0 {
                format!("{:.1}", v)
            } else if v.abs() >= 1.0 {
                format!("{:.2}", v)
            } else {
                format!("{:.3}", v)
            };
            if unit.is_empty() {
                text
            } else {
                format!("{text} {unit}")
            }
        }
    }
}

pub const PART_TITLES: [(&str, &str); 6] = [
    (
        "ingest",
        "1. Webhook ingest (signed Facebook deliveries through the local runtime)",
    ),
    (
        "queries",
        "2. Lead queries (API through the local runtime vs. the same SQL on the same file)",
    ),
    (
        "shards",
        "2b. Shards: noisy neighbours and capacity (one workerd locally: see the notes)",
    ),
    (
        "rescore",
        "3. Rescoring (the scoring job vs. naive one-query-per-lead)",
    ),
    ("size", "4a. Size and cold start"),
    (
        "micro",
        "4b. Micro-benchmarks of domain hot paths (criterion, native)",
    ),
];

/// The Markdown report.
pub fn markdown(header: &[(String, String)], parts: &[(&str, PartOutput)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Leadheat benchmarks: latest run\n");
    for (k, v) in header {
        let _ = writeln!(md, "- **{k}**: {v}");
    }
    let _ = writeln!(
        md,
        "\nEvery figure is beside its baseline measured in the same run; **ratio = Leadheat ÷ baseline** \
         (below 1 is better for times, above 1 is better for rates). Targets are checked and printed, \
         never enforced: a benchmark never fails a build or a test.\n"
    );

    // Target summary first.
    let targeted: Vec<&Figure> = parts
        .iter()
        .flat_map(|(_, p)| p.figures.iter())
        .filter(|f| !f.target.is_empty())
        .collect();
    if !targeted.is_empty() {
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| Part | Figure | Size | Value | Target | Met |");
        let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- |");
        for f in targeted {
            let value = match (f.ratio, f.value) {
                (Some(r), Some(v)) if f.target.contains('×') => {
                    format!("{} ({})", number(Some(v), &f.unit), ratio(r))
                }
                (_, v) => number(v, &f.unit),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                f.part,
                f.name,
                f.size,
                value,
                f.target,
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "n/a",
                }
            );
        }
        md.push('\n');
    }

    for (key, title) in PART_TITLES {
        let Some((_, part)) = parts.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let _ = writeln!(md, "## {title}\n");
        if let Some(error) = &part.error {
            let _ = writeln!(md, "**Not completed:** {error}\n");
        }
        if !part.figures.is_empty() {
            let _ = writeln!(
                md,
                "| Figure | Size ran | Leadheat | Baseline | Ratio | Target | Met |"
            );
            let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- | --- |");
            for f in &part.figures {
                let baseline = if f.baseline_label.is_empty() {
                    number(f.baseline, &f.unit)
                } else {
                    format!("{} ({})", number(f.baseline, &f.unit), f.baseline_label)
                };
                let _ = writeln!(
                    md,
                    "| {}{} | {} | {} | {} | {} | {} | {} |",
                    f.name,
                    if f.note.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", f.note)
                    },
                    f.size,
                    number(f.value, &f.unit),
                    baseline,
                    f.ratio.map_or("–".to_string(), ratio),
                    if f.target.is_empty() {
                        "–"
                    } else {
                        &f.target
                    },
                    match f.met {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "–",
                    }
                );
            }
            md.push('\n');
        }
        for note in &part.notes {
            let _ = writeln!(md, "- {note}");
        }
        let _ = writeln!(md, "\n_Part took {:.0} s._\n", part.seconds);
    }
    md
}

//! OpenMetrics (what `prometheus-client` writes) to Prometheus' classic text format (0.0.4),
//! for clients that do not ask for OpenMetrics. The two differ, for what this crate exposes,
//! in three things: a counter's family is named without `_total` in OpenMetrics and with it in
//! the classic format (whose parsers, `promtool` among them, otherwise see samples with
//! no `HELP` or `TYPE`); `# UNIT` lines; and the closing `# EOF`.

use std::collections::HashSet;

pub(crate) fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_and_openmetrics_only_lines_go() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 3\n\
                  # HELP t Time.\n# TYPE t_seconds histogram\n# UNIT t_seconds seconds\n\
                  t_seconds_count 1\n# HELP g A gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 3\n\
             # HELP t Time.\n# TYPE t_seconds histogram\nt_seconds_count 1\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 2\n"
        );
    }
}

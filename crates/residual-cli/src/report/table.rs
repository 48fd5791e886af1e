//! The table of the log's epoch records, the epoch of the best evaluation
//! accuracy (held-out or validation) marked.

use crate::report::html::{num, pct};
use crate::report::run::Run;
use std::fmt::Write;

/// The epoch records as an HTML table (a note when there are none).
pub fn epochs(run: &Run) -> String {
    if run.epochs.is_empty() {
        return "<p class=\"note\">No epoch has finished yet: the log has step records only.</p>"
            .into();
    }
    let best = run.best_epoch().map(|e| e.epoch);
    let eval = run.eval.adjective();
    let mut s = format!(
        "<table class=\"epochs\"><thead><tr><th>epoch</th><th>train loss</th><th>train acc</th>\
         <th>{eval} loss</th><th>{eval} acc</th><th>seconds</th><th>img/s</th></tr></thead><tbody>",
    );
    for e in &run.epochs {
        let mark = if Some(e.epoch) == best {
            r#" class="best""#
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr{mark}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.epoch,
            num(e.train_loss),
            pct(e.train_acc),
            num(e.test_loss),
            pct(e.test_acc),
            e.seconds.map_or("\u{2014}".into(), |x| format!("{x:.1}")),
            num(e.img_per_s.map(f32::round)),
        );
    }
    s.push_str("</tbody></table>");
    if best.is_some() {
        let _ = write!(s, "<p class=\"note\">The highlighted row is the best {eval} accuracy (model_best.safetensors).</p>");
    }
    s
}

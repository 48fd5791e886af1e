//! A horizontal bar chart of fractions as inline SVG: one bar per named row
//! (top to bottom in order), a 0-100% axis and the percentage at each bar.

use crate::report::html::escape;
use std::fmt::Write;

/// The chart of `bars` (`(name, fraction in [0, 1])`) titled `title`.
pub fn svg(title: &str, bars: &[(String, f32)]) -> String {
    const WIDTH: f32 = 1120.0;
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(1);
    let left = (longest as f32 * 6.8 + 14.0).clamp(60.0, 240.0);
    let (top, right) = (36.0, 70.0);
    let bar_h = (360.0 / bars.len().max(1) as f32).clamp(8.0, 22.0);
    let plot_w = WIDTH - left - right;
    let plot_h = bar_h * bars.len().max(1) as f32;
    let height = top + plot_h + 44.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" class="bars"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for k in 0..=4 {
        let x = left + plot_w * k as f32 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}%</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            k * 25
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">outputs that are exactly zero</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 36.0
    );
    let text_size = (bar_h * 0.6).clamp(8.0, 11.0);
    for (i, (name, f)) in bars.iter().enumerate() {
        let y = top + i as f32 * bar_h;
        let shown = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let label = match f.is_finite() {
            true => format!("{:.1}%", f * 100.0),
            false => "none".into(),
        };
        let _ = write!(
            s,
            r##"<rect x="{left}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728"><title>{}: {label}</title></rect><text x="{:.1}" y="{:.1}" font-size="{text_size:.0}" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" font-size="{text_size:.0}">{label}</text>"##,
            y + bar_h * 0.15,
            plot_w * shown,
            bar_h * 0.7,
            escape(name),
            left - 6.0,
            y + bar_h * 0.5 + text_size * 0.35,
            escape(name),
            left + plot_w * shown + 4.0,
            y + bar_h * 0.5 + text_size * 0.35
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_bar_per_row_with_its_percentage() {
        let s = super::svg("dead", &[("stem".into(), 0.25), ("a&b".into(), f32::NAN)]);
        assert_eq!(s.matches("fill=\"#d62728\"").count(), 2);
        assert!(s.contains(">25.0%<") && s.contains("a&amp;b"));
    }
}

//! Colour maps for the heatmaps: viridis (sequential, readable in grey and
//! by the colour-blind) and a blue-white-red diverging map.

/// An RGB colour as `#rrggbb`.
fn hex([r, g, b]: [f32; 3]) -> String {
    let byte = |c: f32| (c.clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

/// Piecewise-linear interpolation through evenly spaced `stops` at `t` in [0, 1].
fn through(stops: &[[f32; 3]], t: f32) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (stops.len() - 1) as f32;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    hex([
        a[0] + (b[0] - a[0]) * f,
        a[1] + (b[1] - a[1]) * f,
        a[2] + (b[2] - a[2]) * f,
    ])
}

/// Viridis at `t` in [0, 1] (dark purple to yellow), from nine of matplotlib's stops.
pub fn viridis(t: f32) -> String {
    const STOPS: [[f32; 3]; 9] = [
        [0.267, 0.005, 0.329],
        [0.282, 0.141, 0.458],
        [0.254, 0.265, 0.530],
        [0.207, 0.372, 0.553],
        [0.164, 0.471, 0.558],
        [0.128, 0.567, 0.551],
        [0.135, 0.659, 0.518],
        [0.478, 0.821, 0.317],
        [0.993, 0.906, 0.144],
    ];
    through(&STOPS, t)
}

/// Blue (t = 0) through white (t = 0.5) to red (t = 1), as ColorBrewer's RdBu.
pub fn diverging(t: f32) -> String {
    const STOPS: [[f32; 3]; 5] = [
        [0.129, 0.400, 0.675],
        [0.573, 0.773, 0.871],
        [0.969, 0.969, 0.969],
        [0.957, 0.647, 0.510],
        [0.698, 0.094, 0.169],
    ];
    through(&STOPS, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_run_end_to_end_and_clamp() {
        assert_eq!(viridis(0.0), "#440154");
        assert_eq!(viridis(1.0), "#fde725");
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(f32::NAN), viridis(0.0));
        assert_eq!(diverging(0.5), "#f7f7f7");
    }
}

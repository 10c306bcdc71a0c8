//! Progress of long unpacks and imports on a terminal (indicatif);
//! nothing when stderr is not one, or when not asked.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Bar {
    bars: Vec<ProgressBar>,
}

impl Bar {
    /// One bar per layer, when `enabled` and stderr is a terminal.
    pub(crate) fn new(enabled: bool, layers: usize) -> Bar {
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar { bars: vec![] };
        }
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "layer {prefix:>3} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = (0..layers)
            .map(|i| {
                let b = mp.add(ProgressBar::new(0));
                b.set_style(style.clone());
                b.set_prefix(format!("{}", i + 1));
                b
            })
            .collect();
        Bar { bars }
    }

    /// The callback for layer `i` of `size` compressed bytes.
    pub(crate) fn layer(&self, i: usize, size: Option<u64>) -> impl Fn(u64) + Sync + '_ {
        if let (Some(b), Some(s)) = (self.bars.get(i), size) {
            b.set_length(s);
        }
        move |n| {
            if let Some(b) = self.bars.get(i) {
                b.set_position(n);
            }
        }
    }

    pub(crate) fn finish(&self) {
        for b in &self.bars {
            b.finish();
        }
    }
}

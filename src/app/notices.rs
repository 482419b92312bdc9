//! Errors the user has not yet seen off: each stays on screen, in a strip above the status
//! bar, until it is dismissed, so a later event (a model that finished loading, a new
//! frame) can never hide it. The same message arriving again is counted, not repeated.

use eframe::egui;

/// One error.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The message.
    pub text: String,
    /// How many times it arrived.
    pub count: usize,
}

/// The errors on screen, oldest first.
#[derive(Debug, Default)]
pub struct Notices {
    items: Vec<Notice>,
}

/// More than this many errors: the oldest are dropped (the list says how many).
const MAX_SHOWN: usize = 20;

impl Notices {
    /// Shows `text` until it is dismissed.
    pub fn push(&mut self, text: impl Into<String>) {
        let text = text.into();
        if let Some(n) = self.items.iter_mut().find(|n| n.text == text) {
            n.count += 1;
            return;
        }
        self.items.push(Notice { text, count: 1 });
        if self.items.len() > MAX_SHOWN {
            self.items.remove(0);
        }
    }

    /// The errors on screen.
    pub fn items(&self) -> &[Notice] {
        &self.items
    }

    /// Whether an error on screen contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.items.iter().any(|n| n.text.contains(needle))
    }

    /// Draws the strip (nothing when there is no error).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        let mut dismiss_all = false;
        for (i, n) in self.items.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui
                    .button("Dismiss")
                    .on_hover_text("Remove this error from the list")
                    .clicked()
                {
                    dismiss = Some(i);
                }
                let text = if n.count > 1 {
                    format!("error ({}x): {}", n.count, n.text)
                } else {
                    format!("error: {}", n.text)
                };
                ui.add(
                    egui::Label::new(egui::RichText::new(text).color(ui.visuals().error_fg_color))
                        .wrap(),
                );
            });
        }
        if self.items.len() > 1 && ui.button("Dismiss all").clicked() {
            dismiss_all = true;
        }
        if dismiss_all {
            self.items.clear();
        } else if let Some(i) = dismiss {
            self.items.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_accumulate_count_repeats_and_are_bounded() {
        let mut n = Notices::default();
        n.push("a");
        n.push("b");
        n.push("a");
        assert_eq!(n.items().len(), 2);
        assert_eq!(n.items()[0].count, 2);
        assert!(n.contains("b") && !n.contains("c"));
        for i in 0..30 {
            n.push(format!("e{i}"));
        }
        assert_eq!(n.items().len(), MAX_SHOWN);
        assert_eq!(n.items().last().map(|x| x.text.as_str()), Some("e29"));
    }
}

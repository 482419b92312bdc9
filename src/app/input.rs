//! One release per frame: egui reads every pointer position of a frame as the frame's
//! *latest* position, so when a slow frame (a busy machine, a training job) collects a
//! button release *and* later pointer motion, a slider being dragged takes its value from
//! where the pointer went after the release (a release followed by a move to the left
//! edge set the value to −T). [`EventQueue`] ends a frame's input at its first button
//! release and hands the events after it to the next frame, so every widget sees the
//! pointer where the button was released, whatever the frame rate.

use eframe::egui;

/// Events held back for the next frame.
#[derive(Default)]
pub struct EventQueue {
    held: Vec<egui::Event>,
}

impl EventQueue {
    /// Puts the held events before this frame's, then holds back whatever follows the
    /// first pointer-button release. Returns true when events are held (the caller asks
    /// for another frame at once).
    pub fn split_at_release(&mut self, raw: &mut egui::RawInput) -> bool {
        if !self.held.is_empty() {
            let newer = std::mem::take(&mut raw.events);
            raw.events = std::mem::take(&mut self.held);
            raw.events.extend(newer);
        }
        let release = raw
            .events
            .iter()
            .position(|e| matches!(e, egui::Event::PointerButton { pressed: false, .. }));
        if let Some(i) = release
            && i + 1 < raw.events.len()
        {
            self.held = raw.events.split_off(i + 1);
        }
        !self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(x: f32) -> egui::Event {
        egui::Event::PointerMoved(egui::pos2(x, 0.0))
    }

    fn button(x: f32, pressed: bool) -> egui::Event {
        egui::Event::PointerButton {
            pos: egui::pos2(x, 0.0),
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::default(),
        }
    }

    fn input(events: Vec<egui::Event>) -> egui::RawInput {
        egui::RawInput {
            events,
            ..Default::default()
        }
    }

    #[test]
    fn events_after_a_release_wait_for_the_next_frame_in_order() {
        let mut queue = EventQueue::default();
        let mut first = input(vec![
            moved(1.0),
            button(1.0, true),
            moved(2.0),
            button(2.0, false),
            moved(9.0),
            button(9.0, true),
            button(9.0, false),
            moved(3.0),
        ]);
        assert!(queue.split_at_release(&mut first));
        assert_eq!(
            first.events,
            vec![
                moved(1.0),
                button(1.0, true),
                moved(2.0),
                button(2.0, false)
            ]
        );
        // The next frame starts with what was held, then its own events, and splits again.
        let mut second = input(vec![moved(4.0)]);
        assert!(queue.split_at_release(&mut second));
        assert_eq!(
            second.events,
            vec![moved(9.0), button(9.0, true), button(9.0, false)]
        );
        let mut third = input(vec![]);
        assert!(!queue.split_at_release(&mut third));
        assert_eq!(third.events, vec![moved(3.0), moved(4.0)]);
    }

    #[test]
    fn frames_without_a_release_or_ending_with_one_pass_unchanged() {
        let mut queue = EventQueue::default();
        let events = vec![moved(1.0), button(1.0, true), moved(2.0)];
        let mut raw = input(events.clone());
        assert!(!queue.split_at_release(&mut raw));
        assert_eq!(raw.events, events);
        let events = vec![moved(2.0), button(2.0, false)];
        let mut raw = input(events.clone());
        assert!(!queue.split_at_release(&mut raw));
        assert_eq!(raw.events, events);
    }
}

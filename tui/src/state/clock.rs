//! Which instant the views show: "now" when following a live run, or a replay position that
//! plays at a chosen speed and can be moved.

use std::time::Instant;

use traces::Nanos;

/// Replay speeds, slowest first.
pub const SPEEDS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0];

#[derive(Clone, Debug)]
pub struct Clock {
    pub cursor: Nanos,
    pub start: Nanos,
    /// Stick to the newest instant (live runs, and replays that reached the end while playing).
    pub follow: bool,
    pub playing: bool,
    pub speed_index: usize,
    last_tick: Option<Instant>,
}

impl Clock {
    pub fn live() -> Clock {
        Clock {
            cursor: 0,
            start: 0,
            follow: true,
            playing: false,
            speed_index: 3,
            last_tick: None,
        }
    }

    pub fn replay(start: Nanos) -> Clock {
        Clock {
            cursor: start,
            start,
            follow: false,
            playing: false,
            speed_index: 3,
            last_tick: None,
        }
    }

    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed_index]
    }

    pub fn tick(&mut self, now: Instant, end: Nanos) {
        let elapsed = self
            .last_tick
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        self.last_tick = Some(now);
        if self.follow {
            self.cursor = end;
        } else if self.playing {
            let step = (elapsed * self.speed() * 1e9) as Nanos;
            self.cursor = self.cursor.saturating_add(step).min(end);
            if self.cursor >= end {
                self.playing = false;
            }
        }
        self.cursor = self.cursor.min(end.max(self.start));
    }

    pub fn toggle_play(&mut self, end: Nanos) {
        if self.follow {
            self.follow = false;
            self.playing = false;
            return;
        }
        if !self.playing && self.cursor >= end {
            self.cursor = self.start;
        }
        self.playing = !self.playing;
    }

    pub fn faster(&mut self) {
        self.speed_index = (self.speed_index + 1).min(SPEEDS.len() - 1);
    }

    pub fn slower(&mut self) {
        self.speed_index = self.speed_index.saturating_sub(1);
    }

    /// Moves by `delta` nanoseconds (negative: back); leaves follow mode.
    pub fn seek_by(&mut self, delta: i64, end: Nanos) {
        self.follow = false;
        self.cursor = if delta < 0 {
            self.cursor
                .saturating_sub(delta.unsigned_abs())
                .max(self.start)
        } else {
            self.cursor.saturating_add(delta as u64).min(end)
        };
    }

    pub fn seek_start(&mut self) {
        self.follow = false;
        self.playing = false;
        self.cursor = self.start;
    }

    /// Jumps to the newest instant and stays there.
    pub fn seek_end(&mut self, end: Nanos) {
        self.follow = true;
        self.playing = false;
        self.cursor = end;
    }
}

//! The monotonic deque behind every sliding-window extreme: `drop()`'s peak
//! and `min_over`/`max_over`. It holds the points of the current window that
//! can still become its extreme, in time order, so the extreme is always the
//! front and each point enters and leaves once: O(1) amortised per point.

/// One point of a series as the deque keeps it. Keeping the time and value
/// together (rather than an index into the columns) saves a dependent load
/// per access in the hot loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Point {
    pub time: i64,
    pub value: i64,
}

/// A deque of points, stored as a vector plus the index of its front.
///
/// Points are only ever appended at the back, so a plain vector with a moving
/// head is enough: it never holds more than the series' length, and once it
/// has grown to the longest series seen it never allocates again.
#[derive(Debug, Clone, Default)]
pub(super) struct MonotonicDeque {
    points: Vec<Point>,
    head: usize,
}

impl MonotonicDeque {
    /// Empties the deque, keeping its allocation, and makes room for a series
    /// of `n` points so that pushing never reallocates in the loop.
    pub fn reset(&mut self, n: usize) {
        self.points.clear();
        self.head = 0;
        self.points.reserve(n);
    }

    /// Appends a point, first dropping from the back every point whose value
    /// is at most `point.value`: none of them can be the window's maximum
    /// again while `point` is in the window, since it is at least as large
    /// and leaves later. Dropping equal values too makes the front the latest
    /// of equal maxima, which is the tie rule of `drop()`'s peak.
    #[inline(always)]
    pub fn push_max(&mut self, point: Point) {
        while self.points.len() > self.head {
            match self.points.last() {
                Some(back) if back.value <= point.value => {
                    self.points.pop();
                }
                _ => break,
            }
        }
        self.points.push(point);
    }

    /// Like [`push_max`](Self::push_max) for the window's minimum: drops every
    /// point whose value is at least `point.value`.
    #[inline(always)]
    pub fn push_min(&mut self, point: Point) {
        while self.points.len() > self.head {
            match self.points.last() {
                Some(back) if back.value >= point.value => {
                    self.points.pop();
                }
                _ => break,
            }
        }
        self.points.push(point);
    }

    /// Drops from the front every point older than `lo`, the window's first
    /// admissible time.
    #[inline(always)]
    pub fn expire_before(&mut self, lo: i64) {
        while let Some(front) = self.points.get(self.head)
            && front.time < lo
        {
            self.head += 1;
        }
    }

    /// The window's extreme, or `None` when the window is empty.
    #[inline(always)]
    pub fn front(&self) -> Option<Point> {
        self.points.get(self.head).copied()
    }
}

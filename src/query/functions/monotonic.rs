//! The monotonic deque behind every sliding-window extreme: `drop()`'s peak
//! and `min_over`/`max_over`. It holds the points of the current window that
//! can still become its extreme, in time order, so the extreme is always the
//! front and each point enters and leaves once: O(1) amortised per point.

/// One point of a series as the deque keeps it. Keeping the time and value
/// together (rather than an index into the columns) saves a dependent load
/// per access in the hot loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Point {
    pub time: i64,
    pub value: i64,
}

/// The memory of a deque, kept from one series to the next.
#[derive(Debug, Clone, Default)]
pub(super) struct DequeMemory {
    points: Vec<Point>,
}

impl DequeMemory {
    /// An empty deque with room for a series of `n` points.
    ///
    /// The vector only ever grows, to the longest series seen, and is never
    /// cleared: the deque reads only slots it has written for this series, so
    /// stale points from earlier series are harmless, and a series no longer
    /// than the longest one costs no allocation and no initialisation.
    pub fn deque(&mut self, n: usize) -> MonotonicDeque<'_> {
        if self.points.len() < n {
            self.points.resize(n, Point::default());
        }
        MonotonicDeque {
            points: &mut self.points,
            head: 0,
            tail: 0,
        }
    }
}

/// A deque of points: `points[head..tail]`, front to back.
///
/// Points are only ever appended at the back, at most once each, so a slice
/// as long as the series with two moving indices is enough. The deque lives
/// in local variables for the length of one loop, which lets the compiler
/// keep both indices in registers.
pub(super) struct MonotonicDeque<'a> {
    points: &'a mut [Point],
    head: usize,
    tail: usize,
}

impl MonotonicDeque<'_> {
    /// Appends a point, first dropping from the back every point whose value
    /// is at most `point.value`: none of them can be the window's maximum
    /// again while `point` is in the window, since it is at least as large
    /// and leaves later. Dropping equal values too makes the front the latest
    /// of equal maxima, which is the tie rule of `drop()`'s peak.
    ///
    /// The caller pushes each point of the series at most once, and the
    /// slice is at least as long as the series, so `tail` stays below its
    /// length and the indexing cannot fail.
    #[inline(always)]
    pub fn push_max(&mut self, point: Point) {
        while self.tail > self.head && self.points[self.tail - 1].value <= point.value {
            self.tail -= 1;
        }
        self.points[self.tail] = point;
        self.tail += 1;
    }

    /// Empties the deque and pushes `point`: what `push_max` does when
    /// `point.value` is at least the front's (the largest in the deque), or
    /// `push_min` when it is at most the front's, but without walking the
    /// deque. Restarting at the first slot is what keeps this cheap; the
    /// series being processed has at least one point (this one), so the
    /// slice is not empty and the index cannot fail.
    #[inline(always)]
    pub fn reset_to(&mut self, point: Point) {
        self.points[0] = point;
        self.head = 0;
        self.tail = 1;
    }

    /// Like [`push_max`](Self::push_max) for the window's minimum: drops every
    /// point whose value is at least `point.value`.
    #[inline(always)]
    pub fn push_min(&mut self, point: Point) {
        while self.tail > self.head && self.points[self.tail - 1].value >= point.value {
            self.tail -= 1;
        }
        self.points[self.tail] = point;
        self.tail += 1;
    }

    /// Drops from the front every point older than `lo`, the window's first
    /// admissible time. (`head < tail <= len` makes the indexing safe.)
    #[inline(always)]
    pub fn expire_before(&mut self, lo: i64) {
        while self.head < self.tail && self.points[self.head].time < lo {
            self.head += 1;
        }
    }

    /// The window's extreme, or `None` when the window is empty.
    #[inline(always)]
    pub fn front(&self) -> Option<Point> {
        if self.head < self.tail {
            // `head < tail <= len`, so the index is in bounds.
            Some(self.points[self.head])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_grows_to_the_longest_series_and_no_further() {
        let mut memory = DequeMemory::default();
        let _ = memory.deque(100);
        let grown = (memory.points.as_ptr(), memory.points.len());
        // Shorter and equal series reuse the same allocation untouched.
        let _ = memory.deque(10);
        let _ = memory.deque(100);
        assert_eq!((memory.points.as_ptr(), memory.points.len()), grown);
        let _ = memory.deque(101);
        assert_eq!(memory.points.len(), 101);
    }

    #[test]
    fn the_front_is_the_latest_of_equal_maxima() {
        let mut memory = DequeMemory::default();
        let mut deque = memory.deque(4);
        for (time, value) in [(0, 5), (1, 3), (2, 5), (3, 4)] {
            deque.push_max(Point { time, value });
        }
        assert_eq!(deque.front(), Some(Point { time: 2, value: 5 }));
        deque.expire_before(3);
        assert_eq!(deque.front(), Some(Point { time: 3, value: 4 }));
        deque.expire_before(4);
        assert_eq!(deque.front(), None);
    }
}

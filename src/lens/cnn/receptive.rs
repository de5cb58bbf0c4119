//! Receptive fields: which input pixels a feature-map cell can see. The lab outlines them on the input
//! when the student hovers a cell.
use super::model::VisionConfig;

impl VisionConfig {
    /// The input pixels, `(y0, x0, y1, x1)` inclusive and clipped to the image, that can influence cell
    /// (`y`, `x`) of conv layer `l`'s output (1-based, after its ReLU, before its pool).
    ///
    /// Walking up from the input: a k x k convolution with padding p widens the field by (k - 1) steps of
    /// the current stride and moves its start p steps back; a 2x2 max-pool with stride 2 widens it by one
    /// step and doubles the stride.
    pub fn receptive_field(&self, l: usize, y: usize, x: usize) -> (usize, usize, usize, usize) {
        let (mut start, mut size, mut jump) = (0i64, 1i64, 1i64);
        for layer in 1..=l.min(self.n_conv()) {
            if layer > 1 && self.pool[layer - 2] {
                size += jump;
                jump *= 2;
            }
            start -= self.padding as i64 * jump;
            size += (self.kernel_size as i64 - 1) * jump;
        }
        let last = self.image_size as i64 - 1;
        let span = |i: usize| {
            let a = start + i as i64 * jump;
            ((a.clamp(0, last)) as usize, ((a + size - 1).clamp(0, last)) as usize)
        };
        let (y0, y1) = span(y);
        let (x0, x1) = span(x);
        (y0, x0, y1, x1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receptive_fields_by_hand() {
        let cfg = VisionConfig::mnist(); // 3x3 convs, padding 1, a 2x2 pool after each
                                         // conv1: a 3x3 window centred on the cell, clipped at the border.
        assert_eq!(cfg.receptive_field(1, 0, 0), (0, 0, 1, 1));
        assert_eq!(cfg.receptive_field(1, 5, 7), (4, 6, 6, 8));
        // conv2 reads the 14x14 pool of conv1: cell (y, x) sees pool cells y-1..y+1, i.e. conv1 rows
        // 2y-2..2y+3, i.e. input rows 2y-3..2y+4: 8 pixels.
        assert_eq!(cfg.receptive_field(2, 3, 3), (3, 3, 10, 10));
        // conv3 reads the 7x7 pool of conv2: pool2 cells y-1..y+1 -> conv2 rows 2y-2..2y+3 -> input rows
        // 4y-7..4y+10: 18 pixels.
        assert_eq!(cfg.receptive_field(3, 3, 3), (5, 5, 22, 22));
        assert_eq!(cfg.receptive_field(3, 0, 6), (0, 17, 10, 27));
    }
}

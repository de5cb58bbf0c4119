//! Digit data: the IDX files MNIST is distributed in, the compact sample set shipped with the app, and the
//! preprocessing that turns a drawing into an MNIST-like image.
//!
//! Everything here works on bytes and slices, never on files, so it runs the same in the browser.
use candle_core::{Device, Tensor};

use crate::lens::{LensError, Result};

/// One IDX file (LeCun's format): a big-endian header `0, 0, type, ndims`, `ndims` big-endian u32 sizes,
/// then the values. MNIST uses type 0x08 (unsigned bytes) only, and so do we.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl Idx {
    pub fn parse(bytes: &[u8]) -> Result<Idx> {
        let bad = |m: String| Err(LensError::Data(m));
        if bytes.len() < 4 {
            return bad(format!("an IDX file starts with a 4-byte header, but this one has {} bytes", bytes.len()));
        }
        if bytes[0] != 0 || bytes[1] != 0 {
            // A gzipped file (1f 8b) is the usual mistake: say so.
            let hint =
                if bytes[0] == 0x1f && bytes[1] == 0x8b { " (it looks gzipped: decompress it first)" } else { "" };
            return bad(format!("wrong magic number {:02x} {:02x}: not an IDX file{hint}", bytes[0], bytes[1]));
        }
        if bytes[2] != 0x08 {
            return bad(format!("IDX value type 0x{:02x} is not supported (only 0x08, unsigned bytes)", bytes[2]));
        }
        let nd = bytes[3] as usize;
        if nd == 0 || nd > 4 {
            return bad(format!("IDX file has {nd} dimensions; expected 1 to 4"));
        }
        let header = 4 + 4 * nd;
        if bytes.len() < header {
            return bad(format!("IDX file is truncated inside its header ({} of {header} bytes)", bytes.len()));
        }
        let dims: Vec<usize> =
            (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let body = bytes.len() - header;
        match n {
            Some(n) if n == body => Ok(Idx { dims, data: bytes[header..].to_vec() }),
            Some(n) if n > body => {
                bad(format!("IDX file is truncated: its header promises {dims:?} = {n} values but {body} follow"))
            }
            Some(n) => bad(format!("IDX file has {} bytes after its {dims:?} = {n} values", body - n)),
            None => bad(format!("IDX sizes {dims:?} are too large")),
        }
    }

    /// Writes the same format (used by tests and the sample set).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, self.dims.len() as u8];
        for &d in &self.dims {
            out.extend((d as u32).to_be_bytes());
        }
        out.extend(&self.data);
        out
    }
}

/// A labelled set of square grayscale images (u8, 0 = background, 255 = ink), e.g. MNIST's test set or the
/// 2,000-image sample the app ships.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub side: usize,
    pub labels: Vec<u8>,
    /// `len * side * side` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
    /// Each image's index in the set it was drawn from (MNIST's test set for the shipped sample).
    pub source_index: Vec<u32>,
}

/// Magic bytes of the shipped sample file.
const SAMPLES_MAGIC: &[u8; 8] = b"GBDIGIT1";

impl Samples {
    /// MNIST's pair of IDX files: images `[n, rows, cols]` and labels `[n]`.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Samples> {
        let im = Idx::parse(images).map_err(|e| LensError::Data(format!("images: {e}")))?;
        let lb = Idx::parse(labels).map_err(|e| LensError::Data(format!("labels: {e}")))?;
        if im.dims.len() != 3 || im.dims[1] != im.dims[2] {
            return Err(LensError::Data(format!("images: expected [n, side, side], got {:?}", im.dims)));
        }
        if lb.dims.len() != 1 || lb.dims[0] != im.dims[0] {
            return Err(LensError::Data(format!("labels: expected [{}], got {:?}", im.dims[0], lb.dims)));
        }
        let s = Samples {
            side: im.dims[1],
            labels: lb.data,
            pixels: im.data,
            source_index: (0..im.dims[0] as u32).collect(),
        };
        s.check_labels()?;
        Ok(s)
    }

    fn check_labels(&self) -> Result<()> {
        match self.labels.iter().position(|&l| l > 9) {
            Some(i) => Err(LensError::Data(format!("label {} of image {i} is not a digit", self.labels[i]))),
            None => Ok(()),
        }
    }

    /// The shipped format: `GBDIGIT1`, then little-endian u32 count and side, then `count` u32 source indices,
    /// `count` label bytes, and `count * side * side` pixel bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = SAMPLES_MAGIC.to_vec();
        out.extend((self.len() as u32).to_le_bytes());
        out.extend((self.side as u32).to_le_bytes());
        for &i in &self.source_index {
            out.extend(i.to_le_bytes());
        }
        out.extend(&self.labels);
        out.extend(&self.pixels);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Samples> {
        if bytes.len() < 16 || &bytes[..8] != SAMPLES_MAGIC {
            return Err(LensError::Data("not a digit sample file (it should start with `GBDIGIT1`)".into()));
        }
        let n = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let side = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let want = 16 + n * (4 + 1 + side * side);
        if bytes.len() != want {
            return Err(LensError::Data(format!(
                "the sample file should hold {n} images of {side}x{side} in {want} bytes, but has {}",
                bytes.len()
            )));
        }
        let idx_end = 16 + 4 * n;
        let source_index = bytes[16..idx_end].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let s = Samples {
            side,
            source_index,
            labels: bytes[idx_end..idx_end + n].to_vec(),
            pixels: bytes[idx_end + n..].to_vec(),
        };
        s.check_labels()?;
        Ok(s)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as `side * side` values in [0, 1].
    pub fn image(&self, i: usize) -> Vec<f32> {
        let n = self.side * self.side;
        self.pixels[i * n..(i + 1) * n].iter().map(|&p| p as f32 / 255.0).collect()
    }

    /// Images `idx` as a `[idx.len(), 1, side, side]` tensor in [0, 1].
    pub fn batch(&self, idx: &[usize]) -> Result<Tensor> {
        let data: Vec<f32> = idx.iter().flat_map(|&i| self.image(i)).collect();
        Ok(Tensor::from_vec(data, (idx.len(), 1, self.side, self.side), &Device::Cpu)?)
    }

    /// The images at `idx`, keeping their source indices.
    pub fn subset(&self, idx: &[usize]) -> Samples {
        let n = self.side * self.side;
        Samples {
            side: self.side,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            pixels: idx.iter().flat_map(|&i| self.pixels[i * n..(i + 1) * n].iter().copied()).collect(),
            source_index: idx.iter().map(|&i| self.source_index[i]).collect(),
        }
    }
}

/// A pixel counts as ink for the bounding box when it is above this fraction of the brightest pixel;
/// fainter specks (anti-aliasing fringes, sensor noise) do not stretch the box.
pub const INK_THRESHOLD: f32 = 0.1;
/// MNIST's recipe: the digit's longer side is scaled to 20 px and its centre of mass put at the centre.
pub const DIGIT_BOX: usize = 20;
pub const MNIST_SIDE: usize = 28;

/// Turns a drawing into an MNIST-like 28x28 image, following how MNIST itself was made: crop to the ink's
/// bounding box, scale the longer side to 20 px keeping the aspect ratio (area averaging), and place the
/// result in a 28x28 field so that its centre of mass sits at pixel coordinates (14, 14) (pixel (i, j) has
/// coordinates (i, j); the shift is sub-pixel, by bilinear interpolation, so the centre is exact unless ink
/// would fall off the edge).
///
/// `pixels` is `width * height` grayscale values, row-major, ink bright (white on black, as in MNIST); the
/// result is 784 values in [0, 1] with the brightest ink at 1. An image with no ink is an error.
pub fn preprocess_drawing(pixels: &[f32], width: usize, height: usize) -> Result<Vec<f32>> {
    if width == 0 || height == 0 || pixels.len() != width * height {
        return Err(LensError::Input(format!(
            "expected {width}x{height} = {} pixel values, got {}",
            width * height,
            pixels.len()
        )));
    }
    if pixels.iter().any(|v| !v.is_finite()) {
        return Err(LensError::Input("the drawing contains NaN or infinite values".into()));
    }
    let max = pixels.iter().fold(0.0f32, |a, &b| a.max(b));
    if max <= 1e-6 {
        return Err(LensError::Input("draw a digit: the canvas is empty".into()));
    }
    let ink = |x: usize, y: usize| pixels[y * width + x] / max;
    // Bounding box of the ink.
    let (mut x0, mut x1, mut y0, mut y1) = (width, 0, height, 0);
    for y in 0..height {
        for x in 0..width {
            if ink(x, y) > INK_THRESHOLD {
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
                y0 = y0.min(y);
                y1 = y1.max(y + 1);
            }
        }
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    let scale = DIGIT_BOX as f32 / bw.max(bh) as f32;
    let nw = ((bw as f32 * scale).round() as usize).clamp(1, DIGIT_BOX);
    let nh = ((bh as f32 * scale).round() as usize).clamp(1, DIGIT_BOX);
    // Area averaging: each output pixel is the mean of the source area it covers, with fractional edges.
    // This is exact box filtering, right for shrinking a large canvas and still sensible for enlarging.
    let (sx, sy) = (bw as f32 / nw as f32, bh as f32 / nh as f32);
    let mut small = vec![0.0f32; nw * nh];
    for oy in 0..nh {
        let (fy0, fy1) = (oy as f32 * sy, (oy + 1) as f32 * sy);
        for ox in 0..nw {
            let (fx0, fx1) = (ox as f32 * sx, (ox + 1) as f32 * sx);
            let mut acc = 0.0;
            for y in fy0.floor() as usize..(fy1.ceil() as usize).min(bh) {
                let wy = (fy1.min((y + 1) as f32) - fy0.max(y as f32)).max(0.0);
                for x in fx0.floor() as usize..(fx1.ceil() as usize).min(bw) {
                    let wx = (fx1.min((x + 1) as f32) - fx0.max(x as f32)).max(0.0);
                    acc += wx * wy * ink(x0 + x, y0 + y);
                }
            }
            small[oy * nw + ox] = acc / (sx * sy);
        }
    }
    let mass: f32 = small.iter().sum();
    let cy = small.iter().enumerate().map(|(i, v)| (i / nw) as f32 * v).sum::<f32>() / mass;
    let cx = small.iter().enumerate().map(|(i, v)| (i % nw) as f32 * v).sum::<f32>() / mass;
    // Output pixel (y, x) samples the small image at (y - dy, x - dx), bilinearly, with zeros outside.
    let centre = (MNIST_SIDE / 2) as f32;
    let (dy, dx) = (centre - cy, centre - cx);
    let at = |y: isize, x: isize| {
        if y >= 0 && x >= 0 && (y as usize) < nh && (x as usize) < nw {
            small[y as usize * nw + x as usize]
        } else {
            0.0
        }
    };
    let mut out = vec![0.0f32; MNIST_SIDE * MNIST_SIDE];
    for y in 0..MNIST_SIDE {
        for x in 0..MNIST_SIDE {
            let (py, px) = (y as f32 - dy, x as f32 - dx);
            let (iy, ix) = (py.floor(), px.floor());
            let (ty, tx) = (py - iy, px - ix);
            let (iy, ix) = (iy as isize, ix as isize);
            let v = (1.0 - ty) * ((1.0 - tx) * at(iy, ix) + tx * at(iy, ix + 1))
                + ty * ((1.0 - tx) * at(iy + 1, ix) + tx * at(iy + 1, ix + 1));
            out[y * MNIST_SIDE + x] = v;
        }
    }
    // Bring the brightest pixel back to 1: averaging and the sub-pixel shift soften the strokes a little.
    let top = out.iter().fold(0.0f32, |a, &b| a.max(b));
    for v in &mut out {
        *v = (*v / top).clamp(0.0, 1.0);
    }
    Ok(out)
}

/// Centre of mass (row, column) of a square image, in pixel coordinates.
pub fn centre_of_mass(pixels: &[f32], side: usize) -> (f32, f32) {
    let mass: f32 = pixels.iter().sum();
    let cy = pixels.iter().enumerate().map(|(i, v)| (i / side) as f32 * v).sum::<f32>() / mass;
    let cx = pixels.iter().enumerate().map(|(i, v)| (i % side) as f32 * v).sum::<f32>() / mass;
    (cy, cx)
}

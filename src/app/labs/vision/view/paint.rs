//! Painting values on canvases, one canvas pixel per value (CSS scales the canvas up without smoothing).
use wasm_bindgen::JsCast;

use crate::app::core::browser::canvas_by_id;
use crate::app::core::charts::{diverging, sequential};

#[derive(Clone, Copy, PartialEq)]
pub enum Colour {
    /// 0 black .. 1 white, like MNIST.
    Gray,
    /// 0 .. `max` along viridis (dark violet to yellow).
    Heat(f32),
    /// Negative blue, zero white, positive orange, symmetric around `max_abs`.
    Diverging(f32),
}

impl Colour {
    fn rgb(self, v: f32) -> (u8, u8, u8) {
        let c = match self {
            Colour::Gray => {
                let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
                return (g, g, g);
            }
            // The app's two colour-blind-safe maps (app::core::charts): viridis for a magnitude, blue-white-orange
            // for a signed value.
            Colour::Heat(max) => sequential(if max > 0.0 { (v / max).clamp(0.0, 1.0) } else { 0.0 }),
            Colour::Diverging(max_abs) => diverging(v, max_abs),
        };
        (c.0, c.1, c.2)
    }
}

/// Paints `side * side` values on `canvas`, resizing it to `side` pixels.
pub fn paint(canvas: &web_sys::HtmlCanvasElement, side: usize, values: &[f32], colour: Colour) {
    if side == 0 || values.len() != side * side {
        return;
    }
    if canvas.width() != side as u32 {
        canvas.set_width(side as u32);
        canvas.set_height(side as u32);
    }
    let Some(ctx) =
        canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let mut data = vec![255u8; side * side * 4];
    for (px, &v) in data.chunks_exact_mut(4).zip(values) {
        let (r, g, b) = colour.rgb(v);
        px[..3].copy_from_slice(&[r, g, b]);
    }
    if let Ok(img) =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&data), side as u32, side as u32)
    {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

/// `paint` on the canvas with this id, if it is on the page.
pub fn paint_id(id: &str, side: usize, values: &[f32], colour: Colour) {
    if let Some(c) = canvas_by_id(id) {
        paint(&c, side, values, colour);
    }
}

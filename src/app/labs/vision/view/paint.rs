//! Painting values on canvases, one canvas pixel per value (CSS scales the canvas up without smoothing).
use wasm_bindgen::JsCast;

use crate::app::core::browser::canvas_by_id;

#[derive(Clone, Copy, PartialEq)]
pub enum Colour {
    /// 0 black .. 1 white, like MNIST.
    Gray,
    /// 0 paper .. `max` full heat colour.
    Heat(f32),
    /// Negative blue, zero white, positive red, symmetric around `max_abs`.
    Diverging(f32),
}

/// `t` of the way from paper (white) to `rgb`.
fn towards(t: f32, (r, g, b): (f32, f32, f32)) -> (u8, u8, u8) {
    let mix = |c: f32| (255.0 - t * (255.0 - c)) as u8;
    (mix(r), mix(g), mix(b))
}

impl Colour {
    fn rgb(self, v: f32) -> (u8, u8, u8) {
        match self {
            Colour::Gray => {
                let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
                (g, g, g)
            }
            // Paper to a deep orange: easy to read on a projector.
            Colour::Heat(max) => towards(if max > 0.0 { (v / max).clamp(0.0, 1.0) } else { 0.0 }, (194.0, 65.0, 12.0)),
            Colour::Diverging(max_abs) => {
                let a = if max_abs > 0.0 { (v / max_abs).clamp(-1.0, 1.0) } else { 0.0 };
                if a >= 0.0 {
                    towards(a, (200.0, 30.0, 45.0))
                } else {
                    towards(-a, (30.0, 90.0, 200.0))
                }
            }
        }
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

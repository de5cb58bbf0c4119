//! A pad to draw a digit on with a mouse, a pen or a finger, with undo and clear. It reports what is drawn
//! as ink coverage (0 = paper, 1 = ink), row-major `PAD` x `PAD`, at most once per animation frame, so a
//! lab can predict while the student draws without queueing up work.
use std::cell::Cell;
use std::rc::Rc;

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The pad's resolution in canvas pixels (ten per MNIST pixel).
pub const PAD: u32 = 280;
/// Pen width in canvas pixels: about two MNIST pixels once a full-height digit is scaled to 20 px.
const PEN: f64 = 22.0;

type Stroke = Vec<(f64, f64)>;

/// The pad's 2D context. It is read back after every stroke, so ask for a CPU-side canvas
/// (`willReadFrequently`); the options only count on the first call, which is always this one.
fn context(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    let opts = js_sys::Object::new();
    js_sys::Reflect::set(&opts, &JsValue::from_str("willReadFrequently"), &JsValue::TRUE).ok()?;
    canvas.get_context_with_context_options("2d", &opts).ok().flatten()?.dyn_into().ok()
}

fn style_pen(ctx: &web_sys::CanvasRenderingContext2d) {
    ctx.set_line_width(PEN);
    ctx.set_line_cap("round");
    ctx.set_line_join("round");
    ctx.set_stroke_style_str("#000");
    ctx.set_fill_style_str("#000");
}

fn dot(ctx: &web_sys::CanvasRenderingContext2d, (x, y): (f64, f64)) {
    ctx.begin_path();
    let _ = ctx.arc(x, y, PEN / 2.0, 0.0, std::f64::consts::TAU);
    ctx.fill();
}

fn segment(ctx: &web_sys::CanvasRenderingContext2d, a: (f64, f64), b: (f64, f64)) {
    ctx.begin_path();
    ctx.move_to(a.0, a.1);
    ctx.line_to(b.0, b.1);
    ctx.stroke();
}

/// Paints every stroke from scratch: after an undo, or when the pad is first shown.
fn repaint(canvas: &web_sys::HtmlCanvasElement, strokes: &[Stroke]) {
    let Some(ctx) = context(canvas) else { return };
    ctx.set_fill_style_str("#fff");
    ctx.fill_rect(0.0, 0.0, PAD as f64, PAD as f64);
    style_pen(&ctx);
    for s in strokes {
        if let Some(&first) = s.first() {
            dot(&ctx, first);
        }
        for w in s.windows(2) {
            segment(&ctx, w[0], w[1]);
        }
    }
}

/// The pad's pixels as ink coverage in [0, 1] (dark = ink; the pad is drawn in black on white).
fn ink(canvas: &web_sys::HtmlCanvasElement) -> Option<Vec<f32>> {
    let ctx = context(canvas)?;
    let img = ctx.get_image_data(0.0, 0.0, PAD as f64, PAD as f64).ok()?;
    let rgba = img.data();
    Some(rgba.chunks_exact(4).map(|p| 1.0 - p[0] as f32 / 255.0).collect())
}

/// `on_change` receives `Some(ink)` after each change, or `None` once the pad is empty again.
#[component]
pub fn DrawPad(
    #[prop(into)] on_change: Callback<Option<Vec<f32>>>,
    #[prop(optional, into)] label: String,
) -> impl IntoView {
    let canvas_ref: NodeRef<Canvas> = NodeRef::new();
    let strokes: RwSignal<Vec<Stroke>> = RwSignal::new(Vec::new());
    let drawing = StoredValue::new(false);
    let frame_pending = Rc::new(Cell::new(false));

    // Reports at most once per frame: pointer events can arrive far faster than a model can answer.
    let report = {
        let frame_pending = frame_pending.clone();
        move || {
            if frame_pending.replace(true) {
                return;
            }
            let frame_pending = frame_pending.clone();
            let cb = Closure::once_into_js(move || {
                frame_pending.set(false);
                // `try_`: the pad may have been removed (the lab left) before the frame came.
                let Some(c) = canvas_ref.try_get_untracked().flatten() else { return };
                let Some(empty) = strokes.try_with_untracked(|s| s.is_empty()) else { return };
                let _ = on_change.try_run(if empty { None } else { ink(&c) });
            });
            if let Some(w) = web_sys::window() {
                let _ = w.request_animation_frame(cb.unchecked_ref());
            }
        }
    };

    Effect::new(move |_| {
        if let Some(c) = canvas_ref.get() {
            repaint(&c, &strokes.get_untracked());
        }
    });

    let point = move |ev: &web_sys::PointerEvent| -> Option<(f64, f64)> {
        let c = canvas_ref.get_untracked()?;
        let r = c.get_bounding_client_rect();
        if r.width() <= 0.0 || r.height() <= 0.0 {
            return None;
        }
        let x = (ev.client_x() as f64 - r.left()) / r.width() * PAD as f64;
        let y = (ev.client_y() as f64 - r.top()) / r.height() * PAD as f64;
        Some((x, y))
    };

    let on_down = {
        let report = report.clone();
        move |ev: web_sys::PointerEvent| {
            // Only the primary button, pen contact or finger draws.
            if ev.button() != 0 {
                return;
            }
            ev.prevent_default();
            let Some(p) = point(&ev) else { return };
            if let Some(c) = canvas_ref.get_untracked() {
                let _ = c.set_pointer_capture(ev.pointer_id());
                if let Some(ctx) = context(&c) {
                    style_pen(&ctx);
                    dot(&ctx, p);
                }
            }
            drawing.set_value(true);
            strokes.update(|s| s.push(vec![p]));
            report();
        }
    };
    let on_move = {
        let report = report.clone();
        move |ev: web_sys::PointerEvent| {
            if !drawing.get_value() {
                return;
            }
            let Some(p) = point(&ev) else { return };
            let last = strokes.with_untracked(|s| s.last().and_then(|s| s.last().copied()));
            if let (Some(a), Some(c)) = (last, canvas_ref.get_untracked()) {
                if let Some(ctx) = context(&c) {
                    style_pen(&ctx);
                    segment(&ctx, a, p);
                }
            }
            // Extending the last stroke need not re-render anything that reads the stroke list.
            strokes.update_untracked(|s| {
                if let Some(last) = s.last_mut() {
                    last.push(p);
                }
            });
            report();
        }
    };
    let on_up = move |_ev: web_sys::PointerEvent| drawing.set_value(false);

    let undo = {
        let report = report.clone();
        move || {
            if strokes.with_untracked(|s| s.is_empty()) {
                return;
            }
            strokes.update(|s| {
                s.pop();
            });
            if let Some(c) = canvas_ref.get_untracked() {
                repaint(&c, &strokes.get_untracked());
            }
            report();
        }
    };
    let clear = {
        let report = report.clone();
        move || {
            strokes.set(Vec::new());
            if let Some(c) = canvas_ref.get_untracked() {
                repaint(&c, &[]);
            }
            report();
        }
    };
    let on_key = {
        let undo = undo.clone();
        move |ev: web_sys::KeyboardEvent| {
            if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("z") {
                ev.prevent_default();
                undo();
            }
        }
    };
    let empty = move || strokes.with(|s| s.is_empty());
    let label = if label.is_empty() { "Drawing pad: draw a digit".to_string() } else { label };

    view! {
        <div class="draw-pad">
            <canvas node_ref=canvas_ref data-testid="draw-pad" class="draw-canvas" width=PAD height=PAD
                tabindex="0" role="img" aria-label=label
                on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up
                on:keydown=on_key></canvas>
            <div class="draw-tools">
                <button data-testid="draw-undo" title="Undo the last stroke (Ctrl+Z)" disabled=empty on:click=move |_| undo()>"Undo"</button>
                <button data-testid="draw-clear" disabled=empty on:click=move |_| clear()>"Clear"</button>
                {move || empty().then(|| view! { <span class="muted draw-hint">"Draw a digit 0–9 with the mouse, a pen or a finger, or load a test image with the button below."</span> })}
            </div>
        </div>
    }
}

//! Share and export in the page: downloads (a Blob, so nothing leaves the browser), a chart's SVG made standalone
//! and its PNG, a canvas's PNG, the table shown instead of a chart, the lab's Copy link and its numbers as JSON.
//! What the files contain is decided in `super` (plain, tested natively); this is the glue.
use std::cell::Cell;

use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{
    caption_lines, datum_from_text, file_name, fit_label, lab_json, sheet_layout, single_scale, tiles_svg, to_csv,
    DataTable, Datum, Meta, Tile, CAPTION_LINE_H, MIN_CAPTION_W,
};
use crate::app::core::browser::{document, now_ms, yield_to_browser};
use crate::app::core::charts::num;

// ---------------------------------------------------------------- the lab's context

/// What a lab frame gives the exports inside it: the model the lab runs, the tables of the charts it shows now
/// (each chart adds its own and takes it away when it goes), and the lab's own figures for the JSON.
#[derive(Clone, Copy)]
pub struct ExportContext {
    model: Signal<String>,
    charts: StoredValue<Vec<(u64, Chart)>>,
    numbers: Option<Callback<(), Option<Value>>>,
    /// The charts (by name) whose table the student opened: a chart redrawn while training keeps it open.
    open: StoredValue<Vec<String>>,
}

/// A chart's numbers: fixed when it was drawn, or read when asked (a figure that changes in place).
#[derive(Clone)]
enum Chart {
    Drawn(DataTable),
    Live(Callback<(), Option<DataTable>>),
}

impl ExportContext {
    pub fn provide(model: Signal<String>, numbers: Option<Callback<(), Option<Value>>>) -> Self {
        let ctx =
            ExportContext { model, charts: StoredValue::new(Vec::new()), numbers, open: StoredValue::new(Vec::new()) };
        provide_context(ctx);
        ctx
    }

    /// Lists `table` among the lab's charts until the calling chart is disposed.
    fn register(self, table: Chart) {
        thread_local! {
            static NEXT: Cell<u64> = const { Cell::new(0) };
        }
        let id = NEXT.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        self.charts.update_value(|v| v.push((id, table)));
        let charts = self.charts;
        on_cleanup(move || {
            let _ = charts.try_update_value(|v| v.retain(|(i, _)| *i != id));
        });
    }
}

/// The metadata of an export made now, in the lab of `ctx` (none outside a lab frame).
pub fn meta_now(ctx: Option<ExportContext>) -> Meta {
    let w = web_sys::window();
    let hash = w.as_ref().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let (section, settings) = match hash.trim_start_matches("#/").split_once('?') {
        Some((s, q)) => (s.to_string(), q.to_string()),
        None => (hash.trim_start_matches("#/").to_string(), String::new()),
    };
    Meta {
        section,
        model: ctx.map(|c| c.model.get_untracked()).unwrap_or_default(),
        settings,
        link: w.and_then(|w| w.location().href().ok()).unwrap_or_default(),
        exported: String::from(js_sys::Date::new_0().to_iso_string()),
    }
}

// ---------------------------------------------------------------- downloads

/// Saves `blob` as `name`: a link to a blob: URL, clicked, and the URL freed a moment later.
pub fn download_blob(name: &str, blob: &web_sys::Blob) {
    let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else { return };
    if let Ok(a) = document().create_element("a").map(|e| e.unchecked_into::<web_sys::HtmlAnchorElement>()) {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    gloo_timers::callback::Timeout::new(5_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    })
    .forget();
}

fn text_blob(text: &str, mime: &str) -> Option<web_sys::Blob> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(mime);
    web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag).ok()
}

/// Saves `text` as `name` with its MIME type (`text/csv`, `application/json`, `image/svg+xml`).
pub fn download_text(name: &str, mime: &str, text: &str) {
    if let Some(blob) = text_blob(text, mime) {
        download_blob(name, &blob);
    }
}

/// Saves `table` as CSV with the lab's metadata on top, named after `what`.
pub fn download_csv(ctx: Option<ExportContext>, what: &str, table: &DataTable) {
    let meta = meta_now(ctx);
    download_text(&file_name(&meta.section, what, "csv"), "text/csv", &to_csv(&meta, table));
}

/// Saves `table` as CSV with the lab's metadata on top, as the file `name`.
pub fn download_table(ctx: Option<ExportContext>, name: &str, table: &DataTable) {
    download_text(name, "text/csv", &to_csv(&meta_now(ctx), table));
}

// ---------------------------------------------------------------- SVG and PNG

/// The presentation properties a chart's CSS sets, copied onto the exported copy as resolved values, so the file
/// looks the same without the page's stylesheet (its variables and theme included).
const STYLE_PROPS: [&str; 12] = [
    "fill",
    "fill-opacity",
    "stroke",
    "stroke-width",
    "stroke-dasharray",
    "stroke-linejoin",
    "stroke-linecap",
    "stroke-opacity",
    "opacity",
    "font-family",
    "font-size",
    "font-weight",
];

const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// Copies the computed `STYLE_PROPS` of `from` onto `to` as a `style` attribute.
fn inline_style(from: &web_sys::Element, to: &web_sys::Element) {
    let Some(style) = web_sys::window().and_then(|w| w.get_computed_style(from).ok().flatten()) else { return };
    let css: String = STYLE_PROPS
        .iter()
        .filter_map(|p| style.get_property_value(p).ok().filter(|v| !v.is_empty()).map(|v| format!("{p}:{v};")))
        .collect();
    let _ = to.set_attribute("style", &css);
}

fn svg_el(name: &str) -> Option<web_sys::Element> {
    document().create_element_ns(Some(SVG_NS), name).ok()
}

/// A standalone copy of `svg`: resolved styles inlined, a white background, the metadata as `<desc>` and
/// `<metadata>` (JSON) and as a visible caption under the chart, its width and height set. Returns the markup
/// and its size in pixels.
pub fn standalone_svg(svg: &web_sys::Element, meta: &Meta, what: &str) -> Option<(String, f64, f64)> {
    let (w, h) = view_box_size(svg)?;
    let copy: web_sys::Element = svg.clone_node_with_deep(true).ok()?.dyn_into().ok()?;
    inline_style(svg, &copy);
    let (from, to) = (svg.query_selector_all("*").ok()?, copy.query_selector_all("*").ok()?);
    for i in 0..from.length().min(to.length()) {
        if let (Some(a), Some(b)) = (from.item(i), to.item(i)) {
            if let (Ok(a), Ok(b)) = (a.dyn_into::<web_sys::Element>(), b.dyn_into::<web_sys::Element>()) {
                if a.tag_name() != "title" {
                    inline_style(&a, &b);
                }
                let _ = b.remove_attribute("data-testid");
            }
        }
    }
    let _ = copy.remove_attribute("class");
    let _ = copy.remove_attribute("data-testid");
    // The caption names the chart as a reader knows it (its accessible name), the file name as the lab does.
    let title = svg.get_attribute("aria-label").unwrap_or_else(|| what.to_string());
    finish_svg(&copy, (w, h), meta, &title)
}

/// Makes `svg` (a chart of `w` x `h`) a file: a white background, the metadata as `<desc>` and `<metadata>`
/// (JSON) and as a caption under it, its width, height and view box. Returns the markup and its size.
fn finish_svg(svg: &web_sys::Element, (w, h): (f64, f64), meta: &Meta, what: &str) -> Option<(String, f64, f64)> {
    // A narrow chart (a single column) is widened on the right, so its caption can be read.
    let full_w = w.max(MIN_CAPTION_W);
    let lines = caption_lines(meta, what, full_w);
    let line_h = 15.0;
    let full_h = h + 10.0 + line_h * lines.len() as f64;
    for (k, v) in [("width", full_w), ("height", full_h)] {
        let _ = svg.set_attribute(k, &num(v));
    }
    let _ = svg.set_attribute("viewBox", &format!("0 0 {} {}", num(full_w), num(full_h)));
    let bg = svg_el("rect")?;
    for (k, v) in [("width", "100%"), ("height", "100%"), ("fill", "#ffffff")] {
        let _ = bg.set_attribute(k, v);
    }
    let desc = svg_el("desc")?;
    desc.set_text_content(Some(&format!("{what}. {}", meta.caption())));
    let metadata = svg_el("metadata")?;
    metadata.set_text_content(Some(&meta.json(what).to_string()));
    let _ = svg.prepend_with_node_3(&desc, &metadata, &bg);
    for (i, line) in lines.iter().enumerate() {
        let t = svg_el("text")?;
        let y = h + 6.0 + line_h * (i as f64 + 1.0) - 3.0;
        for (k, v) in [("x", "4".to_string()), ("y", num(y))] {
            let _ = t.set_attribute(k, &v);
        }
        let _ = t.set_attribute("style", "font-family:sans-serif;font-size:11px;fill:#555555");
        t.set_text_content(Some(line));
        let _ = svg.append_child(&t);
    }
    let text = web_sys::XmlSerializer::new().ok()?.serialize_to_string(svg).ok()?;
    Some((text, full_w, full_h))
}

/// An HTML table drawn as it looks (a heatmap of coloured cells): each cell's box in its computed background
/// colour, its text centred in its computed colour and type. A grid of hundreds of cells costs tens of ms of DOM
/// reads, so the cells are read in slices of about 10 ms with the browser given the thread between them.
async fn table_as_svg(table: &web_sys::Element, meta: &Meta, what: &str) -> Option<(String, f64, f64)> {
    let origin = table.get_bounding_client_rect();
    let svg = svg_el("svg")?;
    let cells = table.query_selector_all("th, td").ok()?;
    let mut t0 = now_ms();
    for i in 0..cells.length() {
        if now_ms() - t0 > 10.0 {
            yield_to_browser().await;
            t0 = now_ms();
        }
        let Some(cell) = cells.item(i).and_then(|c| c.dyn_into::<web_sys::Element>().ok()) else { continue };
        // A cell redrawn away meanwhile is left out rather than drawn at (0, 0).
        if cell.is_connected() {
            draw_cell(&svg, &cell, (origin.left(), origin.top()))?;
        }
    }
    let caption = table.query_selector("caption").ok().flatten().and_then(|c| c.text_content());
    let title = caption.filter(|c| !c.trim().is_empty()).unwrap_or_else(|| what.to_string());
    finish_svg(&svg, (origin.width().ceil(), origin.height().ceil()), meta, &title)
}

/// One table cell onto `svg`: its box in its background colour, its text centred in its own colour and type.
fn draw_cell(svg: &web_sys::Element, cell: &web_sys::Element, (left, top): (f64, f64)) -> Option<()> {
    let style = web_sys::window()?.get_computed_style(cell).ok().flatten()?;
    let get = |p: &str| style.get_property_value(p).unwrap_or_default();
    let r = cell.get_bounding_client_rect();
    let (x, y) = (r.left() - left, r.top() - top);
    let bg = get("background-color");
    if !bg.is_empty() && bg != "rgba(0, 0, 0, 0)" && bg != "transparent" {
        let rect = svg_el("rect")?;
        for (k, v) in [("x", num(x)), ("y", num(y)), ("width", num(r.width())), ("height", num(r.height()))] {
            let _ = rect.set_attribute(k, &v);
        }
        let _ = rect.set_attribute("fill", &bg);
        let _ = svg.append_child(&rect);
    }
    // Each line as the cell shows it (a heatmap's column head holds the clean token over the corrupted one).
    let shown = match cell.dyn_ref::<web_sys::HtmlElement>() {
        Some(h) => h.inner_text(),
        None => cell.text_content().unwrap_or_default(),
    };
    let lines: Vec<String> =
        (shown.lines()).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|l| !l.is_empty()).collect();
    let css = format!(
        "fill:{};font-family:{};font-size:{};font-weight:{}",
        get("color"),
        get("font-family").replace('"', "'"),
        get("font-size"),
        get("font-weight")
    );
    let (cx, cy) = (x + r.width() / 2.0, y + r.height() / 2.0);
    let n = lines.len() as f64;
    for (k, line) in lines.iter().enumerate() {
        let t = svg_el("text")?;
        let dy = format!("{:.2}em", 0.35 + 1.15 * (k as f64 - (n - 1.0) / 2.0));
        for (a, v) in [("x", num(cx)), ("y", num(cy)), ("text-anchor", "middle".into()), ("dy", dy)] {
            let _ = t.set_attribute(a, &v);
        }
        let _ = t.set_attribute("style", &css);
        t.set_text_content(Some(line));
        let _ = svg.append_child(&t);
    }
    Some(())
}

/// The chart's size in its own units, from its `viewBox`.
fn view_box_size(svg: &web_sys::Element) -> Option<(f64, f64)> {
    let vb = svg.get_attribute("viewBox")?;
    let v: Vec<f64> = vb.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    (v.len() == 4 && v[2] > 0.0 && v[3] > 0.0).then(|| (v[2], v[3]))
}

/// Rows of the image drawn per task: rasterising a large SVG (the logit-lens grid's 707 cells and their letters)
/// in one `drawImage` was a 55 ms task, so the image is drawn in bands of this height, with the browser given
/// the thread between them. Each band rasterises only what falls inside it.
const BAND_H: f64 = 60.0;

/// Draws an image from `url` at `scale` onto a new canvas of `w` x `h` (in CSS pixels) over white, a band of
/// `BAND_H` rows at a time.
async fn image_canvas(url: &str, w: f64, h: f64, scale: f64) -> Option<web_sys::HtmlCanvasElement> {
    let img = web_sys::HtmlImageElement::new().ok()?;
    // The image's `load` or `error` event, which settle for every image (a full e2e run once saw a PNG click
    // download nothing while this awaited `decode()` of the SVG).
    let loaded = js_sys::Promise::new(&mut |resolve, reject| {
        img.set_onload(Some(&resolve));
        img.set_onerror(Some(&reject));
    });
    img.set_src(url);
    JsFuture::from(loaded).await.ok()?;
    img.set_onload(None);
    img.set_onerror(None);
    let canvas: web_sys::HtmlCanvasElement = document().create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width((w * scale).round() as u32);
    canvas.set_height((h * scale).round() as u32);
    let cx = context_2d(&canvas)?;
    cx.set_fill_style_str("#ffffff");
    cx.fill_rect(0.0, 0.0, w * scale, h * scale);
    // The image's own pixel size may differ from its CSS size: bands are cut in its units.
    let (iw, ih) = (f64::from(img.natural_width()).max(1.0), f64::from(img.natural_height()).max(1.0));
    let ky = ih / h;
    let mut top = 0.0;
    while top < h {
        let band = BAND_H.min(h - top);
        cx.draw_image_with_html_image_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
            &img,
            0.0,
            top * ky,
            iw,
            band * ky,
            0.0,
            top * scale,
            w * scale,
            band * scale,
        )
        .ok()?;
        top += band;
        if top < h {
            yield_to_browser().await;
        }
    }
    Some(canvas)
}

fn context_2d(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

/// The canvas as a PNG blob.
async fn png_blob(canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::Blob> {
    let mut done = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| done = Some(resolve));
    canvas.to_blob(&done?).ok()?;
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}

/// The standalone SVG of `el`: a chart's `<svg>` as it is, or a table drawn as it looks.
async fn svg_of(el: &web_sys::Element, meta: &Meta, what: &str) -> Option<(String, f64, f64)> {
    if el.tag_name() == "TABLE" {
        table_as_svg(el, meta, what).await
    } else {
        standalone_svg(el, meta, what)
    }
}

/// Saves the chart `svg` (or a heatmap table) as an SVG file.
pub fn download_svg(ctx: Option<ExportContext>, svg: &web_sys::Element, what: &str) {
    let meta = meta_now(ctx);
    let (svg, what) = (svg.clone(), what.to_string());
    leptos::task::spawn_local(async move {
        if let Some((text, _, _)) = svg_of(&svg, &meta, &what).await {
            download_text(&file_name(&meta.section, &what, "svg"), "image/svg+xml", &text);
        }
    });
}

/// Saves the chart `svg` (or a heatmap table) as a PNG at twice its size: its standalone SVG, decoded as an image
/// from a blob: URL and drawn onto a canvas.
pub fn download_png(ctx: Option<ExportContext>, svg: &web_sys::Element, what: &str) {
    let meta = meta_now(ctx);
    let (svg, what) = (svg.clone(), what.to_string());
    leptos::task::spawn_local(async move {
        let Some((text, w, h)) = svg_of(&svg, &meta, &what).await else { return };
        let Some(blob) = text_blob(&text, "image/svg+xml") else { return };
        let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
        let canvas = image_canvas(&url, w, h, 2.0).await;
        let _ = web_sys::Url::revoke_object_url(&url);
        if let Some(png) = match canvas {
            Some(c) => png_blob(&c).await,
            None => None,
        } {
            download_blob(&file_name(&meta.section, &what, "png"), &png);
        }
    });
}

/// A canvas's pixels read back (RGBA, row-major) with its size; `None` for an empty canvas or one without a 2d
/// context.
fn canvas_pixels(canvas: &web_sys::HtmlCanvasElement) -> Option<(usize, usize, Vec<u8>)> {
    let (w, h) = (canvas.width() as usize, canvas.height() as usize);
    if w == 0 || h == 0 {
        return None;
    }
    // Read through a copy made for reading: reading the lab's own canvas again and again makes Chromium warn
    // that its context should have been created with `willReadFrequently` (which would slow its drawing).
    let copy: web_sys::HtmlCanvasElement = document().create_element("canvas").ok()?.dyn_into().ok()?;
    copy.set_width(w as u32);
    copy.set_height(h as u32);
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"willReadFrequently".into(), &JsValue::TRUE).ok()?;
    let cx: web_sys::CanvasRenderingContext2d =
        copy.get_context_with_context_options("2d", &options).ok().flatten()?.dyn_into().ok()?;
    cx.draw_image_with_html_canvas_element(canvas, 0.0, 0.0).ok()?;
    let data = cx.get_image_data(0.0, 0.0, w as f64, h as f64).ok()?.data();
    Some((w, h, data.0))
}

/// Where each picture goes in the exported image and the pictures' area: one unlabelled canvas alone, scaled up
/// to `SINGLE_MIN_SIDE`; several (or a labelled one) as a sheet.
fn place(pictures: &[(String, web_sys::HtmlCanvasElement)]) -> (Vec<(f64, f64, f64)>, f64, f64) {
    match pictures {
        [(label, c)] if label.is_empty() => {
            let (w, h) = (c.width().max(1) as usize, c.height().max(1) as usize);
            let scale = single_scale(w, h);
            (vec![(0.0, 0.0, scale)], w as f64 * scale, h as f64 * scale)
        }
        _ => {
            let sizes: Vec<(usize, usize)> =
                pictures.iter().map(|(_, c)| (c.width().max(1) as usize, c.height().max(1) as usize)).collect();
            sheet_layout(&sizes, true)
        }
    }
}

/// Saves pictures as a PNG: one canvas (an image, a map, a pattern) scaled up without smoothing (its pixels are
/// the data), or a sheet of small ones each under its label; the caption under them.
pub fn download_pictures_png(
    ctx: Option<ExportContext>,
    pictures: &[(String, web_sys::HtmlCanvasElement)],
    what: &str,
) {
    if pictures.is_empty() {
        return;
    }
    let meta = meta_now(ctx);
    let (at, w, h) = place(pictures);
    let full_w = w.max(MIN_CAPTION_W);
    let lines = caption_lines(&meta, what, full_w);
    let full_h = h + 10.0 + CAPTION_LINE_H * lines.len() as f64;
    let Ok(Ok(canvas)) = document().create_element("canvas").map(|e| e.dyn_into::<web_sys::HtmlCanvasElement>()) else {
        return;
    };
    canvas.set_width(full_w as u32);
    canvas.set_height(full_h as u32);
    let Some(cx) = context_2d(&canvas) else { return };
    cx.set_fill_style_str("#ffffff");
    cx.fill_rect(0.0, 0.0, full_w, full_h);
    cx.set_image_smoothing_enabled(false);
    cx.set_font("11px sans-serif");
    for ((label, source), (x, y, scale)) in pictures.iter().zip(at) {
        let (sw, sh) = (source.width() as f64, source.height() as f64);
        let _ = cx.draw_image_with_html_canvas_element_and_dw_and_dh(source, x, y, sw * scale, sh * scale);
        if !label.is_empty() {
            cx.set_fill_style_str("#333333");
            let _ = cx.fill_text(&fit_label(label, sw * scale), x, y - 3.0);
        }
    }
    cx.set_fill_style_str("#555555");
    for (i, line) in lines.iter().enumerate() {
        let _ = cx.fill_text(line, 4.0, h + 6.0 + CAPTION_LINE_H * (i as f64 + 1.0) - 3.0);
    }
    let name = file_name(&meta.section, what, "png");
    leptos::task::spawn_local(async move {
        if let Some(png) = png_blob(&canvas).await {
            download_blob(&name, &png);
        }
    });
}

/// Saves pictures as an SVG laid out as their PNG is, each pixel run a rectangle (`pixels::tiles_svg`).
pub fn download_pictures_svg(
    ctx: Option<ExportContext>,
    pictures: &[(String, web_sys::HtmlCanvasElement)],
    what: &str,
) {
    let meta = meta_now(ctx);
    let (at, w, h) = place(pictures);
    let tiles: Vec<Tile> = pictures
        .iter()
        .zip(at)
        .filter_map(|((label, c), (x, y, scale))| {
            let (width, height, rgba) = canvas_pixels(c)?;
            Some(Tile { label: label.clone(), x, y, scale, width, height, rgba })
        })
        .collect();
    if tiles.is_empty() {
        return;
    }
    let (text, _, _) = tiles_svg(&tiles, (w, h), &meta, what);
    download_text(&file_name(&meta.section, what, "svg"), "image/svg+xml", &text);
}

/// The canvases `selector` finds (a canvas, or every canvas inside the elements it matches), each with the name a
/// reader knows it by: its `data-label`, else its `title`, else its `aria-label`, else its id. A lone canvas
/// goes unlabelled.
fn pictures_at(selector: &str) -> Vec<(String, web_sys::HtmlCanvasElement)> {
    let Ok(found) = document().query_selector_all(selector) else { return Vec::new() };
    let mut out = Vec::new();
    for i in 0..found.length() {
        let Some(el) = found.item(i).and_then(|n| n.dyn_into::<web_sys::Element>().ok()) else { continue };
        match el.clone().dyn_into::<web_sys::HtmlCanvasElement>() {
            Ok(c) => out.push(c),
            Err(_) => {
                let Ok(inner) = el.query_selector_all("canvas") else { continue };
                out.extend((0..inner.length()).filter_map(|j| inner.item(j)?.dyn_into().ok()));
            }
        }
    }
    let lone = out.len() == 1;
    out.into_iter()
        .map(|c| {
            let name = ["data-label", "title", "aria-label", "id"]
                .iter()
                .find_map(|a| c.get_attribute(a).filter(|v| !v.is_empty()));
            (if lone { String::new() } else { name.unwrap_or_default() }, c)
        })
        .collect()
}

// ---------------------------------------------------------------- tables

/// A table read off the page: its caption (or `fallback`), its header cells as the columns, and every body row,
/// a cell's `data-value` preferred to its text (the number in full rather than as shown).
pub fn table_from_dom(table: &web_sys::Element, fallback: &str) -> DataTable {
    let texts = |row: &web_sys::Element| -> Vec<Datum> {
        let cells = row.query_selector_all("th, td").ok();
        let n = cells.as_ref().map_or(0, |c| c.length());
        (0..n)
            .filter_map(|i| cells.as_ref()?.item(i)?.dyn_into::<web_sys::Element>().ok())
            .map(|c| match c.get_attribute("data-value") {
                Some(v) => datum_from_text(&v),
                None => datum_from_text(&c.text_content().unwrap_or_default()),
            })
            .collect()
    };
    let rows: Vec<web_sys::Element> = table
        .query_selector_all("tr")
        .ok()
        .map(|l| (0..l.length()).filter_map(|i| l.item(i)?.dyn_into().ok()).collect())
        .unwrap_or_default();
    let caption = table
        .query_selector("caption")
        .ok()
        .flatten()
        .and_then(|c| c.text_content())
        .or_else(|| table.get_attribute("aria-label"))
        .unwrap_or_else(|| fallback.to_string());
    // The header: the rows of the thead, or else the first row.
    let in_head = |r: &web_sys::Element| r.parent_element().is_some_and(|p| p.tag_name() == "THEAD");
    let head: Vec<&web_sys::Element> = rows.iter().filter(|r| in_head(r)).collect();
    let (columns, body): (Vec<String>, Vec<&web_sys::Element>) = match head.last() {
        Some(h) => (texts(h).iter().map(Datum::csv).collect(), rows.iter().filter(|r| !in_head(r)).collect()),
        None => match rows.split_first() {
            Some((first, rest)) => (texts(first).iter().map(Datum::csv).collect(), rest.iter().collect()),
            None => (Vec::new(), Vec::new()),
        },
    };
    DataTable { caption: caption.trim().to_string(), columns, rows: body.into_iter().map(texts).collect() }
}

/// Every table in `root` but the charts' own (which the JSON takes from the charts), read off the page.
fn tables_in(root: &web_sys::Element) -> Vec<DataTable> {
    let Ok(list) = root.query_selector_all("table:not(.data-table)") else { return Vec::new() };
    (0..list.length())
        .filter_map(|i| list.item(i)?.dyn_into::<web_sys::Element>().ok())
        .map(|t| {
            let id = t.get_attribute("data-testid").unwrap_or_else(|| "table".into());
            table_from_dom(&t, &id)
        })
        .collect()
}

/// Saves the lab's numbers as JSON: the charts' tables, the page's tables in `root`, the lab's own figures.
pub fn download_json(ctx: ExportContext, root: &web_sys::Element) {
    let meta = meta_now(Some(ctx));
    let charts: Vec<Chart> = ctx.charts.with_value(|v| v.iter().map(|(_, t)| t.clone()).collect());
    let charts: Vec<DataTable> = (charts.into_iter())
        .filter_map(|c| match c {
            Chart::Drawn(t) => Some(t),
            Chart::Live(f) => f.run(()),
        })
        .collect();
    let lab = ctx.numbers.and_then(|n| n.run(()));
    let text = lab_json(&meta, &charts, &tables_in(root), lab);
    download_text(&file_name(&meta.section, "numbers", "json"), "application/json", &text);
}

// ---------------------------------------------------------------- components

/// A chart with its exports: the chart, a small PNG · SVG · CSV group, and "Show as a table" (the same numbers
/// as a real table, built only when opened). `what` names the files; the table joins the lab's JSON.
pub fn chart_with_exports(chart: AnyView, table: DataTable, what: String) -> AnyView {
    let ctx = use_context::<ExportContext>();
    if let Some(ctx) = ctx {
        ctx.register(Chart::Drawn(table.clone()));
    }
    let boxed = NodeRef::<leptos::html::Div>::new();
    let table = StoredValue::new(table);
    let what = StoredValue::new(what);
    let svg = move || boxed.get_untracked().and_then(|b| b.query_selector(":scope > svg").ok().flatten());
    let on_png = move |_| {
        if let Some(s) = svg() {
            download_png(ctx, &s, &what.get_value());
        }
    };
    let on_svg = move |_| {
        if let Some(s) = svg() {
            download_svg(ctx, &s, &what.get_value());
        }
    };
    let on_csv = move |_| table.with_value(|t| download_csv(ctx, &what.get_value(), t));
    view! {
        <div class="chart-box" data-testid="chart-box" node_ref=boxed>
            {chart}
            {export_bar("Export this chart", on_png, on_svg, on_csv)}
            {table_details(table, ctx, what.get_value())}
        </div>
    }
    .into_any()
}

/// A figure's row of export buttons: PNG, SVG and CSV.
fn export_bar(
    label: &'static str,
    on_png: impl Fn(leptos::ev::MouseEvent) + 'static,
    on_svg: impl Fn(leptos::ev::MouseEvent) + 'static,
    on_csv: impl Fn(leptos::ev::MouseEvent) + 'static,
) -> impl IntoView {
    view! {
        <div class="export-bar" role="group" aria-label=label>
            <span class="export-label">"Export"</span>
            <button type="button" class="export-btn" data-testid="export-png" on:click=on_png>"PNG"</button>
            <button type="button" class="export-btn" data-testid="export-svg" on:click=on_svg>"SVG"</button>
            <button type="button" class="export-btn" data-testid="export-csv" on:click=on_csv>"CSV"</button>
        </div>
    }
}

/// A lab's own SVG figure (a graph, not one of the shared charts) with the same exports: PNG and SVG of the figure
/// as it is now, and its numbers from `table`, read when asked (CSV, and "Show as a table" when opened).
pub fn figure_with_exports(figure: AnyView, table: Callback<(), Option<DataTable>>, what: &'static str) -> AnyView {
    let ctx = use_context::<ExportContext>();
    if let Some(ctx) = ctx {
        ctx.register(Chart::Live(table));
    }
    let boxed = NodeRef::<leptos::html::Div>::new();
    let svg = move || boxed.get_untracked().and_then(|b| b.query_selector(":scope > svg").ok().flatten());
    let on_png = move |_| {
        if let Some(s) = svg() {
            download_png(ctx, &s, what);
        }
    };
    let on_svg = move |_| {
        if let Some(s) = svg() {
            download_svg(ctx, &s, what);
        }
    };
    let on_csv = move |_| {
        if let Some(t) = table.run(()) {
            download_csv(ctx, what, &t);
        }
    };
    let open = RwSignal::new(false);
    let on_toggle = move |ev: leptos::ev::Event| open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open());
    view! {
        <div class="chart-box" data-testid="chart-box" node_ref=boxed>
            {figure}
            {export_bar("Export this figure", on_png, on_svg, on_csv)}
            <details class="chart-table" data-testid="chart-table" on:toggle=on_toggle>
                <summary>"Show as a table"</summary>
                {move || open.get().then(|| table.run(()).map(|t| table_view(&t)))}
            </details>
        </div>
    }
    .into_any()
}

/// "Show as a table": the numbers as a real table, built only when opened (a chart redrawn while training would
/// otherwise rebuild it on every update), and open again when its chart is redrawn.
fn table_details(table: StoredValue<DataTable>, ctx: Option<ExportContext>, what: String) -> impl IntoView {
    let was_open = ctx.is_some_and(|c| c.open.with_value(|o| o.contains(&what)));
    let open = RwSignal::new(was_open);
    let on_toggle = move |ev: leptos::ev::Event| {
        let now = event_target::<web_sys::HtmlDetailsElement>(&ev).open();
        open.set(now);
        if let Some(c) = ctx {
            c.open.update_value(|o| {
                o.retain(|w| *w != what);
                if now {
                    o.push(what.clone());
                }
            });
        }
    };
    view! {
        <details class="chart-table" data-testid="chart-table" on:toggle=on_toggle open=was_open>
            <summary>"Show as a table"</summary>
            {move || open.get().then(|| table.with_value(table_view))}
        </details>
    }
}

/// The exports of a chart drawn without SVG (HTML bars): its CSV and "Show as a table". The table joins the
/// lab's JSON while shown.
pub fn table_exports(table: DataTable, what: &str) -> AnyView {
    let ctx = use_context::<ExportContext>();
    if let Some(ctx) = ctx {
        ctx.register(Chart::Drawn(table.clone()));
    }
    let table = StoredValue::new(table);
    let what = what.to_string();
    let details = table_details(table, ctx, what.clone());
    let on_csv = move |_| table.with_value(|t| download_csv(ctx, &what, t));
    view! {
        <div class="chart-box" data-testid="chart-box">
            <div class="export-bar" role="group" aria-label="Export these numbers">
                <span class="export-label">"Export"</span>
                <button type="button" class="export-btn" data-testid="export-csv" on:click=on_csv>"CSV"</button>
            </div>
            {details}
        </div>
    }
    .into_any()
}

/// A table as HTML: its caption, a header of column headings, each row headed by its first cell; every number
/// shown rounded, with its full value in `data-value`.
pub fn table_view(t: &DataTable) -> AnyView {
    let head = t.columns.iter().map(|c| view! { <th scope="col">{c.clone()}</th> }).collect_view();
    let rows = t
        .rows
        .iter()
        .map(|r| {
            let cells = r
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let value = matches!(d, Datum::Num(_)).then(|| d.csv());
                    if i == 0 {
                        view! { <th scope="row" data-value=value>{d.shown()}</th> }.into_any()
                    } else {
                        view! { <td data-value=value>{d.shown()}</td> }.into_any()
                    }
                })
                .collect_view();
            view! { <tr>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="data-table-wrap">
            <table class="data-table">
                <caption>{t.caption.clone()}</caption>
                <thead><tr>{head}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Export buttons for the canvas `selector` finds (a map, a pattern, an image) or, when it matches a container,
/// for every canvas in it as one sheet under their labels (head thumbnails, channel tiles, kernels): PNG and SVG
/// (each pixel run a rectangle, so the file is the data at any size) with the caption and, when `table` gives
/// one, the numbers as CSV.
#[component]
pub fn CanvasExport(
    #[prop(into)] selector: String,
    #[prop(into)] what: String,
    #[prop(optional)] table: Option<Callback<(), Option<DataTable>>>,
) -> impl IntoView {
    let ctx = use_context::<ExportContext>();
    let what = StoredValue::new(what);
    let selector = StoredValue::new(selector);
    let on_png = move |_| download_pictures_png(ctx, &pictures_at(&selector.get_value()), &what.get_value());
    let on_svg = move |_| download_pictures_svg(ctx, &pictures_at(&selector.get_value()), &what.get_value());
    let csv = table.map(|t| {
        let on_csv = move |_| {
            if let Some(table) = t.run(()) {
                download_csv(ctx, &what.get_value(), &table);
            }
        };
        view! { <button type="button" class="export-btn" data-testid="export-csv" on:click=on_csv>"CSV"</button> }
    });
    view! {
        <div class="export-bar" role="group" aria-label=move || format!("Export the {}", what.get_value()) data-testid="canvas-export">
            <span class="export-label">"Export"</span>
            <button type="button" class="export-btn" data-testid="export-png" on:click=on_png>"PNG"</button>
            <button type="button" class="export-btn" data-testid="export-svg" on:click=on_svg>"SVG"</button>
            {csv}
        </div>
    }
}

/// Exports of the table just before it in the page (the closest preceding `table`, or the one inside the element
/// before it): its CSV, the numbers as they read on the page (the full value where a cell has one), and with
/// `image` (a heatmap drawn as a table) its PNG and SVG as it looks. `csv = false` leaves the CSV to the lab's
/// own button. The files are named after `what`, else the table's caption or test id.
#[component]
pub fn TableExport(
    #[prop(optional, into)] what: String,
    #[prop(optional)] image: bool,
    #[prop(default = true)] csv: bool,
) -> impl IntoView {
    let ctx = use_context::<ExportContext>();
    let what = StoredValue::new(what);
    let bar = NodeRef::<leptos::html::Div>::new();
    // The table and the name its files take.
    let find = move || -> Option<(web_sys::Element, String)> {
        let mut prev = bar.get_untracked()?.previous_element_sibling();
        while let Some(el) = prev {
            let table =
                if el.tag_name() == "TABLE" { Some(el.clone()) } else { el.query_selector("table").ok().flatten() };
            if let Some(t) = table {
                let id = t.get_attribute("data-testid").unwrap_or_else(|| "table".into());
                let caption = t.query_selector("caption").ok().flatten().and_then(|c| c.text_content());
                let name = what.get_value();
                let name = if !name.is_empty() { name } else { caption.filter(|c| !c.trim().is_empty()).unwrap_or(id) };
                return Some((t, name));
            }
            prev = el.previous_element_sibling();
        }
        None
    };
    let on_csv = move |_| {
        if let Some((t, name)) = find() {
            download_csv(ctx, &name, &table_from_dom(&t, &name));
        }
    };
    let on_png = move |_| {
        if let Some((t, name)) = find() {
            download_png(ctx, &t, &name);
        }
    };
    let on_svg = move |_| {
        if let Some((t, name)) = find() {
            download_svg(ctx, &t, &name);
        }
    };
    view! {
        <div class="export-bar" role="group" aria-label="Export this table" data-testid="table-export" node_ref=bar>
            <span class="export-label">"Export"</span>
            {image.then(|| view! {
                <button type="button" class="export-btn" data-testid="export-png" on:click=on_png>"PNG"</button>
                <button type="button" class="export-btn" data-testid="export-svg" on:click=on_svg>"SVG"</button>
            })}
            {csv.then(|| view! { <button type="button" class="export-btn" data-testid="export-csv" on:click=on_csv>"CSV"</button> })}
        </div>
    }
}

/// The lab's toolbar: Copy link (the clipboard where the page may write to it, else the link in a box,
/// selected, to copy by hand) and Numbers (JSON), with what happened said aloud (`aria-live`).
pub fn lab_tools(ctx: ExportContext, frame: NodeRef<leptos::html::Div>) -> impl IntoView {
    let status = RwSignal::new(String::new());
    let fallback = RwSignal::new(None::<String>);
    let on_copy = move |_| {
        let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        let clipboard = web_sys::window()
            .map(|w| w.navigator())
            .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("clipboard")).ok())
            .filter(|c| !c.is_undefined() && !c.is_null())
            .map(|c| c.unchecked_into::<web_sys::Clipboard>());
        leptos::task::spawn_local(async move {
            let copied = match clipboard {
                Some(c) => JsFuture::from(c.write_text(&href)).await.is_ok(),
                None => false,
            };
            if copied {
                fallback.set(None);
                status.set("Link copied".into());
            } else {
                fallback.set(Some(href));
                status.set("Copy the link below (it is selected)".into());
            }
        });
    };
    let on_json = move |_| {
        if let Some(root) = frame.get_untracked() {
            download_json(ctx, &root);
            status.set("Numbers saved as JSON".into());
        }
    };
    let select = move |el: web_sys::HtmlInputElement| {
        // Selected as soon as it is shown, so Ctrl+C copies it.
        request_animation_frame(move || {
            let _ = el.focus();
            el.select();
        });
    };
    view! {
        <div class="lab-tools" role="group" aria-label="Share and export this lab">
            <button type="button" class="export-btn" data-testid="copy-link" on:click=on_copy>"Copy link"</button>
            <button type="button" class="export-btn" data-testid="export-json" on:click=on_json
                title="The numbers this lab shows now, with the model, settings and site version">"Numbers (JSON)"</button>
            <span class="export-status muted small" data-testid="export-status" aria-live="polite">{move || status.get()}</span>
            {move || fallback.get().map(|link| view! {
                <input class="copy-fallback" data-testid="copy-fallback" readonly aria-label="Link to this lab" value=link
                    node_ref={let r = NodeRef::<leptos::html::Input>::new(); r.on_load(select); r} />
            })}
        </div>
    }
}

//! Canvas pictures as files, the plain part: a canvas's pixels as SVG rectangles, a sheet of small pictures laid
//! out with their labels, the caption every image carries, and a picture's numbers as a table. The labs paint
//! maps, patterns and kernels one pixel per cell (`paint_id`), so an exported SVG is the data at any size:
//! one rectangle per run of equal cells, not a blurred bitmap.
use super::{matrix_table, DataTable, Datum, Meta};

/// The narrowest an exported image is, in CSS pixels: room for a readable caption line (about 70 characters).
pub const MIN_CAPTION_W: f64 = 440.0;
/// A caption line's height in an exported image (11 px type).
pub const CAPTION_LINE_H: f64 = 15.0;
/// A single exported canvas is scaled up (by a whole number, without smoothing) to at least this many pixels on
/// its shorter side: a 28 x 28 map becomes 280 x 280.
pub const SINGLE_MIN_SIDE: f64 = 280.0;
/// In a sheet of small pictures each is scaled (by a whole number) to about this many pixels on its longer side.
pub const SHEET_TILE: f64 = 96.0;
/// The widest a sheet grows before it wraps to a new row.
pub const SHEET_MAX_W: f64 = 1000.0;
const GAP: f64 = 8.0;
const LABEL_H: f64 = 14.0;

/// One picture in an exported image: a canvas's pixels (`rgba`, row-major, 4 bytes a pixel), drawn `scale`
/// times its size with its top-left at (`x`, `y`), and `label` (if any) over it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub scale: f64,
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

/// A rectangle of equal pixels: `w` x `h` pixels from (`x`, `y`) in colour `rgba`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelRect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub rgba: [u8; 4],
}

/// The pixels as few rectangles: each row cut into runs of one colour, and a run that repeats exactly in the
/// row below grown downwards. A heatmap painted one pixel per cell gives one rectangle per cell or fewer;
/// fully transparent pixels (the page showing through) give none. Pixels beyond `rgba`'s end count as
/// transparent, so a short buffer cannot panic.
pub fn pixel_rects(width: usize, height: usize, rgba: &[u8]) -> Vec<PixelRect> {
    let px = |x: usize, y: usize| -> [u8; 4] {
        let i = (y * width + x) * 4;
        rgba.get(i..i + 4).map_or([0; 4], |p| [p[0], p[1], p[2], p[3]])
    };
    let mut done = Vec::new();
    // Rectangles still growing: those whose bottom row is the row above.
    let mut open: Vec<PixelRect> = Vec::new();
    for y in 0..height {
        let mut row = Vec::new();
        let mut x = 0;
        while x < width {
            let c = px(x, y);
            let start = x;
            while x < width && px(x, y) == c {
                x += 1;
            }
            if c[3] != 0 {
                row.push(PixelRect { x: start, y, w: x - start, h: 1, rgba: c });
            }
        }
        let mut next = Vec::with_capacity(row.len());
        for run in row {
            match open.iter().position(|r| r.x == run.x && r.w == run.w && r.rgba == run.rgba) {
                Some(i) => {
                    let mut r = open.swap_remove(i);
                    r.h += 1;
                    next.push(r);
                }
                None => next.push(run),
            }
        }
        done.append(&mut open);
        open = next;
    }
    done.append(&mut open);
    done.sort_by_key(|r| (r.y, r.x));
    done
}

/// Where each picture of a sheet goes: `sizes` (width, height in pixels) laid out left to right in rows no wider
/// than `SHEET_MAX_W`, each scaled by a whole number to about `SHEET_TILE` pixels, with room for a label over it
/// when `labelled`. Returns each picture's (x, y, scale) and the sheet's width and height.
pub fn sheet_layout(sizes: &[(usize, usize)], labelled: bool) -> (Vec<(f64, f64, f64)>, f64, f64) {
    let label_h = if labelled { LABEL_H } else { 0.0 };
    let (mut x, mut y, mut row_h, mut full_w) = (GAP, GAP, 0.0f64, 0.0f64);
    let mut at = Vec::with_capacity(sizes.len());
    for &(w, h) in sizes {
        let side = w.max(h).max(1) as f64;
        let scale = (SHEET_TILE / side).round().max(1.0);
        let (tw, th) = (w as f64 * scale, h as f64 * scale + label_h);
        if x > GAP && x + tw + GAP > SHEET_MAX_W {
            x = GAP;
            y += row_h + GAP;
            row_h = 0.0;
        }
        at.push((x, y + label_h, scale));
        x += tw + GAP;
        row_h = row_h.max(th);
        full_w = full_w.max(x);
    }
    (at, full_w.max(GAP * 2.0), y + row_h + GAP)
}

/// The scale a single exported canvas is drawn at: a whole number that brings its shorter side to
/// `SINGLE_MIN_SIDE` pixels (1 for a canvas already that large).
pub fn single_scale(width: usize, height: usize) -> f64 {
    (SINGLE_MIN_SIDE / width.min(height).max(1) as f64).ceil().max(1.0)
}

/// The caption's lines under an exported image, each cut to what fits `width` pixels at 11 px type (about 6 px
/// a character): what it is, where it came from, the settings, when.
pub fn caption_lines(meta: &Meta, what: &str, width: f64) -> Vec<String> {
    let fit = ((width - 8.0) / 6.0).max(20.0) as usize;
    let cut = |s: String| {
        if s.chars().count() > fit {
            format!("{}…", s.chars().take(fit - 1).collect::<String>())
        } else {
            s
        }
    };
    let p = meta.pairs();
    let get = |k: &str| p.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    vec![
        cut(what.to_string()),
        cut(format!("{} · section {} · model {}", get("source"), get("section"), get("model"))),
        cut(format!("settings: {}", get("settings"))),
        cut(format!("exported {}", get("exported"))),
    ]
}

/// A picture's label cut to what fits over it: `width` pixels at 11 px type (about 6 px a character), at least
/// a few characters so that even a tiny picture says which it is.
pub fn fit_label(label: &str, width: f64) -> String {
    let fit = ((width / 6.0) as usize).max(6);
    if label.chars().count() > fit {
        format!("{}…", label.chars().take(fit - 1).collect::<String>())
    } else {
        label.to_string()
    }
}

/// Text for XML: control characters (not allowed in XML 1.0 at all) as spaces, then the five characters that
/// could end an element or an attribute escaped by `html_escape`.
fn xml_text(s: &str) -> String {
    let allowed: String =
        s.chars().map(|c| if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') { ' ' } else { c }).collect();
    html_escape::encode_safe(&allowed).into_owned()
}

/// A number as SVG writes it: at most two decimals, no trailing zeros.
fn n(v: f64) -> String {
    if v.abs() < 0.005 {
        return "0".into(); // not "" or "-0"
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').into()
}

/// The pictures as one standalone SVG file of `w` x `h` (the pictures' area) over white, with the metadata as
/// `<desc>` and `<metadata>` (JSON) and as a caption under it. Each picture is its pixel rectangles in a group
/// scaled to its size, with crisp edges (a cell stays a sharp square when the file is enlarged). Returns the
/// markup and the file's width and height.
pub fn tiles_svg(tiles: &[Tile], (w, h): (f64, f64), meta: &Meta, what: &str) -> (String, f64, f64) {
    let full_w = w.max(MIN_CAPTION_W);
    let lines = caption_lines(meta, what, full_w);
    let full_h = h + 10.0 + CAPTION_LINE_H * lines.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">",
        n(full_w),
        n(full_h)
    );
    s += &format!("<desc>{}</desc>", xml_text(&format!("{what}. {}", meta.caption())));
    s += &format!("<metadata>{}</metadata>", xml_text(&meta.json(what).to_string()));
    s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>";
    for t in tiles {
        if !t.label.is_empty() {
            s += &format!(
                "<text x=\"{}\" y=\"{}\" style=\"font-family:sans-serif;font-size:11px;fill:#333333\">{}</text>",
                n(t.x),
                n(t.y - 3.0),
                xml_text(&fit_label(&t.label, t.width as f64 * t.scale))
            );
        }
        s += &format!(
            "<g transform=\"translate({} {}) scale({})\" shape-rendering=\"crispEdges\">",
            n(t.x),
            n(t.y),
            n(t.scale)
        );
        for r in pixel_rects(t.width, t.height, &t.rgba) {
            let [red, green, blue, alpha] = r.rgba;
            let opacity =
                if alpha == 255 { String::new() } else { format!(" fill-opacity=\"{}\"", n(alpha as f64 / 255.0)) };
            s += &format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#{red:02x}{green:02x}{blue:02x}\"{opacity}/>",
                r.x, r.y, r.w, r.h
            );
        }
        s += "</g>";
    }
    for (i, line) in lines.iter().enumerate() {
        let y = h + 6.0 + CAPTION_LINE_H * (i as f64 + 1.0) - 3.0;
        s += &format!(
            "<text x=\"4\" y=\"{}\" style=\"font-family:sans-serif;font-size:11px;fill:#555555\">{}</text>",
            n(y),
            xml_text(line)
        );
    }
    s += "</svg>";
    (s, full_w, full_h)
}

/// A picture's numbers (`values`, row-major, `rows` x `cols`) as a table: a row per image row, a column per
/// image column, both numbered from 0 as the lab's hover text numbers cells.
pub fn image_table(caption: &str, (rows, cols): (usize, usize), values: &[f32]) -> DataTable {
    let values: Vec<Datum> = values.iter().map(|&v| Datum::from(v)).collect();
    matrix_table(caption, "row \\ column", &values, (rows, cols), &|r| r.to_string(), &|c| c.to_string())
}

/// Several pictures' numbers in one table, in long form (one row per cell): the picture's name, its row, its
/// column and the value, the first three columns named by `names` (`["head", "query", "key"]`). Pictures of
/// different sizes fit in one table this way.
pub fn images_table(caption: &str, names: [&str; 3], images: &[(String, (usize, usize), Vec<f32>)]) -> DataTable {
    let columns = [names[0], names[1], names[2], "value"].map(String::from).to_vec();
    let rows = images
        .iter()
        .flat_map(|(name, (_, cols), values)| {
            let cols = (*cols).max(1);
            values.iter().enumerate().map(move |(i, &v)| {
                vec![Datum::Text(name.clone()), Datum::from(i / cols), Datum::from(i % cols), Datum::from(v)]
            })
        })
        .collect();
    DataTable { caption: caption.into(), columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: [u8; 4] = [255, 0, 0, 255];
    const B: [u8; 4] = [0, 0, 255, 255];
    const T: [u8; 4] = [0, 0, 0, 0];

    fn pixels(rows: &[&[[u8; 4]]]) -> (usize, usize, Vec<u8>) {
        let flat: Vec<u8> = rows.iter().flat_map(|r| r.iter().flatten().copied()).collect();
        (rows[0].len(), rows.len(), flat)
    }

    /// Paints the rectangles back into a buffer: it must equal the picture (transparent where none).
    fn repaint(w: usize, h: usize, rects: &[PixelRect]) -> Vec<u8> {
        let mut out = vec![0u8; w * h * 4];
        for r in rects {
            for y in r.y..r.y + r.h {
                for x in r.x..r.x + r.w {
                    let i = (y * w + x) * 4;
                    assert_eq!(out[i..i + 4], [0; 4], "rectangles overlap at ({x}, {y})");
                    out[i..i + 4].copy_from_slice(&r.rgba);
                }
            }
        }
        out
    }

    #[test]
    fn a_grid_of_cells_gives_one_rectangle_per_block() {
        // Two 2 x 2 blocks side by side, then a row of one colour.
        let (w, h, px) = pixels(&[&[R, R, B, B], &[R, R, B, B], &[B, B, B, B]]);
        let rects = pixel_rects(w, h, &px);
        assert_eq!(
            rects,
            vec![
                PixelRect { x: 0, y: 0, w: 2, h: 2, rgba: R },
                PixelRect { x: 2, y: 0, w: 2, h: 2, rgba: B },
                PixelRect { x: 0, y: 2, w: 4, h: 1, rgba: B },
            ]
        );
        assert_eq!(repaint(w, h, &rects), px);
    }

    #[test]
    fn transparent_pixels_give_no_rectangle_and_a_short_buffer_no_panic() {
        let (w, h, px) = pixels(&[&[T, R, T], &[T, R, T]]);
        assert_eq!(pixel_rects(w, h, &px), vec![PixelRect { x: 1, y: 0, w: 1, h: 2, rgba: R }]);
        // A buffer cut short: the missing pixels count as transparent.
        assert_eq!(pixel_rects(3, 2, &px[..8]), vec![PixelRect { x: 1, y: 0, w: 1, h: 1, rgba: R }]);
        assert!(pixel_rects(0, 0, &[]).is_empty());
    }

    #[test]
    fn every_picture_repaints_exactly_from_its_rectangles() {
        // A noisy 17 x 11 picture of three colours: no structure to merge, every pixel must still come back.
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            [R, B, T][(seed >> 16) as usize % 3]
        };
        let (w, h) = (17, 11);
        let px: Vec<u8> = (0..w * h).flat_map(|_| next()).collect();
        assert_eq!(repaint(w, h, &pixel_rects(w, h, &px)), px);
    }

    #[test]
    fn a_sheet_wraps_and_scales_each_picture_to_about_the_tile_size() {
        // Twelve 12 x 12 pictures: each 8x (96 px); nine fit in 1000 px per row with gaps, so two rows.
        let (at, w, h) = sheet_layout(&[(12, 12); 12], true);
        assert_eq!(at[0], (8.0, 8.0 + 14.0, 8.0));
        assert_eq!(at[1].0, 8.0 + 96.0 + 8.0);
        let wrapped = at.iter().position(|a| a.1 > at[0].1).expect("a second row");
        assert_eq!(wrapped, 9);
        assert!(w <= SHEET_MAX_W && h > 2.0 * (96.0 + 14.0));
        // A 3 x 3 kernel is scaled by 32, a 28 x 28 image by 3; nothing is scaled below 1.
        assert_eq!(sheet_layout(&[(3, 3)], false).0[0].2, 32.0);
        assert_eq!(sheet_layout(&[(28, 28)], false).0[0].2, 3.0);
        assert_eq!(sheet_layout(&[(500, 10)], false).0[0].2, 1.0);
        assert_eq!(single_scale(28, 28), 10.0);
        assert_eq!(single_scale(400, 300), 1.0);
    }

    #[test]
    fn the_svg_is_well_formed_escaped_and_carries_the_caption() {
        let meta = Meta { section: "9.2.1".into(), settings: "text=<a&b>".into(), ..Meta::default() };
        let tile = Tile {
            label: "conv1 \"c0\"".into(),
            x: 8.0,
            y: 22.0,
            scale: 60.0,
            width: 2,
            height: 1,
            rgba: [R, B].concat(),
        };
        let (svg, w, h) = tiles_svg(&[tile], (100.0, 50.0), &meta, "maps & more");
        assert_eq!(w, MIN_CAPTION_W);
        assert!(h > 50.0);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("fill=\"#ff0000\"") && svg.contains("fill=\"#0000ff\""));
        assert!(svg.contains("scale(60)"), "{svg}");
        assert!(svg.contains("<rect x=\"0\" y=\"0\""), "a zero is written as 0");
        assert_eq!((n(0.0), n(-0.001), n(2.50), n(1.234)), ("0".into(), "0".into(), "2.5".into(), "1.23".into()));
        assert!(svg.contains("conv1 &quot;c0&quot;"));
        assert!(svg.contains("text=&lt;a&amp;b&gt;"));
        assert!(!svg.contains("<a&b>"));
        assert!(svg.contains("maps &amp; more"));
        // Every element opened is closed: count the tags.
        let opens = svg.matches("<g ").count();
        assert_eq!(opens, svg.matches("</g>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn xml_text_escapes_markup_and_blanks_control_characters() {
        assert_eq!(xml_text("a'b\u{1}c\n\t<&>\""), "a&#x27;b c\n\t&lt;&amp;&gt;&quot;");
        assert_eq!(xml_text("œuvre ␣"), "œuvre ␣");
    }

    #[test]
    fn a_label_is_cut_to_its_picture() {
        assert_eq!(fit_label("channel 12", 96.0), "channel 12");
        assert_eq!(fit_label("feature visualization of conv3 channel 7", 96.0), "feature visuali…");
        assert_eq!(fit_label("kernel from ch 3", 9.0).chars().count(), 6);
    }

    #[test]
    fn an_image_table_numbers_rows_and_columns_from_zero() {
        let t = image_table("saliency map", (2, 3), &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(t.columns, vec!["row \\ column", "0", "1", "2"]);
        assert_eq!(t.rows[1][0], Datum::Text("1".into()));
        assert_eq!(t.rows[1][3], Datum::Num(0.6));
        let long = images_table(
            "maps",
            ["picture", "row", "column"],
            &[("a".into(), (1, 2), vec![1.0, 2.0]), ("b".into(), (1, 1), vec![3.0])],
        );
        assert_eq!(long.rows.len(), 3);
        assert_eq!(long.columns, vec!["picture", "row", "column", "value"]);
        assert_eq!(long.rows[1], vec![Datum::Text("a".into()), Datum::Num(0.0), Datum::Num(1.0), Datum::Num(2.0)]);
        assert_eq!(long.rows[2][0], Datum::Text("b".into()));
    }
}

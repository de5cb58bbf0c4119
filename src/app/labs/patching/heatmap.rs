//! The heatmap: an HTML table coloured by `heat::Scale`, laid out by `heat::layout`. Built once per grid with
//! plain attributes and a handful of delegated handlers on the table (instead of a handler and a reactive class
//! on each of up to a few hundred cells), so a redraw stays short.
//!
//! Pointer and keyboard both work: moving over a cell or focusing it shows it (`hover`), a click or Enter keeps
//! it (`pinned`). The grid is one tab stop (a roving tabindex); the arrow keys move between cells there instead
//! of turning the page.
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::heat::{Heat, Scale};
use super::{cell_key, fmt_cell};
use crate::app::core::keys;

/// What one heatmap shows.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapData {
    pub heat: Heat,
    pub scale: Scale,
    /// Under each column's clean token, the corrupted prompt's where it differs (empty for head columns).
    pub below: Vec<Option<String>>,
}

/// The cell element an event happened in, and the cell it names.
fn cell_at(target: Option<web_sys::EventTarget>) -> Option<(web_sys::Element, Vec<usize>)> {
    let el = target?.dyn_into::<web_sys::Element>().ok()?.closest("td[data-cell]").ok()??;
    let cell = el.get_attribute("data-cell")?.split('.').map(|p| p.parse().ok()).collect::<Option<Vec<usize>>>()?;
    Some((el, cell))
}

fn index(el: &web_sys::Element, key: &str) -> Option<usize> {
    el.get_attribute(key)?.parse().ok()
}

#[component]
pub fn Heatmap(
    data: Signal<Option<Arc<HeatmapData>>>,
    hover: RwSignal<Option<Vec<usize>>>,
    pinned: RwSignal<Option<Vec<usize>>>,
    testid: &'static str,
) -> impl IntoView {
    let table = NodeRef::<leptos::html::Table>::new();
    // The DOM side of the kept cell: its class, and the one tab stop (the kept cell, else the first).
    Effect::new(move |_| {
        let (Some(t), kept) = (table.get(), pinned.get()) else { return };
        data.track();
        if let Ok(Some(e)) = t.query_selector("td.selected") {
            let _ = e.class_list().remove_1("selected");
        }
        if let Ok(Some(e)) = t.query_selector("td[tabindex=\"0\"]") {
            let _ = e.set_attribute("tabindex", "-1");
        }
        let kept_el =
            kept.and_then(|c| t.query_selector(&format!("td[data-cell=\"{}\"]", cell_key(&c))).ok().flatten());
        if let Some(e) = &kept_el {
            let _ = e.class_list().add_1("selected");
        }
        if let Some(e) = kept_el.or_else(|| t.query_selector("td[data-cell]").ok().flatten()) {
            let _ = e.set_attribute("tabindex", "0");
        }
    });
    let show = move |cell: Vec<usize>| {
        if hover.get_untracked().as_ref() != Some(&cell) {
            hover.set(Some(cell));
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let Some((el, cell)) = cell_at(ev.target()) else { return };
        let (r, c) = (index(&el, "data-r").unwrap_or(0), index(&el, "data-c").unwrap_or(0));
        if keys::activates(&ev.key()) {
            ev.prevent_default();
            return pinned.set(Some(cell));
        }
        // The app's grid rule (core::keys): arrows clamped at the edges, Home/End along the row, Ctrl for corners.
        let size = data.with_untracked(|d| d.as_ref().map_or((0, 0), |d| (d.heat.rows.len(), d.heat.cols.len())));
        let Some((r, c)) = keys::grid_move(&ev.key(), ev.ctrl_key(), (r, c), size) else { return };
        // Inside the grid the arrows move between cells; they must not also turn the page (the shell's keys).
        ev.prevent_default();
        ev.stop_propagation();
        let next = table
            .get_untracked()
            .and_then(|t| t.query_selector(&format!("td[data-r=\"{r}\"][data-c=\"{c}\"]")).ok().flatten());
        if let Some(n) = next.and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = el.set_attribute("tabindex", "-1");
            let _ = n.set_attribute("tabindex", "0");
            let _ = n.focus();
        }
    };
    view! {
        <Show when=move || data.with(Option::is_some)>
            <div class="heat-scroll">
                <table class="heat-grid" data-testid=testid node_ref=table
                    data-rows=move || data.get().map(|d| d.heat.rows.len())
                    data-cols=move || data.get().map(|d| d.heat.cols.len())
                    on:mouseover=move |ev| if let Some((_, c)) = cell_at(ev.target()) { show(c) }
                    on:mouseleave=move |_| hover.set(None)
                    on:focusin=move |ev| if let Some((_, c)) = cell_at(ev.target()) { show(c) }
                    on:focusout=move |_| hover.set(None)
                    on:click=move |ev| if let Some((_, c)) = cell_at(ev.target()) { pinned.set(Some(c)) }
                    on:keydown=on_key>
                    {move || data.get().map(|d| rows(&d))}
                </table>
            </div>
        </Show>
    }
}

/// The table's head (the column labels, with the corrupted token under a clean one it replaces) and body.
fn rows(d: &HeatmapData) -> impl IntoView {
    let h = &d.heat;
    let head = h
        .cols
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let under = d.below.get(i).cloned().flatten();
            let title = match &under {
                Some(u) => format!("{} {i}: “{label}” (clean), “{u}” (corrupted)", h.col_axis),
                None => format!("{} {i}", h.col_axis),
            };
            view! { <th class="heat-col" scope="col" title=title>{label.clone()}{under.map(|u| view! { <span class="heat-under">{u}</span> })}</th> }
        })
        .collect_view();
    let body = h
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let cells = row
                .cells
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    let v = cell.value;
                    let style = format!("background: {}; color: {}", d.scale.css(v), d.scale.ink(v));
                    let aria =
                        format!("{}, {} {}: {v:.3}", row.label, h.col_axis, h.cols.get(c).cloned().unwrap_or_default());
                    view! {
                        <td class="heat-cell" data-testid="heat-cell" data-cell=cell_key(&cell.cell) data-r=r data-c=c
                            data-value=format!("{v:.4}") tabindex="-1" style=style aria-label=aria>{fmt_cell(v)}</td>
                    }
                })
                .collect_view();
            view! { <tr><th class="heat-row" scope="row">{row.label.clone()}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <thead><tr><th class="heat-corner">{format!("{} \\ {}", h.row_axis, h.col_axis)}</th>{head}</tr></thead>
        <tbody>{body}</tbody>
    }
}

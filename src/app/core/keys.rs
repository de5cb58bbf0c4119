//! Keyboard rules shared by every lab, plain and tested natively: where a roving focus goes for a key (WAI-ARIA's
//! one-tab-stop pattern for lists and grids), and which keys pick the focused item. The views only read the
//! key's name (`KeyboardEvent.key`) and call these, so every lab moves the same way.

/// The index a key moves a one-dimensional list's focus to (`len` items, focus at `at`), or `None` when the key
/// is not a moving key (so the view lets the browser have it). Arrows move by one (both axes, as a wrapping
/// row or a column reads either way), Home and End go to the ends, Page Up/Down by `page`. With `wrap`, the
/// arrows go round from the last to the first; Home, End and the page keys always stop at the ends.
pub fn list_move(key: &str, at: usize, len: usize, page: usize, wrap: bool) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let at = at.min(len - 1);
    let last = len - 1;
    Some(match key {
        "ArrowDown" | "ArrowRight" if at == last => {
            if wrap {
                0
            } else {
                last
            }
        }
        "ArrowDown" | "ArrowRight" => at + 1,
        "ArrowUp" | "ArrowLeft" if at == 0 => {
            if wrap {
                last
            } else {
                0
            }
        }
        "ArrowUp" | "ArrowLeft" => at - 1,
        "Home" => 0,
        "End" => last,
        "PageDown" => (at + page.max(1)).min(last),
        "PageUp" => at.saturating_sub(page.max(1)),
        _ => return None,
    })
}

/// The cell a key moves a `rows` x `cols` grid's focus to from (`row`, `col`), clamped at the edges (a grid
/// that wrapped would jump rows unseen), or `None` for a key that does not move. Home and End go to the
/// row's ends, Ctrl+Home and Ctrl+End (`ctrl`) to the grid's corners, as in WAI-ARIA's data grid.
pub fn grid_move(
    key: &str,
    ctrl: bool,
    (row, col): (usize, usize),
    (rows, cols): (usize, usize),
) -> Option<(usize, usize)> {
    if rows == 0 || cols == 0 {
        return None;
    }
    let (row, col) = (row.min(rows - 1), col.min(cols - 1));
    Some(match key {
        "ArrowUp" => (row.saturating_sub(1), col),
        "ArrowDown" => ((row + 1).min(rows - 1), col),
        "ArrowLeft" => (row, col.saturating_sub(1)),
        "ArrowRight" => (row, (col + 1).min(cols - 1)),
        "Home" if ctrl => (0, 0),
        "End" if ctrl => (rows - 1, cols - 1),
        "Home" => (row, 0),
        "End" => (row, cols - 1),
        _ => return None,
    })
}

/// Whether a key picks the focused item (Enter or Space, as a button does).
pub fn activates(key: &str) -> bool {
    matches!(key, "Enter" | " " | "Spacebar")
}

/// The `tabindex` of item `i` under a roving focus on `at`: only that item is in the Tab order, so Tab leaves a
/// list of 512 in one press. `"0"` for it, `"-1"` (focusable by script, skipped by Tab) for the rest.
pub fn roving_tabindex(i: usize, at: usize) -> &'static str {
    if i == at {
        "0"
    } else {
        "-1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_step_by_one_and_wrap_only_when_asked() {
        assert_eq!(list_move("ArrowDown", 3, 10, 5, false), Some(4));
        assert_eq!(list_move("ArrowRight", 3, 10, 5, false), Some(4));
        assert_eq!(list_move("ArrowUp", 3, 10, 5, false), Some(2));
        assert_eq!(list_move("ArrowLeft", 3, 10, 5, false), Some(2));
        assert_eq!(list_move("ArrowDown", 9, 10, 5, false), Some(9));
        assert_eq!(list_move("ArrowDown", 9, 10, 5, true), Some(0));
        assert_eq!(list_move("ArrowUp", 0, 10, 5, false), Some(0));
        assert_eq!(list_move("ArrowUp", 0, 10, 5, true), Some(9));
    }

    #[test]
    fn home_end_and_pages_stop_at_the_ends() {
        assert_eq!(list_move("Home", 7, 10, 5, true), Some(0));
        assert_eq!(list_move("End", 2, 10, 5, true), Some(9));
        assert_eq!(list_move("PageDown", 2, 10, 5, true), Some(7));
        assert_eq!(list_move("PageDown", 7, 10, 5, true), Some(9));
        assert_eq!(list_move("PageUp", 3, 10, 5, true), Some(0));
        assert_eq!(list_move("PageUp", 8, 10, 0, false), Some(7), "a page of 0 still moves one");
    }

    #[test]
    fn other_keys_and_empty_lists_do_not_move() {
        assert_eq!(list_move("a", 3, 10, 5, false), None);
        assert_eq!(list_move("Enter", 3, 10, 5, false), None);
        assert_eq!(list_move("Tab", 3, 10, 5, false), None);
        assert_eq!(list_move("ArrowDown", 0, 0, 5, true), None);
        assert_eq!(list_move("ArrowDown", 40, 10, 5, false), Some(9), "a stale index is clamped first");
    }

    #[test]
    fn grid_moves_clamp_at_every_edge() {
        let size = (3, 4);
        assert_eq!(grid_move("ArrowRight", false, (1, 1), size), Some((1, 2)));
        assert_eq!(grid_move("ArrowRight", false, (1, 3), size), Some((1, 3)));
        assert_eq!(grid_move("ArrowLeft", false, (1, 0), size), Some((1, 0)));
        assert_eq!(grid_move("ArrowDown", false, (1, 2), size), Some((2, 2)));
        assert_eq!(grid_move("ArrowDown", false, (2, 2), size), Some((2, 2)));
        assert_eq!(grid_move("ArrowUp", false, (0, 2), size), Some((0, 2)));
        assert_eq!(grid_move("Home", false, (2, 2), size), Some((2, 0)));
        assert_eq!(grid_move("End", false, (0, 1), size), Some((0, 3)));
        assert_eq!(grid_move("Home", true, (2, 2), size), Some((0, 0)));
        assert_eq!(grid_move("End", true, (0, 1), size), Some((2, 3)));
        assert_eq!(grid_move("x", false, (0, 1), size), None);
        assert_eq!(grid_move("ArrowUp", false, (0, 0), (0, 4)), None);
    }

    #[test]
    fn enter_and_space_pick_and_one_item_is_in_the_tab_order() {
        assert!(activates("Enter") && activates(" "));
        assert!(!activates("a") && !activates("Tab"));
        let order: Vec<_> = (0..4).map(|i| roving_tabindex(i, 2)).collect();
        assert_eq!(order, ["-1", "-1", "0", "-1"]);
    }
}

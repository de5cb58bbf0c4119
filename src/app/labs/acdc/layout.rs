//! Where the ACDC graph's nodes and edges sit in the drawing, as plain geometry (tested natively): the
//! embedding at the bottom, one row per layer (its heads, then its MLP), the logits at the top. A head's three
//! inputs are small ports along its box's bottom edge (q, k, v from left to right), so an edge ends at the input
//! it feeds; an edge starts at the top of its sender's box.
use crate::lens::methods::acdc::{AcdcGraph, Edge, Node, Qkv};

/// The drawing's width in SVG units (the view box; the SVG scales to its panel).
pub const WIDTH: f32 = 720.0;
/// The vertical distance between two rows.
pub const ROW: f32 = 120.0;
/// A node's box.
pub const BOX_W: f32 = 72.0;
pub const BOX_H: f32 = 30.0;
/// Margin above the logits and below the embedding.
const MARGIN: f32 = 24.0;
/// A port's offset from its box's centre, q left of the middle, v right of it.
const PORT_DX: f32 = 22.0;

/// One box of the drawing: a sender (`embed`, a head, an MLP) or the logits.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeBox {
    pub node: Node,
    /// The box's centre.
    pub x: f32,
    pub y: f32,
}

/// The whole drawing's geometry for one model's graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub graph: AcdcGraph,
    pub height: f32,
}

impl Layout {
    pub fn new(graph: AcdcGraph) -> Self {
        Layout { graph, height: 2.0 * MARGIN + BOX_H + ROW * (graph.n_layer + 1) as f32 }
    }

    /// The centre height of row `row` (0 = the embedding, `n_layer + 1` = the logits).
    fn row_y(&self, row: usize) -> f32 {
        self.height - MARGIN - BOX_H / 2.0 - ROW * row as f32
    }

    /// The centre of component `node` (a receiver is drawn on its component's box).
    pub fn centre(&self, node: Node) -> (f32, f32) {
        let g = self.graph;
        let per_row = g.n_heads + g.mlp as usize;
        let column = |i: usize| WIDTH * (i as f32 + 1.0) / (per_row as f32 + 1.0);
        match node.component() {
            Node::Embed => (WIDTH / 2.0, self.row_y(0)),
            Node::Logits => (WIDTH / 2.0, self.row_y(g.n_layer + 1)),
            Node::Head { layer, head } => (column(head), self.row_y(layer + 1)),
            Node::Mlp(layer) => (column(g.n_heads), self.row_y(layer + 1)),
            n => unreachable!("{n} is not a component"),
        }
    }

    /// Every box, bottom row first.
    pub fn boxes(&self) -> Vec<NodeBox> {
        let mut nodes = self.graph.senders();
        nodes.push(Node::Logits);
        nodes
            .into_iter()
            .map(|node| {
                let (x, y) = self.centre(node);
                NodeBox { node, x, y }
            })
            .collect()
    }

    /// Where a sender's edges start: the top middle of its box.
    pub fn out_point(&self, sender: Node) -> (f32, f32) {
        let (x, y) = self.centre(sender);
        (x, y - BOX_H / 2.0)
    }

    /// Where a receiver's edges end: its port on the bottom edge of its box (the middle for an MLP's input and
    /// the logits).
    pub fn in_point(&self, receiver: Node) -> (f32, f32) {
        let (x, y) = self.centre(receiver);
        let dx = match receiver {
            Node::HeadInput { input: Qkv::Q, .. } => -PORT_DX,
            Node::HeadInput { input: Qkv::V, .. } => PORT_DX,
            _ => 0.0,
        };
        (x + dx, y + BOX_H / 2.0)
    }

    /// An edge as an SVG path: a curve leaving its sender upwards and entering its receiver from below.
    pub fn edge_path(&self, edge: Edge) -> String {
        let (x1, y1) = self.out_point(edge.sender);
        let (x2, y2) = self.in_point(edge.receiver);
        let bend = 0.5 * (y1 - y2);
        format!("M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}", y1 - bend, y2 + bend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_up_from_the_embedding_to_the_logits() {
        let layout = Layout::new(AcdcGraph { n_layer: 3, n_heads: 4, mlp: false });
        let boxes = layout.boxes();
        assert_eq!(boxes.len(), 1 + 12 + 1);
        let y = |n: Node| layout.centre(n).1;
        let head = |layer, head| Node::Head { layer, head };
        assert!(y(Node::Embed) > y(head(0, 0)) && y(head(0, 0)) > y(head(2, 3)) && y(head(2, 3)) > y(Node::Logits));
        // Everything inside the view box, boxes included.
        for b in &boxes {
            assert!(b.x - BOX_W / 2.0 >= 0.0 && b.x + BOX_W / 2.0 <= WIDTH, "{:?}", b);
            assert!(b.y - BOX_H / 2.0 >= 0.0 && b.y + BOX_H / 2.0 <= layout.height, "{:?}", b);
        }
        // A layer's heads in order, spaced evenly and never overlapping.
        let xs: Vec<f32> = (0..4).map(|h| layout.centre(head(1, h)).0).collect();
        assert!(xs.windows(2).all(|w| w[1] - w[0] > BOX_W), "{xs:?}");
        assert_eq!(layout.centre(Node::Embed).0, WIDTH / 2.0);
    }

    #[test]
    fn edges_run_from_a_senders_top_to_the_port_of_the_input_they_feed() {
        let layout = Layout::new(AcdcGraph { n_layer: 2, n_heads: 2, mlp: true });
        let port = |input| layout.in_point(Node::HeadInput { layer: 1, head: 0, input });
        let (q, k, v) = (port(Qkv::Q), port(Qkv::K), port(Qkv::V));
        assert!(q.0 < k.0 && k.0 < v.0 && q.1 == k.1 && k.1 == v.1);
        let (cx, cy) = layout.centre(Node::Head { layer: 1, head: 0 });
        assert_eq!(k, (cx, cy + BOX_H / 2.0));
        // The MLP sits right of its layer's heads, its input in the middle of its box.
        let (mx, my) = layout.centre(Node::Mlp(0));
        assert!(
            mx > layout.centre(Node::Head { layer: 0, head: 1 }).0
                && my == layout.centre(Node::Head { layer: 0, head: 0 }).1
        );
        assert_eq!(layout.in_point(Node::MlpIn(0)), (mx, my + BOX_H / 2.0));
        let e = Edge::new(Node::Embed, Node::HeadInput { layer: 1, head: 0, input: Qkv::Q });
        let (x1, y1) = layout.out_point(Node::Embed);
        let p = layout.edge_path(e);
        assert!(p.starts_with(&format!("M{x1:.1},{y1:.1} C")) && p.ends_with(&format!("{:.1},{:.1}", q.0, q.1)), "{p}");
    }
}

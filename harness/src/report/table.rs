//! The one table writer of the reporters: a header, full rows and span rows, written either as
//! aligned text (terminal, plain or coloured) or as a GitHub-flavoured Markdown table.
//!
//! Cells are text that is already formatted for the target: the terminal reporter passes plain
//! text, the Markdown reporter passes escaped Markdown (code spans, bold). The table only lays the
//! cells out; it never changes them.

use std::io::{self, Write};

use super::Style;

/// What to paint text with in [`Style::Color`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Paint {
    Bold,
    Dim,
    Red,
    BoldRed,
    Green,
    BoldGreen,
    Yellow,
    BoldYellow,
}

/// `text` wrapped in the ANSI SGR codes of `p` in [`Style::Color`]; `text` unchanged in
/// [`Style::Plain`].
pub(crate) fn paint(style: Style, p: Paint, text: &str) -> String {
    if style == Style::Plain {
        return text.to_owned();
    }
    let code = match p {
        Paint::Bold => "1",
        Paint::Dim => "2",
        Paint::Red => "31",
        Paint::BoldRed => "1;31",
        Paint::Green => "32",
        Paint::BoldGreen => "1;32",
        Paint::Yellow => "33",
        Paint::BoldYellow => "1;33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A table whose text columns are padded to their widest cell (widths in `char`s: every character
/// the reporters print, `µ` and `±` included, is one column wide).
pub(crate) struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Row>,
}

enum Row {
    /// One cell per column; the last cell may be painted (text, coloured only).
    Cells(Vec<String>, Option<Paint>),
    /// The leading cells, then free text: across the remaining columns in text, in the last
    /// column in Markdown (a Markdown cell cannot span columns).
    Span(Vec<String>, String),
}

impl Table {
    /// A table with these column headers; `right[i]` right-aligns column `i` (numbers).
    pub(crate) fn new(header: &[&str], right: &[bool]) -> Table {
        debug_assert_eq!(header.len(), right.len(), "one alignment per column");
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), right: right.to_vec(), rows: Vec::new() }
    }

    /// Adds a full row; `last` paints its last cell in [`Style::Color`].
    pub(crate) fn row(&mut self, cells: Vec<String>, last: Option<Paint>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(Row::Cells(cells, last));
    }

    /// Adds a row of `lead` cells followed by free `text`.
    pub(crate) fn span(&mut self, lead: Vec<String>, text: String) {
        debug_assert!(lead.len() < self.header.len(), "a span row leaves room for its text");
        self.rows.push(Row::Span(lead, text));
    }

    /// Writes aligned text: every line indented by two spaces, columns two spaces apart, trailing
    /// spaces trimmed, the header bold in [`Style::Color`].
    pub(crate) fn write_text(&self, w: &mut dyn Write, style: Style) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            let cells = match row {
                Row::Cells(cells, _) => cells,
                Row::Span(lead, _) => lead,
            };
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header_line = self.line(&self.header, &widths, None, style);
        writeln!(w, "{}", paint(style, Paint::Bold, header_line.trim_end()))?;
        for row in &self.rows {
            let line = match row {
                Row::Cells(cells, last) => self.line(cells, &widths, *last, style),
                Row::Span(lead, text) => {
                    let mut line = self.line(lead, &widths, None, style);
                    line.push_str("  ");
                    line.push_str(text);
                    line
                }
            };
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }

    /// Writes a GitHub-flavoured Markdown table: header, alignment row (`:--` left, `--:` right),
    /// one line per row; a span row's text goes into the last column and the columns between stay
    /// empty. Empty cells are written as `| |`, without padding.
    pub(crate) fn write_markdown(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{}", markdown_line(self.header.iter().map(String::as_str)))?;
        let align = self.right.iter().map(|&r| if r { "--:" } else { ":--" });
        writeln!(w, "{}", markdown_line(align))?;
        for row in &self.rows {
            let line = match row {
                Row::Cells(cells, _) => markdown_line(cells.iter().map(String::as_str)),
                Row::Span(lead, text) => {
                    let gap = self.header.len().saturating_sub(lead.len() + 1);
                    let cells = lead.iter().map(String::as_str).chain(std::iter::repeat_n("", gap));
                    markdown_line(cells.chain([text.as_str()]))
                }
            };
            writeln!(w, "{line}")?;
        }
        Ok(())
    }

    /// One text line: cells padded to `widths`, the last cell of a full row painted with `last`
    /// (trailing spaces are trimmed by the caller).
    fn line(&self, cells: &[String], widths: &[usize], last: Option<Paint>, style: Style) -> String {
        let mut out = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            // Painted after padding is computed, so escapes never count towards a width.
            let painted = match last {
                Some(p) if i + 1 == self.header.len() => paint(style, p, cell),
                _ => cell.clone(),
            };
            if self.right[i] {
                out.push_str(&pad);
                out.push_str(&painted);
            } else {
                out.push_str(&painted);
                out.push_str(&pad);
            }
        }
        out
    }
}

/// `| a | b |`, with an empty cell as `| |`.
fn markdown_line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("|");
    for cell in cells {
        if cell.is_empty() {
            out.push_str(" |");
        } else {
            out.push(' ');
            out.push_str(cell);
            out.push_str(" |");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["name", "value", "verdict"], &[false, true, false]);
        t.row(vec!["a".into(), "1.5 ns".into(), "ok".into()], Some(Paint::Green));
        t.span(vec!["long_name".into()], "only here".into());
        t
    }

    #[test]
    fn table_text_is_aligned_and_trimmed() {
        let mut out = Vec::new();
        sample().write_text(&mut out, Style::Plain).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "  name        value  verdict\n  a          1.5 ns  ok\n  long_name  only here\n");
    }

    #[test]
    fn table_markdown_puts_span_text_in_the_last_column() {
        let mut out = Vec::new();
        sample().write_markdown(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "| name | value | verdict |\n| :-- | --: | :-- |\n| a | 1.5 ns | ok |\n| long_name | | only here |\n"
        );
    }
}

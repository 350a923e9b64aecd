//! Plain-text tables whose columns are as wide as their widest cell, so a table fits what it
//! shows whatever the names' lengths.

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Renders `header` and `rows` with two spaces between columns, each line prefixed by `indent`.
/// The last column is not padded (no trailing blanks).
pub fn render(indent: &str, header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate().take(columns) {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i + 1 == columns;
            if i > 0 {
                line.push_str("  ");
            }
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Right => {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
                Align::Left => {
                    line.push_str(cell);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let rows = vec![
            vec!["a-long-name".to_string(), "7".to_string(), "x".to_string()],
            vec!["b".to_string(), "1234".to_string(), "y".to_string()],
        ];
        let text = render(
            "",
            &["NAME", "N", "NOTE"],
            &[Align::Left, Align::Right, Align::Left],
            &rows,
        );
        assert_eq!(
            text,
            "NAME            N  NOTE\na-long-name     7  x\nb            1234  y\n"
        );
    }
}

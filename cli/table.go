package cli

import "strings"

// tabulate renders rows as tabulate(rows, headers, tablefmt="plain",
// numalign="left", stralign="left") does for text cells: each column as
// wide as its widest cell and at least its header plus two, cells stripped, columns joined
// by two spaces, trailing spaces stripped. Tabulate's number parsing (which
// would reformat cells that look numeric) is not reproduced.
func tabulate(headers []string, rows [][]string) string {
	// Like tabulate, strip the cells.
	stripped := make([][]string, len(rows))
	for i, row := range rows {
		stripped[i] = make([]string, len(row))
		for j, c := range row {
			stripped[i][j] = strings.TrimSpace(c)
		}
	}
	rows = stripped
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = runeLen(h) + 2
	}
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], runeLen(cell))
		}
	}
	line := func(cells []string) string {
		padded := make([]string, len(cells))
		for i, c := range cells {
			padded[i] = c + strings.Repeat(" ", widths[i]-runeLen(c))
		}
		return strings.TrimRight(strings.Join(padded, "  "), " ")
	}
	lines := []string{line(headers)}
	for _, row := range rows {
		lines = append(lines, line(row))
	}
	return strings.Join(lines, "\n")
}

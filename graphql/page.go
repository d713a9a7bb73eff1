package graphql

import (
	"strings"

	"github.com/latchkey/latchkey"
)

// Every list field is bounded. A field with a limit argument returns at
// most DefaultLimit rows when limit is absent, and refuses a limit over
// MaxLimit (EINVALID) rather than clamping it: a caller that asked for more
// than it gets should be told, not handed a silently short page. The
// remaining lists have fixed bounds: user is one row, task_runs is always
// empty, and the scalar lists (command, labels, flow_run_ids) are capped
// when written.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// page is a validated limit and offset.
type page struct {
	offset int
	limit  int  // rows to return, at most MaxLimit
	empty  bool // an explicit limit: 0, which returns no rows as in Hasura
}

// pageArgs validates the limit and offset arguments and applies the
// default limit.
func pageArgs(limit, offset *int) (page, error) {
	p := page{limit: DefaultLimit}
	if limit != nil {
		switch {
		case *limit < 0:
			return p, latchkey.Errorf(latchkey.EINVALID, "limit must not be negative.")
		case *limit > MaxLimit:
			return p, latchkey.Errorf(latchkey.EINVALID, "limit must be at most %d; ask for the following rows with offset.", MaxLimit)
		}
		p.limit = *limit
		p.empty = *limit == 0
	}
	if offset != nil {
		if *offset < 0 {
			return p, latchkey.Errorf(latchkey.EINVALID, "offset must not be negative.")
		}
		p.offset = *offset
	}
	return p, nil
}

// limitArg returns the number of rows a list field with this limit
// argument can return, for the complexity score: the default when limit
// is absent, and at most MaxLimit (a larger limit is refused when the field
// resolves). It is at least 1 so that the score never drops below the
// number of fields selected.
func limitArg(limit *int) int {
	if limit == nil {
		return DefaultLimit
	}
	return min(max(*limit, 1), MaxLimit)
}

// byIDs reports whether a filter's id conditions name few enough rows
// (one id, or a list of at most MaxLimit) for conditions the store cannot
// answer to be checked here, over just those rows.
func byIDs(id *string, ids []string) bool {
	return id != nil || ids != nil && len(ids) <= MaxLimit
}

// unsupported is the error for a where with conditions the store cannot
// answer in SQL that does not name its rows by id: such a where is refused
// rather than answered by reading every row. what describes the
// conditions; supported lists what the store answers.
func unsupported(typeName, what, supported string) error {
	return latchkey.Errorf(latchkey.EINVALID,
		"%s: filtering by %s is not supported. Filter by %s, or name the rows with id: {_eq: ...} or id: {_in: [...]} (at most %d ids) alongside it.",
		typeName, what, supported, MaxLimit)
}

// unsupportedConds is unsupported for conditions left over by a filter
// builder.
func unsupportedConds(typeName string, rest []cond, supported string) error {
	what := make([]string, len(rest))
	for i, c := range rest {
		what[i] = c.String()
	}
	return unsupported(typeName, strings.Join(what, ", "), supported)
}

// findPage fetches one page. With no conditions left to check in memory,
// offset and limit go to the service. Otherwise the filter builder has
// made sure that the pushed-down filter names its rows by id (byIDs):
// those rows are fetched, filtered here, then paged here.
func findPage[T any](p page, rest []cond, field func(*T, string) string, fetch func(offset, limit int) ([]*T, error)) ([]*T, error) {
	var keep func(*T) bool
	if len(rest) > 0 {
		keep = func(t *T) bool {
			for _, c := range rest {
				if !c.match(field(t, c.field)) {
					return false
				}
			}
			return true
		}
	}
	return filterPage(p, keep, fetch)
}

// filterPage fetches one page: through the service when keep is nil,
// otherwise by fetching every row the filter names (its builder checked
// byIDs), keeping the matches and paging in memory.
func filterPage[T any](p page, keep func(*T) bool, fetch func(offset, limit int) ([]*T, error)) ([]*T, error) {
	if p.empty {
		return []*T{}, nil
	}
	if keep == nil {
		return fetch(p.offset, p.limit)
	}
	all, err := fetch(0, 0) // at most MaxLimit rows: the filter names them by id
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, t := range all {
		if keep(t) {
			out = append(out, t)
		}
	}
	if p.offset >= len(out) {
		return []*T{}, nil
	}
	out = out[p.offset:]
	if p.limit < len(out) {
		out = out[:p.limit]
	}
	return out, nil
}

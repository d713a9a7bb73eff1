package html

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// Audit export bounds: events are read maxAuditExportBatch at a time and
// written as they come, at most maxAuditExport in all (newest first).
const (
	maxAuditExport      = 10000
	maxAuditExportBatch = 500
)

// auditExportColumns are the CSV header and the JSON field names.
var auditExportColumns = []string{
	"time", "actor_user_id", "actor", "actor_kind", "credential_id", "credential_name",
	"action", "target_type", "target_id", "target", "change", "details", "client_addr", "user_agent",
}

// exportRecord is one event as exported: raw ids and the labels the page shows.
func exportRecord(row auditRow) []string {
	e := row.AuditEvent
	details, _ := json.Marshal(e.Details)
	return []string{
		e.CreatedAt.UTC().Format(time.RFC3339), e.ActorUserID, row.Actor, string(e.ActorKind), e.ActorCredentialID, e.ActorCredentialName,
		string(e.Action), e.TargetType, e.TargetID, row.Target, row.Change, string(details), e.ClientAddr, e.UserAgent,
	}
}

// neutralizeCell keeps a spreadsheet from reading a cell as a formula:
// a cell starting with =, +, -, @, tab or carriage return gets a leading
// quote (OWASP's CSV injection advice).
func neutralizeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// handleAuditExport streams the events of the audit page's filter as CSV
// or JSON, newest first, at most maxAuditExport of them. Events logged
// after the export started are left out, so paging does not shift.
func (u *ui) handleAuditExport(w http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	if u.Audit == nil {
		u.fail(w, r, p, "audit export", latchkey.Errorf(latchkey.ENOTFOUND, "The audit log is not available on this server."))
		return
	}
	format := r.PathValue("format")
	if format != "csv" && format != "json" {
		u.handleNotFound(w, r)
		return
	}
	aq := readAuditQuery(r.URL.Query())
	f := aq.filter()
	// The stores keep microseconds: the first microsecond after now.
	started := u.Now().Truncate(time.Microsecond).Add(time.Microsecond)
	if f.CreatedBefore == nil || f.CreatedBefore.After(started) {
		f.CreatedBefore = &started
	}
	f.Limit = maxAuditExportBatch
	// The first batch before any byte is written: an error is still a
	// proper error page.
	events, _, err := u.Audit.FindAuditEvents(ctx, f)
	if err != nil {
		u.fail(w, r, p, "export audit events", err)
		return
	}
	names, err := u.memberNames(ctx, p)
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}
	name := "audit-" + p.Tenant.Slug + "-" + u.Now().UTC().Format("20060102-150405") + "." + format
	h := w.Header()
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}

	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(w)
		cw.Write(auditExportColumns)
	} else {
		w.Write([]byte("[\n"))
	}
	n := 0
	for {
		for _, e := range events {
			// No "you" in a file: the reader is named like everyone else.
			rec := exportRecord(describeAuditEvent(e, names, ""))
			if cw != nil {
				for i := range rec {
					rec[i] = neutralizeCell(rec[i])
				}
				cw.Write(rec)
				continue
			}
			obj := make(map[string]string, len(rec))
			for i, col := range auditExportColumns {
				obj[col] = rec[i]
			}
			b, _ := json.Marshal(obj)
			if n > 0 {
				w.Write([]byte(",\n"))
			}
			w.Write(b)
			n++
		}
		if cw != nil {
			cw.Flush()
			n += len(events)
		}
		if len(events) < f.Limit || n >= maxAuditExport {
			break
		}
		f.Offset += len(events)
		f.Limit = min(maxAuditExportBatch, maxAuditExport-n)
		if events, _, err = u.Audit.FindAuditEvents(ctx, f); err != nil {
			// Headers are gone: log and end the file short.
			u.logError(r, "export audit events", err)
			break
		}
	}
	if cw == nil {
		w.Write([]byte("\n]\n"))
	}
}

package latchkey

import (
	"context"
	"log/slog"
)

// NewRedactingHandler wraps h so that every string in a log record (the
// message, string attributes, and errors) passes through RedactSecrets.
// Code must not log secrets in the first place; this is the backstop.
func NewRedactingHandler(h slog.Handler) slog.Handler { return redactingHandler{h} }

type redactingHandler struct{ h slog.Handler }

func (r redactingHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	if recordClean(rec) {
		return r.h.Handle(ctx, rec) // the common case: nothing to redact, nothing copied
	}
	out := slog.NewRecord(rec.Time, rec.Level, RedactSecrets(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactingHandler{r.h.WithAttrs(red)}
}

func (r redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{r.h.WithGroup(name)}
}

// recordClean reports whether rec holds nothing Handle would change: a
// message and string attributes that cannot hold a secret, and otherwise
// only numbers, booleans, durations and times. Anything else (errors,
// groups, values of other kinds) takes the redacting path.
func recordClean(rec slog.Record) bool {
	if mayHoldSecret(rec.Message) {
		return false
	}
	clean := true
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindString:
			clean = !mayHoldSecret(a.Value.String())
		case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		default:
			clean = false
		}
		return clean
	})
	return clean
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactSecrets(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, RedactSecrets(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, RedactSecrets(s.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

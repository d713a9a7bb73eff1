package sqldb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/latchkey/latchkey"
)

// notifyChannel returns the NOTIFY channel for a schema. Channels are
// per database, so the schema is part of the name: deployments (and test
// runs) sharing a database in different schemas do not hear each other.
func notifyChannel(schema string) string {
	ch := "latchkey:" + schema
	if len(ch) > 63 { // PostgreSQL identifiers are at most 63 bytes
		h := sha256.Sum256([]byte(schema))
		ch = "latchkey:" + hex.EncodeToString(h[:16])
	}
	return ch
}

// wireEvent is an event as it travels in a NOTIFY payload.
type wireEvent struct {
	Origin     string             `json:"o"`
	Type       latchkey.EventType `json:"t"`
	UserID     string             `json:"u,omitempty"`
	TenantID   string             `json:"tn,omitempty"`
	APIKeyID   string             `json:"k,omitempty"`
	APITokenID string             `json:"tk,omitempty"`
	SessionID  string             `json:"s,omitempty"`
}

func encodeEvent(origin string, ev latchkey.Event) (string, error) {
	b, err := json.Marshal(wireEvent{Origin: origin, Type: ev.Type, UserID: ev.UserID, TenantID: ev.TenantID,
		APIKeyID: ev.APIKeyID, APITokenID: ev.APITokenID, SessionID: ev.SessionID})
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	return string(b), nil
}

func decodeEvent(payload string) (origin string, ev latchkey.Event, err error) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return "", latchkey.Event{}, fmt.Errorf("decode event: %w", err)
	}
	return w.Origin, latchkey.Event{Type: w.Type, UserID: w.UserID, TenantID: w.TenantID,
		APIKeyID: w.APIKeyID, APITokenID: w.APITokenID, SessionID: w.SessionID}, nil
}

// publish records that the transaction revokes what ev names. On
// PostgreSQL it sends ev with pg_notify at once, inside the transaction,
// so that other replicas hear of it exactly when the transaction commits
// (and never if it rolls back). Commit delivers it to DB.Events.
func (tx *Tx) publish(ctx context.Context, ev latchkey.Event) error {
	if tx.db.dialect == postgres {
		payload, err := encodeEvent(tx.db.origin, ev)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify(?, ?)`, tx.db.channel, payload); err != nil {
			return fmt.Errorf("notify %s: %w", ev.Type, err)
		}
	}
	tx.events = append(tx.events, ev)
	return nil
}

// deliver hands a committed event to DB.Events. An *EventService only
// delivers it locally: the transaction has notified the other replicas.
func (db *DB) deliver(ev latchkey.Event) {
	switch es := db.Events.(type) {
	case nil:
	case *EventService:
		es.deliver(ev)
	default:
		if err := es.Publish(context.Background(), ev); err != nil {
			db.Logger.Error("publishing event failed", "type", ev.Type, "user_id", ev.UserID, "err", err)
		}
	}
}

// Defaults of EventService.
const (
	DefaultEventHeartbeat   = time.Second
	DefaultEventPingTimeout = 2 * time.Second
)

var _ latchkey.EventService = (*EventService)(nil)

// EventService is latchkey.EventService on PostgreSQL LISTEN/NOTIFY, for
// several replicas on one database. It listens on a dedicated connection
// (outside the pool) and hands every event another replica commits to this
// process's subscribers. The store sends events itself, inside the
// changing transaction (set DB.Events to this service).
//
// When the connection fails, or stays silent and fails a ping, subscribers
// get latchkey.EventsInterrupted at once (caches stop caching) while the
// service reconnects with backoff; after it listens again they get
// latchkey.EventsResumed (caches start from empty, since events may have
// been missed). So a replica never serves a cached credential that another
// replica revoked while this one could not hear it, except within the
// time it takes to notice a silently dead connection: at most Heartbeat +
// PingTimeout.
type EventService struct {
	db *DB

	// Heartbeat is how long the connection may stay silent before it is
	// pinged; PingTimeout how long a ping may take. Zero means
	// DefaultEventHeartbeat and DefaultEventPingTimeout. Set before Open.
	Heartbeat   time.Duration
	PingTimeout time.Duration

	// Logger receives connection failures; the DB's logger by default.
	Logger *slog.Logger

	mu        sync.Mutex
	subs      []subscriber // copied on write
	nextSub   uint64
	connected bool   // listening; guarded by mu
	pid       uint32 // backend pid of the listening connection; guarded by mu

	reconnects atomic.Uint64
	cancel     context.CancelFunc
	done       chan struct{}
}

// NewEventService returns an EventService on db, which must be an open
// PostgreSQL database.
func NewEventService(db *DB) *EventService {
	return &EventService{db: db}
}

// Open listens, and keeps listening (reconnecting as needed) until Close.
// It returns once the first LISTEN has succeeded, or its error.
func (s *EventService) Open(ctx context.Context) error {
	if s.db.dialect != postgres || s.db.pool == nil {
		return errors.New("event service: LISTEN/NOTIFY needs an open PostgreSQL database")
	}
	if s.Logger == nil {
		s.Logger = s.db.Logger
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("event service: %w", err)
	}
	s.setConnected(true, conn.PgConn().PID())
	// Subscribers that came before Open were told EventsInterrupted.
	s.deliver(latchkey.Event{Type: latchkey.EventsResumed})
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(runCtx, conn)
	return nil
}

// Close stops listening, and tells subscribers EventsInterrupted: from
// now on they would miss other replicas' events.
func (s *EventService) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
		s.deliver(latchkey.Event{Type: latchkey.EventsInterrupted})
	}
	return nil
}

// Connected reports whether the service is listening right now.
func (s *EventService) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Reconnects returns how many times the service has listened again after
// losing its connection.
func (s *EventService) Reconnects() uint64 { return s.reconnects.Load() }

// Publish sends ev to the other replicas with pg_notify (in a transaction
// of its own) and delivers it to this process's subscribers. Stores do not
// call it: they notify inside the transaction that makes the change.
func (s *EventService) Publish(ctx context.Context, ev latchkey.Event) error {
	payload, err := encodeEvent(s.db.origin, ev)
	if err != nil {
		return err
	}
	if _, err := s.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.db.channel, payload); err != nil {
		s.deliver(ev)
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	s.deliver(ev)
	return nil
}

// Subscribe calls fn for every event from now on, after the subscribers
// that came before it, until unsubscribe is called. If the service is not
// listening right now, fn first gets latchkey.EventsInterrupted.
func (s *EventService) Subscribe(fn func(latchkey.Event)) (unsubscribe func()) {
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs = append(slices.Clip(s.subs), subscriber{id, fn})
	connected := s.connected
	s.mu.Unlock()
	if !connected {
		fn(latchkey.Event{Type: latchkey.EventsInterrupted})
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(sub subscriber) bool { return sub.id == id })
	}
}

type subscriber struct {
	id uint64
	fn func(latchkey.Event)
}

// deliver calls every subscriber with ev, synchronously, in the order
// they subscribed.
func (s *EventService) deliver(ev latchkey.Event) {
	s.mu.Lock()
	subs := s.subs
	s.mu.Unlock()
	for _, sub := range subs {
		sub.fn(ev)
	}
}

func (s *EventService) setConnected(connected bool, pid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected, s.pid = connected, pid
}

func (s *EventService) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return DefaultEventHeartbeat
}

func (s *EventService) pingTimeout() time.Duration {
	if s.PingTimeout > 0 {
		return s.PingTimeout
	}
	return DefaultEventPingTimeout
}

// connect opens a dedicated connection, with the pool's settings, and
// listens on the database's channel.
func (s *EventService) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "latchkey-events"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", errors.New(redactDSN(err.Error())))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.db.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// run listens on conn until it fails, then tells subscribers, reconnects
// with backoff and tells them again, until ctx is cancelled.
func (s *EventService) run(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	for {
		err := s.listen(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			s.setConnected(false, 0)
			return
		}
		s.setConnected(false, 0)
		s.Logger.Error("event listener lost its connection; caches are off until it reconnects", "err", err)
		s.deliver(latchkey.Event{Type: latchkey.EventsInterrupted})

		backoff := 100 * time.Millisecond
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if conn, err = s.connect(ctx); err == nil {
				break
			} else if ctx.Err() != nil {
				return
			}
			s.Logger.Warn("event listener reconnect failed", "err", err, "retry_in", backoff)
			backoff = min(2*backoff, 5*time.Second)
		}
		s.setConnected(true, conn.PgConn().PID())
		s.reconnects.Add(1)
		s.Logger.Info("event listener reconnected")
		s.deliver(latchkey.Event{Type: latchkey.EventsResumed})
	}
}

// listen hands notifications to subscribers until the connection fails
// (or ctx is cancelled). A connection silent for Heartbeat is pinged.
func (s *EventService) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.heartbeat())
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			s.handle(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, s.pingTimeout())
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

// handle delivers a notification, unless this DB handle sent it (its
// store delivered it on commit already). A payload that cannot be read
// is delivered as an event of no known type, which caches treat as "drop
// everything".
func (s *EventService) handle(payload string) {
	origin, ev, err := decodeEvent(payload)
	if err != nil {
		s.Logger.Error("unreadable event; flushing caches", "err", err)
		s.deliver(latchkey.Event{Type: "unreadable"})
		return
	}
	if origin == s.db.origin {
		return
	}
	s.deliver(ev)
}

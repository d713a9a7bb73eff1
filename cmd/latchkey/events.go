package main

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey/inmem"
	"github.com/latchkey/latchkey/sqldb"
	"github.com/prometheus/client_golang/prometheus"
)

// openEvents sets m.Events and the database's events: LISTEN/NOTIFY on
// PostgreSQL, so that a revocation through any replica reaches every
// replica's cache, and the in-process bus on SQLite (one replica).
func (m *Main) openEvents(ctx context.Context) error {
	if !m.DB.Postgres() {
		m.Events = inmem.NewEventService()
		m.DB.Events = m.Events
		return nil
	}
	es := sqldb.NewEventService(m.DB)
	es.Logger = m.Logger
	if err := es.Open(ctx); err != nil {
		return err
	}
	m.Events = es
	m.DB.Events = es
	return nil
}

// openAuthCache puts a cache in front of m.Auth's lookups, unless
// AuthCacheTTL is zero.
func (m *Main) openAuthCache() {
	if m.AuthCacheTTL <= 0 {
		return
	}
	m.AuthCache = sqldb.NewAuthCache(m.Events)
	m.AuthCache.TTL = m.AuthCacheTTL
	m.Auth.Cache = m.AuthCache
}

// registerEventMetrics exports the cache's and the listener's state.
func (m *Main) registerEventMetrics() error {
	var cs []prometheus.Collector
	if c := m.AuthCache; c != nil {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latchkey_auth_cache_hits_total",
				Help: "Credential lookups answered by the authentication cache."},
				func() float64 { return float64(c.Stats().Hits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latchkey_auth_cache_misses_total",
				Help: "Credential lookups the authentication cache could not answer."},
				func() float64 { return float64(c.Stats().Misses) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latchkey_auth_cache_events_total",
				Help: "Revocation and delivery events handled by the authentication cache."},
				func() float64 { return float64(c.Stats().Invalidations) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "latchkey_auth_cache_entries",
				Help: "Entries in the authentication cache."},
				func() float64 { return float64(c.Stats().Entries) }),
		)
	}
	if es, ok := m.Events.(*sqldb.EventService); ok {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "latchkey_events_listener_up",
				Help: "1 while this replica listens for other replicas' revocations (PostgreSQL LISTEN); 0 while its cache is off because it does not."},
				func() float64 {
					if es.Connected() {
						return 1
					}
					return 0
				}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "latchkey_events_listener_reconnects_total",
				Help: "Times the revocation listener reconnected after losing its connection."},
				func() float64 { return float64(es.Reconnects()) }),
		)
	}
	for _, c := range cs {
		if err := m.Registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// closeEvents stops the cache and the listener.
func (m *Main) closeEvents() error {
	if m.AuthCache != nil {
		m.AuthCache.Close()
	}
	if es, ok := m.Events.(*sqldb.EventService); ok {
		return es.Close()
	}
	return nil
}

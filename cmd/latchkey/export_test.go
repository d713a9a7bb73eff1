package main

// Internals for the external tests (package main_test).

import "context"

// GCPercentFor is gcPercentFor.
func GCPercentFor(floor, live uint64) int { return gcPercentFor(floor, live) }

// StartGCTuner is startGCTuner.
func StartGCTuner(floor uint64) (stop func()) { return startGCTuner(floor) }

// DeviceKey is m.deviceKey.
func DeviceKey(m *Main) ([]byte, error) { return m.deviceKey(context.Background()) }

// FlushAuthFailures writes m's counted failed authentications now.
func FlushAuthFailures(m *Main) error { return m.failures.Flush(context.Background()) }

//go:build !linux

package main

import "errors"

// pinProcess is only implemented on Linux.
func pinProcess(cpu int) error {
	if cpu < 0 {
		return nil
	}
	return errors.New("--split-cores needs Linux (sched_setaffinity)")
}

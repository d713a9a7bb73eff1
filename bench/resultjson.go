package bench

import (
	"encoding/json"
	"slices"
	"time"
)

// resultJSON is a Result on the wire, latencies included, so that a load
// generator in another process can hand its results back for Merge.
type resultJSON struct {
	Scenario    string           `json:"scenario"`
	Concurrency int              `json:"concurrency"`
	Rate        float64          `json:"rate,omitempty"`
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"`
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	Elapsed     time.Duration    `json:"elapsed_ns"`
	CPU         time.Duration    `json:"cpu_ns"`
	Latencies   []time.Duration  `json:"latencies_ns"`
}

// MarshalJSON encodes r with all its latencies.
func (r *Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{
		Scenario: r.Scenario, Concurrency: r.Concurrency, Rate: r.Rate,
		Requests: r.Requests, Errors: r.Errors, ErrorKinds: r.ErrorKinds,
		Elapsed: r.Elapsed, CPU: r.CPU, Latencies: r.lat,
	})
}

// UnmarshalJSON decodes what MarshalJSON wrote and recomputes the
// percentiles from the latencies.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{
		Scenario: j.Scenario, Concurrency: j.Concurrency, Rate: j.Rate,
		Requests: j.Requests, Errors: j.Errors, ErrorKinds: j.ErrorKinds,
		Elapsed: j.Elapsed, CPU: j.CPU, lat: j.Latencies,
	}
	slices.Sort(r.lat)
	r.setPercentiles()
	return nil
}

package testutil

import (
	"slices"
	"testing"
	"time"
)

// Latencies collects how long one event took, once per benchmark iteration,
// and reports the median and the 99th percentile as the metrics p50-ns and
// p99-ns: what a user waits for is a latency, which a mean over b.N hides.
type Latencies []time.Duration

// Add records one latency.
func (l *Latencies) Add(d time.Duration) { *l = append(*l, d) }

// Report adds the p50-ns and p99-ns metrics to b.
func (l Latencies) Report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(q float64) float64 { return float64(s[int(q*float64(len(s)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

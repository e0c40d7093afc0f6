//go:build linux

package signal

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

// Close racing blocked Waits and notifications: every notification is
// either returned by a successful Wait or still pending, seen through
// another handle on the same eventfd.
func TestCloseConserves(t *testing.T) {
	for round := range 50 {
		s, err := New()
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		other, err := FromFile(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}

		const waiters, notified = 20, 100
		var got atomic.Uint64
		var wg sync.WaitGroup
		for range waiters {
			wg.Go(func() {
				for {
					v, err := s.Wait(context.Background())
					if errors.Is(err, os.ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Wait = %v", err)
						return
					}
					got.Add(v)
				}
			})
		}
		if round%2 == 0 {
			blocked(t, s, waiters)
		}
		wg.Go(func() {
			for range notified {
				other.Notify()
			}
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		left, err := other.Value()
		if err != nil {
			t.Fatal(err)
		}
		if sum := got.Load() + left; sum != notified {
			t.Fatalf("round %d: %d waited + %d pending = %d, want the %d notified", round, got.Load(), left, sum, notified)
		}
		other.Close()
	}
}

// Posting nothing on a closed Signal is still posting on a closed Signal.
func TestNotifyZeroAfterClose(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if msg := testutil.PanicMessage(func() { s.NotifyN(0) }); !strings.Contains(msg, "closed") {
		t.Fatalf("NotifyN(0) after Close: panic %q, want one saying it is closed", msg)
	}
}

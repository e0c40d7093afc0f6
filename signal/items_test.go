//go:build linux

package signal

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

// Item 6: Signals dropped without Close give their descriptors back once
// collected.
func TestCollectedSignalsCloseDescriptors(t *testing.T) {
	before := len(testutil.OpenFDs(t))
	var made []*Signal
	for range 100 {
		s, err := New()
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.File() // shared: its count is in an eventfd
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		s.Notify()
		if v, err := s.Wait(context.Background()); err != nil || v != 1 {
			t.Fatalf("Wait = %d, %v", v, err)
		}
		made = append(made, s)
	}
	if after := len(testutil.OpenFDs(t)); after < before+100 {
		t.Fatalf("%d descriptors open with 100 Signals in use, want at least %d", after, before+100)
	}
	runtime.KeepAlive(made)
	testutil.Eventually(t, "collected Signals close their descriptors", func() bool {
		runtime.GC()
		return len(testutil.OpenFDs(t)) <= before
	})
}

// panicValue calls f and returns what it panicked with, nil if it did not.
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// A zero Signal panics with a message naming the constructors, not with a
// nil dereference.
func TestZeroValuePanics(t *testing.T) {
	var s Signal
	ctx := context.Background()
	for name, f := range map[string]func(){
		"Notify":     s.Notify,
		"NotifyN(0)": func() { s.NotifyN(0) },
		"Wait":       func() { s.Wait(ctx) },
		"TryWait":    func() { s.TryWait() },
		"Ready":      func() { s.Ready() },
		"Value":      func() { s.Value() },
		"File":       func() { s.File() },
		"Close":      func() { s.Close() },
		"PassTo":     func() { s.PassTo(exec.Command("true"), "s") },
	} {
		v := panicValue(f)
		msg, ok := v.(string)
		if !ok || !strings.Contains(msg, "not made by") {
			t.Errorf("%s on a zero Signal panicked with %#v, want a message saying it was not made by a constructor", name, v)
		}
	}
}

// Item 10: errors of a closed Signal name it, not a file.
func TestClosedErrors(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	woken := make(chan error, 1)
	go func() {
		_, err := s.Wait(context.Background())
		woken <- err
	}()
	blocked(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.CheckClosedError(t, "Signal", "a Wait woken by Close", <-woken)
	_, err = s.Wait(context.Background())
	testutil.CheckClosedError(t, "Signal", "Wait", err)
	_, err = s.Value()
	testutil.CheckClosedError(t, "Signal", "Value", err)
	_, err = s.File()
	testutil.CheckClosedError(t, "Signal", "File", err)
	testutil.CheckClosedError(t, "Signal", "Close", s.Close())
	c, _ := testutil.SocketPair(t)
	testutil.CheckClosedError(t, "Signal", "Send", s.Send(c))
	testutil.CheckClosedError(t, "Signal", "PassTo", s.PassTo(exec.Command("true"), "s"))
}

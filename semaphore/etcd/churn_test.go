package etcdsem

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type childLine struct {
	who  int
	line string // "" when the child's output ended
}

// readLines sends each line of r to lines, then an empty line.
func readLines(who int, r io.Reader, lines chan<- childLine) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines <- childLine{who, sc.Text()}
	}
	lines <- childLine{who, ""}
}

// ledger is the history of the holder keys under a prefix, from etcd's own
// watch: every grant, release and expiry, in revision order.
type ledger struct {
	events []*clientv3.Event
	done   chan error
}

// watchLedger records every event under prefix after rev until the key
// prefix+"end" is written.
func watchLedger(ctx context.Context, cli *clientv3.Client, prefix string, rev int64) *ledger {
	l := &ledger{done: make(chan error, 1)}
	go func() {
		// No WithRequireLeader: through failover the watch resumes where
		// it stopped, and misses nothing.
		for wr := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if err := wr.Err(); err != nil {
				l.done <- err
				return
			}
			for _, ev := range wr.Events {
				if string(ev.Kv.Key) == prefix+"end" {
					l.done <- nil
					return
				}
				l.events = append(l.events, ev)
			}
		}
		l.done <- ctx.Err()
	}()
	return l
}

// check replays the ledger: the permits held never exceed capacity at any
// revision, and none are held at the end. It returns, for each holder key,
// its weight and the revisions of its grant and of its end.
func (l *ledger) check(t *testing.T, prefix string, capacity int64) map[string][3]int64 {
	t.Helper()
	held := map[string][3]int64{}
	var sum, peak int64
	live := map[string]int64{}
	for i, ev := range l.events {
		k := string(ev.Kv.Key)
		if !strings.HasPrefix(k, prefix+"h/") {
			continue
		}
		switch ev.Type {
		case clientv3.EventTypePut:
			n, err := strconv.ParseInt(string(ev.Kv.Value), 10, 64)
			if err != nil {
				t.Fatalf("holder %s has value %q", k, ev.Kv.Value)
			}
			sum += n - live[k]
			live[k] = n
			if ev.Kv.Version == 1 {
				held[k] = [3]int64{n, ev.Kv.ModRevision, 0}
			}
		case clientv3.EventTypeDelete:
			sum -= live[k]
			delete(live, k)
			h := held[k]
			h[2] = ev.Kv.ModRevision
			held[k] = h
		}
		// Check once all of a revision's events are applied.
		if i+1 == len(l.events) || l.events[i+1].Kv.ModRevision != ev.Kv.ModRevision {
			if sum > capacity {
				t.Errorf("revision %d: %d permits held, capacity %d", ev.Kv.ModRevision, sum, capacity)
			}
			peak = max(peak, sum)
		}
	}
	if sum != 0 {
		t.Errorf("%d permits still held at the end: %v", sum, live)
	}
	t.Logf("ledger: %d grants, peak %d of %d permits held", len(held), peak, capacity)
	return held
}

// TestChurnKillFailover runs holders in several processes, acquiring and
// releasing with mixed weights, while one holder is killed with SIGKILL,
// the leader is stopped and restarted, and then a follower is. etcd's own
// history of the holder keys proves that the capacity was never exceeded,
// that every grant a process reported is in it, and that everything held
// came back.
func TestChurnKillFailover(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c)
	ctx := hangGuard(t)
	const prefix, capacity = "/churn/", 3
	eps := strings.Join(c.endpoints(), ",")
	start, err := cli.Get(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	led := watchLedger(ctx, cli, prefix, start.Header.Revision)

	var cmds []*exec.Cmd
	t.Cleanup(func() {
		for _, cmd := range cmds {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
	})
	lines := make(chan childLine, 64)

	// The victim holds 1 permit, with a short lease, until it is killed.
	victim := child(t, "holder", eps, prefix, "3", "2", "1")
	vout, err := victim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := victim.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, victim)
	vsc := bufio.NewScanner(vout)
	if !vsc.Scan() {
		t.Fatal("the victim said nothing")
	}
	f := strings.Fields(vsc.Text())
	if len(f) != 3 || f[0] != "held" {
		t.Fatalf("victim said %q", vsc.Text())
	}
	victimKey := f[1]

	weights := []string{"1,2,1,3", "2,1,1", "3,1,2"}
	var stdins []io.WriteCloser
	for i, w := range weights {
		cmd := child(t, "churn", eps, prefix, "3", "10", w)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		stdins = append(stdins, in)
		go readLines(i, out, lines)
	}

	// With the victim holding 1 of 3, a request of 3 waits, and every
	// request behind it: the churn stalls until the victim's lease
	// expires after it is killed.
	waitForWaiters(t, cli, strings.TrimSuffix(prefix, "/"), len(weights))
	t.Log("SIGKILL the victim while it holds")
	victim.Process.Kill()
	if err := victim.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("victim exited with %v, want killed", err)
	}

	reported := map[string]int64{}
	released := map[string]bool{}
	acquired := 0
	stopped := -1
	// Each step runs once the children have made that many grants since
	// the step before, so the cluster is always changed under load and
	// shown to make progress after each change.
	steps := []struct {
		name string
		do   func()
	}{
		{"stop the leader", func() {
			stopped = c.leader()
			if stopped < 0 {
				t.Fatal("no leader")
			}
			c.stopMember(stopped)
		}},
		{"restart it", func() {
			if err := c.restartMember(stopped); err != nil {
				t.Fatal(err)
			}
			checkMember(t, c, stopped)
		}},
		{"stop a follower", func() {
			l := c.leader()
			stopped = (l + 1) % len(c.members)
			c.stopMember(stopped)
		}},
		{"restart it", func() {
			if err := c.restartMember(stopped); err != nil {
				t.Fatal(err)
			}
			checkMember(t, c, stopped)
		}},
		{"stop the children", func() {
			for _, in := range stdins {
				in.Close()
			}
		}},
	}
	const every = 15
	running := len(weights)
	for running > 0 {
		var cl childLine
		select {
		case cl = <-lines:
		case <-ctx.Done():
			t.Fatalf("children stuck after %d grants", acquired)
		}
		if cl.line == "" {
			running--
			continue
		}
		f := strings.Fields(cl.line)
		switch f[0] {
		case "acq":
			n, _ := strconv.ParseInt(f[2], 10, 64)
			reported[f[1]] = n
			acquired++
			if acquired%every == 0 && acquired/every <= len(steps) {
				step := steps[acquired/every-1]
				t.Logf("after %d grants: %s", acquired, step.name)
				step.do()
			}
		case "rel":
			released[f[1]] = true
		}
	}
	for _, cmd := range cmds[1:] {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("churn child: %v", err)
		}
	}
	if acquired < every*len(steps) {
		t.Fatalf("only %d grants", acquired)
	}

	// Everything comes back: the victim's permit too, once its lease
	// expires. Waiting for all of them is an Acquire of the capacity.
	s := newSem(t, cli, prefix, capacity)
	if err := s.Acquire(ctx, capacity); err != nil {
		t.Fatal(err)
	}
	s.Release(capacity)
	wantValue(t, s, capacity)
	if _, err := cli.Put(ctx, prefix+"end", ""); err != nil {
		t.Fatal(err)
	}
	if err := <-led.done; err != nil {
		t.Fatal(err)
	}
	held := led.check(t, prefix, capacity)

	// Every grant a process reported is in etcd's history, with its weight,
	// and ended; the victim's ended though it never released.
	for k, n := range reported {
		h, ok := held[k]
		if !ok || h[0] != n || h[2] == 0 {
			t.Errorf("reported grant %s of %d: history has %v", k, n, h)
		}
		if !released[k] {
			t.Errorf("grant %s was not released", k)
		}
	}
	if h, ok := held[victimKey]; !ok || h[2] == 0 {
		t.Errorf("the victim's permit %s never came back: %v", victimKey, h)
	}
	t.Logf("%d grants reported by the children, %d in the history", len(reported), len(held))
}

// checkMember reads through member i alone: it has rejoined and serves
// linearizable reads.
func checkMember(t *testing.T, c *cluster, i int) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{c.members[i].cli.String()},
		DialTimeout: 10 * time.Second,
		Logger:      c.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	if _, err := cli.Get(ctx, "/churn/"); err != nil {
		t.Fatalf("member %s after restart: %v", c.members[i].name, err)
	}
}

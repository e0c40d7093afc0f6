package etcdsem

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// roleEnv names the role a re-executed test binary plays.
const roleEnv = "ETCDSEM_TEST_ROLE"

var roles = map[string]func(args []string) error{
	"holder": holderRole,
	"churn":  churnRole,
	"bench":  benchRole,
}

func TestMain(m *testing.M) {
	if role, ok := os.LookupEnv(roleEnv); ok {
		if err := roles[role](os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "role %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	stopSharedCluster()
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions ignores the goroutines that the embedded etcd members leave
// behind once every member and client is closed: the connections of etcd's
// peer (raft) transport. Members talk to each other over net/http, the
// server side behind a cmux listener; Close stops the listeners but not the
// connections already accepted, so each leaves a server goroutine parked in
// abortPendingRead on a cmux read and the dialling side's keep-alive
// readLoop and writeLoop. Nothing in this package, its clients (gRPC) or the
// tests uses net/http, so these can only be etcd's own.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/soheilhy/cmux.(*MuxConn).Read"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).abortPendingRead"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
}

// child returns a command that runs this test binary again in role.
func child(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

// roleSemaphore connects a child to the cluster: args are the endpoints
// (comma-separated), the prefix, the capacity and the TTL.
func roleSemaphore(args []string) (*clientv3.Client, *Semaphore, error) {
	capacity, _ := strconv.ParseInt(args[2], 10, 64)
	ttl, _ := strconv.Atoi(args[3])
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(args[0], ","),
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, nil, err
	}
	s, err := New(cli, args[1], capacity, WithTTL(ttl))
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	return cli, s, nil
}

// lastHold returns the key and weight of the newest hold.
func (s *Semaphore) lastHold() (string, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[len(s.held)-1]
	return h.key, h.n
}

// holderRole acquires n permits, says "held KEY N", and holds them until
// its standard input ends; then it releases them and says "released".
func holderRole(args []string) error {
	cli, s, err := roleSemaphore(args)
	if err != nil {
		return err
	}
	defer cli.Close()
	defer s.Close()
	n, _ := strconv.ParseInt(args[4], 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	if err := s.Acquire(ctx, n); err != nil {
		return err
	}
	key, _ := s.lastHold()
	fmt.Printf("held %s %d\n", key, n)
	io.Copy(io.Discard, os.Stdin)
	s.Release(n)
	fmt.Println("released")
	return nil
}

// churnRole acquires and releases, with the weights given in turn, until
// its standard input ends, saying "acq KEY N" after each Acquire and
// "rel KEY" after each Release.
func churnRole(args []string) error {
	cli, s, err := roleSemaphore(args)
	if err != nil {
		return err
	}
	defer cli.Close()
	defer s.Close()
	var weights []int64
	for _, w := range strings.Split(args[4], ",") {
		n, _ := strconv.ParseInt(w, 10, 64)
		weights = append(weights, n)
	}
	var stop atomic.Bool
	go func() {
		io.Copy(io.Discard, os.Stdin)
		stop.Store(true)
	}()
	out := bufio.NewWriter(os.Stdout)
	for i := 0; !stop.Load(); i++ {
		n := weights[i%len(weights)]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
		err := s.Acquire(ctx, n)
		cancel()
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i, err)
		}
		key, _ := s.lastHold()
		fmt.Fprintf(out, "acq %s %d\n", key, n)
		out.Flush()
		s.Release(n)
		fmt.Fprintf(out, "rel %s\n", key)
		out.Flush()
	}
	return nil
}

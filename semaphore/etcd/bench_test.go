package etcdsem

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// The benchmarks run beside etcd's own concurrency.Mutex on the same
// embedded three-member cluster; compare with
//
//	go test -run XXX -bench . -count 6 > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt

var benchSeq atomic.Int64

func benchPrefix(name string) string {
	return fmt.Sprintf("/bench/%s-%d", name, benchSeq.Add(1))
}

// compact compacts the cluster's history, as a production cluster does
// periodically, so that each benchmark starts from the same state: the
// history the ones before left would otherwise slow the ones after.
func compact(b *testing.B, cli *clientv3.Client) {
	b.Helper()
	ctx := context.Background()
	resp, err := cli.Get(ctx, "/bench/")
	if err != nil {
		b.Fatal(err)
	}
	_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		b.Fatal(err) // ErrCompacted: nothing was written since the last time
	}
}

// BenchmarkUncontended is one Acquire(1)+Release(1) against one
// Lock+Unlock, with nobody else about: each is two round trips.
func BenchmarkUncontended(b *testing.B) {
	c := sharedCluster(b)
	cli := newClient(b, c)
	ctx := context.Background()
	b.Run("impl=mutex", func(b *testing.B) {
		sess, err := concurrency.NewSession(cli)
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		compact(b, cli)
		m := concurrency.NewMutex(sess, benchPrefix("mutex"))
		b.ResetTimer()
		for b.Loop() {
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=etcdsem", func(b *testing.B) {
		compact(b, cli)
		s := newSem(b, cli, benchPrefix("unc"), 1)
		b.ResetTimer()
		for b.Loop() {
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
			s.Release(1)
		}
	})
}

// BenchmarkContended has 8 and 64 contenders, each with its own client,
// take turns at a capacity of one (the Mutex's): ns/op is the time per
// grant and release, across all of them.
func BenchmarkContended(b *testing.B) {
	c := sharedCluster(b)
	for _, n := range []int{8, 64} {
		clis := make([]*clientv3.Client, n)
		for i := range clis {
			clis[i] = newClient(b, c)
		}
		b.Run(fmt.Sprintf("contenders=%d/impl=etcdsem", n), func(b *testing.B) {
			compact(b, clis[0])
			prefix := benchPrefix("cont")
			sems := make([]*Semaphore, n)
			for i := range sems {
				sems[i] = newSem(b, clis[i], prefix, 1)
			}
			contend(b, n, func(i int) error {
				if err := sems[i].Acquire(context.Background(), 1); err != nil {
					return err
				}
				sems[i].Release(1)
				return nil
			})
		})
		b.Run(fmt.Sprintf("contenders=%d/impl=mutex", n), func(b *testing.B) {
			compact(b, clis[0])
			prefix := benchPrefix("contmutex")
			ms := make([]*concurrency.Mutex, n)
			for i := range ms {
				sess, err := concurrency.NewSession(clis[i])
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { sess.Close() })
				ms[i] = concurrency.NewMutex(sess, prefix)
			}
			contend(b, n, func(i int) error {
				if err := ms[i].Lock(context.Background()); err != nil {
					return err
				}
				return ms[i].Unlock(context.Background())
			})
		})
	}
}

// contend runs b.N operations spread over n goroutines.
func contend(b *testing.B, n int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkContendedProcs is BenchmarkContended with the contenders spread
// over 4 processes (this test binary, run again), each contender with its
// own client.
func BenchmarkContendedProcs(b *testing.B) {
	c := sharedCluster(b)
	cli := newClient(b, c)
	eps := strings.Join(c.endpoints(), ",")
	const procs = 4
	for _, n := range []int{8, 64} {
		for _, impl := range []string{"etcdsem", "mutex"} {
			compact(b, cli)
			prefix := benchPrefix("procs")
			var kids []*benchChild
			for range procs {
				kids = append(kids, startBenchChild(b, eps, prefix, impl, n/procs))
			}
			b.Run(fmt.Sprintf("contenders=%d/impl=%s", n, impl), func(b *testing.B) {
				b.ResetTimer()
				for i, k := range kids {
					ops := b.N / procs
					if i < b.N%procs {
						ops++
					}
					fmt.Fprintln(k.in, ops)
				}
				for _, k := range kids {
					if !k.out.Scan() || k.out.Text() != "done" {
						b.Fatalf("bench child: %q", k.out.Text())
					}
				}
			})
			for _, k := range kids {
				k.in.Close()
				if err := k.cmd.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

type benchChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startBenchChild(b *testing.B, eps, prefix, impl string, contenders int) *benchChild {
	b.Helper()
	cmd := child(b, "bench", eps, prefix, impl, strconv.Itoa(contenders))
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	k := &benchChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !k.out.Scan() || k.out.Text() != "ready" {
		b.Fatalf("bench child said %q", k.out.Text())
	}
	return k
}

// benchRole runs contenders, each with its own client, on a Semaphore of
// capacity 1 or a concurrency.Mutex: it says "ready", then for each number
// of operations read from standard input runs that many, spread over the
// contenders, and says "done".
func benchRole(args []string) error {
	eps, prefix, impl := strings.Split(args[0], ","), args[1], args[2]
	contenders, _ := strconv.Atoi(args[3])
	ops := make([]func() error, contenders)
	for i := range ops {
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx := context.Background()
		if impl == "etcdsem" {
			s, err := New(cli, prefix, 1)
			if err != nil {
				return err
			}
			defer s.Close()
			ops[i] = func() error {
				if err := s.Acquire(ctx, 1); err != nil {
					return err
				}
				s.Release(1)
				return nil
			}
		} else {
			sess, err := concurrency.NewSession(cli)
			if err != nil {
				return err
			}
			defer sess.Close()
			m := concurrency.NewMutex(sess, prefix)
			ops[i] = func() error {
				if err := m.Lock(ctx); err != nil {
					return err
				}
				return m.Unlock(ctx)
			}
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		total, _ := strconv.ParseInt(in.Text(), 10, 64)
		var next atomic.Int64
		errc := make(chan error, contenders)
		for _, op := range ops {
			go func() {
				for next.Add(1) <= total {
					if err := op(); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for range ops {
			if err := <-errc; err != nil {
				return err
			}
		}
		fmt.Println("done")
	}
	return nil
}

package etcdsem

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
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
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		b.Fatal(err)
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

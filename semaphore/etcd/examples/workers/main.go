// Command workers runs several worker processes, each with its own etcd
// client, that share one cluster-wide limit on jobs running at once.
//
//	go run ./examples/workers -workers 4 -limit 2 -jobs 3
//
// With no -endpoints it starts a one-member etcd, embedded, on 127.0.0.1
// with its data in a temporary directory, so it runs on one machine with
// nothing installed; give -endpoints to use a real cluster (every worker
// then could be on another host). Each worker prints when a job starts and
// ends, and how many slots were free when it started: never fewer than
// zero, because at most -limit jobs hold a slot at once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	etcdsem "github.com/eventsync/eventsync/semaphore/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func main() {
	workers := flag.Int("workers", 4, "worker processes to start")
	limit := flag.Int64("limit", 2, "jobs running at once, across all workers")
	jobs := flag.Int("jobs", 3, "jobs per worker")
	work := flag.Duration("work", 200*time.Millisecond, "how long a job runs")
	endpoints := flag.String("endpoints", "", "etcd client URLs, comma-separated (default: start an embedded etcd)")
	worker := flag.Int("worker", -1, "run as worker number N (used by the parent)")
	flag.Parse()
	log.SetFlags(0)

	if *worker >= 0 {
		if err := runWorker(*worker, strings.Split(*endpoints, ","), *limit, *jobs, *work); err != nil {
			log.Fatalf("worker %d: %v", *worker, err)
		}
		return
	}

	if *endpoints == "" {
		e, stop, err := startEtcd()
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		*endpoints = e
		fmt.Printf("embedded etcd at %s\n", e)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	failed := false
	var mu sync.Mutex
	for i := range *workers {
		cmd := exec.Command(self, "-worker", fmt.Sprint(i), "-endpoints", *endpoints,
			"-limit", fmt.Sprint(*limit), "-jobs", fmt.Sprint(*jobs), "-work", work.String())
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed {
		log.Fatal("a worker failed")
	}
	fmt.Printf("%d workers ran %d jobs, with a limit of %d at once\n", *workers, *workers**jobs, *limit)
}

// runWorker is one worker process: its own client, its own lease.
func runWorker(id int, endpoints []string, limit int64, jobs int, work time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	sem, err := etcdsem.New(cli, "/examples/workers/jobs", limit, etcdsem.WithTTL(5))
	if err != nil {
		return err
	}
	defer sem.Close()
	for j := range jobs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := sem.Acquire(ctx, 1)
		cancel()
		if err != nil {
			return err
		}
		free, _ := sem.Value()
		fmt.Printf("worker %d: job %d starts (%d of %d slots free)\n", id, j, free, limit)
		select {
		case <-time.After(work): // the job
		case <-sem.Done():
			return fmt.Errorf("lease lost during job %d", j)
		}
		fmt.Printf("worker %d: job %d done\n", id, j)
		sem.Release(1)
	}
	return nil
}

// startEtcd starts a one-member etcd on free loopback ports.
func startEtcd() (endpoint string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "etcdsem-workers-")
	if err != nil {
		return "", nil, err
	}
	peer, err := freeURL()
	if err != nil {
		return "", nil, err
	}
	client, err := freeURL()
	if err != nil {
		return "", nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() { e.Close(); os.RemoveAll(dir) }
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		stop()
		return "", nil, err
	case <-time.After(time.Minute):
		stop()
		return "", nil, fmt.Errorf("etcd not ready after a minute")
	}
	return client.String(), stop, nil
}

func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

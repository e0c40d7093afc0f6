package etcdsem_test

import (
	"context"
	"fmt"
	"log"

	etcdsem "github.com/eventsync/eventsync/semaphore/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// endpoints are the client URLs of your etcd cluster (here, the embedded
// one the tests start).
func endpoints() []string { return etcdsem.ClusterEndpoints() }

// At most two GPU jobs at once, on every host that reaches the cluster.
// Switching from one host is a change of constructor:
// semaphore.New(2) becomes etcdsem.New(cli, "/myapp/gpu", 2).
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), Logger: zap.NewNop()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	sem, err := etcdsem.New(cli, "/example/gpu", 2)
	if err != nil {
		log.Print(err)
		return
	}
	defer sem.Close() // gives back whatever this process still holds

	ctx := context.Background()
	if err := sem.Acquire(ctx, 1); err != nil {
		log.Print(err) // ctx.Err(), or the lease or Semaphore ended: nothing was taken
		return
	}
	free, _ := sem.Value()
	fmt.Println("running a job; free slots:", free)
	sem.Release(1)

	free, _ = sem.Value()
	fmt.Println("done; free slots:", free)
	// Output:
	// running a job; free slots: 1
	// done; free slots: 2
}

// A holder that is cut off from the cluster for longer than the lease's TTL
// no longer holds its permits: Done tells it to stop the work they guard.
func ExampleSemaphore_Done() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), Logger: zap.NewNop()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	sem, err := etcdsem.New(cli, "/example/deploys", 1, etcdsem.WithTTL(5))
	if err != nil {
		log.Print(err)
		return
	}
	defer sem.Close()

	ctx := context.Background()
	if err := sem.Acquire(ctx, 1); err != nil {
		log.Print(err)
		return
	}
	// Here the lease is revoked, as the cluster would expire it.
	if _, err := cli.Revoke(ctx, sem.Lease()); err != nil {
		log.Print(err)
		return
	}
	<-sem.Done()
	fmt.Println("lease lost: stop the deploy")
	sem.Release(1) // settles the count; the permit is already free
	free, _ := sem.Value()
	fmt.Println("free:", free)
	// Output:
	// lease lost: stop the deploy
	// free: 1
}

package etcdsem

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A cluster is a real etcd cluster of embedded members on loopback, for the
// tests. Set ETCDSEM_TEST_LOG=1 to see the members' logs.
type cluster struct {
	dir     string
	initial string
	members []*member
}

type member struct {
	name      string
	dir       string
	peer, cli url.URL
	etcd      *embed.Etcd
}

// freeURL returns an http URL on 127.0.0.1 with a port that was free a moment
// ago.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// startCluster starts n members with their data under dir.
func startCluster(dir string, n int) (*cluster, error) {
	c := &cluster{dir: dir}
	var peers []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), dir: fmt.Sprintf("%s/m%d", dir, i)}
		var err error
		if m.peer, err = freeURL(); err != nil {
			return nil, err
		}
		if m.cli, err = freeURL(); err != nil {
			return nil, err
		}
		peers = append(peers, m.name+"="+m.peer.String())
		c.members = append(c.members, m)
	}
	c.initial = strings.Join(peers, ",")
	for _, m := range c.members {
		if err := c.start(m, embed.ClusterStateFlagNew); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, m := range c.members {
		if err := ready(m.etcd); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) start(m *member, state string) error {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.ListenClientUrls = []url.URL{m.cli}
	cfg.AdvertiseClientUrls = []url.URL{m.cli}
	cfg.InitialCluster = c.initial
	cfg.InitialClusterToken = "etcdsem-test"
	cfg.ClusterState = state
	cfg.UnsafeNoFsync = true // test data only: speed over durability
	if os.Getenv("ETCDSEM_TEST_LOG") == "" {
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.LogLevel = zapcore.ErrorLevel.String()
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting %s: %w", m.name, err)
	}
	m.etcd = e
	return nil
}

func ready(e *embed.Etcd) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return err
	case <-time.After(60 * time.Second): // a hang guard, not a wait
		return fmt.Errorf("member not ready after 60s")
	}
}

// endpoints returns every member's client URL.
func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.cli.String())
	}
	return eps
}

// leader returns the index of the member that leads, among those running.
func (c *cluster) leader() int {
	for i, m := range c.members {
		if m.etcd != nil && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// stopMember stops member i; restartMember starts it again on its data.
func (c *cluster) stopMember(i int) {
	c.members[i].etcd.Close()
	c.members[i].etcd = nil
}

func (c *cluster) restartMember(i int) error {
	m := c.members[i]
	if err := c.start(m, embed.ClusterStateFlagExisting); err != nil {
		return err
	}
	return ready(m.etcd)
}

func (c *cluster) stop() {
	for _, m := range c.members {
		if m.etcd != nil {
			m.etcd.Close()
			m.etcd = nil
		}
	}
}

var shared struct {
	once sync.Once
	c    *cluster
	dir  string
	err  error
}

// sharedCluster returns the three-member cluster the tests share, starting
// it on first use. TestMain stops it.
func sharedCluster(t testing.TB) *cluster {
	t.Helper()
	if err := startShared(); err != nil {
		t.Fatal(err)
	}
	return shared.c
}

func startShared() error {
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "etcdsem-test-")
		if shared.err == nil {
			shared.c, shared.err = startCluster(shared.dir, 3)
		}
	})
	return shared.err
}

func stopSharedCluster() {
	if shared.c != nil {
		shared.c.stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

func (c *cluster) logger() *zap.Logger { return zap.NewNop() }

// newClient returns a client of c that the test closes when it ends.
func newClient(t testing.TB, c *cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.endpoints(),
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

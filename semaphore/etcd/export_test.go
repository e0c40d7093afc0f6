package etcdsem

// ClusterEndpoints returns the client URLs of the embedded cluster the
// tests share, starting it if need be, for the examples.
func ClusterEndpoints() []string {
	if err := startShared(); err != nil {
		panic(err)
	}
	return shared.c.endpoints()
}

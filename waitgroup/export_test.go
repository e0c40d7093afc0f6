package waitgroup

// shared returns wg's eventfds, moving its counter there first if it lives
// in the process, for tests that look at the descriptors.
func (wg *WaitGroup) shared() *fds {
	f, err := wg.group().share()
	if err != nil {
		panic(err)
	}
	return f
}

// watched is how many processes started with Start wg still watches.
func (wg *WaitGroup) watched() int {
	s := &wg.group().starts
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

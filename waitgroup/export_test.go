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

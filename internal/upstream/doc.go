// Package upstream holds tests only: it judges eventsync by suites and
// programs written for golang.org/x/sync/semaphore and the standard
// library's sync.WaitGroup, switched to eventsync by their import path (and,
// for sync, the package name of WaitGroup), built and run under the race
// detector in a temporary module.
//
// The upstream suites are read at test time from the module cache and
// GOROOT, never copied into this repository.
package upstream

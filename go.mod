module github.com/eventsync/eventsync

go 1.26.0

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
)

require pgregory.net/rapid v1.3.0

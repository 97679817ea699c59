package cluster

import (
	"context"
	"sync"
)

// event is something that happens once in a run (a host is connected, the
// swarm has started): any number wait for it, and whoever sees it happen,
// or sees that it never will, marks it done, as often as it likes.
type event struct {
	ch   chan struct{}
	once sync.Once
}

func newEvent() *event { return &event{ch: make(chan struct{})} }

// done marks the event as happened (or given up on); later calls do
// nothing.
func (e *event) done() { e.once.Do(func() { close(e.ch) }) }

// wait returns when the event is done, or with ctx's error first.
func (e *event) wait(ctx context.Context) error {
	select {
	case <-e.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEvent(t *testing.T) {
	e := newEvent()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait before done: %v, want the context's deadline", err)
	}
	waited := make(chan error)
	go func() { waited <- e.wait(context.Background()) }()
	e.done()
	e.done() // a second done is no panic
	if err := <-waited; err != nil {
		t.Fatalf("wait after done: %v", err)
	}
}

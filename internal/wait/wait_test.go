package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPollDone(t *testing.T) {
	n := 0
	err := Poll(context.Background(), time.Millisecond, time.Second, func(context.Context) (bool, error) {
		n++
		return n == 3, nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d checks, want nil after 3", err, n)
	}
}

func TestPollError(t *testing.T) {
	boom := errors.New("boom")
	err := Poll(context.Background(), time.Millisecond, time.Second, func(context.Context) (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
}

func TestPollBound(t *testing.T) {
	start := time.Now()
	err := Poll(context.Background(), time.Millisecond, 20*time.Millisecond, func(context.Context) (bool, error) { return false, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("the bound did not hold")
	}
}

func TestPollCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := Poll(ctx, time.Millisecond, 0, func(context.Context) (bool, error) { called = true; return true, nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("err %v, called %v: want canceled, not called", err, called)
	}
}

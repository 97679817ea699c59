package fanout

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachBoundsAndJoins(t *testing.T) {
	var running, most atomic.Int32
	items := []int{1, 2, 3, 4, 5, 6, 7}
	err := Each(context.Background(), 3, items, nil, func(_ context.Context, i int) error {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		running.Add(-1)
		if i%2 == 0 {
			return errors.New("even")
		}
		return nil
	})
	if most.Load() > 3 {
		t.Errorf("%d ran at once, want at most 3", most.Load())
	}
	if err == nil || strings.Count(err.Error(), "even") != 3 {
		t.Errorf("errors: %v, want the three of the even items", err)
	}
}

func TestEachPanicFailsOneItem(t *testing.T) {
	var done atomic.Int32
	err := Each(context.Background(), 2, []string{"a", "b", "c"}, func(s string) string { return "host " + s }, func(_ context.Context, s string) error {
		if s == "b" {
			panic("boom")
		}
		done.Add(1)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "host b: internal error") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v", err)
	}
	if done.Load() != 2 {
		t.Errorf("%d others finished, want 2", done.Load())
	}
}

func TestEachCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ran atomic.Int32
	err := Each(ctx, 1, []int{1, 2, 3}, nil, func(context.Context, int) error { ran.Add(1); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if ran.Load() == 3 {
		t.Errorf("every item ran after the context ended")
	}
}

func TestGuardTurnsAPanicIntoAnError(t *testing.T) {
	err := Guard("m1", func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "m1: internal error") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
	if err := Guard("m1", func() error { return nil }); err != nil {
		t.Fatalf("err %v", err)
	}
}

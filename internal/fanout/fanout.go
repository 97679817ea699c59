// Package fanout runs one piece of work per item, a bounded number at
// once: the hosts of a cluster, the nodes of a swarm.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Each runs f for every item, at most n at once (n < 1 counts as 1), and
// joins the errors. An item not started when ctx ends gets ctx's error. A
// panic in f fails that item alone, named by name (nil: its index), so
// that one bug met on one host does not abort the others mid-way.
func Each[T any](ctx context.Context, n int, items []T, name func(T) string, f func(context.Context, T) error) error {
	n = max(n, 1)
	sem := make(chan struct{}, n)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A select between a free slot and an ended context picks at
			// random: an ended context must win.
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			who := func() string {
				if name != nil {
					return name(it)
				}
				return fmt.Sprintf("item %d", i)
			}
			errs[i] = guard(who, func() error { return f(ctx, it) })
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Guard runs f and turns a panic in it into an error naming who: one bug
// met on one host fails that host's work, not the whole run.
func Guard(who string, f func() error) error {
	return guard(func() string { return who }, f)
}

func guard(who func() string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: internal error (a bug in shoal, please report it): %v", who(), r)
		}
	}()
	return f()
}

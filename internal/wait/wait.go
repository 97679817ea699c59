// Package wait is the one way shoal waits for something: poll, bounded.
package wait

import (
	"context"
	"time"
)

// Poll calls check every interval until it says done, returns an error, or
// bound passes (bound <= 0: only ctx bounds it). It returns check's error,
// or ctx's when the bound or ctx ends first: the caller says what it
// waited for. check gets the bounded context.
func Poll(ctx context.Context, every, bound time.Duration, check func(ctx context.Context) (done bool, err error)) error {
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// Both may be ready at once, and select picks at random: an ended
		// context must win.
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := check(ctx)
		if done || err != nil {
			return err
		}
		t.Reset(every)
	}
}

package enginetest

import cerrdefs "github.com/containerd/errdefs"

// classed is an error of dockerd's with the class the Engine API client
// gives it from the answer's HTTP status (cerrdefs.IsNotFound and so on).
type classed struct{ err, class error }

func (c classed) Error() string   { return c.err.Error() }
func (c classed) Unwrap() []error { return []error{c.err, c.class} }

func unavailable(err error) error      { return classed{err, cerrdefs.ErrUnavailable} }
func notFound(err error) error         { return classed{err, cerrdefs.ErrNotFound} }
func invalidParameter(err error) error { return classed{err, cerrdefs.ErrInvalidArgument} }
func conflict(err error) error         { return classed{err, cerrdefs.ErrConflict} }

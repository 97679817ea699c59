package bootstrap

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

// fakeDockerd answers as dockerd 20.10 (Debian bookworm's docker.io) does:
// API 1.41 at most, and "too new" for a client asking a later version.
func fakeDockerd(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/_ping":
			_, _ = w.Write([]byte("OK"))
		case !strings.HasPrefix(r.URL.Path, "/v1.41/"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"client version is too new. Maximum supported API version is 1.41"}`))
		case r.URL.Path == "/v1.41/info":
			_, _ = w.Write([]byte(`{"ServerVersion":"20.10.24+dfsg1","Swarm":{"LocalNodeState":"inactive"}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"node x not found"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

// The Engine API client, as Open makes it (plain HTTP through the node's
// dialer), must keep talking to API 1.41 engines (docker 20.10, the lab's
// and many users' hosts): it negotiates down on its first request, and
// dockerd's error classes reach bootstrap's checks.
func TestAPIEngineNegotiatesAPI141(t *testing.T) {
	srv, paths := fakeDockerd(t)
	c, err := newAPI(func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	var e Engine = apiEngine{c}
	defer e.Close()
	info, err := e.Info(context.Background())
	if err != nil || info.ServerVersion != "20.10.24+dfsg1" {
		t.Fatalf("info: server %q, %v (requests %q)", info.ServerVersion, err, paths())
	}
	if v := c.ClientVersion(); v != "1.41" {
		t.Errorf("client speaks API %s to a 1.41 engine, want 1.41", v)
	}
	_, _, err = e.NodeInspectWithRaw(context.Background(), "x")
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("a 404 is not a not-found error for bootstrap: %v", err)
	}
	for _, p := range paths() {
		if !strings.HasSuffix(p, " /_ping") && !strings.Contains(p, " /v1.41/") {
			t.Errorf("request %s is not for API 1.41", p)
		}
	}
}

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

// fakeDockerd answers as a dockerd of API version api does: "too new" for a
// client asking a later version.
func fakeDockerd(t *testing.T, api, server string) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Api-Version", api)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/_ping":
			_, _ = w.Write([]byte("OK"))
		case !strings.HasPrefix(r.URL.Path, "/v"+api+"/"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"client version is too new. Maximum supported API version is ` + api + `"}`))
		case r.URL.Path == "/v"+api+"/info":
			_, _ = w.Write([]byte(`{"ServerVersion":"` + server + `","Swarm":{"LocalNodeState":"inactive"}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"node x not found"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

// The Engine API client, as Open makes it (plain HTTP through the node's
// dialer), must keep talking to the engines users have: docker 20.10 (API
// 1.41, the lab's and Debian's) within the client's negotiation, and CentOS
// 7's docker 1.13 (API 1.26) below it. dockerd's error classes must reach
// bootstrap's checks.
func TestAPIEngineSpeaksTheEnginesVersion(t *testing.T) {
	for _, tc := range []struct{ api, server string }{
		{"1.41", "20.10.24+dfsg1"},
		{"1.26", "1.13.1"},
		{"1.47", "27.5.1"},
	} {
		t.Run(tc.api, func(t *testing.T) {
			srv, paths := fakeDockerd(t, tc.api, tc.server)
			c, err := newAPI(func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
			})
			if err != nil {
				t.Fatal(err)
			}
			var e Engine = apiEngine{c}
			defer e.Close()
			ctx := context.Background()
			info, err := e.Info(ctx)
			if err != nil || info.ServerVersion != tc.server {
				t.Fatalf("info: server %q, %v (requests %q)", info.ServerVersion, err, paths())
			}
			if v := c.client(ctx).ClientVersion(); v != tc.api {
				t.Errorf("client speaks API %s to a %s engine", v, tc.api)
			}
			_, _, err = e.NodeInspectWithRaw(ctx, "x")
			if !cerrdefs.IsNotFound(err) {
				t.Errorf("a 404 is not a not-found error for bootstrap: %v", err)
			}
			pings := 0
			for _, p := range paths() {
				if strings.HasSuffix(p, " /_ping") {
					pings++
				} else if !strings.Contains(p, " /v"+tc.api+"/") {
					t.Errorf("request %s is not for API %s", p, tc.api)
				}
			}
			if pings != 1 {
				t.Errorf("%d pings, want 1 (the version is settled once): %q", pings, paths())
			}
		})
	}
}

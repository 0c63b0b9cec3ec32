package testenv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestStartRegistry_BasicAuthAndStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := StartRegistry(ctx, RegistryOptions{Dir: t.TempDir(), Username: "ci", Password: "s3cret pass"})
	if errors.Is(err, ErrMissingTool) {
		SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if host, _, _ := net.SplitHostPort(r.Addr); host != "127.0.0.1" || r.Repo("a/b") != r.Addr+"/a/b" {
		t.Fatalf("addr %s, repo %s", r.Addr, r.Repo("a/b"))
	}
	for _, tc := range []struct {
		name, user, password string
		want                 int
	}{
		{name: "anonymous", want: http.StatusUnauthorized},
		{name: "wrong password", user: "ci", password: "nope", want: http.StatusUnauthorized},
		{name: "right password", user: "ci", password: "s3cret pass", want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("GET /v2/: %s, want %d\nlog:\n%s", resp.Status, tc.want, r.Log())
			}
		})
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("registry still listening on %s after Stop", r.Addr)
	}
}

func TestStartRegistry_NeedsDir(t *testing.T) {
	if _, err := StartRegistry(context.Background(), RegistryOptions{}); err == nil {
		t.Fatal("StartRegistry without Dir succeeded")
	}
}

package serve_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchServe_Webhooks is the webhook benchmark (make bench-serve; SKIFF_BENCH_SERVE=1): `skiff serve`
// runs as its own process while a deploy runs, and takes 1,000 webhook requests from 16 clients, mixed
// valid (each a new delivery), invalid (wrong signature) and duplicate (a replayed delivery). It reports the
// throughput, the latency percentiles and the server's resident memory afterwards, against the targets of
// ≥ 1,000 requests/s, p99 < 50 ms and < 60 MiB.
func TestBenchServe_Webhooks(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_SERVE") == "" {
		t.Skip("benchmark: set SKIFF_BENCH_SERVE=1 (make bench-serve)")
	}
	bin := buildSkiff(t)
	head, url := serveTable(t, 2)
	apps := newSourceApps(t, map[string]string{"VERSION": "v1\n"}, head, map[string]string{
		"slow": "hooks.before_switch = [\"sleep 20\"]\n",
	}, "slow", "api")
	inv, commit := apps.inv, apps.commit
	p := startServe(t, bin, inv, url, []string{"SKIFF_SERVE_TOKEN=" + apiToken, "HOOK=" + hookSecret, "SKIFF_HASH_CACHE=off"})
	s := &liveServer{t: t, url: url}
	body := func(id string) []byte { return []byte(fmt.Sprintf(`{"revision":%q,"id":%q}`, commit, id)) }
	slow := body("slow-1")
	code, ans := hook(t, url, "slow-ci", slow, "X-Skiff-Signature", signature(slow, "hook-secret"))
	slowJob := jobID(t, code, ans)
	for s.job(slowJob).Status != "running" {
		time.Sleep(20 * time.Millisecond)
	}

	type request struct {
		body []byte
		sig  string
		want int
	}
	const total, clients = 1000, 16
	reqs := make([]request, total)
	for i := range reqs {
		switch i % 10 {
		case 0, 1, 2, 3: // a new delivery
			bd := body(fmt.Sprintf("api-%d", i))
			reqs[i] = request{bd, signature(bd, "hook-secret"), http.StatusAccepted}
		case 4, 5, 6: // a wrong signature
			bd := body(fmt.Sprintf("api-%d", i))
			reqs[i] = request{bd, signature(bd, "not-the-secret"), http.StatusUnauthorized}
		default: // the delivery of request 0 again
			bd := body("api-0")
			reqs[i] = request{bd, signature(bd, "hook-secret"), http.StatusOK}
		}
	}
	// Request 0 goes first so that its replays are duplicates.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	send := func(r request) (int, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, url+"/hooks/api-ci", bytes.NewReader(r.body))
		req.Header.Set("X-Skiff-Signature", r.sig)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0, 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, _ := send(reqs[0]); code != http.StatusAccepted {
		t.Fatalf("first request: %d", code)
	}
	lat := make([]time.Duration, total)
	wrong := make([]int, clients)
	var wg sync.WaitGroup
	began := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 1 + c; i < total; i += clients {
				code, d := send(reqs[i])
				lat[i] = d
				if code != reqs[i].want {
					wrong[c]++
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(began)
	if j := s.job(slowJob); j.Status != "running" {
		t.Errorf("the deploy was no longer running at the end (%s): the burst did not overlap it", j.Status)
	}
	lat = lat[1:]
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	rate := float64(len(lat)) / elapsed.Seconds()
	rss := rssMiB(t, p.cmd.Process.Pid)
	bad := 0
	for _, n := range wrong {
		bad += n
	}
	t.Logf("webhooks: %d requests (40%% valid, 30%% bad signature, 30%% duplicate) from %d clients in %s while a deploy ran",
		len(lat), clients, elapsed.Round(time.Millisecond))
	t.Logf("throughput %.0f req/s (target >= 1000); latency p50 %s p90 %s p99 %s max %s (target p99 < 50ms); server RSS after %.1f MiB (target < 60 MiB); wrong answers %d",
		rate, pct(0.5).Round(10*time.Microsecond), pct(0.9).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), rss, bad)
	if bad > 0 {
		t.Errorf("%d requests got another answer than expected", bad)
	}
	if rate < 1000 || pct(0.99) >= 50*time.Millisecond || rss >= 60 {
		t.Errorf("below target: %.0f req/s, p99 %s, RSS %.1f MiB", rate, pct(0.99), rss)
	}
}

// rssMiB reads a process's resident memory from /proc.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

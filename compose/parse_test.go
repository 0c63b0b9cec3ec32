package compose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseContainers_Fixtures(t *testing.T) {
	for _, tc := range []struct {
		file, status, health string
		exit, restarts       int
		ports                []PortBinding
		ips                  int
		healthOut            string
	}{
		{file: "container-healthy.json", status: "running", health: "healthy", ports: []PortBinding{{ContainerPort: 8080, Proto: "tcp", HostIP: "127.0.0.1", HostPort: 17001}}, ips: 1},
		{file: "container-exited.json", status: "exited", exit: 3},
		{file: "container-unhealthy.json", status: "running", health: "unhealthy", ips: 1, healthOut: "wget: server returned error: HTTP/1.1 404 Not Found"},
		{file: "container-restarting.json", status: "restarting", exit: 2, restarts: 5},
	} {
		t.Run(tc.file, func(t *testing.T) {
			list, err := ParseContainers(readFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("%d containers", len(list))
			}
			c := list[0]
			if c.Status != tc.status || c.Health != tc.health || c.ExitCode != tc.exit || c.RestartCount != tc.restarts {
				t.Fatalf("got %+v", c)
			}
			if len(c.Ports) != len(tc.ports) || (len(tc.ports) > 0 && c.Ports[0] != tc.ports[0]) {
				t.Fatalf("ports %+v, want %+v", c.Ports, tc.ports)
			}
			if len(c.IPs) != tc.ips {
				t.Fatalf("ips %v, want %d", c.IPs, tc.ips)
			}
			if c.HealthOutput != tc.healthOut {
				t.Fatalf("health output %q, want %q", c.HealthOutput, tc.healthOut)
			}
			if c.Image != "skiff-fixture/app:v1" || !strings.HasPrefix(c.Name, "fx-") || c.StartedAt.IsZero() {
				t.Fatalf("got %+v", c)
			}
		})
	}
	two, err := ParseContainers(readFixture(t, "containers-two.json"))
	if err != nil || len(two) != 2 {
		t.Fatalf("two containers: %d, %v", len(two), err)
	}
	if b, ok := two[0].Published(17001); !ok || b.ContainerPort != 8080 {
		t.Fatalf("Published(17001) = %+v, %v", b, ok)
	}
	if _, ok := two[0].Published(8080); ok {
		t.Fatal("Published(8080): the container port is not a host port")
	}
}

func TestParseContainers_RejectsTamperedOutput(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"not json", "{"},
		{"bad id", `{"id":"$(x)","state":{"Status":"running"}}`},
		{"unknown status", `{"id":"` + strings.Repeat("a", 64) + `","state":{"Status":"exploded"}}`},
		{"bad port", `{"id":"` + strings.Repeat("a", 64) + `","state":{"Status":"running"},"ports":{"x/tcp":[]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseContainers([]byte(tc.line)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParsePullDigest(t *testing.T) {
	want := "sha256:4579dd266e2791784042de1e3803760c6dc6b33f69d7a6ffc3db063664efd6c5"
	if got := ParsePullDigest(readFixture(t, "pull-output.txt")); got != want {
		t.Fatalf("ParsePullDigest = %q, want %q", got, want)
	}
	if got := ParsePullDigest([]byte("Status: Image is up to date\n")); got != "" {
		t.Fatalf("ParsePullDigest without a digest line = %q", got)
	}
}

func TestImage_DigestFor(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	img := Image{ID: "sha256:" + strings.Repeat("f", 64), RepoDigests: []string{
		"127.0.0.1:5000/shop/app@" + d1, "127.0.0.1:5000/other@" + d2, "nginx@" + d2,
	}}
	for _, tc := range []struct {
		name, repo, want, result, err string
	}{
		{name: "only digest of the repo", repo: "127.0.0.1:5000/shop/app", result: d1},
		{name: "pull named it", repo: "127.0.0.1:5000/shop/app", want: d1, result: d1},
		{name: "pull named another", repo: "127.0.0.1:5000/shop/app", want: d2, err: "not among its repo digests"},
		{name: "hub spelling", repo: "docker.io/library/nginx", result: d2},
		{name: "no digest for repo", repo: "127.0.0.1:5000/missing", err: "no repo digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := img.DigestFor(tc.repo, tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.result {
				t.Fatalf("DigestFor = %q, %v; want %q", got, err, tc.result)
			}
		})
	}
	ambiguous := Image{ID: img.ID, RepoDigests: []string{"a/b@" + d1, "a/b@" + d2}}
	if _, err := ambiguous.DigestFor("a/b", ""); err == nil || !strings.Contains(err.Error(), "several digests") {
		t.Fatalf("ambiguous: %v", err)
	}
	if _, err := ParseImage([]byte(`{"id":"nope","repo_digests":[]}`)); err == nil {
		t.Fatal("ParseImage accepted a bad id")
	}
}

func TestParseImageList(t *testing.T) {
	list, err := ParseImageList(readFixture(t, "image-list.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d images", len(list))
	}
	if l := list[0]; l.Repository != "registry.example.com/shop/app" || l.Tag != "v1" || !ValidDigest(l.Digest) ||
		!l.Created.Equal(time.Date(2026, 11, 23, 14, 41, 10, 0, time.UTC)) {
		t.Fatalf("first %+v", l)
	}
	if l := list[1]; l.Tag != "" || l.Digest == "" {
		t.Fatalf("untagged %+v", l)
	}
	if l := list[2]; l.Repository != "" || l.Digest != "" {
		t.Fatalf("dangling %+v", l)
	}
	if _, err := ParseImageList([]byte(`{"ID":"sha256:x"}`)); err == nil {
		t.Fatal("accepted a bad id")
	}
}

func TestParseContainerImages(t *testing.T) {
	id, img := strings.Repeat("c", 64), "sha256:"+strings.Repeat("d", 64)
	got, err := ParseContainerImages([]byte(id + " " + img + "\n"))
	if err != nil || got[id] != img {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseContainerImages([]byte(id + " rm -rf\n")); err == nil {
		t.Fatal("accepted garbage")
	}
	ids, err := ParseIDs([]byte(id + "\n" + strings.Repeat("e", 64) + "\n"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("ParseIDs = %v, %v", ids, err)
	}
	if _, err := ParseIDs([]byte("$(x)\n")); err == nil {
		t.Fatal("ParseIDs accepted garbage")
	}
}

func TestOverride_RoundTrip(t *testing.T) {
	ref := Reference{Repository: "registry.example.com/shop/app", Digest: "sha256:" + strings.Repeat("ab", 32)}
	for _, service := range []string{"app", "true", "1e3", "web.v2"} {
		t.Run(service, func(t *testing.T) {
			data, err := Override(service, ref, "")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "  \""+service+"\":\n    image: \""+ref.String()+"\"\n") {
				t.Fatalf("override:\n%s", data)
			}
			svc, got, err := ParseOverride(data)
			if err != nil || svc != service || got != ref {
				t.Fatalf("ParseOverride = %q, %+v, %v", svc, got, err)
			}
		})
	}
	data, err := Override("app", ref, "/srv/shop/shared/.env")
	if err != nil || !strings.HasSuffix(string(data), "    env_file:\n      - \"/srv/shop/shared/.env\"\n") {
		t.Fatalf("override with env_file: %v\n%s", err, data)
	}
	if svc, got, err := ParseOverride(data); err != nil || svc != "app" || got != ref {
		t.Fatalf("ParseOverride with env_file = %q, %+v, %v", svc, got, err)
	}
	if _, err := Override("app", ref, "relative/.env"); err == nil {
		t.Fatal("Override accepted a relative env_file")
	}
	if _, err := Override("app", Reference{Repository: "shop/app", Tag: "v1"}, ""); err == nil {
		t.Fatal("Override accepted a reference without digest")
	}
	if _, err := Override("a b", ref, ""); err == nil {
		t.Fatal("Override accepted a bad service")
	}
	if _, _, err := ParseOverride([]byte("services: {}\n")); err == nil {
		t.Fatal("ParseOverride accepted a file without a pin")
	}
}
